"""Every role's tag alone gives the node the full play gives, on the standard and the k3s layout.

One node gets site.yml whole; a second, fresh one gets it one role tag at a time (cni_plugins,
containerd, netns, multus), each run a separate ansible-playbook, so nothing one role registered
survives into the next. Both nodes must then be the same, byte for byte where it matters: the
plugins and links, the runtime's config (k3s's drop-in in the k3s layout), the netns units and
mount, Multus's files. Then each tag alone on the fully prepared node changes nothing.
"""
from __future__ import annotations

import pytest

from testbed_lib.k3s import fake_k3s
from testbed_lib.tree import snapshot

SITE = "playbooks/site.yml"
TAGS = ("cni_plugins", "containerd", "netns", "multus")
# Written at install time (timestamps, the run's journal): present on both nodes, bytes differ.
VOLATILE = (".nodeprep-manifest.json", ".nodeprep-state.json", ".journal", ".lock")


def stable(tree: dict) -> dict:
    return {path: ("volatile" if path.rsplit("/", 1)[-1].startswith(VOLATILE) else entry)
            for path, entry in tree.items()}


def node_picture(node) -> dict:
    """What the four roles make on a node, with the parts that name a run's time left out."""
    units = node.run(["systemctl", "is-enabled", "run-netns.mount", "nodeprep-netns-propagation.service"],
                     check=False).stdout.split()
    mount = node.run(["findmnt", "-n", "-o", "TARGET,FSTYPE,PROPAGATION", "/run/netns"], check=False).stdout.split()
    return {
        "opt": stable(snapshot(node.path("/opt"))),
        "rancher": snapshot(node.path("/var/lib/rancher")),
        "containerd": snapshot(node.path("/etc/containerd")),
        "cni": snapshot(node.path("/etc/cni")),
        "units": {name: snapshot(node.path("/etc/systemd/system")).get(name)
                  for name in ("run-netns.mount", "nodeprep-netns-propagation.service")},
        "enabled": units,
        "netns_mount": mount,
        "var_run_netns": snapshot(node.path("/var/run")).get("netns"),
        "multus": (node.path("/etc/tmpfiles.d/nodeprep-multus.conf").read_text()
                   if node.path("/etc/tmpfiles.d/nodeprep-multus.conf").exists() else None,
                   node.run(["test", "-d", "/run/multus"], check=False).returncode == 0),
    }


def boot(layout, node, containerd_node, name):
    if layout == "standard":
        # A running containerd of Debian's (1.6, its own version-2 config), restarted by the role.
        return containerd_node("bookworm", name=name)
    booted = node(name)
    fake_k3s(booted)
    return booted


@pytest.mark.parametrize("layout", ["standard", "k3s"])
def test_each_role_tag_alone_gives_the_full_plays_node(layout, node, containerd_node, inventory, run_playbook,
                                                       role_vars):
    whole, by_tags = boot(layout, node, containerd_node, "tags-whole"), boot(layout, node, containerd_node, "tags-each")
    settings = role_vars("9.0.0", cni_plugins_link_dirs=[], multus_enabled=True, containerd_backup=False)

    full = run_playbook(SITE, inventory([whole]), extra_vars=settings)
    assert full.rc == 0, full.describe()
    for tag in TAGS:
        alone = run_playbook(SITE, inventory([by_tags]), extra_vars=settings, args=["--tags", tag])
        assert alone.rc == 0, (tag, alone.describe())
    picture = node_picture(whole)
    assert node_picture(by_tags) == picture

    # The layout really was in play: k3s's dir got the plugins it lacks and its config only a drop-in.
    if layout == "k3s":
        assert "macvlan" in picture["rancher"]["k3s/data/cni/macvlan"][1]
        assert picture["rancher"]["k3s/data/cni/bridge"] == ("link", "../0f1e2d3c/bin/cni")
        assert "k3s/agent/etc/containerd/config.toml.d/90-nodeprep-cni.toml" in picture["rancher"]
        assert picture["containerd"] == {}
    else:
        assert "config.toml" in picture["containerd"] and picture["rancher"] == {}
    assert picture["netns_mount"] == ["/run/netns", "tmpfs", "shared"]
    assert picture["enabled"] == ["enabled", "enabled"]

    # Each tag alone after the full play: nothing to do, nothing changed.
    for tag in TAGS:
        again = run_playbook(SITE, inventory([whole]), extra_vars=settings, args=["--tags", tag])
        assert again.rc == 0 and again.changed(whole.name) == 0, (tag, again.describe())
    assert node_picture(whole) == picture
