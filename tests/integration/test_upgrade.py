"""playbooks/upgrade.yml on a fleet of test-bed nodes: batches, a failing node, rollback, re-run.

CI runs 6 nodes in batches of 2 with one node of batch 2 failing; NODEPREP_UPGRADE_NODES=20 runs the
full fleet in batches of 5 with two failing nodes in batch 2 (the benchmark run). The fault is a
noexec bind mount over the node's versions dir: the new release's plugins cannot run there.
"""
from __future__ import annotations

import json
import os
import time

from testbed_lib.tree import resolved_links, snapshot

UPGRADE = "playbooks/upgrade.yml"
A, B = "9.0.0", "9.1.0"
FLEET = int(os.environ.get("NODEPREP_UPGRADE_NODES", "6"))
BATCH = 2 if FLEET <= 6 else 5
# Nodes of the second batch made to fail: one in CI, two in the full run.
FAILING = [BATCH + 1] if FLEET <= 6 else [BATCH + 2, BATCH + 4]


def names() -> list[str]:
    return ["up-%02d" % index for index in range(1, FLEET + 1)]


def current(node) -> str:
    return os.readlink(node.path("/opt/cni/versions/current"))[1:]


def assert_on(node, version, plugins):
    assert current(node) == version, node.name
    links = resolved_links(node)
    for plugin in plugins:
        assert links[plugin] == "/opt/cni/versions/v%s/%s" % (version, plugin), (node.name, plugin)


def timed(run_playbook, label, timings, *args, **kwargs):
    started = time.monotonic()
    result = run_playbook(*args, **kwargs)
    timings[label] = round(time.monotonic() - started, 1)
    return result


def summary_lines(result) -> list[str]:
    shown = [t.result.get("msg") for t in result.task_results("Show the upgrade summary")]
    assert shown, result.describe()
    return shown[-1]


def test_rolling_upgrade_rolls_back_a_failed_batch_and_continues(node, mirror, inventory, run_playbook, role_vars, tmp_path):
    timings: dict = {}
    started = time.monotonic()
    fleet = [node(name) for name in names()]
    timings["boot %d nodes" % FLEET] = round(time.monotonic() - started, 1)
    by_name = {n.name: n for n in fleet}
    inv = inventory(fleet)
    plugins = mirror.releases[A].plugins
    reports = tmp_path / "reports"
    common = {"nodeprep_report_dir": str(reports), "nodeprep_upgrade_cni_add": True}

    first = timed(run_playbook, "install A on all, one batch", timings, UPGRADE, inv,
                  extra_vars=dict(role_vars(A), **dict(common, nodeprep_upgrade_batch="100%", nodeprep_upgrade_cni_add=False)))
    assert first.rc == 0, first.describe()
    for member in fleet:
        assert_on(member, A, plugins)

    batches = [names()[i:i + BATCH] for i in range(0, FLEET, BATCH)]
    failing = [names()[index - 1] for index in FAILING]
    for name in failing:
        by_name[name].run("mount --bind /opt/cni/versions /opt/cni/versions"
                          " && mount -o remount,bind,noexec /opt/cni/versions")
    untouched = {name: snapshot(by_name[name].path("/opt")) for batch in batches[2:] for name in batch}

    upgrade = timed(run_playbook, "upgrade to B, batch 2 fails", timings, UPGRADE, inv,
                    extra_vars=dict(role_vars(B), nodeprep_upgrade_batch=BATCH, **common))
    assert upgrade.rc != 0, upgrade.describe()
    for name in batches[0]:
        assert_on(by_name[name], B, plugins)
    for name in batches[1]:
        assert_on(by_name[name], A, plugins)
    for name, before in untouched.items():
        assert snapshot(by_name[name].path("/opt")) == before, name
    summary = json.loads((reports / "upgrade-summary.json").read_text())
    assert summary["stopped"] is True
    assert summary["moved"] == batches[0]
    assert sorted(summary["rolled_back"]) == batches[1]
    assert summary["returned_to"] == {name: A for name in batches[1]}
    assert summary["not_reached"] == [name for batch in batches[2:] for name in batch]
    for name in batches[1]:
        why = summary["rolled_back"][name]
        assert ("noexec" in why) if name in failing else why.startswith("its batch failed"), (name, why)
    lines = summary_lines(upgrade)
    assert lines[0] == "upgrade to %s: STOPPED, batch rolled back" % B
    assert lines[1] == "moved: " + ", ".join(batches[0])
    print("\n".join(lines))

    for name in failing:
        by_name[name].run("umount /opt/cni/versions")
    rerun = timed(run_playbook, "re-run after the fix", timings, UPGRADE, inv,
                  extra_vars=dict(role_vars(B), nodeprep_upgrade_batch=BATCH, **common))
    assert rerun.rc == 0, rerun.describe()
    for member in fleet:
        assert_on(member, B, plugins)
    summary = json.loads((reports / "upgrade-summary.json").read_text())
    assert summary["stopped"] is False and summary["rolled_back"] == {} and summary["not_reached"] == []
    assert summary["already"] == batches[0]
    assert summary["moved"] == [name for batch in batches[1:] for name in batch]
    for name in batches[0]:
        assert rerun.changed(name) == 0, rerun.describe()
    lines = summary_lines(rerun)
    assert lines[0] == "upgrade to %s: complete" % B
    print("\n".join(lines))
    print("timings (s):", json.dumps(timings))
