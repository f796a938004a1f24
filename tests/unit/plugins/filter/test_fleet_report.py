"""fleet_report over real cni_info output: an intact node, a drifted one and one without a report."""

from __future__ import annotations

import os
import re

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.nodeprep.cni.plugins.filter.fleet_report import fleet_gate, fleet_report, verify_fail_on
from ansible_collections.nodeprep.cni.plugins.modules import cni_info, cni_install
from ansible_collections.nodeprep.cni.plugins.plugin_utils import _playbook_vars as pv
from ansible_collections.nodeprep.cni.plugins.plugin_utils._cni_report import REASON_KEYS
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

    assert header.split() == ["node", "version", "links", "drift", "runtime", "netns", "coverage"]
    # Every column starts at the same offset on every line.
    for column in ("version", "links", "drift", "runtime", "netns", "coverage"):
        start = header.index(column)
        assert all(line[start - 2:start] == "  " for line in (row_a, row_b))
    links = good["cni_plugins"]["link_summary"]["ok"]
    assert row_a.split("  ")[0].strip() == "node-a"
    assert "%d/%d ok" % (links, links) in row_a and "containerd 2.1.4 dirs current, NetworkReady" in row_a
    assert "shared tmpfs" in row_a and "ok (1 configs)" in row_a
    assert A + " (not intact)" in row_b and "missing 1" in row_b and "changed: portmap" in row_b
    assert "not mounted" in row_b and "missing: macvlan" in row_b
    assert row_c.startswith("node-c") and "no report" in row_c

    assert result["ready"] == 1
    assert result["not_ready"] == {"node-b10": ["drift", "netns", "coverage"], "node-c": ["unreported"]}
    assert result["details"]["node-b10"] == {"drift": "drifted 2, missing 1, changed: portmap", "netns": "not mounted",
                                             "coverage": "missing: macvlan"}
    assert result["counts"] == {"unreported": 1, "no_version": 0, "skew": 0, "drift": 1, "runtime": 0, "netns": 1,
                                "coverage": 1}
    assert result["summary"] == (
        "fleet: 3 nodes, 1 ready, 2 not ready (unreported 1, drift 1, netns 1, coverage 1); versions %s x2" % A)
    assert result["reason_lines"] == ["unreported: 1 (node-c)", "drift: 1 (node-b10)", "netns: 1 (node-b10)",
                                      "coverage: 1 (node-b10)"]


def test_containerd_searching_a_stale_dir_makes_the_node_not_ready(tmp_path, releases):
    stale = dict(RUNTIME_OK, plugin_dirs_current=False, cri_reachable=False)
    result = fleet_report([node_report(tmp_path, "n1", releases, runtime=stale)])
    assert "dirs NOT current, CRI unreachable" in result["table"][1]
    assert result["not_ready"] == {"n1": ["runtime"]}


def test_a_list_without_hosts_is_refused_by_name():
    with pytest.raises(AnsibleFilterError, match="fleet_report expects a list of node reports"):
        fleet_report([{"cni_plugins": {}}])


def synthetic_fleet(count=500, old_every=5, wanted="1.9.1"):
    """``count`` node reports as verify.yml writes them: every ``old_every``-th node still on 1.8.0 (skew),
    one in 50 also with its netns dir private, the rest ready on the wanted version."""
    reports = []
    for number in range(1, count + 1):
        version = "1.8.0" if number % old_every == 0 else wanted
        reports.append({
            "host": "node-%03d" % number, "wanted": {"source": "release", "version": wanted},
            "cni_plugins": {"current": version, "versions": [{"version": version, "intact": True, "drifted": []}],
                            "link_summary": {"ok": 20}},
            "runtime": RUNTIME_OK,
            "netns": NETNS_OK if number % 50 else {"ok": False, "mounted": True, "fstype": "tmpfs", "shared": False,
                                                   "persistent": True, "var_run_ok": True},
            "coverage": {"ok": True, "configs": 1}})
    return reports


SUMMARY_FILE = os.environ.get("NODEPREP_VERIFY_SUMMARY_OUT")


