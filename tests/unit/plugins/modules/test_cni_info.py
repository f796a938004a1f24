"""cni_info run in-process against a node root under tmp_path: versions, link health, config coverage."""

from __future__ import annotations

import json
import os

from ansible_collections.nodeprep.cni.plugins.modules import cni_info, cni_install
from testbed_lib.in_process import (
    RELEASE_PLUGINS,
    VERSION_A as A,
    VERSION_B as B,
    run_module_in_process,
    sha256_file,
)
from testbed_lib.tree import snapshot

CALICO = b"\x7fELF calico, not ours\n"


def install(node, release, **extra):
    result = run_module_in_process(cni_install, node.args(src=release.path, version=release.version, **extra))
    assert result["rc"] == 0, result.get("msg")
    return result


def info(node, **extra):
    before = snapshot(node.root)
    result = run_module_in_process(cni_info, node.info_args(**extra))
    assert result["rc"] == 0, result.get("msg")
    assert result["changed"] is False
    assert snapshot(node.root) == before  # read-only, always
    return result


def _links(result, directory=None):
    return dict(((link["dir"], link["name"]), link["status"]) for link in result["links"]
                if directory is None or link["dir"] == directory)


def test_empty_node_reports_nothing_installed_and_creates_nothing(node):
    result = info(node)
    assert result["current"] is None and result["previous"] is None
    assert result["versions"] == [] and result["links"] == []
    assert result["healthy"] is False
    assert snapshot(node.root) == {}


def test_healthy_install_with_foreign_file(node, releases):
    node.put("opt/cni/bin/calico", CALICO)
    install(node, releases[A])
    install(node, releases[B])
    result = info(node)

    assert result["current"] == B and result["previous"] == A
    assert [v["version"] for v in result["versions"]] == [A, B]
    current = result["versions"][1]
    assert current["intact"] is True and current["managed"] is True
    assert current["plugins"] == RELEASE_PLUGINS
    assert current["tarball_sha256"] == sha256_file(releases[B].path)
    assert current["path"] == node.version_dir(B)

    expected = dict(((d, p), "ok") for d in node.link_dirs for p in RELEASE_PLUGINS)
    assert _links(result) == expected
    assert result["link_summary"]["ok"] == len(expected)
    assert result["unmanaged"] == {node.bin_dir: ["calico"]}
    assert result["healthy"] is True


def test_adopted_files_are_listed(node, releases):
    node.put("opt/cni/bin/bridge", b"kube-router's bridge")
    install(node, releases[A])
    result = info(node)
    assert [record["original"] for record in result["adopted"]] == [os.path.join(node.bin_dir, "bridge")]
    assert _links(result, node.bin_dir)[(node.bin_dir, "bridge")] == "ok"


def test_every_link_status(node, releases):
    install(node, releases[A])
    os.unlink(os.path.join(node.bin_dir, "loopback"))                               # missing
    os.unlink(os.path.join(node.bin_dir, "portmap"))
    node.put("opt/cni/bin/portmap", b"an add-on's own portmap")                     # foreign
    os.unlink(os.path.join(node.k3s_dir, "bridge"))
    os.symlink(os.path.join(node.version_dir(A), "bridge"), os.path.join(node.k3s_dir, "bridge"))  # stale
    os.unlink(os.path.join(node.version_dir(A), "host-local"))                      # dangling links
    with open(os.path.join(node.bin_dir, "bridge"), "wb") as handle:               # drifted
        handle.write(b"overwritten through the link")

    result = info(node)
    links = _links(result)
    assert links[(node.bin_dir, "loopback")] == "missing"
    assert links[(node.bin_dir, "portmap")] == "foreign"
    assert links[(node.k3s_dir, "bridge")] == "stale"
    assert links[(node.bin_dir, "host-local")] == "dangling"
    assert links[(node.k3s_dir, "host-local")] == "dangling"
    assert links[(node.bin_dir, "bridge")] == "drifted"
    assert links[(node.k3s_dir, "portmap")] == "ok"
    assert result["link_summary"] == {"ok": 2, "missing": 1, "foreign": 1, "dangling": 2, "drifted": 1, "stale": 1}
    version = result["versions"][0]
    assert version["missing"] == ["host-local"] and version["drifted"] == ["bridge"]
    assert result["healthy"] is False


