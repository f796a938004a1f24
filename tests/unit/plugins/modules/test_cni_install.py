"""cni_install run in-process against a node root under tmp_path, with real tarballs and real probes.

Every assertion is on the files the module leaves: bytes, hashes, link targets, whole-tree snapshots.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time

import pytest

from ansible_collections.nodeprep.cni.plugins.module_utils._locking import FileLock
from ansible_collections.nodeprep.cni.plugins.module_utils._manifest import MANIFEST_NAME
from ansible_collections.nodeprep.cni.plugins.modules import cni_info, cni_install
from testbed_lib.in_process import (
    RELEASE_PLUGINS,
    VERSION_A as A,
    VERSION_B as B,
    VERSION_C as C,
    VERSION_REAL as REAL,
    finish_module_process,
    run_module_in_process,
    sha256_bytes,
    sha256_file,
    start_module_process,
)
from testbed_lib.tree import snapshot

STRAY_BRIDGE = b"#!/bin/sh\n# bridge copied here by kube-router's init container\n"
CALICO = b"\x7fELF calico plugin, not ours\n"


def install(node, release, check_mode=False, diff=False, **extra):
    args = node.args(src=release.path, version=release.version, **extra)
    return run_module_in_process(cni_install, args, check_mode=check_mode, diff=diff)


def run(node, check_mode=False, diff=False, **extra):
    return run_module_in_process(cni_install, node.args(**extra), check_mode=check_mode, diff=diff)


def ok(result):
    assert result["rc"] == 0 and not result.get("failed"), result.get("msg")
    return result


def failed(result):
    assert result["rc"] == 1 and result.get("failed") is True, result
    return result["msg"]


def assert_links_resolve_into(node, release, plugins=None):
    """Every plugin link in every link dir goes through `current` and lands on *release*'s bytes."""
    version_dir = node.version_dir(release.version)
    for directory in node.link_dirs:
        for plugin in plugins or RELEASE_PLUGINS:
            link = os.path.join(directory, plugin)
            assert os.readlink(link) == os.path.join(node.versions_dir, "current", plugin)
            assert os.path.realpath(link) == os.path.join(version_dir, plugin)
            assert sha256_file(link) == sha256_bytes(release.files[plugin])
    assert os.readlink(os.path.join(node.versions_dir, "current")) == "v" + release.version


def stage_leftovers(node):
    if not os.path.isdir(node.versions_dir):
        return []
    return [name for name in os.listdir(node.versions_dir) if name.startswith((".stage-", ".trash-"))]


# install, re-run, upgrade, rollback, prune ---------------------------------------------------------

def test_install_links_every_plugin_and_records_real_hashes(node, releases):
    release = releases[A]
    result = ok(install(node, release))

    assert result["changed"] is True
    assert result["installed"] is True
    assert result["version"] == A and result["previous"] is None
    assert result["plugins"] == RELEASE_PLUGINS
    assert_links_resolve_into(node, release)

    manifest = json.loads(open(os.path.join(node.version_dir(A), MANIFEST_NAME), "rb").read().decode())
    assert manifest["version"] == A
    assert manifest["tarball_sha256"] == sha256_file(release.path)
    assert manifest["source_url"] == "file://" + release.path
    assert sorted(manifest["files"]) == sorted(release.files)
    for name, data in release.files.items():
        assert manifest["files"][name]["sha256"] == sha256_bytes(data)
        assert sha256_file(os.path.join(node.version_dir(A), name)) == sha256_bytes(data)
    # LICENSE and README.md are kept but never linked.
    for directory in node.link_dirs:
        assert sorted(os.listdir(directory)) == RELEASE_PLUGINS
    assert result["links"] == dict(
        (os.path.join(d, p), os.path.join(node.versions_dir, "current", p)) for d in node.link_dirs for p in RELEASE_PLUGINS)
    assert stage_leftovers(node) == []


def test_rerun_is_a_no_op_and_writes_nothing(node, releases):
    ok(install(node, releases[A]))
    before = snapshot(node.root)
    result = ok(install(node, releases[A]))
    assert result["changed"] is False
    assert result["actions"] == []
    assert result["installed"] is False
    assert snapshot(node.root) == before
    # The role's no-op path: the node is asked before any download, so there is no src at all.
    result = ok(run(node, version=A))
    assert result["changed"] is False and result["actions"] == []
    assert snapshot(node.root) == before


