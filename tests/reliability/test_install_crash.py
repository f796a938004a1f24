"""kill -9 of cni_install at random moments of install, upgrade, rollback and absent, and at
every one of its filesystem changes (deterministic kill points, with a second kill inside the
recovery that follows).

After every kill: `current` names a complete version, every link resolves to a runnable plugin
or is what was there before, no user file is lost; the next run settles the node, reports
`changed` honestly, and a run after that is a no-op. The seed is printed; set
NODEPREP_CRASH_SEED to replay a run, NODEPREP_CRASH_KILLS to change the number of kills.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import time
from pathlib import Path

import pytest

from tests.reliability import install_support as support
from tests.reliability.node_module import Running, run_cut, run_module_on_node
from testbed_lib.releases import dir_member, file_member, pack, write_release

KILLS = int(os.environ.get("NODEPREP_CRASH_KILLS", "52"))
SEED = int(os.environ.get("NODEPREP_CRASH_SEED", str(random.SystemRandom().randrange(1 << 30))))
STEPS = ("install", "upgrade", "rollback", "absent")


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash-releases")
    return {v: support.build(root, v) for v in ("9.0.0", "9.1.0")}


def _step_args(node, releases, step):
    if step == "install":
        return support.args(src=support.place(node, releases["9.0.0"]), version="9.0.0")
    if step == "upgrade":
        return support.args(src=support.place(node, releases["9.1.0"]), version="9.1.0")
    if step == "rollback":
        return support.args(state="rollback")
    return support.args(state="absent")


def _prepare(node, releases, step, user_files):
    """The node as each step finds it."""
    support.put_strays(node)
    support.protect_strays(node, user_files)
    originals = support.picture(node)
    if step == "install":
        return originals
    done = run_module_on_node(node, "cni_install", _step_args(node, releases, "install"))
    assert done["rc"] == 0, done
    if step in ("rollback", "absent"):
        done = run_module_on_node(node, "cni_install", _step_args(node, releases, "upgrade"))
        assert done["rc"] == 0, done
    return originals


def test_kill9_at_random_points_never_loses_or_tears(node, releases, user_files, tmp_path):
    print("crash seed: %d (NODEPREP_CRASH_SEED=%d replays it), %d kills" % (SEED, SEED, KILLS))
    rng = random.Random(SEED)
    booted = node("crash")
    for step in releases.values():
        support.place(booted, step)
    kills_per_step = {step: KILLS // len(STEPS) + (1 if i < KILLS % len(STEPS) else 0) for i, step in enumerate(STEPS)}
    tally = {"kills": 0, "cut_mid_run": 0}
    for step in STEPS:
        saved = tmp_path / step
        support.restore_tree(booted, tmp_path / "empty")
        originals = _prepare(booted, releases, step, user_files)
        support.save_tree(booted, saved)
        start = support.picture(booted)
        began = time.monotonic()
        reference = run_module_on_node(booted, "cni_install", _step_args(booted, releases, step))
        duration = time.monotonic() - began
        assert reference["rc"] == 0 and reference["changed"], reference
        expected = support.picture(booted)
        for round_ in range(kills_per_step[step]):
            support.restore_tree(booted, saved)
            running = Running(booted, "cni_install", _step_args(booted, releases, step))
            time.sleep(rng.uniform(0.05, duration * 1.1))
            finished = running.proc.poll() is not None
            running.kill9()
            tally["kills"] += 1
            tally["cut_mid_run"] += int(not finished)
            after_kill = support.picture(booted)
            where = "%s round %d (seed %d)" % (step, round_, SEED)
            assert support.invariant_problems(booted, start, originals) == [], where
            assert user_files.lost() == 0, where

            settled = run_module_on_node(booted, "cni_install", _step_args(booted, releases, step))
            assert settled["rc"] == 0, (where, settled.get("msg"))
            assert support.picture(booted) == expected, where
            assert settled["changed"] == (after_kill != expected), (where, settled["actions"])
            again = run_module_on_node(booted, "cni_install", _step_args(booted, releases, step))
            assert again["rc"] == 0 and again["changed"] is False, (where, again.get("actions"))
            assert user_files.lost() == 0, where
    print("crash figures: %(kills)d kills, %(cut_mid_run)d while the module was still running" % tally)
    assert tally["kills"] == KILLS
    # Most kills must land inside a run, or the loop proves little.
    assert tally["cut_mid_run"] >= tally["kills"] // 2


# Deterministic kill points --------------------------------------------------------------------------
# Every filesystem change of a run is a kill point: the run is cut right before its 1st, 2nd, ...
# change until one finishes. Where a cut leaves an adoption or a restore half done (the last
# such cut of each), the recovery of the next run is cut at each of its own changes as well
# (a second kill). An fsync
# is no kill point here: a killed process loses nothing that was written, so a cut right after
# one equals a cut right before the next change. After every settle: the node is what an uncut
# run leaves, no temp name of ours is left anywhere, and each of the user's files has exactly
# one name (never a hidden hard link or copy besides). The random kills above check the no-op
# run after a settle.

CUT_PLUGINS = ("bridge", "host-local", "loopback", "portmap")
IMAGE_DIR = "/srv/image-bin"
IMAGE_PORTMAP = b"#!/bin/sh\n# the image's own portmap\n"
CUT_DIRS = support.LINK_DIRS + (IMAGE_DIR,)
CUT_TREES = support.TREES + ("/srv",)
HALF_DONE = ("adopt", "restore")


@pytest.fixture(scope="module")
def small_release(tmp_path_factory):
    """Script plugins, so a tree is cheap to save and restore at every kill point."""
    members = [dir_member("./"), file_member("./LICENSE", b"license text\n", 0o644)]
    members += [file_member("./" + name, support.script("# %s 9.0.0\n%s" % (name, support.VERSION_ANSWER)), 0o755)
                for name in CUT_PLUGINS]
    return write_release(tmp_path_factory.mktemp("cut-release"), "9.0.0", "amd64", pack(members), plugins=list(CUT_PLUGINS))


def _cut_args(node, release, step):
    layout = {"layout": "image", "image_dir": IMAGE_DIR}
    if step == "install":
        return support.args(src=support.place(node, release), version="9.0.0", **layout)
    if step == "absent-recorded":
        # The image dir's links are found through the install's record alone.
        return support.args(state="absent")
    return support.args(state="absent", **layout)


def _user_places(node) -> dict:
    """How many names each of the user's files has anywhere in the trees we touch."""
    wanted = {("file", hashlib.sha256(support.STRAY_BRIDGE).hexdigest()): "bridge",
              ("file", hashlib.sha256(support.CALICO).hexdigest()): "calico",
              ("file", hashlib.sha256(IMAGE_PORTMAP).hexdigest()): "image portmap",
              ("link", "/usr/lib/cni/host-local"): "k3s host-local link"}
    places = dict.fromkeys(wanted.values(), 0)
    for tree in CUT_TREES:
        for directory, _dirs, files in os.walk(node.path(tree)):
            for name in files + [d for d in _dirs if os.path.islink(os.path.join(directory, d))]:
                key = support.picture_entry(Path(directory) / name)
                if key in wanted:
                    places[wanted[key]] += 1
    return places