def _write_conf(node, name, content):
    if not isinstance(content, (bytes, str)):
        content = json.dumps(content)
    if isinstance(content, str):
        content = content.encode("utf-8")
    return node.put(os.path.join("etc", "cni", "net.d", name), content, 0o644)


MULTUS = {
    "cniVersion": "0.3.1",
    "name": "multus-cni-network",
    "type": "multus-shim",
    "delegates": [
        {"cniVersion": "1.0.0", "name": "pods", "plugins": [{"type": "bridge", "ipam": {"type": "host-local"}}, {"type": "loopback"}]},
        {"cniVersion": "0.3.1", "name": "storage", "type": "macvlan", "ipam": {"type": "static"}},
    ],
}


def test_config_coverage(node, releases):
    node.put("opt/cni/bin/multus-shim", b"#!/bin/sh\n")  # a foreign plugin counts as installed
    install(node, releases[A])
    conflist = _write_conf(node, "10-pods.conflist", {
        "cniVersion": "1.0.0", "name": "pods",
        "plugins": [{"type": "bridge", "ipam": {"type": "host-local"}}, {"type": "portmap", "capabilities": {"portMappings": True}}],
    })
    macvlan_conf = {"cniVersion": "0.4.0", "name": "storage", "type": "macvlan", "master": "eth1", "ipam": {"type": "host-local"}}
    macvlan = _write_conf(node, "20-macvlan.conf", macvlan_conf)
    multus = _write_conf(node, "00-multus.conf", MULTUS)
    broken = _write_conf(node, "99-broken.conflist", "{\"name\": \"half written\", ")
    _write_conf(node, "README", "not a config")

    result = info(node, conf_dirs=[node.conf_dir, os.path.join(node.root, "etc", "cni", "absent.d")])
    configs = dict((c["path"], c) for c in result["configs"])
    assert sorted(configs) == sorted([conflist, macvlan, multus, broken])

    assert configs[conflist]["name"] == "pods"
    assert configs[conflist]["types"] == ["bridge", "host-local", "portmap"]
    assert configs[conflist]["missing_types"] == []

    assert configs[macvlan]["types"] == ["host-local", "macvlan"]
    assert configs[macvlan]["missing_types"] == ["macvlan"]

    assert configs[multus]["types"] == ["bridge", "host-local", "loopback", "macvlan", "multus-shim", "static"]
    assert configs[multus]["missing_types"] == ["macvlan", "static"]

    assert configs[broken]["error"] and broken in configs[broken]["error"]
    assert configs[broken]["types"] == []

    assert result["missing_types"] == ["macvlan", "static"]
    assert result["healthy"] is False


def test_missing_type_is_covered_once_a_link_dir_provides_it(node, releases):
    install(node, releases[A])
    _write_conf(node, "20-macvlan.conf", {"cniVersion": "0.4.0", "name": "storage", "type": "macvlan", "ipam": {"type": "host-local"}})
    assert info(node, conf_dirs=[node.conf_dir])["missing_types"] == ["macvlan"]
    # The distro's macvlan, linked into the k3s dir by someone else: the runtime finds it there.
    os.symlink("/usr/lib/cni/macvlan", os.path.join(node.k3s_dir, "macvlan"))
    result = info(node, conf_dirs=[node.conf_dir])
    assert result["missing_types"] == []
    assert result["unmanaged"] == {node.k3s_dir: ["macvlan"]}
    assert result["healthy"] is True


def test_non_executable_file_does_not_cover_a_type(node, releases):
    install(node, releases[A])
    node.put("opt/cni/bin/macvlan", b"not runnable", 0o644)
    _write_conf(node, "20-macvlan.conf", {"name": "storage", "type": "macvlan"})
    assert info(node, conf_dirs=[node.conf_dir])["missing_types"] == ["macvlan"]


def test_plugins_subset_install_is_healthy(node, releases):
    install(node, releases[A], plugins=["bridge", "loopback"])
    result = info(node)
    assert result["link_summary"]["missing"] == 0
    assert result["healthy"] is True