def test_src_is_read_only_when_the_version_needs_it(node, releases, tmp_path):
    """An intact version never reads src; a drifted one unpacks it, once, to repair."""
    ok(install(node, releases[A]))
    before = snapshot(node.root)
    unreadable = tmp_path / "not-a-tarball.tgz"
    unreadable.write_bytes(b"not gzip at all")
    result = ok(run(node, src=str(unreadable), version=A))
    assert result["changed"] is False and snapshot(node.root) == before
    # Drift makes the tarball needed: the broken one is refused, and nothing is left staged.
    with open(os.path.join(node.version_dir(A), "bridge"), "ab") as handle:
        handle.write(b"drift")
    assert "truncated or corrupt" in failed(run(node, src=str(unreadable), version=A))
    assert stage_leftovers(node) == []
    ok(install(node, releases[A]))
    assert sha256_file(os.path.join(node.version_dir(A), "bridge")) == sha256_bytes(releases[A].files["bridge"])


def test_upgrade_switches_every_link_to_the_new_version(node, releases):
    ok(install(node, releases[A]))
    result = ok(install(node, releases[B]))
    assert result["changed"] is True
    assert result["version"] == B and result["previous"] == A
    assert os.readlink(os.path.join(node.versions_dir, "previous")) == "v" + A
    assert_links_resolve_into(node, releases[B])
    # A stays installed and intact for a rollback.
    for name, data in releases[A].files.items():
        assert sha256_file(os.path.join(node.version_dir(A), name)) == sha256_bytes(data)


def test_rollback_returns_to_previous_and_a_second_rollback_is_a_no_op(node, releases):
    ok(install(node, releases[A]))
    ok(install(node, releases[B]))

    result = ok(run(node, state="rollback"))
    assert result["changed"] is True
    assert result["version"] == A and result["previous"] == B
    assert_links_resolve_into(node, releases[A])

    before = snapshot(node.root)
    again = ok(run(node, state="rollback"))
    assert again["changed"] is False
    assert again["actions"] == []
    assert again["version"] == A
    assert snapshot(node.root) == before
    assert_links_resolve_into(node, releases[A])


def test_rollback_to_an_explicit_version(node, releases):
    for version in (A, B, C):
        ok(install(node, releases[version]))
    result = ok(run(node, state="rollback", version=A))
    assert result["version"] == A and result["previous"] == C
    assert_links_resolve_into(node, releases[A])


def test_rollback_without_previous_fails_and_changes_nothing(node, releases):
    ok(install(node, releases[A]))
    before = snapshot(node.root)
    msg = failed(run(node, state="rollback"))
    assert "no previous version" in msg
    assert snapshot(node.root) == before


def test_rollback_to_a_version_that_is_not_installed_fails(node, releases):
    ok(install(node, releases[A]))
    ok(install(node, releases[B]))
    before = snapshot(node.root)
    msg = failed(run(node, state="rollback", version="3.3.3"))
    assert "3.3.3" in msg and "not installed" in msg
    assert snapshot(node.root) == before


def test_keep_two_prunes_the_oldest_but_never_current_or_previous(node, releases):
    ok(install(node, releases[A], keep=2))
    ok(install(node, releases[B], keep=2))
    result = ok(install(node, releases[C], keep=2))
    assert result["pruned"] == [A]
    assert not os.path.lexists(node.version_dir(A))
    assert os.path.isdir(node.version_dir(B)) and os.path.isdir(node.version_dir(C))
    assert result["version"] == C and result["previous"] == B
    assert_links_resolve_into(node, releases[C])
    assert stage_leftovers(node) == []


def test_keep_below_two_is_refused(node, releases):
    msg = failed(install(node, releases[A], keep=1))
    assert "keep" in msg and "at least 2" in msg
    assert snapshot(node.root) == {}


# adoption and state=absent ------------------------------------------------------------------------

def _stray_node(node):
    node.put("opt/cni/bin/bridge", STRAY_BRIDGE, 0o750)
    node.put("opt/cni/bin/calico", CALICO, 0o755)
    os.makedirs(node.k3s_dir)
    os.symlink("/usr/lib/cni/host-local", os.path.join(node.k3s_dir, "host-local"))  # a distro's own link
    node.put("etc/cni/net.d/10-calico.conflist", b'{"name": "k8s-pod-network"}', 0o644)


def only_the_lock_remains(node, tree):
    """The node lock is never removed, so versions_dir outlives `absent`: it must hold nothing else."""
    assert sorted(os.listdir(node.versions_dir)) == [".lock"]
    versions = os.path.relpath(node.versions_dir, node.root)
    dropped = {versions, versions + "/.lock"}
    parent = os.path.dirname(versions)
    while parent:
        dropped.add(parent)
        parent = os.path.dirname(parent)
    return {k: v for k, v in tree.items() if k not in dropped}


