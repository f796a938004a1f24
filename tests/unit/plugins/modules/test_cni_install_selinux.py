"""cni_install's SELinux labels, run in-process on a node root under tmp_path.

The labels are real ``security.selinux`` extended attributes on the test's files. Only the edge is
faked: the kernel's selinuxfs (a dir with or without ``enforce``) and the policy's tools
(``matchpathcon`` answering as Debian's reference policy does for /opt/cni/bin, ``semanage``
writing the equivalence where libsemanage does). An enforcing kernel is tests/vm/test_selinux.py.
"""

from __future__ import annotations

import os

import pytest

from ansible_collections.nodeprep.cni.plugins.module_utils import _selinux
from ansible_collections.nodeprep.cni.plugins.modules import cni_install
from testbed_lib.in_process import RELEASE_PLUGINS, VERSION_A as A, VERSION_B as B, run_module_in_process

BIN_T = "system_u:object_r:bin_t:s0"
TMP_T = "system_u:object_r:tmp_t:s0"

MATCHPATHCON = """#!/bin/sh
# matchpathcon -n -m KIND PATH..., answering as the policy under test does.
echo "$*" >> "%(log)s"
shift 3
for path in "$@"; do
  case "$path" in /opt/cni/bin|/opt/cni/bin/*) echo %(label)s;; *) exit 1;; esac
done
"""
SEMANAGE = """#!/bin/sh
# semanage fcontext -a|-m -e REFERENCE PATH: records the call and the equivalence, as libsemanage does.
echo "$*" >> "%(log)s"
echo "$5 $4" >> "%(subs)s"
"""


def label(path):
    try:
        return os.getxattr(path, "security.selinux", follow_symlinks=False).rstrip(b"\0").decode()
    except OSError:
        return None


def entries(node):
    """Every entry under versions_dir and every link in the link dirs."""
    found = list(_selinux.walk(node.versions_dir))
    for directory in node.link_dirs:
        found += [os.path.join(directory, name) for name in os.listdir(directory)]
    return found


@pytest.fixture
def policy_tools(tmp_path, monkeypatch):
    """The policy's commands on PATH; returns the log files of their calls."""
    tools = tmp_path / "tools"
    tools.mkdir()
    logs = {"matchpathcon": tmp_path / "matchpathcon.log", "semanage": tmp_path / "semanage.log"}
    selinux_dir = tmp_path / "etc-selinux"
    (selinux_dir / "default/contexts/files").mkdir(parents=True)
    (selinux_dir / "config").write_text("SELINUX=enforcing\nSELINUXTYPE=default\n")
    logs["subs"] = selinux_dir / "default/contexts/files/file_contexts.subs"
    for name, text in (("matchpathcon", MATCHPATHCON), ("semanage", SEMANAGE)):
        (tools / name).write_text(text % {"log": logs[name], "label": BIN_T, "subs": logs["subs"]})
        (tools / name).chmod(0o755)
    monkeypatch.setenv("PATH", "%s:%s" % (tools, os.environ["PATH"]))
    monkeypatch.setattr(_selinux, "SELINUX_CONFIG", str(selinux_dir / "config"))
    return logs


@pytest.fixture
def selinux_on(tmp_path, monkeypatch, policy_tools):
    fs = tmp_path / "selinuxfs"
    fs.mkdir()
    (fs / "enforce").write_text("1")
    monkeypatch.setattr(_selinux, "SELINUXFS", str(fs))
    return policy_tools


def install(node, release, check_mode=False, diff=False, **extra):
    result = run_module_in_process(cni_install, node.args(src=release.path, version=release.version, **extra),
                                   check_mode=check_mode, diff=diff)
    assert result["rc"] == 0 and not result.get("failed"), result.get("msg")
    return result


def test_without_selinux_nothing_is_asked_or_labelled(node, releases, tmp_path, monkeypatch, policy_tools):
    monkeypatch.setattr(_selinux, "SELINUXFS", str(tmp_path / "no-selinuxfs"))
    result = install(node, releases[A])
    assert result["selinux"] == {"enabled": False, "relabelled": [], "equivalence": None}
    assert [label(path) for path in entries(node)] == [None] * len(entries(node))
    assert not policy_tools["matchpathcon"].exists() and not policy_tools["semanage"].exists()