def test_coverage_verdict_names_files_nads_and_versions(node, releases):
    install(node, releases[A])  # script plugins answering supportedVersions 0.4.0 and 1.0.0
    future = _write_conf(node, "10-future.conflist", {"cniVersion": "1.1.0", "name": "pods", "plugins": [{"type": "bridge"}]})
    nad = {"kind": "NetworkAttachmentDefinition", "metadata": {"name": "storage", "namespace": "apps"},
           "spec": {"config": json.dumps({"cniVersion": "1.0.0", "type": "bridge", "ipam": {"type": "dhcpx"}})}}
    result = info(node, conf_dirs=[node.conf_dir], network_attachments=[{"source": "nads/storage.yaml", "definition": nad}])
    configs = dict((c["path"], c) for c in result["configs"])
    assert configs[future]["version_mismatches"][0]["supported"] == ["0.4.0", "1.0.0"]
    assert configs["nads/storage.yaml#apps/storage"]["missing_types"] == ["dhcpx"]
    assert "uses" not in configs[future]
    assert result["coverage"]["ok"] is False
    assert result["coverage"]["problems"] == [
        "%s: bridge (plugins[0]) wants CNI version 1.1.0 but %s supports only 0.4.0, 1.0.0"
        % (future, os.path.join(node.bin_dir, "bridge")),
        "nads/storage.yaml#apps/storage: plugin type(s) not installed in any plugin dir: dhcpx",
    ]
    assert result["plugin_dirs"] == node.link_dirs
    assert result["healthy"] is False

    presence_only = info(node, conf_dirs=[node.conf_dir], probe_versions=False)
    assert presence_only["coverage"]["ok"] is True


def test_plugin_dirs_replace_the_link_dirs_for_resolution(node, releases):
    install(node, releases[A])
    _write_conf(node, "20-macvlan.conf", {"cniVersion": "0.4.0", "name": "s", "type": "macvlan"})
    result = info(node, conf_dirs=[node.conf_dir], plugin_dirs=[node.bin_dir, "/usr/lib/cni"])
    assert result["missing_types"] == [] and result["coverage"]["ok"] is True


def test_probe_plugins_runs_every_current_plugin_and_names_the_one_that_fails(node, releases):
    install(node, releases[A])
    assert info(node)["plugin_probes"] == []
    result = info(node, probe_plugins=True)
    assert [probe["name"] for probe in result["plugin_probes"]] == RELEASE_PLUGINS
    assert all(probe["ok"] and probe["supported_versions"] == ["0.4.0", "1.0.0"] for probe in result["plugin_probes"])
    assert result["healthy"] is True

    # A plugin that no longer runs (here: not executable any more) fails the probe and the verdict.
    os.chmod(os.path.join(node.version_dir(A), "portmap"), 0o644)
    result = info(node, probe_plugins=True)
    failed = [probe for probe in result["plugin_probes"] if not probe["ok"]]
    assert [probe["name"] for probe in failed] == ["portmap"] and "portmap" in failed[0]["error"]
    assert result["healthy"] is False


def test_ownership_tells_ours_adopted_dropped_and_drifted_apart(node, releases):
    node.put("opt/cni/bin/loopback", b"an earlier installer's loopback")
    install(node, releases[A])
    os.unlink(os.path.join(node.bin_dir, "bridge"))
    os.unlink(os.path.join(node.bin_dir, "portmap"))
    node.put("opt/cni/bin/bridge", b"kube-router's bridge")
    node.put("opt/cni/bin/portmap", b"kube-router's portmap")
    with open(os.path.join(node.version_dir(A), "host-local"), "wb") as handle:
        handle.write(b"overwritten through our link")
    result = info(node)
    kinds = dict(((entry["path"], entry["kind"]), entry["addon"]) for entry in result["ownership"])
    assert kinds[(os.path.join(node.bin_dir, "bridge"), "dropped")] == "kube-router"
    assert kinds[(os.path.join(node.bin_dir, "portmap"), "dropped")] == "kube-router"
    assert (os.path.join(node.bin_dir, "loopback"), "adopted") in kinds
    assert (os.path.join(node.bin_dir, "host-local"), "drifted") in kinds
    assert result["ownership_summary"]["dropped"] == 2


