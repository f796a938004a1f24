"""node_report over real module output: cni_info on an installed fake root, containerd_info reading a config.

What verify.yml writes per node comes from here alone; the fleet table reads the same dicts.
"""

from __future__ import annotations

import os

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.nodeprep.cni.plugins.filter.fleet_report import fleet_report
from ansible_collections.nodeprep.cni.plugins.filter.node_report import node_report
from ansible_collections.nodeprep.cni.plugins.modules import cni_info, cni_install, containerd_info, crio_info
from testbed_lib.in_process import FakeRoot, VERSION_A as A, build_releases, run_module_in_process as run_module

NETNS = {"dir": "/run/netns", "ok": True, "mounted": True, "fstype": "tmpfs", "propagation": "shared",
         "persistent": True, "var_run_ok": True, "var_run_dir": "/var/run/netns", "var_run_resolves_to": "/run/netns",
         "mounts_known": True, "mounts_reason": "",
         "cni_bin_dir": {"path": "/opt/cni/bin", "mount": "/", "propagation": "shared", "propagates": True}}


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    return build_releases(tmp_path_factory.mktemp("cache"))


@pytest.fixture
def installed(tmp_path, releases):
    root = tmp_path / "root"
    root.mkdir()
    node = FakeRoot(root)
    assert run_module(cni_install, node.args(src=releases[A].path, version=A))["rc"] == 0
    return node


def containerd_reads(tmp_path, bin_dirs):
    config = tmp_path / "config.toml"
    config.write_text("version = 3\n[plugins.'io.containerd.cri.v1.runtime'.cni]\n  bin_dirs = [%s]\n  conf_dir = '/etc/cni/net.d'\n"
                      % ", ".join("'%s'" % d for d in bin_dirs))
    result = run_module(containerd_info, {"config_path": str(config), "binary": str(tmp_path / "none"),
                                          "socket": str(tmp_path / "no.sock")})
    assert result["rc"] == 0 and result["bin_dirs"] == bin_dirs, result
    return result


def coverage_of(node, **extra):
    return run_module(cni_info, dict(node.info_args(), **extra))


def test_a_healthy_node_with_containerd(tmp_path, installed):
    info = coverage_of(installed)
    containerd = containerd_reads(tmp_path, [installed.bin_dir])
    dirs = run_module(cni_info, dict(installed.info_args(), bin_dir=installed.bin_dir, link_dirs=[]))
    made = node_report(info, "node-a", netns=NETNS, coverage=coverage_of(installed), containerd=containerd,
                       containerd_dirs=dirs)
    report = made["report"]
    assert report["schema_version"] == 1 and report["host"] == "node-a"
    assert report["cni_plugins"]["current"] == A and "invocation" not in report["cni_plugins"]
    runtime = report["runtime"]
    assert runtime["plugin_dirs"] == [installed.bin_dir] and runtime["plugin_dirs_current"] is True
    assert runtime["plugin_dirs_not_current"] == [] and runtime["link_problems"] == []
    assert runtime["current"] == A and runtime["dirs_from"] == containerd["source"]
    assert runtime["cri_reachable"] is False and runtime["runtime"] == ("containerd" if containerd["installed"] else "none")
    assert report["coverage"]["ok"] is True and report["coverage"]["plugin_dirs"] == info["plugin_dirs"]
    assert "current %s, previous -" % A in made["lines"]
    assert any(line.startswith("plugin dirs searched: " + installed.bin_dir) for line in made["lines"])


def test_a_dir_containerd_searches_that_is_not_current_is_named(tmp_path, installed):
    stray = tmp_path / "stray"
    stray.mkdir()
    os.symlink("/nowhere/bridge", str(stray / "bridge"))
    containerd = containerd_reads(tmp_path, [installed.bin_dir, str(stray)])
    dirs = run_module(cni_info, dict(installed.info_args(), bin_dir=installed.bin_dir, link_dirs=[str(stray)]))
    made = node_report(coverage_of(installed), "node-b", netns=NETNS, coverage=coverage_of(installed),
                       containerd=containerd, containerd_dirs=dirs)
    runtime = made["report"]["runtime"]
    assert runtime["plugin_dirs_current"] is False and runtime["plugin_dirs_not_current"] == [str(stray)]
    assert any(line.endswith("(not: %s)" % stray) for line in made["lines"]), made["lines"]