def _temps(node) -> list:
    return sorted(os.path.join(directory, name) for tree in CUT_TREES
                  for directory, dirs, files in os.walk(node.path(tree)) for name in files + dirs if support.TEMP_NAME.match(name))


def _journal_kinds(node) -> list:
    path = node.path(support.VERSIONS_DIR + "/.journal")
    if not path.exists():
        return []
    return [json.loads(line).get("kind") for line in path.read_text().splitlines() if line.strip().startswith("{")]


def _check_cut(node, start, originals, user_files, where):
    assert support.invariant_problems(node, start, originals, dirs=CUT_DIRS) == [], where
    assert user_files.lost() == 0, where


def _check_settle(node, args, expected, user_files, where):
    settled = run_module_on_node(node, "cni_install", args)
    assert settled["rc"] == 0, (where, settled.get("msg"))
    assert support.picture(node, CUT_DIRS) == expected, where
    assert _temps(node) == [], where
    assert set(_user_places(node).values()) == {1}, (where, _user_places(node))
    assert user_files.lost() == 0, where


@pytest.mark.parametrize("step", ["install", "absent", "absent-recorded"])
def test_kill_at_every_point_and_again_inside_recovery(node, small_release, user_files, cases, tmp_path, step):
    booted = node("cut-" + step)
    support.put_strays(booted)
    support.write(booted, IMAGE_DIR + "/portmap", IMAGE_PORTMAP, 0o755)
    support.protect_strays(booted, user_files)
    user_files.protect(booted, IMAGE_DIR + "/portmap")
    originals = support.picture(booted, CUT_DIRS)
    if step.startswith("absent"):
        assert run_module_on_node(booted, "cni_install", _cut_args(booted, small_release, "install"))["rc"] == 0
    args = _cut_args(booted, small_release, step)
    saved, killed = tmp_path / "saved", tmp_path / "killed"
    support.save_tree(booted, saved, CUT_TREES)
    start = support.picture(booted, CUT_DIRS)
    reference = run_module_on_node(booted, "cni_install", args)
    assert reference["rc"] == 0 and reference["changed"], reference
    expected = support.picture(booted, CUT_DIRS)
    tally = {"points": 0, "second": 0}
    # Cuts that leave an adoption or a restore half done, by journal entry: the last cut point of
    # each (the deepest such state) gets its recovery cut at every change as well.
    half_done = {}
    for point in range(1, 2000):
        support.restore_tree(booted, saved, CUT_TREES)
        cases.tried()
        finished = run_cut(booted, "cni_install", args, point)
        if finished is not None:
            assert finished["rc"] == 0 and support.picture(booted, CUT_DIRS) == expected, (point, finished.get("msg"))
            cases.held()
            break
        tally["points"] += 1
        where = "%s cut at change %d" % (step, point)
        _check_cut(booted, start, originals, user_files, where)
        undos = [kind for kind in _journal_kinds(booted) if kind != "commit"]
        if undos and undos[-1] in HALF_DONE:
            half_done[len(undos)] = point
        _check_settle(booted, args, expected, user_files, where)
        cases.held()
    for point in sorted(half_done.values()):
        where = "%s cut at change %d" % (step, point)
        shutil.rmtree(killed, ignore_errors=True)
        support.restore_tree(booted, saved, CUT_TREES)
        assert run_cut(booted, "cni_install", args, point) is None
        support.save_tree(booted, killed, CUT_TREES)
        for second in range(1, 500):
            support.restore_tree(booted, killed, CUT_TREES)
            cases.tried()
            again = "%s, its recovery cut at change %d" % (where, second)
            if run_cut(booted, "cni_install", args, second, scope="recovery") is not None:
                _check_settle(booted, args, expected, user_files, again)
                cases.held()
                break
            tally["second"] += 1
            _check_cut(booted, start, originals, user_files, again)
            _check_settle(booted, args, expected, user_files, again)
            cases.held()
    print("kill points of %s: %d in the run, %d more inside recoveries" % (step, tally["points"], tally["second"]))
    assert tally["points"] > 20 and len(half_done) == 2 and tally["second"] > 0
