"""mount_info on real nodes: a booted node with a read-only /usr and a mount whose path has a space, a tab
and a backslash, compared with the node's own findmnt; and an image build's chroot without /proc, where
it says "unknown" and why instead of failing.
"""
from __future__ import annotations

import json

import yaml

from testbed_lib import ansible_runner
from testbed_lib.node import BootedNode

ODD = "/run/odd dir\twith\\back"
TASK = "Read the mounts"
CHROOT_WITHOUT_PROC = """#!/bin/sh
root=$1
shift
exec unshare --mount --propagation private chroot "$root" "$@"
"""


def playbook(tmp_path, paths):
    play = [{"name": "mount_info", "hosts": "nodes", "gather_facts": False,
             "tasks": [{"name": TASK, "nodeprep.cni.mount_info": {"paths": paths}, "check_mode": True}]}]
    path = tmp_path / "mount_info.yml"
    path.write_text(yaml.safe_dump(play))
    return path


def findmnt(node, *args):
    out = node.run(["findmnt", "--json", "--output", "TARGET,SOURCE,FSTYPE,PROPAGATION,OPTIONS"] + list(args)).stdout
    return json.loads(out)["filesystems"][-1]


def test_a_booted_node_with_odd_paths_and_a_read_only_usr(node, inventory, run_playbook, tmp_path):
    booted = node("mountinfo", readonly_usr=True)
    booted.run(["mkdir", "-p", ODD])
    booted.run(["mount", "-t", "tmpfs", "-o", "mode=0755,nosuid", "odd source", ODD])
    booted.run(["mount", "--make-shared", ODD])
    booted.run(["mkdir", ODD + "/inside"])

    result = run_playbook(playbook(tmp_path, [ODD, ODD + "/inside/not yet", "/usr/bin", "/opt/cni/bin"]),
                          inventory([booted]))
    assert result.rc == 0, result.describe()
    found = result.result(TASK, booted.name)
    assert found["known"] is True and found["changed"] is False, found

    odd, expected = found["paths"][ODD], findmnt(booted, "--mountpoint", ODD)
    assert odd["kind"] == "directory" and odd["entries"] == ["inside"]
    mount = odd["mountpoint"]
    assert (mount["target"], mount["source"], mount["fstype"], mount["propagation"]) == (
        expected["target"], expected["source"], expected["fstype"], expected["propagation"]) == (
        ODD, "odd source", "tmpfs", "shared")
    # Below it, a path that does not exist yet is held by the same mount.
    assert found["paths"][ODD + "/inside/not yet"]["mount"]["target"] == ODD
    assert found["paths"][ODD + "/inside/not yet"]["mountpoint"] is None

    usr = found["paths"]["/usr/bin"]["mount"]
    assert usr["target"] == findmnt(booted, "--target", "/usr/bin")["target"] == "/usr"
    assert usr["read_only"] is True
    # /opt/cni/bin is missing: its nearest existing parent's mount, as findmnt --target /opt says.
    assert found["paths"]["/opt/cni/bin"]["kind"] == "missing"
    assert found["paths"]["/opt/cni/bin"]["mount"]["target"] == findmnt(booted, "--target", "/opt")["target"]


def test_an_image_builds_chroot_without_proc_is_unknown_not_a_failure(rootfs, tmp_path, tmp_path_factory):
    image = BootedNode("image", tmp_path_factory.mktemp("node-image") / "node", rootfs_cache=rootfs)
    try:
        inventory = ansible_runner.write_inventory(tmp_path / "inventory.yml",
                                                   [image.open_as_image(CHROOT_WITHOUT_PROC)])
        assert not image.path("/proc/self").exists()

        result = ansible_runner.run_playbook(playbook(tmp_path, ["/run/netns", "/opt/cni/bin"]), inventory)
        assert result.rc == 0, result.describe()
        found = result.result(TASK, "image")
        assert found["known"] is False and "/proc is not mounted" in found["reason"], found
        assert found["paths"]["/run/netns"]["mount"] is None and found["paths"]["/run/netns"]["mountpoint"] is None
        assert found["paths"]["/opt/cni/bin"]["kind"] == "missing"
    finally:
        image.stop()