def test_without_containerd_and_with_unknown_mounts(installed):
    netns = dict(NETNS, ok=False, mounted=False, fstype=None, mounts_known=False,
                 mounts_reason="/proc/self/mountinfo does not exist")
    made = node_report(coverage_of(installed), "image", netns=netns, coverage=coverage_of(installed),
                       containerd={"skipped": True}, containerd_dirs=None)
    assert made["report"]["runtime"] == {}
    assert any("mounts unknown: /proc/self/mountinfo does not exist" in line for line in made["lines"])
    row = fleet_report([made["report"]])["table"][1]
    assert "mounts unknown" in row


def test_runtime_coverage_joins_the_configs_coverage(installed):
    coverage = {"coverage": {"ok": True, "configs": 1, "missing_types": [], "problems": []}, "plugin_dirs": ["/x"],
                "configs": ["/etc/cni/net.d/10.conflist"]}
    dirs = {"links": [], "missing_types": ["loopback"], "coverage": {"problems": ["containerd runs loopback: missing"]}}
    containerd = {"installed": True, "bin_dirs": ["/x"], "cri": {"reachable": False}, "source": "config file"}
    report = node_report(coverage_of(installed), "n", netns=NETNS, coverage=coverage, containerd=containerd,
                         containerd_dirs=dirs)["report"]
    assert report["coverage"]["ok"] is False and report["coverage"]["missing_types"] == ["loopback"]
    assert report["coverage"]["problems"] == ["containerd runs loopback: missing"]
    assert report["coverage"]["files"] == ["/etc/cni/net.d/10.conflist"]


def test_a_report_without_the_cni_plugins_part_is_refused():
    with pytest.raises(AnsibleFilterError, match="cni_plugins role's report"):
        node_report(None, "n")


def test_a_node_on_another_version_than_wanted_is_skewed_and_says_so(tmp_path, installed):
    info = coverage_of(installed)
    dirs = run_module(cni_info, dict(installed.info_args(), bin_dir=installed.bin_dir, link_dirs=[]))
    crio = tmp_path / "crio.conf.d"
    crio.mkdir()
    (crio / "10-nodeprep-cni.conf").write_text('[crio.network]\nplugin_dirs = ["%s"]\n' % installed.bin_dir)
    runtime = run_module(crio_info, {"binary": str(tmp_path / "none"), "config_path": str(tmp_path / "crio.conf"),
                                     "config_dir": str(crio), "socket": str(tmp_path / "no.sock")})
    made = node_report(info, "node-a", netns=NETNS, coverage=coverage_of(installed), containerd=runtime,
                       containerd_dirs=dirs, wanted={"source": "release", "version": "9.9.9"})
    report = made["report"]
    assert report["wanted"] == {"source": "release", "version": "9.9.9"} and report["skew"] is True
    assert report["problems"] == {"skew": "current %s, wanted 9.9.9" % A}
    # The runtime is named by what was read (crio_info), its dirs checked like containerd's.
    assert report["runtime"]["runtime"] == "none"  # neither the binary ran nor the CRI answered
    assert "wanted: 9.9.9 (SKEW)" in made["lines"]
    assert "ready: no (skew)" in made["lines"]
    same = node_report(info, "node-a", netns=NETNS, coverage=coverage_of(installed), wanted="v" + A)["report"]
    assert same["skew"] is False and same["problems"] == {}
    unknown = node_report(info, "node-a", netns=NETNS, coverage=coverage_of(installed))["report"]
    assert unknown["skew"] is None and unknown["wanted"] is None
