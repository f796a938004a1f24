"""cni_install's failure, concurrency, check-mode and path defects, each on a real node.

Every case ends with the node's files as promised and no user byte lost.
"""
from __future__ import annotations

import os

import pytest

from tests.reliability import install_support as support
from tests.reliability.node_module import Running, run_module_on_node, wait_for

SLOW = support.script("sleep 3\n" + support.VERSION_ANSWER)
FAILS = support.script("echo 'broken on purpose' >&2\nexit 1")


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    root = tmp_path_factory.mktemp("defect-releases")
    return {
        "9.0.0": support.build(root, "9.0.0"),
        "9.1.0": support.build(root, "9.1.0"),
        "slow": support.build(root, "9.3.0", extra={"zz-slow": SLOW}),
        "fails": support.build(root, "9.4.0", replace={"bridge": FAILS}),
    }


@pytest.fixture(scope="module")
def shared_node(rootfs, tmp_path_factory):
    """One node for the cases that reset /opt and /var/lib/rancher themselves."""
    from testbed_lib.node import BootedNode
    booted = BootedNode("defects", tmp_path_factory.mktemp("node-defects") / "node", rootfs_cache=rootfs)
    booted.start()
    yield booted
    booted.stop()


@pytest.fixture
def clean(shared_node, tmp_path):
    support.restore_tree(shared_node, tmp_path / "nothing")
    shared_node.run("rm -rf /srv/* /var/cache/nodeprep")
    return shared_node


def install(node, release, **extra):
    return run_module_on_node(node, "cni_install", support.args(src=support.place(node, release), version=release.version, **extra))


def ok(result):
    assert result["rc"] == 0, result.get("msg")
    return result


def failed(result):
    assert result["rc"] != 0 and result.get("failed"), result
    return result["msg"]


def lock_inode(node):
    return node.path(support.VERSIONS_DIR + "/.lock").stat().st_ino


# 1. check mode through the role plans exactly the links that change ----------------------------

def test_check_mode_upgrade_through_the_role_plans_no_link_removal(node, mirror, inventory, run_playbook, role_vars):
    booted = node("check-upgrade")
    inv = inventory([booted])
    assert run_playbook("playbooks/site.yml", inv, extra_vars=role_vars("9.0.0")).rc == 0
    before = support.picture(booted)
    checked = run_playbook("playbooks/site.yml", inv, extra_vars=role_vars("9.1.0"), check=True, diff=True)
    assert checked.rc == 0, checked.describe()
    result = next(t.result for t in checked.task_results(host=booted.name)
                  if t.task.endswith("Install the wanted release unless the node has it intact, and link it"))
    assert not [a for a in result["actions"] if a.startswith("remove link")], result["actions"]
    assert "point current at v9.1.0" in result["actions"]
    # Every plugin link goes through `current`, so an upgrade with the same plugins changes none.
    assert result["diff"]["after"]["links"] == result["diff"]["before"]["links"] != {}
    assert result["diff"]["after"]["current"] == "9.1.0"
    assert support.picture(booted) == before


# 2. a failed run never undoes another run's upgrade ---------------------------------------------

def test_a_run_that_waited_and_failed_leaves_the_other_runs_upgrade(clean, releases, user_files):
    ok(install(clean, releases["9.0.0"]))
    support.place(clean, releases["fails"])
    upgrade = Running(clean, "cni_install", support.args(src=support.place(clean, releases["slow"]), version="9.3.0"))
    # The upgrade holds the lock while its slow plugin answers; the failing run waits for it.
    assert wait_for(lambda: any(p.name.startswith(".stage-") for p in clean.path(support.VERSIONS_DIR).iterdir()))
    failing = Running(clean, "cni_install", support.args(src=support.place(clean, releases["fails"]), version="9.4.0"))
    upgraded, refused = upgrade.finish(), failing.finish()
    ok(upgraded)
    assert "bridge" in failed(refused)
    after = support.picture(clean)
    assert (after["current"], after["previous"]) == ("v9.3.0", "v9.0.0")
    assert after["leftovers"] == []
    assert support.invariant_problems(clean, after) == []


# 3. a failure after adopting gives the user's file back ------------------------------------------

