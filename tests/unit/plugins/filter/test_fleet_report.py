"""fleet_report over real cni_info output: an intact node, a drifted one and one without a report."""

from __future__ import annotations

import os

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.nodeprep.cni.plugins.filter.fleet_report import fleet_report
from ansible_collections.nodeprep.cni.plugins.modules import cni_info, cni_install
from testbed_lib.in_process import FakeRoot, VERSION_A as A, build_releases, run_module_in_process

NETNS_OK = {"ok": True, "mounted": True, "fstype": "tmpfs", "shared": True, "persistent": True, "var_run_ok": True}
RUNTIME_OK = {"runtime": "containerd", "version": "2.1.4", "plugin_dirs_current": True,
              "cri_reachable": True, "network_ready": True}


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    return build_releases(tmp_path_factory.mktemp("cache"))


def node_report(tmp_path, name, releases, damage=None, **parts):
    root = tmp_path / name
    root.mkdir()
    node = FakeRoot(root)
    assert run_module_in_process(cni_install, node.args(src=releases[A].path, version=A))["rc"] == 0
    if damage:
        damage(node)
    info = run_module_in_process(cni_info, node.info_args())
    assert info["rc"] == 0
    report = {"host": name, "cni_plugins": info, "runtime": {"runtime": "none"}, "netns": NETNS_OK,
              "coverage": {"ok": True, "configs": 1}}
    report.update(parts)
    return report


def test_intact_and_drifted_nodes_align_and_the_summary_names_what_is_wrong(tmp_path, releases):
    def drift(node):
        os.unlink(os.path.join(node.bin_dir, "bridge"))
        with open(os.path.join(node.version_dir(A), "portmap"), "ab") as plugin:
            plugin.write(b"tampered")

    good = node_report(tmp_path, "node-a", releases, runtime=RUNTIME_OK)
    bad = node_report(tmp_path, "node-b10", releases, damage=drift,
                      netns={"ok": False, "mounted": False},
                      coverage={"ok": False, "configs": 2, "missing_types": ["macvlan"]})

    result = fleet_report([bad, good], unreported=["node-c"])
    header, row_a, row_b, row_c = result["table"]

    assert header.split() == ["node", "version", "links", "drift", "containerd", "netns", "coverage"]
    # Every column starts at the same offset on every line.
    for column in ("version", "links", "drift", "containerd", "netns", "coverage"):
        start = header.index(column)
        assert all(line[start - 2:start] == "  " for line in (row_a, row_b))
    links = good["cni_plugins"]["link_summary"]["ok"]
    assert row_a.split("  ")[0].strip() == "node-a"
    assert "%d/%d ok" % (links, links) in row_a and "2.1.4 dirs current, NetworkReady" in row_a
    assert "shared tmpfs" in row_a and "ok (1 configs)" in row_a
    assert A + " (not intact)" in row_b and "missing 1" in row_b and "changed: portmap" in row_b
    assert "not mounted" in row_b and "missing: macvlan" in row_b
    assert row_c.startswith("node-c") and "no report" in row_c

    assert result["ready"] == 1
    assert result["not_ready"] == {"node-b10": ["plugins drifted", "netns", "coverage"],
                                   "node-c": ["no report (failed or unreachable)"]}
    assert result["summary"] == (
        "fleet: 3 nodes, 1 ready, 2 not ready (node-b10: plugins drifted, netns, coverage; "
        "node-c: no report (failed or unreachable)); versions %s x2" % A)


def test_containerd_searching_a_stale_dir_makes_the_node_not_ready(tmp_path, releases):
    stale = dict(RUNTIME_OK, plugin_dirs_current=False, cri_reachable=False)
    result = fleet_report([node_report(tmp_path, "n1", releases, runtime=stale)])
    assert "dirs NOT current, CRI unreachable" in result["table"][1]
    assert result["not_ready"] == {"n1": ["containerd dirs not current"]}


def test_a_list_without_hosts_is_refused_by_name():
    with pytest.raises(AnsibleFilterError, match="fleet_report expects a list of node reports"):
        fleet_report([{"cni_plugins": {}}])
