"""node_metrics over real cni_info output: names, HELP/TYPE lines, label escaping, values per state."""

from __future__ import annotations

import os
import re

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.nodeprep.cni.plugins.filter.node_metrics import Family, escape_label_value, node_metrics
from ansible_collections.nodeprep.cni.plugins.modules import cni_info, cni_install
from testbed_lib.in_process import FakeRoot, VERSION_A as A, build_releases, run_module_in_process

NETNS_OK = {"ok": True, "mounted": True, "fstype": "tmpfs", "shared": True, "persistent": True, "var_run_ok": True}
RUNTIME_OK = {"runtime": "containerd", "version": "1.6.20", "plugin_dirs_current": True,
              "cri_reachable": True, "network_ready": True}
# One sample line of the text format: name, optional {labels}, value.
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"(,|$)')


def unescape(value: str) -> str:
    return re.sub(r'\\(.)', lambda m: {"n": "\n", "\\": "\\", '"': '"'}[m.group(1)], value)


def parse(text: str) -> dict:
    """name -> {"help", "type", "samples": [(labels, value)]}; asserts the format's ordering rules."""
    assert text.endswith("\n") and not text.endswith("\n\n")
    families, current = {}, None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, help_text = line[7:].split(" ", 1)
            assert name not in families, "family %s appears twice" % name
            families[name] = {"help": help_text, "type": None, "samples": []}
            current = name
        elif line.startswith("# TYPE "):
            name, kind = line[7:].split(" ")
            assert name == current and families[name]["type"] is None and not families[name]["samples"]
            families[name]["type"] = kind
        else:
            match = SAMPLE.match(line)
            assert match, "not a sample line: %r" % line
            name, labels_text, value = match.groups()
            assert name == current and families[name]["type"] == "gauge", "%s without its HELP/TYPE" % name
            labels, rest = {}, labels_text or ""
            while rest:
                label = LABEL.match(rest)
                assert label, "bad labels in %r" % line
                labels[label.group(1)] = unescape(label.group(2))
                rest = rest[label.end():]
            families[name]["samples"].append((labels, float(value)))
    return families


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    return build_releases(tmp_path_factory.mktemp("cache"))


def node_report(tmp_path, releases, damage=None, **parts):
    node = FakeRoot(tmp_path)
    assert run_module_in_process(cni_install, node.args(src=releases[A].path, version=A))["rc"] == 0
    if damage:
        damage(node)
    info = run_module_in_process(cni_info, node.info_args())
    assert info["rc"] == 0
    report = {"host": "node-a", "cni_plugins": info, "runtime": RUNTIME_OK, "netns": NETNS_OK,
              "coverage": {"ok": True, "configs": 1, "missing_types": []}}
    report.update(parts)
    return report


def values(families, name):
    return list(families["nodeprep_cni_" + name]["samples"])


def test_a_ready_node_has_every_family_named_by_convention(tmp_path, releases):
    report = node_report(tmp_path, releases)
    families = parse(node_metrics(report, problems=[], wanted=A, timestamp=1765000000.5))

    for name, family in families.items():
        assert name.startswith("nodeprep_cni_")
        assert family["type"] == "gauge" and family["help"] and family["samples"]
        assert not name.endswith("_total")  # gauges, never counters' suffix
    assert values(families, "plugins_info") == [(
        {"version": A, "source_type": "release", "source": report["cni_plugins"]["current_source"]["url"]}, 1)]
    assert values(families, "plugins_wanted_info") == [({"version": A}, 1)]
    assert values(families, "plugins_intact") == [({}, 1)]
    assert values(families, "plugins_drifted_files") == [({}, 0)]
    links = dict((labels["status"], value) for labels, value in values(families, "links"))
    assert links == dict((status, float(count)) for status, count in report["cni_plugins"]["link_summary"].items())
    assert links["ok"] == len(report["cni_plugins"]["links"]) > 0
    assert values(families, "netns_shared") == [({}, 1)]
    assert values(families, "runtime_info") == [({"runtime": "containerd", "version": "1.6.20"}, 1)]
    assert values(families, "runtime_network_ready") == [({}, 1)]
    assert values(families, "missing_plugin_types") == [({}, 0)]
    assert "nodeprep_cni_missing_plugin_type" not in families  # no samples: no HELP either
    assert values(families, "plugins_skew") == [({}, 0)]
    # Every node reason key has a series, so a dashboard can sum any of them.
    assert values(families, "problem") == [({"reason": r}, 0) for r in
                                           ("no_version", "skew", "drift", "runtime", "netns", "coverage")]
    assert values(families, "ready") == [({}, 1)]
    assert values(families, "last_verify_timestamp_seconds") == [({}, 1765000000.5)]


