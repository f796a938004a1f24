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
from testbed_lib.in_process import REAL_PLUGIN_DIR, real_run_command, script_plugin

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


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_json_nested_as_deep_as_the_runtime_accepts_is_read_and_deeper_is_refused(tmp_path):
    conf = str(tmp_path / "net.d")
    # Go's decoder accepts 10000 levels in all (checked with Go's encoding/json: 10001 is
    # "exceeded max depth"); Python's own recursion gives up near 1000.
    deep = write(os.path.join(conf, "10-deep.conflist"),
                 '{"cniVersion": "1.0.0", "name": "deep", "plugins": [{"type": "bridge", "x": %s}]}' % nested(9997))
    too_deep = write(os.path.join(conf, "20-too-deep.conf"), '{"type": "bridge", "x": %s}' % nested(10000))
    entries = dict((e["path"], e) for e in read_conf_dir(conf))
    assert entries[deep]["error"] is None and entries[deep]["types"] == ["bridge"]
    assert entries[too_deep]["error"].startswith(too_deep + " is not valid JSON: nested deeper than 10000 levels")


def test_deep_decoding_agrees_with_json():
    from ansible_collections.nodeprep.cni.plugins.module_utils._cniconf import _decode_deep
    for text in ('{"a": [1, -2.5e3, "x\\u00e9", true, false, null, {}, []], "b": {"c": {"d": 0}}, "a": 7}',
                 ' [ ] ', '"s"', '{"k": [[{"z": [1]}]]}'):
        assert _decode_deep(text) == json.loads(text)
    for text in ('{"a": 1,}', '[1 2]', '{"a" 1}', '[1] x', '[', 'NaN', '{1: 2}'):
        with pytest.raises(ValueError):
            _decode_deep(text)


@pytest.mark.parametrize("name, config, fragment", [
    ("a.conflist", {"name": "a", "plugins": {"type": "bridge"}}, "'plugins' is an object, not a list"),
    ("b.conflist", {"name": "b", "plugins": []}, "'plugins' is an empty list"),
    ("c.conflist", {"name": "c"}, "has no plugins"),
    ("d.conflist", {"name": "d", "plugins": [{"type": 5}]}, "plugins[0].type is a number, not a string"),
    ("e.conflist", {"name": "e", "plugins": [{"ipam": {"type": "host-local"}}]}, "plugins[0] has no plugin 'type'"),
    ("f.conflist", {"plugins": [{"type": "bridge"}]}, "a conflist needs a string 'name'"),
    ("g.conflist", {"name": "g", "plugins": ["bridge"]}, "plugins[0] is a string, not a plugin config object"),
    ("h.conf", {"name": "h", "cniVersion": "1.0.0"}, "has no plugin 'type'"),
    ("i.conf", {"name": "i", "type": ["bridge"]}, ".type is a list, not a string"),
    ("j.json", {"name": "j", "type": "bridge", "ipam": {"type": 1}}, ".ipam.type is a number, not a string"),
    ("k.conf", {"name": "k", "type": "bridge", "capabilities": {"portMappings": "yes"}}, "portMappings is a string"),
    # A conflist in a .conf file: the runtime reads it as one plugin without a type.
    ("l.conf", {"name": "l", "plugins": [{"type": "bridge"}]}, "has no plugin 'type'"),
    ("m.conflist", {"name": "m", "disableCheck": "maybe", "plugins": [{"type": "bridge"}]}, "disableCheck must be true or false"),
])
def test_configs_the_runtime_refuses_are_errors_naming_the_file(tmp_path, name, config, fragment):
    path = write(str(tmp_path / "net.d" / name), config)
    [entry] = read_conf_dir(str(tmp_path / "net.d"))
    assert entry["error"] and path in entry["error"] and fragment in entry["error"], entry["error"]
    verdict = summarize([Coverage([REAL_PLUGIN_DIR]).check(entry)])
    assert verdict["ok"] is False and verdict["errors"] == [path]


def test_field_names_match_without_case_as_the_runtime_decodes_them(tmp_path):
    conf = str(tmp_path / "net.d")
    path = write(os.path.join(conf, "10-a.conf"), '{"name": "a", "Type": "bridge", "IPAM": {"TYPE": "host-local"}}')
    [entry] = read_conf_dir(conf)
    assert entry["error"] is None and entry["path"] == path and entry["types"] == ["bridge", "host-local"]