def _calico_intact(node):
    path = os.path.join(node.bin_dir, "calico")
    assert not os.path.islink(path)
    assert open(path, "rb").read() == CALICO


def test_absent_restores_the_tree_byte_identically(node, releases):
    _stray_node(node)
    pristine = snapshot(node.root)

    first = ok(install(node, releases[A]))
    adopted = sorted(record["original"] for record in first["adopted"])
    assert adopted == [os.path.join(node.bin_dir, "bridge"), os.path.join(node.k3s_dir, "host-local")]
    assert_links_resolve_into(node, releases[A])
    _calico_intact(node)

    ok(install(node, releases[B]))
    _calico_intact(node)
    ok(run(node, state="rollback"))
    _calico_intact(node)

    predicted = ok(run(node, state="absent", check_mode=True))
    result = ok(run(node, state="absent"))
    assert result["changed"] is True
    _calico_intact(node)
    assert only_the_lock_remains(node, snapshot(node.root)) == only_the_lock_remains(node, pristine)
    assert open(os.path.join(node.bin_dir, "bridge"), "rb").read() == STRAY_BRIDGE
    # What went, what came back and what stays, as check mode predicted it.
    lock = os.path.join(node.versions_dir, ".lock")
    assert (predicted["removed"], predicted["restored"], predicted["left"]) == (result["removed"], result["restored"], result["left"])
    assert sorted(result["restored"]) == [os.path.join(node.bin_dir, "bridge"), os.path.join(node.k3s_dir, "host-local")]
    assert {os.path.join(node.versions_dir, "v" + A), os.path.join(node.versions_dir, "current"),
            os.path.join(node.bin_dir, "loopback")} <= set(result["removed"])
    assert [item["path"] for item in result["left"]] == [lock] and "never removed" in result["left"][0]["why"]

    again = ok(run(node, state="absent"))
    assert again["changed"] is False and again["removed"] == [] and again["restored"] == []
    assert only_the_lock_remains(node, snapshot(node.root)) == only_the_lock_remains(node, pristine)


def test_absent_on_a_fresh_node_removes_every_directory_it_created(node, releases):
    ok(install(node, releases[A]))
    ok(install(node, releases[B]))
    assert ok(run(node, state="absent"))["changed"] is True
    assert only_the_lock_remains(node, snapshot(node.root)) == {}


def test_adopt_false_fails_naming_the_stray_file_and_changes_nothing(node, releases):
    _stray_node(node)
    before = snapshot(node.root)
    msg = failed(install(node, releases[A], adopt=False))
    assert os.path.join(node.bin_dir, "bridge") in msg
    assert os.path.join(node.k3s_dir, "host-local") in msg
    assert os.path.join(node.bin_dir, "calico") not in msg
    assert snapshot(node.root) == before


def test_refusal_in_a_pre_existing_empty_versions_dir_changes_nothing_but_the_lock(node, releases):
    _stray_node(node)
    os.makedirs(node.versions_dir)
    before = snapshot(node.root)
    failed(install(node, releases[A], adopt=False))
    assert only_the_lock_remains(node, snapshot(node.root)) == only_the_lock_remains(node, before)


# hostile, truncated and failing releases ----------------------------------------------------------

BROKEN = [
    pytest.param("hostile", ["../evil", "hostile.tgz"], id="hostile-member"),
    pytest.param("truncated", ["truncated.tgz", "truncated or corrupt"], id="truncated-gzip"),
    pytest.param("probe-fails", ["bridge", "exited 1"], id="probe-fails"),
]


@pytest.mark.parametrize("which, words", BROKEN)
def test_broken_release_on_a_fresh_node_fails_and_leaves_nothing(node, releases, which, words):
    _stray_node(node)
    before = snapshot(node.root)
    msg = failed(install(node, releases[which]))
    for word in words:
        assert word in msg
    # Even a probe that fails once the release is staged inside versions_dir: the run removes
    # the stage, the lock file and the directories it created.
    assert snapshot(node.root) == before
    assert not os.path.lexists(os.path.join(node.root, "opt", "cni", "evil"))


@pytest.mark.parametrize("which, words", BROKEN)
def test_broken_release_as_an_upgrade_fails_and_leaves_the_install_as_it_was(node, releases, which, words):
    _stray_node(node)
    ok(install(node, releases[A]))
    before = snapshot(node.root)
    msg = failed(install(node, releases[which]))
    for word in words:
        assert word in msg
    assert snapshot(node.root) == before
    assert stage_leftovers(node) == []
    assert not os.path.lexists(os.path.join(node.versions_dir, "evil"))
    assert not os.path.lexists(os.path.join(node.root, "opt", "cni", "evil"))
    assert_links_resolve_into(node, releases[A])