def test_a_directory_with_a_plugin_name_is_refused_before_anything_changes(clean, releases, user_files):
    support.put_strays(clean)
    support.protect_strays(clean, user_files)
    clean.path(support.BIN_DIR + "/loopback").mkdir()
    before = support.picture(clean)
    message = failed(install(clean, releases["9.0.0"]))
    assert support.BIN_DIR + "/loopback" in message and "not regular files" in message
    assert support.picture(clean) == before
    assert not clean.path(support.VERSIONS_DIR).exists()
    assert user_files.lost() == 0


def test_a_full_disk_after_adopting_puts_every_adopted_file_back(clean, releases, user_files):
    support.put_strays(clean)
    # A large same-name file in the second link dir: copying it into .adopted fills the disk.
    clean.path(support.K3S_DIR + "/host-local").unlink()
    support.write(clean, support.K3S_DIR + "/host-local", os.urandom(12 * 1024 * 1024), 0o755)
    support.protect_strays(clean, user_files)
    user_files.protect(clean, support.K3S_DIR + "/host-local")
    before = support.picture(clean)
    unpacked = sum(os.path.getsize(os.path.join("/usr/lib/cni", n)) for n in os.listdir("/usr/lib/cni"))
    size_kb = (unpacked + 6 * 1024 * 1024) // 1024
    clean.path(support.VERSIONS_DIR).mkdir(parents=True)
    clean.run("mount -t tmpfs -o size=%dk tmpfs %s" % (size_kb, support.VERSIONS_DIR))
    try:
        message = failed(install(clean, releases["9.0.0"]))
        assert "No space left" in message and "room" in message
        assert support.picture(clean)["entries"] == before["entries"]
        # The tmpfs is mounted in the node's own namespace: look from inside.
        assert clean.run("ls -A %s" % support.VERSIONS_DIR).stdout.split() == [".lock"]
        assert user_files.lost() == 0
    finally:
        clean.run("umount %s" % support.VERSIONS_DIR)


# 4. absent never deletes an adopted copy it could not restore -------------------------------------

def test_absent_keeps_an_adopted_copy_it_cannot_restore(clean, releases, user_files):
    support.put_strays(clean)
    support.protect_strays(clean, user_files)
    ok(install(clean, releases["9.0.0"]))
    # Someone puts a new bridge over our link; the adopted original can no longer go back.
    newer = b"#!/bin/sh\n# a newer bridge from somebody else\n"
    clean.path(support.BIN_DIR + "/bridge").unlink()
    support.write(clean, support.BIN_DIR + "/bridge", newer, 0o755)
    result = ok(run_module_on_node(clean, "cni_install", support.args(state="absent")))
    warnings = " ".join(str(w) for w in result.get("warnings", []))
    assert "not restoring %s/bridge" % support.BIN_DIR in warnings and ".adopted" in warnings
    assert clean.path(support.BIN_DIR + "/bridge").read_bytes() == newer
    assert user_files.lost() == 0  # the original is still under .adopted/, where the warning says
    assert (clean.path(support.VERSIONS_DIR + "/.adopted/index.json")).is_file()


# 5. the lock file is never unlinked ------------------------------------------------------------

def test_the_lock_file_keeps_its_inode_through_success_failure_and_absent(clean, releases):
    ok(install(clean, releases["9.0.0"]))
    inode = lock_inode(clean)
    failed(install(clean, releases["fails"]))
    ok(install(clean, releases["9.1.0"]))
    ok(run_module_on_node(clean, "cni_install", support.args(state="rollback")))
    ok(run_module_on_node(clean, "cni_install", support.args(state="absent")))
    assert lock_inode(clean) == inode


# 6. symlinked directories are canonicalised ------------------------------------------------------

def test_a_link_dir_resolving_into_versions_dir_is_refused(clean, releases):
    ok(install(clean, releases["9.0.0"]))
    clean.run("mkdir -p /srv && ln -s %s/current /srv/cni-view" % support.VERSIONS_DIR)
    before = support.picture(clean)
    message = failed(install(clean, releases["9.1.0"], link_dirs=[support.K3S_DIR, "/srv/cni-view"]))
    assert "/srv/cni-view" in message and "inside versions_dir" in message
    assert support.picture(clean) == before
    assert support.invariant_problems(clean, before) == []


