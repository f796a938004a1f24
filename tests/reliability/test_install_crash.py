"""kill -9 of cni_install at random moments of install, upgrade, rollback and absent.

After every kill: `current` names a complete version, every link resolves to a runnable plugin
or is what was there before, no user file is lost; the next run settles the node, reports
`changed` honestly, and a run after that is a no-op. The seed is printed; set
NODEPREP_CRASH_SEED to replay a run, NODEPREP_CRASH_KILLS to change the number of kills.
"""
from __future__ import annotations

import os
import random
import time

import pytest

from tests.reliability import install_support as support
from tests.reliability.node_module import Running, run_module

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
    done = run_module(node, "cni_install", _step_args(node, releases, "install"))
    assert done["rc"] == 0, done
    if step in ("rollback", "absent"):
        done = run_module(node, "cni_install", _step_args(node, releases, "upgrade"))
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
        reference = run_module(booted, "cni_install", _step_args(booted, releases, step))
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

            settled = run_module(booted, "cni_install", _step_args(booted, releases, step))
            assert settled["rc"] == 0, (where, settled.get("msg"))
            assert support.picture(booted) == expected, where
            assert settled["changed"] == (after_kill != expected), (where, settled["actions"])
            again = run_module(booted, "cni_install", _step_args(booted, releases, step))
            assert again["rc"] == 0 and again["changed"] is False, (where, again.get("actions"))
            assert user_files.lost() == 0, where
    print("crash figures: %(kills)d kills, %(cut_mid_run)d while the module was still running" % tally)
    assert tally["kills"] == KILLS
    # Most kills must land inside a run, or the loop proves little.
    assert tally["cut_mid_run"] >= tally["kills"] // 2