def test_missing_src_fails_naming_it(node, releases):
    msg = failed(run(node, version=A, src=os.path.join(node.root, "nope.tgz")))
    assert os.path.join(node.root, "nope.tgz") in msg
    assert snapshot(node.root) == {}


def test_not_installed_without_src_asks_for_src(node):
    msg = failed(run(node, version=A))
    assert "not installed" in msg and "src" in msg
    assert snapshot(node.root) == {}


# drift --------------------------------------------------------------------------------------------

def test_drift_is_reported_refused_without_src_and_repaired_with_it(node, releases):
    release = releases[REAL]
    ok(install(node, release))
    assert_links_resolve_into(node, release)

    # An add-on's installer copies its own binary over /opt/cni/bin/bridge: through our link.
    with open(os.path.join(node.bin_dir, "bridge"), "wb") as handle:
        handle.write(b"#!/bin/sh\necho '{\"cniVersion\":\"1.0.0\"}'  # calico's bridge\n")

    info = ok(run_module_in_process(cni_info, node.info_args()))
    version = [v for v in info["versions"] if v["version"] == REAL][0]
    assert version["intact"] is False
    assert version["drifted"] == ["bridge"]
    bridge_links = [link for link in info["links"] if link["name"] == "bridge"]
    assert sorted(link["dir"] for link in bridge_links) == sorted(node.link_dirs)
    assert [link["status"] for link in bridge_links] == ["drifted", "drifted"]
    assert info["healthy"] is False

    before = snapshot(node.root)
    msg = failed(run(node, version=REAL))
    assert "bridge" in msg and "drifted" in msg
    assert snapshot(node.root) == before

    repaired = ok(install(node, release))
    assert repaired["changed"] is True and repaired["installed"] is True
    assert any("repair" in action and "bridge" in action for action in repaired["actions"])
    assert sha256_file(os.path.join(node.version_dir(REAL), "bridge")) == sha256_bytes(release.files["bridge"])
    assert_links_resolve_into(node, release)
    assert ok(run_module_in_process(cni_info, node.info_args()))["healthy"] is True
    assert stage_leftovers(node) == []

    settled = snapshot(node.root)
    again = ok(run(node, version=REAL))
    assert again["changed"] is False and again["actions"] == []
    assert snapshot(node.root) == settled


def test_missing_version_file_is_repaired(node, releases):
    ok(install(node, releases[A]))
    os.unlink(os.path.join(node.version_dir(A), "portmap"))
    result = ok(install(node, releases[A]))
    assert result["changed"] is True
    assert_links_resolve_into(node, releases[A])


# check mode and diff ------------------------------------------------------------------------------

def test_check_mode_install_reports_change_and_writes_nothing(node, releases):
    _stray_node(node)
    before = snapshot(node.root)
    result = ok(install(node, releases[A], check_mode=True))
    assert result["changed"] is True
    assert result["version"] == A
    assert snapshot(node.root) == before


@pytest.mark.parametrize("step", ["upgrade", "rollback", "absent", "prune"])
def test_check_mode_steps_report_change_and_write_nothing(node, releases, step):
    _stray_node(node)
    ok(install(node, releases[A]))
    ok(install(node, releases[B]))
    before = snapshot(node.root)
    if step == "upgrade":
        result = install(node, releases[C], check_mode=True)
    elif step == "prune":
        result = install(node, releases[C], check_mode=True, keep=2)
        assert result["pruned"] == [A]
    else:
        result = run(node, check_mode=True, state=step)
    assert ok(result)["changed"] is True
    assert result["actions"]
    assert snapshot(node.root) == before


@pytest.mark.parametrize("step", ["install", "upgrade", "rollback", "absent"])
def test_check_mode_diff_predicts_the_real_run(node, releases, step):
    """The diff a check run promises is what the real run then does."""
    _stray_node(node)
    calls = {
        "install": lambda **kw: install(node, releases[C], **kw),
        "upgrade": lambda **kw: install(node, releases[C], keep=2, **kw),
        "rollback": lambda **kw: run(node, state="rollback", **kw),
        "absent": lambda **kw: run(node, state="absent", **kw),
    }
    if step != "install":
        ok(install(node, releases[A]))
        ok(install(node, releases[B]))
    predicted = ok(calls[step](check_mode=True, diff=True))
    real = ok(calls[step](diff=True))
    assert predicted["diff"]["before"] == real["diff"]["before"]
    assert predicted["diff"]["after"] == real["diff"]["after"]
    assert predicted["changed"] is real["changed"] is True