def test_each_file_is_read_once_per_run_though_versions_and_links_both_check_it(node, releases, monkeypatch):
    """Two versions, every plugin linked into two dirs: each file is hashed once - the links' targets are the
    files of `current` that its manifest check already hashed - and a drifted file reads as drifted both ways."""
    from ansible_collections.nodeprep.cni.plugins.module_utils import _hashing

    link_dir = os.path.join(node.root, "var/lib/rancher/k3s/data/cni")
    install(node, releases[A], link_dirs=[link_dir])
    install(node, releases[B], link_dirs=[link_dir])
    current_dir = os.path.join(node.versions_dir, "v" + B)
    with open(os.path.join(current_dir, "bridge"), "wb") as handle:
        handle.write(b"#!/bin/sh\necho an add-on's bridge\n")
    reads = []
    real = _hashing.file_digest
    monkeypatch.setattr(_hashing, "file_digest", lambda path, algorithm="sha256": reads.append(path) or real(path, algorithm))

    result = info(node, link_dirs=[link_dir])

    files = sorted(os.path.join(node.versions_dir, "v" + version, name) for version in (A, B)
                   for name in json.loads(open(os.path.join(node.versions_dir, "v" + version, ".nodeprep-manifest.json")).read())["files"])
    assert sorted(reads) == files, "each version file once, nothing else"
    assert len(result["links"]) == 2 * len(RELEASE_PLUGINS)
    assert _links(result)[(node.bin_dir, "bridge")] == "drifted" and _links(result)[(link_dir, "bridge")] == "drifted"
    assert result["versions"][1]["drifted"] == ["bridge"] and result["versions"][0]["intact"] is True


def test_views_answer_as_separate_runs_would_from_one_reading(node, releases, monkeypatch):
    """The report's dirs, a runtime's dirs and a coverage check in one run: each view's answer is what a run with
    its options gives, and each installed file is hashed once for all of them."""
    from ansible_collections.nodeprep.cni.plugins.module_utils import _hashing

    install(node, releases[A])
    install(node, releases[B])
    _write_conf(node, "10-pods.conflist", {
        "cniVersion": "1.0.0", "name": "pods", "plugins": [{"type": "bridge", "ipam": {"type": "host-local"}}]})
    _write_conf(node, "20-macvlan.conf", {"cniVersion": "0.4.0", "name": "storage", "type": "macvlan", "ipam": {"type": "host-local"}})
    runtime = {"bin_dir": node.k3s_dir, "link_dirs": [], "conf_dirs": [node.conf_dir], "runtime_plugins": ["loopback"],
               "runtime_name": "containerd 2.1.9", "cni_status": True, "package_owners": False}
    coverage = {"conf_dirs": [node.conf_dir], "required_plugins": ["macvlan", "bridge"], "package_owners": False}
    alone = {"runtime": info(node, **runtime), "multus": info(node, **coverage)}
    top = info(node, conf_dirs=[node.conf_dir])

    reads = []
    real = _hashing.file_digest
    monkeypatch.setattr(_hashing, "file_digest", lambda path, algorithm="sha256": reads.append(path) or real(path, algorithm))
    result = info(node, conf_dirs=[node.conf_dir], views=[dict(runtime, name="runtime"), dict(coverage, name="multus")])

    views = result.pop("views")
    for answer in [result] + list(alone.values()) + [top]:
        for harness in ("invocation", "views", "rc"):  # the run's, not the view's
            answer.pop(harness, None)
    assert result == top
    assert views == alone
    assert views["runtime"]["bin_dir"] == node.k3s_dir and views["runtime"]["link_dirs"] == [node.k3s_dir]
    assert views["multus"]["missing_types"] == ["macvlan"] and views["runtime"]["cni_status"]
    files = sorted(os.path.join(node.versions_dir, "v" + version, name) for version in (A, B)
                   for name in json.loads(open(os.path.join(node.version_dir(version), ".nodeprep-manifest.json")).read())["files"])
    assert sorted(reads) == files, "each version file once for the three checks, nothing else"


def test_views_must_have_distinct_names(node):
    before = snapshot(node.root)
    result = run_module_in_process(cni_info, node.info_args(views=[{"name": "runtime"}, {"name": "runtime"}]))
    assert result["rc"] != 0 and "repeated: runtime" in result["msg"]
    assert snapshot(node.root) == before
