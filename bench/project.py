"""A large job's cost from the bench's measured figures: wall time, controller CPU and memory, mirror bytes.

The bench (bench/compare.py) measures, per fleet size, the wall time of each playbook run, the CPU
seconds and peak memory of its controller process tree, and what the mirror served. A straight
line through those figures against the node count splits each into a part per job (start-up,
the controller's one download) and a part per node (per fork, for memory, since forks = nodes in
the bench). A job of N nodes at F forks, cut into S slices (AWX job slicing: S jobs of N/S nodes,
each on its own execution node, at once), then costs:

  controller CPU   S x per-job + N x per-node           (CPU seconds, whole job)
  memory           per-job + per-fork x min(F, N/S)      (peak, one execution node)
  mirror bytes     S x per-job + N x per-node
  wall time        the largest of three bounds, per slice:
                   latency  floor + ceil((N/S) / F) x (1-node wall - floor)   (hosts F at a time)
                   CPU      slice CPU / (F x CPU per fork)                    (AAP's capacity)
                   link     bytes the controller sends to the nodes / link rate
                   mirror   bytes the mirror serves to the whole job / mirror rate

The 1-node wall above the floor (one ping play on the same node) is what one host adds to a play;
AAP sizes an execution node's capacity at about 0.25 CPU and 100 MB per fork, which is what the CPU
bound assumes and what the memory figure is compared with. The controller sends ours' tarball to every
node, so the link bound counts it (also when the figures come from the test bed's local connection); the common approach's nodes fetch from the mirror
instead, which the mirror bound counts (all slices share the mirror). An upgrade is one job (never sliced) moving at most
``upgrade_batch`` nodes at a time.

Usage: .venv/bin/python bench/project.py [--results bench/results/latest.json] [--transport ssh]
           [--nodes 1000] [--forks 50] [--slices 4] [--upgrade-batch 50] [--link-mbit 1000] [--mirror-mbit 1000]
"""
from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

PHASES = ("first", "rerun", "verify", "upgrade")
SLICED = ("first", "rerun", "verify")
APPROACHES = ("baseline", "ours")
# AAP's execution capacity per fork (its docs: about 0.25 CPU and 100 MB of memory per fork).
AAP_CPU_PER_FORK = 0.25
AAP_MEMORY_PER_FORK = 100e6


@dataclass(frozen=True)
class Fleet:
    nodes: int = 1000
    forks: int = 50
    slices: int = 4
    upgrade_batch: int = 50
    link_bytes_per_second: float = 1000e6 / 8
    mirror_bytes_per_second: float = 1000e6 / 8
    cpu_per_fork: float = AAP_CPU_PER_FORK
    memory_per_fork: float = AAP_MEMORY_PER_FORK


def fit(points: list) -> tuple[float, float]:
    """(per job, per node): the least-squares line through (nodes, value) points; one point is all per node.

    A falling line is clamped: no figure the bench measures shrinks as nodes are added, so a negative
    slope (noise between two close sizes, as in the smoke run's 1 and 2 nodes) becomes 0 per node and
    the mean per job. Projected to 1,000 nodes, the raw line would give a negative cost."""
    job, node = line(points)
    if node < 0:
        return sum(v for _n, v in points) / len(points), 0.0
    return job, node


def line(points: list) -> tuple[float, float]:
    """The least-squares line itself, unclamped: (intercept, slope)."""
    points = sorted(points)
    if not points:
        raise ValueError("no figures to fit")
    if len({n for n, _v in points}) == 1:
        return 0.0, sum(v for _n, v in points) / sum(n for n, _v in points)
    count = len(points)
    mean_n = sum(n for n, _v in points) / count
    mean_v = sum(v for _n, v in points) / count
    slope = sum((n - mean_n) * (v - mean_v) for n, v in points) / sum((n - mean_n) ** 2 for n, _v in points)
    return mean_v - slope * mean_n, slope


def _points(table: dict, phase: str, approach: str, key: str) -> list:
    return [(int(scenario.split("/")[1]), row[approach][key]) for scenario, row in table.items()
            if scenario.split("/")[0] == phase and approach in row]


def _split(table: dict, phase: str, approach: str, key: str, reference: tuple | None = None) -> tuple | None:
    points = _points(table, phase, approach, key)
    if not points:
        return None
    if len(points) == 1 and reference is not None:
        # One fleet size (the upgrade): the per-job part of the first install, the rest per node.
        count, value = points[0]
        return reference[0], max(value - reference[0], 0.0) / count
    return fit(points)