def test_diff_shows_before_and_after(node, releases):
    ok(install(node, releases[A]))
    result = ok(install(node, releases[B], diff=True))
    before, after = result["diff"]["before"], result["diff"]["after"]
    assert before["current"] == A and before["previous"] is None
    assert after["current"] == B and after["previous"] == A
    assert after["versions"] == [A, B]
    link = os.path.join(node.bin_dir, "bridge")
    assert before["links"][link] == after["links"][link] == os.path.join(node.versions_dir, "current", "bridge")


# plugin subsets -------------------------------------------------------------------------------------

def test_plugins_subset_links_only_those(node, releases):
    result = ok(install(node, releases[A], plugins=["loopback", "bridge"]))
    assert result["plugins"] == ["bridge", "loopback"]
    for directory in node.link_dirs:
        assert sorted(os.listdir(directory)) == ["bridge", "loopback"]
    assert_links_resolve_into(node, releases[A], ["bridge", "loopback"])
    # The version dir still holds the whole release.
    assert sorted(os.listdir(node.version_dir(A))) == sorted(list(releases[A].files) + [MANIFEST_NAME])

    narrowed = ok(install(node, releases[A], plugins=["bridge"]))
    assert narrowed["changed"] is True
    for directory in node.link_dirs:
        assert os.listdir(directory) == ["bridge"]


def test_unknown_subset_name_fails_naming_it(node, releases):
    _stray_node(node)
    before = snapshot(node.root)
    msg = failed(install(node, releases[A], plugins=["bridge", "macvlan"]))
    assert "macvlan" in msg
    assert "bridge" in msg  # listed among the choices
    assert snapshot(node.root) == before


# concurrency and partial failures -------------------------------------------------------------------

def _collections_root():
    return [p for p in sys.path if p.endswith(os.path.join(".cache", "collections"))][0]


def test_second_run_waits_for_the_lock_then_proceeds_on_the_result(node, releases):
    ok(install(node, releases[A]))
    lock_path = os.path.join(node.versions_dir, ".lock")
    lock = FileLock(lock_path, timeout=5)
    lock.acquire()
    try:
        proc = start_module_process("cni_install", node.args(src=releases[B].path, version=B), _collections_root())
        time.sleep(0.8)
        # Still waiting: nothing switched while another run holds the node.
        assert proc.poll() is None
        assert os.readlink(os.path.join(node.versions_dir, "current")) == "v" + A
        assert not os.path.lexists(node.version_dir(B))
    finally:
        lock.release()
    result = ok(finish_module_process(proc))
    assert result["changed"] is True and result["version"] == B
    assert_links_resolve_into(node, releases[B])


def test_lock_timeout_fails_naming_the_lock_and_changes_nothing(node, releases):
    ok(install(node, releases[A]))
    before = snapshot(node.root)
    with FileLock(os.path.join(node.versions_dir, ".lock"), timeout=5):
        msg = failed(install(node, releases[B], lock_timeout=1))
    assert os.path.join(node.versions_dir, ".lock") in msg
    assert snapshot(node.root) == before


@pytest.mark.parametrize("fresh", [True, False], ids=["fresh-node", "upgrade"])
def test_unusable_link_dir_fails_and_changes_nothing(node, releases, fresh):
    node.put("afile", b"a file where a directory should be", 0o644)
    if not fresh:
        ok(install(node, releases[A]))
    before = snapshot(node.root)
    msg = failed(install(node, releases[B], link_dirs=[node.k3s_dir, os.path.join(node.root, "afile", "sub")]))
    assert "afile" in msg
    assert snapshot(node.root) == before


# asking first (on_missing_src: report) and the distribution's own dir ------------------------------

@pytest.mark.parametrize("check_mode", [False, True])
def test_report_mode_on_a_fresh_node_asks_for_src_and_writes_nothing(node, check_mode):
    result = ok(run(node, check_mode=check_mode, version=A, on_missing_src="report"))
    assert result["src_needed"] is True and result["changed"] is False
    assert result["arch"] == "amd64" and "not installed" in result["reason"]
    assert snapshot(node.root) == {}


def test_report_mode_names_drift_and_leaves_the_node_as_it_is(node, releases):
    ok(install(node, releases[A]))
    with open(os.path.join(node.version_dir(A), "bridge"), "wb") as handle:
        handle.write(b"#!/bin/sh\n# an add-on's bridge\n")
    before = snapshot(node.root)
    result = ok(run(node, version=A, on_missing_src="report"))
    assert result["src_needed"] is True and "bridge" in result["reason"] and "drifted" in result["reason"]
    assert snapshot(node.root) == before