def test_versions_dir_spelled_through_a_symlink_is_one_directory(clean, releases):
    clean.run("mkdir -p /srv/real && ln -s /srv/real /srv/link")
    spelled = {"versions_dir": "/srv/link/versions"}
    first = ok(install(clean, releases["9.0.0"], **spelled))
    assert all(t.startswith("/srv/real/versions/current/") for t in first["links"].values())
    again = ok(install(clean, releases["9.0.0"], versions_dir="/srv/real/versions"))
    assert again["changed"] is False and again["adopted"] == []
    info = ok(run_module_on_node(clean, "cni_info",
                                 {"versions_dir": "/srv/link/versions", "bin_dir": support.BIN_DIR, "link_dirs": [support.K3S_DIR]}))
    statuses = {link["status"] for link in info["links"]}
    assert statuses == {"ok"}, statuses


# 7. a version dir nodeprep did not make is set aside, never emptied ------------------------------

def test_a_version_dir_without_manifest_is_set_aside_and_restored(clean, releases, user_files):
    notes = b"hand-copied plugins, keep me\n"
    support.write(clean, support.VERSIONS_DIR + "/v9.0.0/notes.txt", notes)
    user_files.protect(clean, support.VERSIONS_DIR + "/v9.0.0/notes.txt")
    result = ok(install(clean, releases["9.0.0"]))
    assert result["adopted"] and result["adopted"][0]["original"] == support.VERSIONS_DIR + "/v9.0.0"
    kept = clean.path(result["adopted"][0]["stored"]) / "notes.txt"
    assert kept.read_bytes() == notes
    ok(run_module_on_node(clean, "cni_install", support.args(state="absent")))
    assert clean.path(support.VERSIONS_DIR + "/v9.0.0/notes.txt").read_bytes() == notes
    assert user_files.lost() == 0


# concurrency -------------------------------------------------------------------------------------

@pytest.mark.parametrize("first, second", [("install", "upgrade"), ("install", "absent")])
def test_two_runs_at_once_serialise_without_torn_state(clean, releases, user_files, first, second):
    support.put_strays(clean)
    support.protect_strays(clean, user_files)
    if second == "absent":
        ok(install(clean, releases["9.0.0"]))
    originals = support.picture(clean)
    specs = {
        "install": support.args(src=support.place(clean, releases["9.0.0"]), version="9.0.0"),
        "upgrade": support.args(src=support.place(clean, releases["9.1.0"]), version="9.1.0"),
        "absent": support.args(state="absent"),
    }
    if first == second or second == "absent":
        specs["install"] = support.args(src=support.place(clean, releases["9.1.0"]), version="9.1.0")
    runs = [Running(clean, "cni_install", specs[first]), Running(clean, "cni_install", specs[second])]
    results = [run.finish() for run in runs]
    for result in results:
        ok(result)
    after = support.picture(clean)
    assert after["leftovers"] == []
    assert support.invariant_problems(clean, after, originals) == []
    assert user_files.lost() == 0
    if second == "upgrade":
        assert {after["current"], after["previous"]} == {"v9.0.0", "v9.1.0"}


# filesystem faults ----------------------------------------------------------------------------------

def test_a_read_only_link_dir_fails_only_when_it_needs_a_change(clean, releases):
    ok(install(clean, releases["9.0.0"]))
    clean.run("mount --bind %s %s && mount -o remount,bind,ro %s" % ((support.K3S_DIR,) * 3))
    try:
        # Nothing to change there: the read-only dir is fine.
        assert ok(install(clean, releases["9.0.0"]))["changed"] is False
        before = support.picture(clean)
        message = failed(install(clean, releases["9.1.0"], plugins=["bridge", "loopback"]))
        assert support.K3S_DIR in message and "not writable" in message
        assert support.picture(clean) == before
    finally:
        clean.run("umount %s" % support.K3S_DIR)