def controller_costs(table: dict) -> dict:
    """Per phase and approach: per-job and per-node CPU seconds, peak memory, mirror bytes, wall
    seconds, and the CPU per node at the largest fleet measured."""
    found: dict = {}
    for phase in PHASES:
        for approach in APPROACHES:
            figures = {}
            for key in ("cpu", "peak_pss", "bytes", "wall"):
                reference = found.get("first", {}).get(approach, {}).get(key) if phase == "upgrade" else None
                split = _split(table, phase, approach, key, tuple(reference) if reference else None)
                if split is not None:
                    figures[key] = list(split)
                    points = _points(table, phase, approach, key)
                    if len(points) > 1 and line(points)[1] < 0:
                        figures.setdefault("clamped", []).append(key)
            if not figures:
                continue
            largest = max(int(s.split("/")[1]) for s, row in table.items() if s.split("/")[0] == phase and approach in row)
            figures["largest"] = largest
            figures["cpu_per_node_at_largest"] = table["%s/%d" % (phase, largest)][approach]["cpu"] / largest
            found.setdefault(phase, {})[approach] = figures
    return found


def host_latency(table: dict, phase: str, approach: str) -> tuple[float, float]:
    """(start-up, seconds one host adds): the floor, and the 1-node wall above it."""
    floor = table.get("floor/1", {}).get("floor", {}).get("wall")
    one = table.get("%s/1" % ("first" if phase == "upgrade" else phase), {}).get(approach, {}).get("wall")
    if floor is None or one is None:
        raise ValueError("the projection needs the 1-node figures and the floor: run the bench with size 1")
    return floor, max(one - floor, 0.0)


def over_floor(table: dict) -> dict:
    """The 1-node figures above the floor (one ping play on the same node): ours / baseline."""
    floor = table.get("floor/1", {}).get("floor")
    found = {}
    for phase in ("first", "rerun"):
        row = table.get("%s/1" % phase)
        if floor and row and "ratio" in row:
            above = {approach: row[approach]["wall"] - floor["wall"] for approach in APPROACHES}
            found[phase] = dict(above, floor=floor["wall"],
                                ratio=above["ours"] / above["baseline"] if above["baseline"] > 0 else None)
    return found


def project(costs: dict, table: dict, phase: str, approach: str, fleet: Fleet, push_bytes: float = 0.0) -> dict:
    """One job of ``fleet.nodes`` nodes. ``push_bytes``: what the controller sends to each node."""
    figures = costs[phase][approach]
    slices = fleet.slices if phase in SLICED else 1
    per_slice = math.ceil(fleet.nodes / slices)
    at_once = fleet.forks if phase in SLICED else min(fleet.forks, fleet.upgrade_batch)
    cpu_job, cpu_node = figures["cpu"]
    memory_job, memory_fork = figures["peak_pss"]
    bytes_job, bytes_node = figures.get("bytes", (0.0, 0.0))
    start, per_host = host_latency(table, phase, approach)
    slice_cpu = cpu_job + cpu_node * per_slice
    mirror_bytes = max(slices * bytes_job + fleet.nodes * bytes_node, 0.0)
    bounds = {
        "latency": start + math.ceil(per_slice / at_once) * per_host,
        "cpu": slice_cpu / (fleet.forks * fleet.cpu_per_fork),
        "link": per_slice * push_bytes / fleet.link_bytes_per_second,
        "mirror": mirror_bytes / fleet.mirror_bytes_per_second,
    }
    wall = max(bounds.values())
    memory = memory_job + memory_fork * min(fleet.forks, per_slice)
    return {
        "slices": slices, "nodes_per_slice": per_slice, "wall": wall, "bound": max(bounds, key=bounds.get),
        "bounds": bounds, "controller_cpu": slices * cpu_job + fleet.nodes * cpu_node,
        "cpu_per_node": (slices * cpu_job + fleet.nodes * cpu_node) / fleet.nodes,
        "cpu_rate": slice_cpu / wall if wall else 0.0, "capacity_cpus": fleet.forks * fleet.cpu_per_fork,
        "memory": memory, "capacity_memory": fleet.forks * fleet.memory_per_fork,
        "mirror_bytes": mirror_bytes,
        "pushed_bytes": fleet.nodes * push_bytes,
    }


def pushed_per_node(document: dict, phase: str, approach: str) -> float:
    """Ours sends the tarball from the controller to every node it installs on; nothing else does."""
    if approach != "ours" or phase not in ("first", "upgrade"):
        return 0.0
    return float(max(document.get("tarball_bytes", {"": 0}).values()))