def test_report_mode_settles_an_intact_node_in_that_one_run(node, releases):
    ok(install(node, releases[A]))
    os.unlink(os.path.join(node.bin_dir, "portmap"))
    repaired = ok(run(node, version=A, on_missing_src="report"))
    assert repaired["src_needed"] is False and repaired["changed"] is True and repaired["installed"] is False
    assert_links_resolve_into(node, releases[A])
    settled = snapshot(node.root)
    again = ok(run(node, version=A, on_missing_src="report"))
    assert again["changed"] is False and again["actions"] == [] and again["arch"] == "amd64"
    assert snapshot(node.root) == settled


IMAGE_BRIDGE = b"#!/bin/sh\n# the image's own bridge\n"


def image_with_its_own_bridge(node):
    """An image's plugin dir that already has a bridge of its own: (dir, that bridge's bytes)."""
    image_dir = os.path.join(node.root, "image-bin")
    os.makedirs(image_dir)
    with open(os.path.join(image_dir, "bridge"), "wb") as handle:
        handle.write(IMAGE_BRIDGE)
    return image_dir, IMAGE_BRIDGE


def test_image_layout_links_free_names_only_and_is_idempotent(node, releases):
    image_dir, theirs = image_with_its_own_bridge(node)
    before = snapshot(node.root)
    planned = ok(install(node, releases[A], check_mode=True, diff=True, layout="image", image_dir=image_dir))
    assert planned["layout"]["linked"] == sorted(set(RELEASE_PLUGINS) - {"bridge"})
    assert snapshot(node.root) == before
    done = ok(install(node, releases[A], layout="image", image_dir=image_dir))
    assert done["layout"] == {"name": "image", "dir": image_dir, "linked": planned["layout"]["linked"], "unlinked": []}
    with open(os.path.join(image_dir, "bridge"), "rb") as handle:
        assert handle.read() == theirs
    for name in done["layout"]["linked"]:
        assert os.readlink(os.path.join(image_dir, name)) == os.path.join(node.versions_dir, "current", name)
        assert sha256_file(os.path.join(image_dir, name)) == sha256_bytes(releases[A].files[name])
    again = ok(run(node, version=A, layout="image", image_dir=image_dir))
    assert again["changed"] is False and again["layout"]["linked"] == []


def test_absent_takes_back_the_layout_links_it_made_and_nothing_else(node, releases):
    image_dir, theirs = image_with_its_own_bridge(node)
    # A link of someone else's that happens to point into /opt/cni: not made by us, so it stays.
    os.symlink("/opt/cni/bin/loopback", os.path.join(image_dir, "loopback"))
    before = snapshot(node.root)
    done = ok(install(node, releases[A], layout="image", image_dir=image_dir))
    assert "loopback" not in done["layout"]["linked"] and "bridge" not in done["layout"]["linked"]

    planned = ok(run(node, state="absent", check_mode=True, diff=True, layout="image", image_dir=image_dir))
    assert planned["changed"] is True and planned["layout"]["unlinked"] == done["layout"]["linked"]
    assert planned["diff"]["before"]["layout_links"] == ["%s/%s" % (image_dir, name) for name in done["layout"]["linked"]]
    assert all(os.path.islink(os.path.join(image_dir, name)) for name in done["layout"]["linked"])

    removed = ok(run(node, state="absent", layout="image", image_dir=image_dir))
    assert removed["layout"]["unlinked"] == done["layout"]["linked"]
    assert sorted(os.listdir(image_dir)) == ["bridge", "loopback"]
    assert os.readlink(os.path.join(image_dir, "loopback")) == "/opt/cni/bin/loopback"
    with open(os.path.join(image_dir, "bridge"), "rb") as handle:
        assert handle.read() == theirs
    assert only_the_lock_remains(node, snapshot(node.root)) == before
    again = ok(run(node, state="absent", layout="image", image_dir=image_dir))
    assert again["changed"] is False and again["layout"]["unlinked"] == []


def test_check_mode_diff_predicts_the_layout_links_of_the_run(node, releases):
    image_dir, _theirs = image_with_its_own_bridge(node)
    first = dict(layout="image", image_dir=image_dir)
    planned = ok(install(node, releases[A], check_mode=True, diff=True, **first))
    done = ok(install(node, releases[A], diff=True, **first))
    linked = ["%s/%s" % (image_dir, name) for name in done["layout"]["linked"]]
    assert planned["diff"] == done["diff"]
    assert done["diff"]["before"]["layout_links"] == [] and done["diff"]["after"]["layout_links"] == linked
    # An upgrade keeps every link (through current): the picture says so before and after.
    upgraded = ok(install(node, releases[B], diff=True, **first))
    assert upgraded["diff"]["before"]["layout_links"] == upgraded["diff"]["after"]["layout_links"] == linked
    # A run that names no layout still shows the links the install made there, left as they are.
    standard = ok(install(node, releases[B], diff=True))
    assert standard["diff"]["before"]["layout_links"] == standard["diff"]["after"]["layout_links"] == linked