def test_every_file_and_link_gets_the_policy_label_of_the_os_plugin_dir(node, releases, selinux_on):
    result = install(node, releases[A])
    paths = entries(node)
    assert {path: label(path) for path in paths} == {path: BIN_T for path in paths}
    links = [os.path.join(directory, plugin) for directory in node.link_dirs for plugin in RELEASE_PLUGINS]
    assert all(os.path.islink(link) for link in links)  # the links themselves carry it, not only their targets
    assert sorted(change["path"] for change in result["selinux"]["relabelled"]) == sorted(paths)
    assert {change["after"] for change in result["selinux"]["relabelled"]} == {BIN_T}
    assert result["selinux"]["equivalence"] == {"path": node.versions_dir, "equal_to": "/opt/cni/bin",
                                                "changed": True, "semanage": True}
    assert selinux_on["semanage"].read_text() == "fcontext -a -e /opt/cni/bin %s\n" % node.versions_dir
    calls = selinux_on["matchpathcon"].read_text().splitlines()
    asked = dict(line.split(" ", 3)[2:] for line in calls)
    # One run of matchpathcon per class of entry (the dir's first, before any change), not one per file.
    assert len(calls) == 3 and sorted(asked) == ["dir", "file", "lnk_file"]
    assert asked["dir"] == "/opt/cni/bin" and "/opt/cni/bin/bridge" in asked["lnk_file"].split()

    again = install(node, releases[A])
    assert again["changed"] is False
    assert again["selinux"]["relabelled"] == [] and again["selinux"]["equivalence"]["changed"] is False
    assert selinux_on["semanage"].read_text().count("fcontext") == 1  # registered once


def test_check_mode_and_diff_predict_a_relabel_that_the_real_run_makes(node, releases, selinux_on):
    install(node, releases[A])
    plugin = os.path.join(node.version_dir(releases[A].version), "bridge")
    os.setxattr(plugin, "security.selinux", TMP_T.encode())
    predicted = install(node, releases[A], check_mode=True, diff=True)
    assert predicted["changed"] is True
    assert predicted["selinux"]["relabelled"] == [{"path": plugin, "before": TMP_T, "after": BIN_T}]
    assert predicted["diff"]["before"]["selinux"] == {plugin: TMP_T}
    assert predicted["diff"]["after"]["selinux"] == {plugin: BIN_T}
    assert label(plugin) == TMP_T  # check mode wrote nothing
    done = install(node, releases[A], diff=True)
    assert done["changed"] is True and done["selinux"]["relabelled"] == predicted["selinux"]["relabelled"]
    assert label(plugin) == BIN_T


def test_upgrade_and_rollback_leave_every_entry_labelled(node, releases, selinux_on):
    install(node, releases[A])
    install(node, releases[B])
    assert {label(path) for path in entries(node)} == {BIN_T}
    # A pointer or link re-made by a rollback starts with whatever label its directory hands out.
    os.setxattr(node.versions_dir, "security.selinux", TMP_T.encode())
    result = run_module_in_process(cni_install, node.args(state="rollback"))
    assert result["rc"] == 0, result.get("msg")
    assert os.readlink(os.path.join(node.versions_dir, "current")) == "v" + releases[A].version
    assert {label(path) for path in entries(node)} == {BIN_T}


def test_a_node_that_cannot_ask_its_policy_fails_before_any_change(node, releases, selinux_on):
    os.unlink(os.path.join(os.environ["PATH"].split(":")[0], "matchpathcon"))
    result = run_module_in_process(cni_install, node.args(src=releases[A].path, version=releases[A].version))
    assert result["rc"] == 1 and result["failed"] is True
    assert "matchpathcon" in result["msg"] and "selinux-utils" in result["msg"] and "libselinux-utils" in result["msg"]
    assert not os.path.lexists(node.versions_dir) and not os.path.lexists(node.bin_dir)