def projections(document: dict, transport: str, fleet: Fleet) -> dict:
    entry = document["transports"][transport]
    table = entry["table"]
    costs = entry.get("controller") or controller_costs(table)
    found: dict = {}
    for phase in PHASES:
        for approach in APPROACHES:
            if approach in costs.get(phase, {}):
                # In a real fleet the copy crosses the controller's link whichever transport was measured.
                push = pushed_per_node(document, phase, approach)
                found.setdefault(phase, {})[approach] = project(costs, table, phase, approach, fleet, push)
    return found


def report(document: dict, fleet: Fleet, transport: str | None = None) -> str:
    """The projection as text, from the SSH figures when there are some (AWX reaches nodes over SSH)."""
    transports = document.get("transports", {})
    if transport is None:
        transport = "ssh" if "ssh" in transports else next(iter(sorted(transports)), None)
    if transport is None:
        return "projection: no results"
    try:
        found = projections(document, transport, fleet)
    except ValueError as exc:
        return "projection: %s" % exc
    lines = ["Projection from the %s figures: %d nodes, forks %d, %d slices for site/verify, upgrade unsliced "
             "in batches of %d, %.0f Mbit/s controller link, %.0f Mbit/s mirror; AAP capacity %.2f CPU and %.0f MB per fork"
             % (transport, fleet.nodes, fleet.forks, fleet.slices, fleet.upgrade_batch, fleet.link_bytes_per_second * 8 / 1e6,
                fleet.mirror_bytes_per_second * 8 / 1e6, fleet.cpu_per_fork, fleet.memory_per_fork / 1e6),
             "  %-8s %-8s %9s %-8s %12s %12s %13s %16s %12s" % (
                 "phase", "approach", "wall s", "bound", "ctl CPU s", "CPU s/node", "CPU used/cap", "memory MB/cap", "mirror MB")]
    for phase, by_approach in found.items():
        for approach, one in by_approach.items():
            lines.append("  %-8s %-8s %9.0f %-8s %12.0f %12.3f %13s %16s %12.1f" % (
                phase, approach, one["wall"], one["bound"], one["controller_cpu"], one["cpu_per_node"],
                "%.1f/%.1f" % (one["cpu_rate"], one["capacity_cpus"]),
                "%.0f/%.0f" % (one["memory"] / 1e6, one["capacity_memory"] / 1e6), one["mirror_bytes"] / 1e6))
    clamped = sorted("%s %s %s" % (phase, approach, key) for phase, by_approach in (document["transports"][transport].get("controller") or {}).items()
                     for approach, figures in by_approach.items() for key in figures.get("clamped", []))
    if clamped:
        lines.append("  per-node figures that fell with the node count, clamped to 0 per node (noise; measure more and larger sizes): "
                     + ", ".join(clamped))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--results", default=str(Path(__file__).resolve().parent / "results" / "latest.json"))
    parser.add_argument("--transport", choices=("local", "ssh"), help="whose figures (default: ssh when measured)")
    parser.add_argument("--nodes", type=int, default=Fleet.nodes)
    parser.add_argument("--forks", type=int, default=Fleet.forks)
    parser.add_argument("--slices", type=int, default=Fleet.slices, help="job slices for site.yml and verify.yml")
    parser.add_argument("--upgrade-batch", type=int, default=Fleet.upgrade_batch, help="nodes an upgrade moves at once")
    parser.add_argument("--link-mbit", type=float, default=1000.0, help="the controller's link to the nodes, Mbit/s")
    parser.add_argument("--mirror-mbit", type=float, default=1000.0, help="the mirror's link, Mbit/s")
    parser.add_argument("--json", action="store_true", help="print the projection as JSON")
    args = parser.parse_args()
    for name in ("nodes", "forks", "slices", "upgrade_batch"):
        if getattr(args, name) < 1:
            parser.error("--%s must be at least 1" % name.replace("_", "-"))
    if args.link_mbit <= 0 or args.mirror_mbit <= 0:
        parser.error("--link-mbit and --mirror-mbit must be above 0")
    fleet = Fleet(args.nodes, args.forks, args.slices, args.upgrade_batch, args.link_mbit * 1e6 / 8, args.mirror_mbit * 1e6 / 8)
    document = json.loads(Path(args.results).read_text())
    if args.json:
        transport = args.transport or ("ssh" if "ssh" in document["transports"] else "local")
        print(json.dumps(projections(document, transport, fleet), indent=2, sort_keys=True))
    else:
        print(report(document, fleet, args.transport))


if __name__ == "__main__":
    main()
