"""_cniconf: which plugins a config invokes, at which CNI version, and whether the node covers them.

Plugins are real files: Debian's binaries from /usr/lib/cni (answering VERSION themselves) and
small scripts with a chosen VERSION answer.
"""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.nodeprep.cni.plugins.module_utils._cniconf import (
    ConfigError,
    Coverage,
    config_entry,
    config_versions,
    nad_entries,
    parse_config_text,
    plugin_uses,
    read_conf_dir,
    required_entry,
    resolve_plugin,
    summarize,
)
from ansible_collections.nodeprep.cni.plugins.module_utils._probe import probe_plugin
from ansible_collections.nodeprep.cni.tests.unit.module_runner import REAL_PLUGIN_DIR, real_run_command, script_plugin

RUN = real_run_command()


def probe(path):
    return probe_plugin(RUN, path)


def write(path, content, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not isinstance(content, (str, bytes)):
        content = json.dumps(content)
    with open(path, "wb") as handle:
        handle.write(content.encode("utf-8") if isinstance(content, str) else content)
    os.chmod(path, mode)
    return str(path)


def test_conflist_members_take_the_list_version_and_ipam_its_callers():
    config = {"cniVersion": "1.0.0", "name": "pods", "plugins": [
        {"type": "bridge", "cniVersion": "0.2.0", "ipam": {"type": "host-local"}},
        {"type": "portmap"},
    ]}
    uses = plugin_uses(config)
    assert [(u["type"], u["versions"], u["where"]) for u in uses] == [
        ("bridge", ["1.0.0"], "plugins[0]"),
        ("host-local", ["1.0.0"], "plugins[0].ipam"),
        ("portmap", ["1.0.0"], "plugins[1]"),
    ]


def test_delegates_keep_their_own_version_or_inherit_the_parents():
    config = {"cniVersion": "0.3.1", "type": "multus", "delegates": [
        {"cniVersion": "1.0.0", "plugins": [{"type": "bridge"}]},
        {"type": "macvlan", "ipam": {"type": "static"}},
    ]}
    found = dict((u["where"], (u["type"], u["versions"])) for u in plugin_uses(config))
    assert found == {
        "type": ("multus", ["0.3.1"]),
        "delegates[0].plugins[0]": ("bridge", ["1.0.0"]),
        "delegates[1]": ("macvlan", ["0.3.1"]),
        "delegates[1].ipam": ("static", ["0.3.1"]),
    }


def test_versions_cniversions_wins_and_missing_means_0_1_0():
    assert config_versions({"cniVersion": "0.4.0", "cniVersions": ["1.0.0", "1.1.0"]}) == ["1.0.0", "1.1.0"]
    assert config_versions({"cniVersion": "0.4.0"}) == ["0.4.0"]
    assert config_versions({}) == ["0.1.0"]


@pytest.mark.parametrize("text, fragment", [
    ('{"name": "half", ', "is not valid JSON"),
    ("[1, 2]", "not an object"),
    (b"\xff\xfe", "is not UTF-8"),
])
def test_bad_config_names_its_source_and_the_reason(text, fragment):
    with pytest.raises(ConfigError) as caught:
        parse_config_text(text, "/etc/cni/net.d/99-x.conflist")
    assert "/etc/cni/net.d/99-x.conflist" in str(caught.value) and fragment in str(caught.value)


def test_conf_dir_reads_like_libcni(tmp_path):
    conf = str(tmp_path / "net.d")
    write(os.path.join(conf, "10-a.conflist"), {"cniVersion": "1.0.0", "name": "a", "plugins": [{"type": "bridge"}]})
    write(os.path.join(conf, "20-b.conf"), {"cniVersion": "0.4.0", "name": "b", "type": "macvlan"})
    write(os.path.join(conf, "30-c.json"), "{oops")
    write(os.path.join(conf, "README"), "not a config")
    write(os.path.join(conf, "multus.d", "daemon-config.json"), {"socketDir": "/host/run/multus"})
    entries = read_conf_dir(conf)
    assert [(os.path.basename(e["path"]), e["kind"], e["types"]) for e in entries] == [
        ("10-a.conflist", "conflist", ["bridge"]), ("20-b.conf", "conf", ["macvlan"]), ("30-c.json", "conf", [])]
    assert "30-c.json is not valid JSON: Expecting property name" in entries[2]["error"]
    assert read_conf_dir(str(tmp_path / "absent")) == []


def test_resolve_searches_dirs_in_order_and_refuses_paths(tmp_path):
    first, second = str(tmp_path / "a"), str(tmp_path / "b")
    write(os.path.join(first, "bridge"), "not executable", 0o644)
    write(os.path.join(second, "bridge"), script_plugin("b"), 0o755)
    assert resolve_plugin("bridge", [first, second]) == os.path.join(second, "bridge")
    assert resolve_plugin("../b/bridge", [first]) is None
    assert resolve_plugin("macvlan", [first, second]) is None


NAD = {
    "apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
    "metadata": {"name": "storage", "namespace": "apps"},
    "spec": {"config": json.dumps({"cniVersion": "0.3.1", "type": "macvlan", "master": "eth1",
                                   "ipam": {"type": "whereabouts"}})},
}


def test_nad_entries_label_namespace_and_name_and_parse_spec_config():
    [entry] = nad_entries("nads/storage.yaml", NAD)
    assert entry["path"] == "nads/storage.yaml#apps/storage"
    assert entry["kind"] == "nad" and entry["types"] == ["macvlan", "whereabouts"]

    broken = dict(NAD, spec={"config": '{"type": "macvlan",'})
    [bad] = nad_entries("inline[0]", broken)
    assert bad["error"].startswith("inline[0]#apps/storage spec.config is not valid JSON")

    assert nad_entries("x", dict(NAD, spec={})) == []  # Multus reads <name>.conf from its conf dir
    assert "not a NetworkAttachmentDefinition" in nad_entries("x", {"kind": "ConfigMap"})[0]["error"]
    listed = nad_entries("all.yaml", {"kind": "List", "items": [NAD, NAD]})
    assert len(listed) == 2


def test_coverage_with_real_plugins_names_missing_types_and_version_mismatches(tmp_path):
    plugins = str(tmp_path / "bin")
    # Debian's real plugins, linked as a runtime's bin dir would have them.
    for name in ("bridge", "host-local", "macvlan"):
        os.makedirs(plugins, exist_ok=True)
        os.symlink(os.path.join(REAL_PLUGIN_DIR, name), os.path.join(plugins, name))
    write(os.path.join(plugins, "old"), script_plugin("old", answer='{"cniVersion":"0.2.0"}'), 0o755)
    conf = str(tmp_path / "net.d")
    ok = write(os.path.join(conf, "10-ok.conflist"), {"cniVersion": "0.4.0", "name": "ok", "plugins": [
        {"type": "bridge", "ipam": {"type": "host-local"}}]})
    missing = write(os.path.join(conf, "20-missing.conflist"), {"cniVersion": "0.4.0", "name": "m", "plugins": [
        {"type": "macvlan", "ipam": {"type": "whereabouts"}}, {"type": "tuning"}]})
    future = write(os.path.join(conf, "30-future.conf"), {"cniVersion": "9.9.9", "name": "f", "type": "bridge"})
    either = write(os.path.join(conf, "40-either.conf"), {"cniVersions": ["9.9.9", "0.3.1"], "name": "e", "type": "bridge"})
    ancient = write(os.path.join(conf, "50-old.conf"), {"cniVersion": "0.4.0", "name": "o", "type": "old"})

    checker = Coverage([plugins], probe)
    entries = dict((e["path"], checker.check(e)) for e in read_conf_dir(conf))
    assert entries[ok]["covered"] is True
    assert entries[missing]["missing_types"] == ["tuning", "whereabouts"]
    assert entries[missing]["version_mismatches"] == []
    [mismatch] = entries[future]["version_mismatches"]
    assert mismatch["type"] == "bridge" and mismatch["wanted"] == ["9.9.9"]
    assert "1.0.0" in mismatch["supported"] and "0.4.0" in mismatch["supported"]
    assert entries[either]["covered"] is True
    assert entries[ancient]["version_mismatches"][0]["supported"] == ["0.2.0"]

    verdict = summarize(list(entries.values()))
    assert verdict["ok"] is False
    assert verdict["missing_types"] == ["tuning", "whereabouts"]
    assert verdict["version_mismatches"] == 2
    assert "%s: plugin type(s) not installed in any plugin dir: tuning, whereabouts" % missing in verdict["problems"]
    assert any(p.startswith(future + ": bridge (type) wants CNI version 9.9.9") for p in verdict["problems"])


def test_probe_is_run_once_per_binary_and_a_failing_probe_is_a_finding(tmp_path):
    plugins = str(tmp_path / "bin")
    write(os.path.join(plugins, "broken"), script_plugin("broken", exit_code=3), 0o755)
    calls = []

    def probe(path):
        calls.append(path)
        return probe_plugin(RUN, path)

    checker = Coverage([plugins], probe)
    config = {"cniVersion": "1.0.0", "name": "x", "plugins": [{"type": "broken"}, {"type": "broken"}]}
    entry = checker.check(config_entry("x.conflist", "conflist", config))
    assert len(calls) == 1
    assert entry["covered"] is False and len(entry["probe_errors"]) == 2
    assert "exited 3 on CNI_COMMAND=VERSION" in entry["probe_errors"][0]["error"]


def test_without_probe_only_presence_counts(tmp_path):
    plugins = str(tmp_path / "bin")
    write(os.path.join(plugins, "bridge"), script_plugin("b", answer='{"cniVersion":"0.1.0"}'), 0o755)
    entry = Coverage([plugins]).check(config_entry("c", "conf", {"cniVersion": "1.0.0", "type": "bridge"}))
    assert entry["covered"] is True


def test_required_plugins_count_presence_only(tmp_path):
    plugins = str(tmp_path / "bin")
    write(os.path.join(plugins, "macvlan"), script_plugin("m", answer='{"cniVersion":"0.1.0"}'), 0o755)
    entry = Coverage([plugins], probe).check(required_entry("required_plugins", ["macvlan", "ipvlan"]))
    assert entry["missing_types"] == ["ipvlan"] and entry["version_mismatches"] == []


def test_nad_file_with_several_documents():
    found = nad_entries("nads.yaml", [NAD, None, dict(NAD, metadata={"name": "b"})])
    assert [e["path"] for e in found] == ["nads.yaml#apps/storage", "nads.yaml#default/b"]
