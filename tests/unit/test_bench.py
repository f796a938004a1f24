"""The bench's arithmetic and accounting: cgroup and /proc parsers, the per-node split, the projection,
and how a run that fails is reported and done again.

The parsers read the kernel's own files where the machine has them; the accounting test runs real
processes in a real cgroup (the bench needs root and cgroup v2 as well).
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench import accounting, compare, project

NEEDS_CGROUPS = pytest.mark.skipif(os.geteuid() != 0 or accounting.cgroup2_root() is None,
                                   reason="the bench (and this test) needs root and a cgroup v2 hierarchy")

CPU_STAT = """usage_usec 1500000
user_usec 1200000
system_usec 300000
nice_usec 0
"""

SMAPS_ROLLUP = """55d7c1a0e000-7ffc5b7fe000 ---p 00000000 00:00 0                          [rollup]
Rss:               10240 kB
Pss:                4096 kB
Pss_Anon:           2048 kB
Shared_Clean:       6144 kB
"""


def test_cpu_stat_gives_user_and_system_seconds():
    assert accounting.parse_cpu_stat(CPU_STAT) == (1.2, 0.3)


def test_cpu_stat_without_user_time_is_refused():
    with pytest.raises(ValueError, match="user_usec"):
        accounting.parse_cpu_stat("usage_usec 5\nsystem_usec 5\n")


def test_smaps_rollup_gives_rss_and_pss_in_bytes():
    # Pss_Anon must not be taken for Pss.
    assert accounting.parse_smaps_rollup(SMAPS_ROLLUP) == (10240 * 1024, 4096 * 1024)


def test_smaps_rollup_of_this_process():
    rss, pss = accounting.parse_smaps_rollup(Path("/proc/self/smaps_rollup").read_text())
    assert 0 < pss <= rss


def test_smaps_rollup_without_pss_is_refused():
    with pytest.raises(ValueError, match="Rss and Pss"):
        accounting.parse_smaps_rollup("Rss: 4 kB\n")


@NEEDS_CGROUPS
def test_a_run_counts_its_whole_tree_and_ends_what_it_left_behind():
    costs = accounting.Accounting(interval=0.05)
    try:
        # A child that burns CPU, and a daemonised grandchild that outlives the run (like an SSH
        # ControlPersist master): both are the run's.
        script = ("import os, subprocess, time\n"
                  "subprocess.Popen(['sleep', '300'], start_new_session=True)\n"
                  "end = time.process_time() + 0.4\n"
                  "while time.process_time() < end: pass\n")
        with costs.measured() as run:
            subprocess.run(costs.command(run.cgroup, [sys.executable, "-c", script]), check=True)
        cost, cgroup = run.cost, run.cgroup
    finally:
        costs.close()
    assert cost.cpu >= 0.4
    assert cost.leftovers == 1
    assert cost.peak_pss > 0 and cost.peak_rss >= cost.peak_pss
    assert not cgroup.path.exists()
    assert not costs.base.exists()


@NEEDS_CGROUPS
def test_node_side_work_is_not_charged_to_the_run():
    costs = accounting.Accounting(interval=0.05)
    try:
        busy = "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass\n"
        with costs.measured() as run:
            # The connection wrapper's first line, then the module's work.
            subprocess.run(costs.command(run.cgroup, ["sh", "-c", '%s; exec "$0" -c "$1"' % costs.wrapper_line(),
                                                      sys.executable, busy]), check=True)
        cost = run.cost
        node_cpu = costs.node_cpu()
    finally:
        costs.close()
    assert node_cpu >= 0.4
    assert cost.cpu < 0.1


def test_fit_splits_a_line_into_per_job_and_per_node():
    per_job, per_node = project.fit([(1, 3.0), (20, 22.0), (100, 102.0)])
    assert math.isclose(per_job, 2.0) and math.isclose(per_node, 1.0)


def test_fit_of_one_size_is_all_per_node():
    assert project.fit([(50, 25.0)]) == (0.0, 0.5)


def test_fit_needs_figures():
    with pytest.raises(ValueError):
        project.fit([])


def test_a_falling_line_from_two_sizes_is_clamped_to_nothing_per_node():
    # 1 and 2 nodes (the smoke run): noise made the larger fleet cheaper.
    assert project.line([(1, 2.0), (2, 1.6)]) == pytest.approx((2.4, -0.4))
    assert project.fit([(1, 2.0), (2, 1.6)]) == pytest.approx((1.8, 0.0))
    projected = project.project({"first": {"ours": {"cpu": list(project.fit([(1, 2.0), (2, 1.6)])), "peak_pss": [0.0, 0.0]}}},
                                TABLE, "first", "ours", project.Fleet(nodes=1000, slices=1))
    assert projected["controller_cpu"] == pytest.approx(1.8)


def test_a_clamped_figure_is_named_in_the_report():
    table = dict(TABLE, **{"rerun/11": dict(TABLE["rerun/11"], ours=row(5.0, 0.8, 150e6, 0))})
    costs = project.controller_costs(table)
    assert costs["rerun"]["ours"]["cpu"] == pytest.approx([0.9, 0.0])
    assert costs["rerun"]["ours"]["clamped"] == ["cpu"]
    assert "clamped" not in costs["first"]["ours"]
    text = project.report({"transports": {"local": {"table": table, "controller": costs}}, "tarball_bytes": {"9.0.0": 10e6}},
                          project.Fleet())
    assert "clamped to 0 per node" in text and "rerun ours cpu" in text


def row(wall, cpu, pss, fetched):
    return {"wall": wall, "cpu": cpu, "peak_pss": pss, "bytes": fetched}


TABLE = {
    "floor/1": {"floor": row(2.0, 0.7, 80e6, 0)},
    # The common approach: every node downloads (10 MB each); ours: one download per job.
    "first/1": {"baseline": row(6.0, 1.5, 90e6, 10e6), "ours": row(4.0, 1.4, 100e6, 10e6)},
    "first/11": {"baseline": row(26.0, 3.5, 190e6, 110e6), "ours": row(9.0, 2.4, 150e6, 10e6)},
    "rerun/1": {"baseline": row(5.0, 1.3, 90e6, 100), "ours": row(2.5, 1.0, 100e6, 0)},
    "rerun/11": {"baseline": row(20.0, 2.3, 190e6, 1100), "ours": row(5.0, 1.5, 150e6, 0)},
    "upgrade/11": {"baseline": row(27.0, 4.6, 190e6, 110e6), "ours": row(10.0, 3.4, 150e6, 10e6)},
}


def test_controller_costs_per_job_and_per_node():
    costs = project.controller_costs(TABLE)
    assert costs["first"]["baseline"]["cpu"] == pytest.approx([1.3, 0.2])
    assert costs["first"]["ours"]["cpu"] == pytest.approx([1.3, 0.1])
    assert costs["first"]["ours"]["bytes"] == pytest.approx([10e6, 0.0], abs=1e-6)
    assert costs["first"]["baseline"]["bytes"] == pytest.approx([0.0, 10e6], abs=1e-3)
    assert costs["first"]["ours"]["peak_pss"] == pytest.approx([95e6, 5e6])
    assert costs["first"]["ours"]["cpu_per_node_at_largest"] == pytest.approx(2.4 / 11)
    # One fleet size: the first install's per-job part, the rest per node.
    assert costs["upgrade"]["ours"]["cpu"] == pytest.approx([1.3, (3.4 - 1.3) / 11])
    assert "verify" not in costs


def test_projection_of_a_sliced_first_install():
    costs = project.controller_costs(TABLE)
    fleet = project.Fleet(nodes=1000, forks=50, slices=4, upgrade_batch=50, link_bytes_per_second=100e6,
                          mirror_bytes_per_second=10e6)
    found = project.project(costs, TABLE, "first", "ours", fleet, push_bytes=10e6)
    assert found["nodes_per_slice"] == 250
    assert found["controller_cpu"] == pytest.approx(4 * 1.3 + 1000 * 0.1)
    assert found["mirror_bytes"] == pytest.approx(4 * 10e6)
    # Latency: the floor, then 5 rounds of 50 hosts at (4.0 - 2.0) s; CPU: 26.3 s on 12.5 CPUs;
    # link: 250 x 10 MB at 100 MB/s; mirror: one tarball per slice at 10 MB/s.
    assert found["bounds"] == pytest.approx({"latency": 12.0, "cpu": 26.3 / 12.5, "link": 25.0, "mirror": 4.0})
    assert found["bound"] == "link" and found["wall"] == pytest.approx(25.0)
    assert found["memory"] == pytest.approx(95e6 + 50 * 5e6)
    assert found["capacity_memory"] == 50 * 100e6


def test_projection_of_the_common_approach_counts_every_node_at_the_mirror():
    costs = project.controller_costs(TABLE)
    found = project.project(costs, TABLE, "first", "baseline", project.Fleet())
    assert found["mirror_bytes"] == pytest.approx(1000 * 10e6, rel=1e-6)
    assert found["pushed_bytes"] == 0
    assert found["bounds"]["latency"] == pytest.approx(2.0 + 5 * 4.0)
    # Every node's download crosses the mirror's link: 10 GB at 125 MB/s.
    assert found["bounds"]["mirror"] == pytest.approx(80.0, rel=1e-6)
    assert found["bound"] == "mirror"


def test_the_upgrade_is_one_job_in_batches():
    costs = project.controller_costs(TABLE)
    fleet = project.Fleet(nodes=1000, forks=50, slices=4, upgrade_batch=25)
    found = project.project(costs, TABLE, "upgrade", "ours", fleet)
    assert found["slices"] == 1 and found["nodes_per_slice"] == 1000
    assert found["bounds"]["latency"] == pytest.approx(2.0 + 40 * 2.0)


def test_projection_needs_the_floor():
    table = {key: value for key, value in TABLE.items() if key != "floor/1"}
    with pytest.raises(ValueError, match="floor"):
        project.project(project.controller_costs(table), table, "first", "ours", project.Fleet())


def test_report_prints_every_phase_and_approach():
    document = {"tarball_bytes": {"9.0.0": 10e6}, "transports": {"ssh": {"table": TABLE}}}
    text = project.report(document, project.Fleet())
    assert "from the ssh figures" in text
    for phase in ("first", "rerun", "upgrade"):
        assert sum(1 for line in text.splitlines() if line.split()[:1] == [phase]) == 2


def test_one_node_above_the_floor():
    table = {"floor/1": {"floor": {"wall": 2.0}},
             "first/1": {"baseline": {"wall": 6.0}, "ours": {"wall": 3.0}, "ratio": 0.5},
             "rerun/1": {"baseline": {"wall": 4.0}, "ours": {"wall": 2.1}, "ratio": 0.525}}
    found = project.over_floor(table)
    assert found["first"]["ratio"] == pytest.approx(0.25)
    assert found["rerun"]["ratio"] == pytest.approx(0.05)
    assert found["rerun"]["floor"] == 2.0


def test_a_failed_run_names_each_failed_host_its_task_and_message():
    stdout = json.dumps({"plays": [{"tasks": [
        {"task": {"name": "Download"}, "hosts": {"n1": {"failed": True, "msg": "Request failed: timed out"}, "n2": {"changed": True}}},
        {"task": {"name": "Unpack"}, "hosts": {"n3": {"unreachable": True, "msg": "Failed to connect"}}}]}]})
    assert compare.failed_hosts(stdout) == ["n1: Download: Request failed: timed out", "n3: Unpack: Failed to connect"]
    assert compare.failed_hosts("PLAY RECAP (not the json callback)") == []


def test_a_failed_run_is_done_once_more_and_kept_and_a_second_failure_stops_the_bench():
    bed = SimpleNamespace(retried=[])
    attempts = []

    def flaky():
        attempts.append(len(attempts))
        if len(attempts) == 1:
            raise compare.RunFailed("baseline.yml failed on 100 local node(s): n27: Download: timed out")
        return {"first": {"wall": 1.0}}

    assert compare.retried_once(bed, "local round 2: baseline at 100 node(s)", flaky) == {"first": {"wall": 1.0}}
    assert attempts == [0, 1]
    assert bed.retried == [{"what": "local round 2: baseline at 100 node(s)",
                            "error": "baseline.yml failed on 100 local node(s): n27: Download: timed out"}]

    def broken():
        raise compare.RunFailed("ours.yml failed on 1 local node(s): n1: Install: no space left")

    with pytest.raises(compare.RunFailed, match="no space left"):
        compare.retried_once(bed, "local round 1: ours at 1 node(s)", broken)
    assert len(bed.retried) == 2


def test_a_run_that_did_the_wrong_thing_is_not_done_again():
    bed = SimpleNamespace(retried=[])

    def wrong():
        raise compare.BenchError("ours re-run changed 3 nodes; it must change none")

    with pytest.raises(compare.BenchError, match="must change none"):
        compare.retried_once(bed, "local round 1: ours at 20 node(s)", wrong)
    assert not bed.retried


def test_the_figures_so_far_are_kept_in_the_partial_file(tmp_path):
    path = tmp_path / "2026-12-06T140400Z-local-partial.json"
    samples = {"first/1": {"baseline": [{"wall": 6.4, "cpu": 2.8}]}}
    compare.save_partial(path, "local", 2, samples)
    assert json.loads(path.read_text()) == {"transport": "local", "rounds": 2, "samples": samples}