def test_the_layout_dir_is_reported_as_named_when_it_resolves_elsewhere(node, releases):
    # k3s's data/current/bin is a symlink: the result names it the same way whether a run links or not,
    # so what the containerd role writes from it does not change between runs.
    image_dir, _theirs = image_with_its_own_bridge(node)
    named = os.path.join(node.root, "current-bin")
    os.symlink(image_dir, named)
    done = ok(install(node, releases[A], layout="image", image_dir=named))
    again = ok(install(node, releases[A], layout="image", image_dir=named))
    assert done["layout"]["linked"] and not again["layout"]["linked"] and again["changed"] is False
    assert done["layout"]["dir"] == again["layout"]["dir"] == named


@pytest.mark.parametrize("absent_layout", [{}, {"layout": "standard"}, {"layout": "auto"}])
def test_absent_takes_back_the_layout_links_whatever_layout_it_is_given(node, releases, absent_layout):
    # The install records the distribution's dir it linked into, so an uninstall with the module's
    # default layout (or auto, which finds no image) leaves no link dangling there.
    image_dir, theirs = image_with_its_own_bridge(node)
    before = snapshot(node.root)
    done = ok(install(node, releases[A], layout="image", image_dir=image_dir))
    linked = ["%s/%s" % (image_dir, name) for name in done["layout"]["linked"]]
    planned = ok(run(node, state="absent", check_mode=True, diff=True, **absent_layout))
    assert planned["diff"]["before"]["layout_links"] == linked and planned["diff"]["after"]["layout_links"] == []
    assert planned["layout"]["dir"] == image_dir and planned["layout"]["unlinked"] == done["layout"]["linked"]
    assert all(os.path.islink(path) for path in linked)
    removed = ok(run(node, state="absent", diff=True, **absent_layout))
    assert removed["diff"] == planned["diff"] and removed["layout"] == planned["layout"]
    assert os.listdir(image_dir) == ["bridge"]
    with open(os.path.join(image_dir, "bridge"), "rb") as handle:
        assert handle.read() == theirs
    assert only_the_lock_remains(node, snapshot(node.root)) == before


def test_a_missing_layout_dir_is_refused_by_check_mode_and_the_run_alike(node, releases):
    image_dir = os.path.join(node.root, "no-such-image-bin")
    before = snapshot(node.root)
    predicted = failed(install(node, releases[A], check_mode=True, layout="image", image_dir=image_dir))
    assert image_dir in predicted and "does not exist" in predicted and "layout" in predicted
    assert failed(install(node, releases[A], layout="image", image_dir=image_dir)) == predicted
    assert snapshot(node.root) == before


# a pushed tarball: verified on the node, moved into the cache -------------------------------------

def push_install(node, release, src, check_mode=False, **extra):
    return run_module_in_process(cni_install, node.args(src=str(src), version=release.version, **extra), check_mode=check_mode)


def pushed(tmp_path, release, where="upload"):
    """A copy of *release*'s tarball in a directory of its own, as the action pushes it."""
    upload = tmp_path / where
    upload.mkdir()
    copy = upload / os.path.basename(release.path)
    copy.write_bytes(open(release.path, "rb").read())
    return upload, copy


def test_pushed_tarball_is_verified_moved_into_the_cache_and_its_task_dir_removed(node, releases, tmp_path):
    release = releases[A]
    upload, copy = pushed(tmp_path, release)
    cache = tmp_path / "node-cache" / "cni"
    args = node.args(src=str(copy), version=A, checksum="sha256:" + sha256_file(release.path), src_cache_dir=str(cache))
    # The task's own temporary directory, as Ansible hands it to the module.
    result = ok(run_module_in_process(cni_install, dict(args, _ansible_tmpdir=str(upload))))
    cached = cache / os.path.basename(release.path)
    assert result["src"] == str(cached) and result["installed"] is True
    assert sha256_file(cached) == sha256_file(release.path) and oct(cached.stat().st_mode & 0o777) == "0o644"
    assert not upload.exists(), "the emptied task directory should be gone"
    assert_links_resolve_into(node, release)
    manifest = json.loads(open(os.path.join(node.version_dir(A), MANIFEST_NAME)).read())
    assert manifest["tarball_sha256"] == sha256_file(release.path)


