"""The image layout links every plugin into the image's plugin dir where the name is free."""
from __future__ import annotations

import os

import yaml

IMAGE_DIR = "/srv/image-bin"
THEIRS = b"#!/bin/sh\n# the image's own bridge\n"


def test_image_layout_links_free_names_and_leaves_the_images_own(node, mirror, inventory, run_playbook, role_vars, tmp_path):
    booted = node("layout-image")
    inv = inventory([booted])
    own = booted.path(IMAGE_DIR + "/bridge")
    own.parent.mkdir(parents=True)
    own.write_bytes(THEIRS)
    play = tmp_path / "image.yml"
    play.write_text(yaml.safe_dump([{"name": "Plugins for an image", "hosts": "nodes", "gather_facts": False,
                                     "roles": [{"role": "nodeprep.cni.cni_plugins"}]}]))
    extra = role_vars("9.0.0", cni_plugins_layout="image", cni_plugins_image_dir=IMAGE_DIR, cni_plugins_link_dirs=[])

    first = run_playbook(play, inv, extra_vars=extra)
    assert first.rc == 0, first.describe()
    plugins = sorted(mirror.releases["9.0.0"].plugins)
    for name in plugins:
        path = booted.path(IMAGE_DIR + "/" + name)
        if name == "bridge":
            assert not path.is_symlink() and path.read_bytes() == THEIRS
        else:
            assert os.readlink(path) == "/opt/cni/versions/current/" + name
            # Resolved inside the node: the plugin of the current version.
            resolved = booted.run("readlink -f %s/%s" % (IMAGE_DIR, name)).stdout.strip()
            assert resolved == "/opt/cni/versions/v9.0.0/" + name

    again = run_playbook(play, inv, extra_vars=extra)
    assert again.rc == 0 and again.changed(booted.name) == 0, again.describe()
    checked = run_playbook(play, inv, extra_vars=extra, check=True)
    assert checked.rc == 0 and checked.changed(booted.name) == 0, checked.describe()