def test_a_drifted_node_without_netns_or_runtime_counts_what_is_wrong(tmp_path, releases):
    def drift(node):
        os.unlink(os.path.join(node.bin_dir, "bridge"))
        with open(os.path.join(node.version_dir(A), "portmap"), "ab") as plugin:
            plugin.write(b"tampered")

    report = node_report(tmp_path, releases, damage=drift,
                         netns={"ok": False, "mounted": True, "fstype": "tmpfs", "shared": False},
                         runtime={"runtime": "containerd", "version": "1.6.20", "cri_reachable": False,
                                  "network_ready": None, "plugin_dirs_current": False},
                         coverage={"ok": False, "configs": 2, "missing_types": ["macvlan", "ipvlan", "macvlan"]})
    families = parse(node_metrics(report, problems=["drift", "netns", "coverage"]))

    assert values(families, "plugins_intact") == [({}, 0)]
    assert values(families, "plugins_drifted_files") == [({}, 1)]
    links = dict((labels["status"], value) for labels, value in values(families, "links"))
    assert links["missing"] == 1
    assert values(families, "netns_shared") == [({}, 0)]
    assert values(families, "runtime_cri_reachable") == [({}, 0)]
    assert values(families, "runtime_network_ready") == [({}, 0)]
    assert values(families, "missing_plugin_types") == [({}, 2)]
    assert values(families, "missing_plugin_type") == [({"type": "ipvlan"}, 1), ({"type": "macvlan"}, 1)]
    assert values(families, "problem") == [({"reason": r}, 1 if r in ("drift", "netns", "coverage") else 0)
                                           for r in ("no_version", "skew", "drift", "runtime", "netns", "coverage")]
    assert values(families, "ready") == [({}, 0)]
    assert "nodeprep_cni_plugins_wanted_info" not in families  # not told what to expect
    stamp = values(families, "last_verify_timestamp_seconds")[0][1]
    assert stamp > 1.7e9


def test_a_node_without_any_version_or_runtime_still_has_an_info_series():
    families = parse(node_metrics({"host": "bare", "cni_plugins": {"current": None, "versions": []}},
                                  problems=["no_version", "skew"], wanted="1.9.1"))
    assert values(families, "plugins_info") == [({"version": "none", "source_type": "none", "source": "none"}, 1)]
    assert values(families, "runtime_info") == [({"runtime": "none", "version": "none"}, 1)]
    assert values(families, "plugins_versions_installed") == [({}, 0)]
    assert values(families, "plugins_skew") == [({}, 1)]


def test_the_reasons_come_from_the_report_itself_when_not_given(tmp_path, releases):
    report = node_report(tmp_path, releases, wanted={"source": "release", "version": "v9.9.9"})
    families = parse(node_metrics(report, timestamp=0))
    assert values(families, "plugins_wanted_info") == [({"version": "v9.9.9"}, 1)]
    assert values(families, "plugins_skew") == [({}, 1)]
    assert dict((labels["reason"], value) for labels, value in values(families, "problem"))["skew"] == 1
    assert values(families, "ready") == [({}, 0)]


def test_an_unknown_reason_is_refused_with_the_valid_ones():
    with pytest.raises(AnsibleFilterError, match="unknown reason plugins drifted; valid reasons: no_version, skew, drift"):
        node_metrics({"host": "a"}, problems=["plugins drifted"])


def test_label_values_are_escaped_and_read_back_unchanged():
    hostile = 'file:///srv/a "b"\\c\nd}, x="y"'
    report = {"host": "n", "cni_plugins": {"current": "1.9.1", "versions": [{"version": "1.9.1", "intact": True}],
                                           "current_source": {"type": "package", "package": hostile,
                                                              "package_version": "1:1.1.1+ds1-3+b5"}}}
    text = node_metrics(report)
    families = parse(text)
    assert values(families, "plugins_info")[0][0]["source"] == hostile + " 1:1.1.1+ds1-3+b5"
    assert escape_label_value('a\\b"c\nd') == 'a\\\\b\\"c\\nd'
    assert len(text.splitlines()) == sum(2 + len(f["samples"]) for f in families.values())


def test_help_text_escapes_backslash_and_line_feed_only():
    family = Family("nodeprep_cni_x", 'a "quoted"\\ help\nline').add(3, status="ok")
    assert family.lines() == ['# HELP nodeprep_cni_x a "quoted"\\\\ help\\nline', "# TYPE nodeprep_cni_x gauge",
                              'nodeprep_cni_x{status="ok"} 3']


@pytest.mark.parametrize("name, labels", [("nodeprep-cni", {}), ("1abc", {}), ("ok", {"bad-label": 1}),
                                          ("ok", {"__reserved": 1})])
def test_invalid_names_are_refused(name, labels):
    with pytest.raises(ValueError):
        Family(name, "h").add(1, **labels)


@pytest.mark.parametrize("report, problems", [("node-a", None), ({"no": "host"}, None), ({"host": "a"}, "netns")])
def test_bad_input_is_one_clear_error(report, problems):
    with pytest.raises(AnsibleFilterError, match="node_metrics"):
        node_metrics(report, problems=problems)