def test_conflist_plugins_from_a_subdir_named_after_it(tmp_path):
    conf = str(tmp_path / "net.d")
    write(os.path.join(conf, "10-a.conflist"), {"cniVersion": "1.0.0", "name": "pods"})
    write(os.path.join(conf, "pods", "10-macvlan.conf"), {"type": "macvlan", "ipam": {"type": "static"}})
    write(os.path.join(conf, "pods", "20-tuning.conf"), {"type": "tuning"})
    [entry] = read_conf_dir(conf)
    assert entry["error"] is None and entry["types"] == ["macvlan", "static", "tuning"]


def test_links_fifos_and_dirs_in_a_conf_dir_are_named_and_never_opened(tmp_path):
    import signal
    conf = tmp_path / "net.d"
    conf.mkdir()
    write(str(conf / "10-ok.conflist"), {"cniVersion": "1.0.0", "name": "ok", "plugins": [{"type": "bridge"}]})
    os.symlink(str(tmp_path / "gone.conflist"), str(conf / "20-dangling.conflist"))
    os.symlink("30-loop.conf", str(conf / "30-loop.conf"))
    os.mkfifo(str(conf / "40-fifo.conflist"))
    (tmp_path / "elsewhere").mkdir()
    os.symlink(str(tmp_path / "elsewhere"), str(conf / "50-dir.conf"))
    (conf / "60-real-dir.conf").mkdir()  # libcni skips directories themselves
    # Opening the FIFO would block forever: fail the test instead of hanging it.
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail("reading the conf dir blocked"))
    signal.alarm(10)
    try:
        entries = read_conf_dir(str(conf))
    finally:
        signal.alarm(0)
    errors = dict((os.path.basename(e["path"]), e["error"]) for e in entries)
    assert errors == {
        "10-ok.conflist": None,
        "20-dangling.conflist": "%s/20-dangling.conflist is a dangling symlink (to %s/gone.conflist)" % (conf, tmp_path),
        "30-loop.conf": "%s/30-loop.conf is a symlink loop" % conf,
        "40-fifo.conflist": "%s/40-fifo.conflist is a FIFO (the runtime would block reading it)" % conf,
        "50-dir.conf": "%s/50-dir.conf is a symlink to a directory" % conf,
    }


def test_a_conf_dir_that_is_a_file_or_a_loop_is_reported_not_empty(tmp_path):
    afile = write(str(tmp_path / "net.d"), "not a dir")
    os.symlink("loop.d", str(tmp_path / "loop.d"))
    for directory, problem in ((afile, "is not a directory"), (str(tmp_path / "loop.d"), "is a symlink loop")):
        [entry] = read_conf_dir(directory)
        assert entry["kind"] == "conf_dir" and entry["error"] == "conf dir %s %s" % (directory, problem)
        assert summarize([entry])["ok"] is False
    assert read_conf_dir(str(tmp_path / "absent")) == []


def test_nested_delegates_are_bounded():
    config = {"type": "multus"}
    inner = config
    for _level in range(40):
        inner["delegates"] = [{"type": "multus"}]
        inner = inner["delegates"][0]
    entry = config_entry("multus.conf", "conf", config)
    assert entry["error"].startswith("multus.conf: delegates nest deeper than 32 levels")


def test_nad_config_is_checked_like_the_runtime_with_multus_naming_it():
    conflist = dict(NAD, spec={"config": json.dumps({"cniVersion": "0.4.0", "plugins": [{"type": "macvlan"}]})})
    [entry] = nad_entries("n.yaml", conflist)
    assert entry["error"] is None and entry["name"] == "storage" and entry["types"] == ["macvlan"]
    bad = dict(NAD, spec={"config": json.dumps({"cniVersion": "0.4.0", "plugins": "macvlan"})})
    [entry] = nad_entries("n.yaml", bad)
    assert entry["error"] == "n.yaml#apps/storage spec.config: 'plugins' is a string, not a list"
    untyped = dict(NAD, spec={"config": json.dumps({"cniVersion": "0.4.0", "master": "eth1"})})
    assert "has no plugin 'type'" in nad_entries("n.yaml", untyped)[0]["error"]