def test_a_corrupted_state_file_or_manifest_is_survived(clean, releases, user_files):
    ok(install(clean, releases["9.0.0"]))
    support.write(clean, support.VERSIONS_DIR + "/.nodeprep-state.json", b"{not json")
    rerun = ok(install(clean, releases["9.0.0"]))
    assert rerun["changed"] is True and support.picture(clean)["current"] == "v9.0.0"
    assert ok(install(clean, releases["9.0.0"]))["changed"] is False
    # A garbled manifest makes the version unknown: it is set aside (kept), and reinstalled.
    support.write(clean, support.VERSIONS_DIR + "/v9.0.0/.nodeprep-manifest.json", b"\x00garbage")
    repaired = ok(install(clean, releases["9.0.0"]))
    assert repaired["installed"] is True and repaired["adopted"]
    assert support.invariant_problems(clean, support.picture(clean)) == []
    assert ok(install(clean, releases["9.0.0"]))["changed"] is False


def test_check_mode_predicts_a_failure_the_real_run_would_hit(clean, releases):
    clean.run("mkdir -p /opt/cni && touch %s" % support.VERSIONS_DIR)
    before = support.picture(clean)
    args = support.args(src=support.place(clean, releases["9.0.0"]), version="9.0.0")
    checked = run_module_on_node(clean, "cni_install", args, check_mode=True)
    assert "is not a directory" in failed(checked)
    assert support.picture(clean) == before


def test_a_read_only_distribution_dir_is_refused_by_the_plan_and_predicted_by_check_mode(clean, releases):
    image = "/srv/image-bin"
    clean.run("mkdir -p {0} && mount --bind {0} {0} && mount -o remount,bind,ro {0}".format(image))
    try:
        args = support.args(src=support.place(clean, releases["9.0.0"]), version="9.0.0", layout="image", image_dir=image)
        before = support.picture(clean)
        predicted = failed(run_module_on_node(clean, "cni_install", args, check_mode=True))
        assert image in predicted and "not writable" in predicted
        # Refused before any change, the same way on every re-run; never claims an undo.
        for _attempt in range(2):
            message = failed(run_module_on_node(clean, "cni_install", args))
            assert message == predicted and "undone" not in message
            assert support.picture(clean) == before
            assert not clean.path(support.VERSIONS_DIR).exists()
        # The fix the message names works.
        assert ok(run_module_on_node(clean, "cni_install", dict(args, layout="standard")))["version"] == "9.0.0"
    finally:
        clean.run("umount %s" % image)


# 8. cni_install called on its own finds the distribution's dir as the role does ------------------

def test_an_ad_hoc_absent_on_a_k3s_node_leaves_no_link_into_versions_dir(clean, releases):
    """The role installs with layout auto; an ad-hoc `state: absent` that names no layout must take
    back the links made in k3s's static dir too, not leave them dangling once versions_dir is gone."""
    clean.run("mkdir -p /var/lib/rancher/k3s/agent %s && ln -s /usr/lib/cni/host-local %s/host-local"
              % (support.K3S_DIR, support.K3S_DIR))
    k3s_before = support.picture(clean, dirs=(support.K3S_DIR,))["entries"]
    installed = ok(install(clean, releases["9.0.0"], link_dirs=[], layout="auto"))
    assert installed["layout"]["name"] == "k3s" and installed["layout"]["dir"] == support.K3S_DIR
    linked = set(installed["layout"]["linked"])
    assert linked and "host-local" not in linked
    for name in linked:
        assert os.readlink(clean.path(support.K3S_DIR) / name) == support.VERSIONS_DIR + "/current/" + name

    removed = ok(run_module_on_node(clean, "cni_install", {"state": "absent", "versions_dir": support.VERSIONS_DIR,
                                                           "bin_dir": support.BIN_DIR}))
    assert removed["layout"]["name"] == "k3s" and set(removed["layout"]["unlinked"]) == linked
    left = {}
    for entry in clean.path(support.K3S_DIR).iterdir():
        target = os.readlink(entry) if entry.is_symlink() else None
        assert not (target or "").startswith(support.VERSIONS_DIR), (entry.name, target)
        assert entry.exists(), "dangling link %s -> %s" % (entry, target)
        left[entry.name] = target
    # k3s's own link is as it was; nothing else is left there.
    assert left == {"host-local": "/usr/lib/cni/host-local"}
    assert support.picture(clean, dirs=(support.K3S_DIR,))["entries"] == k3s_before