def test_a_500_node_fleet_gets_counts_per_reason_and_a_capped_sample_of_hosts():
    result = fleet_report(synthetic_fleet(), unreported=["node-501", "node-502"])
    skewed = ["node-%03d" % n for n in range(5, 501, 5)]
    assert result["counts"] == {"unreported": 2, "no_version": 0, "skew": 100, "drift": 0, "runtime": 0, "netns": 10,
                                "coverage": 0}
    assert result["ready"] == 502 - 2 - 100 - 10 + 10  # every 50th node is also every 5th: counted once
    assert sorted(h for h, keys in result["not_ready"].items() if "skew" in keys) == skewed
    assert result["details"]["node-005"]["skew"] == "current 1.8.0, wanted 1.9.1"
    assert result["summary"] == ("fleet: 502 nodes, 400 ready, 102 not ready (unreported 2, skew 100, netns 10); "
                                 "versions 1.9.1 x400, 1.8.0 x100; wanted 1.9.1")
    assert result["reason_lines"] == [
        "unreported: 2 (node-501, node-502)",
        "skew: 100 (node-005, node-010, node-015, node-020, node-025 and 95 more)",
        "netns: 10 (node-050, node-100, node-150, node-200, node-250 and 5 more)",
    ]
    # Never a line naming every host: the whole summary stays short whatever the fleet's size.
    text = "\n".join([result["summary"]] + result["reason_lines"])
    assert all(len(line) < 200 for line in text.splitlines()) and "node-030" not in text
    assert len(result["table"]) == 503  # the table keeps one row per node
    if SUMMARY_FILE:
        with open(SUMMARY_FILE, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")

    gate = fleet_gate(result, ["skew", "coverage"])
    assert gate["failed"] and gate["reasons"] == ["skew"] and gate["hosts"] == skewed
    assert gate["lines"][0].startswith("skew: 100 (node-005, node-010, node-015, node-020, node-025 and 95 more): ")
    assert "cni_plugins_version" in gate["lines"][0]
    assert gate["msg"].startswith("verify fails on skew (nodeprep_verify_fail_on), 100 nodes: skew: 100 (")
    assert len(gate["msg"]) < 500
    assert gate["messages"]["node-005"].startswith("skew: current 1.8.0, wanted 1.9.1 (nodeprep_verify_fail_on). Fix: skew - ")
    assert set(gate["messages"]) == set(skewed)
    assert not fleet_gate(result, ["coverage"])["failed"]
    assert not fleet_gate(result, [])["failed"]
    both = fleet_gate(result, ["netns", "skew"])
    assert both["reasons"] == ["skew", "netns"] and len(both["hosts"]) == 100 + 10 - 10
    assert both["messages"]["node-050"].startswith("skew: current 1.8.0, wanted 1.9.1; netns: not shared (")


def test_the_wanted_version_matches_with_or_without_a_leading_v_and_a_package_wants_a_package():
    reports = synthetic_fleet(count=2, old_every=100, wanted="v1.9.1")
    assert fleet_report(reports)["counts"]["skew"] == 0
    package = dict(reports[0], wanted={"source": "package", "version": None},
                   cni_plugins=dict(reports[0]["cni_plugins"], current_source={"type": "release", "url": "u"}))
    result = fleet_report([package])
    assert result["not_ready"] == {"node-001": ["skew"]}
    assert "cni_plugins_source: package" in result["details"]["node-001"]["skew"]
    nothing = dict(reports[0], wanted=None, cni_plugins={"current": None, "versions": []})
    assert fleet_report([nothing])["not_ready"] == {"node-001": ["no_version"]}


@pytest.mark.parametrize("fail_on, message", [
    ("skew", "must be a list of reasons"),
    (["skew", "drfit"], "unknown reason drfit; valid reasons: unreported, no_version, skew, drift, runtime, netns, coverage"),
    ([1, "x"], "unknown reasons 1, x; valid reasons: "),
])
def test_bad_fail_on_values_are_refused_with_the_valid_reasons(fail_on, message):
    with pytest.raises(AnsibleFilterError, match=re.escape("nodeprep_verify_fail_on")) as raised:
        verify_fail_on(fail_on)
    assert message in str(raised.value)


def test_fail_on_keeps_the_reasons_order():
    assert verify_fail_on(["coverage", "skew", "skew"]) == ["skew", "coverage"]


def test_the_playbook_spec_offers_exactly_the_reason_keys():
    spec = pv.load_spec()["playbooks"]["verify"]["options"]["nodeprep_verify_fail_on"]
    assert tuple(spec["choices"]) == REASON_KEYS and spec["default"] == ["coverage"]