def test_pushed_tarball_outside_the_task_dir_leaves_that_dir(node, releases, tmp_path):
    release = releases[A]
    upload, copy = pushed(tmp_path, release)
    cache = tmp_path / "cache"
    ok(push_install(node, release, str(copy), checksum="sha256:" + sha256_file(release.path), src_cache_dir=str(cache)))
    assert upload.is_dir() and os.listdir(upload) == [] and (cache / copy.name).is_file()


def test_a_pushed_tarball_that_differs_from_its_checksum_is_refused_before_any_read(node, releases, tmp_path):
    release, other = releases[A], releases[B]
    upload, copy = pushed(tmp_path, release)
    copy.write_bytes(open(other.path, "rb").read())  # a valid archive, but not the one the controller verified
    cache = tmp_path / "cache"
    before = snapshot(node.root)
    msg = failed(push_install(node, release, str(copy), checksum="sha256:" + sha256_file(release.path), src_cache_dir=str(cache)))
    assert "src %s has sha256 %s, not the %s the checksum option names" % (copy, sha256_file(other.path), sha256_file(release.path)) in msg
    assert snapshot(node.root) == before and not os.listdir(cache) and copy.is_file()


def test_a_copy_across_filesystems_is_hashed_while_written_and_a_bad_one_leaves_no_temp(node, releases, tmp_path):
    """/dev/shm is a tmpfs: the cache is on another filesystem, so the tarball is copied, not renamed."""
    release = releases[A]
    if os.stat("/dev/shm").st_dev == os.stat(str(tmp_path)).st_dev:
        pytest.fail("/dev/shm and %s share a filesystem; the test needs two" % tmp_path)
    shm = tempfile.mkdtemp(dir="/dev/shm")
    try:
        copy = os.path.join(shm, os.path.basename(release.path))
        with open(copy, "wb") as handle:
            handle.write(open(release.path, "rb").read()[:-1] + b"\x01")  # torn in transfer
        cache = tmp_path / "cache"
        msg = failed(push_install(node, release, copy, checksum="sha256:" + sha256_file(release.path), src_cache_dir=str(cache)))
        assert "not the %s the checksum option names" % sha256_file(release.path) in msg
        assert os.listdir(cache) == [] and not os.path.exists(node.versions_dir + "/v" + A)
        with open(copy, "wb") as handle:
            handle.write(open(release.path, "rb").read())
        result = ok(push_install(node, release, copy, checksum="sha256:" + sha256_file(release.path), src_cache_dir=str(cache)))
        assert result["src"] == str(cache / os.path.basename(release.path)) and not os.path.exists(copy)
        assert os.listdir(cache) == [os.path.basename(release.path)]
        assert_links_resolve_into(node, release)
    finally:
        shutil.rmtree(shm, ignore_errors=True)


def test_check_mode_verifies_src_where_it_is_and_moves_nothing(node, releases, tmp_path):
    release = releases[A]
    upload, copy = pushed(tmp_path, release)
    cache = tmp_path / "cache"
    before = snapshot(node.root)
    result = ok(push_install(node, release, str(copy), check_mode=True, checksum="sha256:" + sha256_file(release.path),
                             src_cache_dir=str(cache)))
    assert result["changed"] is True and result["src"] == str(copy)
    assert snapshot(node.root) == before and copy.is_file() and not cache.exists()
    wrong = "sha256:" + "0" * 64
    assert "not the %s the checksum option names" % ("0" * 64) in failed(push_install(node, release, str(copy), check_mode=True, checksum=wrong))


def test_cache_dir_needs_a_checksum(node, releases, tmp_path):
    release = releases[A]
    msg = failed(install(node, release, src_cache_dir=str(tmp_path / "cache")))
    assert "src_cache_dir" in msg and "checksum" in msg and not (tmp_path / "cache").exists()


def test_an_unusable_cache_dir_is_named_with_its_role_variable_and_nothing_is_installed(node, releases, tmp_path):
    release = releases[A]
    upload, copy = pushed(tmp_path, release)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache should be\n")
    before = snapshot(node.root)
    msg = failed(push_install(node, release, str(copy), checksum="sha256:" + sha256_file(release.path),
                              src_cache_dir=str(blocker / "cni")))
    assert msg.startswith("cannot move the release into src_cache_dir %s (role: cni_plugins_node_cache_dir): " % (blocker / "cni")), msg
    assert snapshot(node.root) == before and copy.is_file()
