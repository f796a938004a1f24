"""nodeprep.cni's cni_plugins role against the common approach (bench/baseline.yml), outside in.

Same throwaway test-bed nodes, same local mirror (a release repacked from Debian's plugins, its
access log counted), same Ansible settings for both (pipelining, no fact gathering, forks = node
count); the two approaches alternate within each round and every figure is a median of rounds.

Scenarios, per transport (the test bed's nsenter/chroot connection, and real SSH to an OpenSSH
server inside each node):
  first   first install on fresh nodes, fleets of each --nodes size
  rerun   the same playbook again, nothing to do
  upgrade the largest fleet from the installed version to a newer one
Each run is checked, so a broken harness fails instead of timing nonsense: the first install and
the upgrade must change every node and leave a bridge plugin that answers CNI_COMMAND=VERSION,
the re-run must change nothing.

Prints a table, writes bench/results/<UTC time>.json and latest.json, and plots wall time
against node count (bench/results/latest.png). With --profile also the per-task profile
(ansible.posix.profile_tasks) of one node's first install and re-run, and the floor: a one-task
ping play against the same node.

Usage: .venv/bin/python bench/compare.py [--nodes 1,5,20] [--rounds 3] [--transports local,ssh]
       .venv/bin/python bench/compare.py --smoke      (1 node, 1 round, local: the harness works)
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

# pylint: disable=wrong-import-position
from testbed_lib import ansible_runner  # noqa: E402
from testbed_lib.http_server import LocalServer  # noqa: E402
from testbed_lib.releases import build_release  # noqa: E402
from testbed_lib.node import ROOTFS_CACHE, BootedNode  # noqa: E402

BENCH = REPO / "bench"
APPROACHES = {"baseline": BENCH / "baseline.yml", "ours": BENCH / "ours.yml"}
FLOOR = BENCH / "floor.yml"
VERSION_A, VERSION_B = "9.0.0", "9.1.0"
ARCH = "amd64"
# What either approach leaves on a node; removed between runs so each first install is one.
WIPE = "rm -rf /opt/cni /var/cache/nodeprep /tmp/cni-plugins-linux-*"
TOOLING_PYTHON = REPO / ".cache" / "venv-release" / "bin" / "python"


class BenchError(RuntimeError):
    """A run failed or did not do what it must: the figures would mean nothing."""


class Bed:
    """Booted nodes of one transport, the mirror, and the playbook runs against them."""

    def __init__(self, transport: str, nodes: list, mirror: LocalServer, workdir: Path, host_vars: dict):
        self.transport = transport
        self.nodes = nodes
        self.mirror = mirror
        self.workdir = workdir
        self.host_vars = host_vars
        self.run_index = 0

    def wipe(self, count: int) -> None:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda node: node.run(WIPE), self.nodes[:count]))

    def inventory(self, count: int) -> Path:
        path = self.workdir / ("inventory-%s-%d.yml" % (self.transport, count))
        if not path.is_file():
            chosen = self.nodes[:count]
            host_vars = {node.name: self.host_vars.get(node.name, {}) for node in chosen}
            ansible_runner.write_inventory(path, chosen, host_vars=host_vars)
        return path

    def extra_vars(self, approach: str, version: str) -> dict:
        if approach == "baseline":
            return {"bench_version": version, "bench_base_url": self.mirror.base_url, "bench_arch": ARCH}
        self.run_index += 1
        # Every run of ours starts with an empty controller cache, as an AWX job does.
        return {"cni_plugins_version": version, "cni_plugins_base_url": self.mirror.base_url,
                "cni_plugins_controller_cache_dir": str(self.workdir / ("controller-cache-%s-%d" % (self.transport, self.run_index)))}

    def play(self, playbook: Path, count: int, extra_vars: dict, profile: bool = False) -> dict:
        """One timed ansible-playbook run; wall time and what the mirror served during it."""
        self.mirror.clear()
        env = {"ANSIBLE_FORKS": str(count)}
        # A fresh ControlPath dir per run: a run never reuses the SSH masters of the run before.
        env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = tempfile.mkdtemp(prefix="cp-", dir=self.workdir)
        if profile:
            env.update(ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
                       PROFILE_TASKS_SORT_ORDER="none", PROFILE_TASKS_TASK_OUTPUT_LIMIT="all")
        started = time.perf_counter()
        result = ansible_runner.run_playbook(playbook, self.inventory(count), extra_vars=extra_vars, env=env,
                                             json_output=not profile, cwd=self.workdir, timeout=1800)
        wall = time.perf_counter() - started
        requests = self.mirror.requests
        if result.rc != 0:
            raise BenchError("%s failed on %d %s node(s):\n%s" % (playbook.name, count, self.transport, result.describe()))
        served = [self.mirror.root / path.lstrip("/") for path in requests]
        return {"wall": wall, "requests": len(requests), "bytes": sum(p.stat().st_size for p in served if p.is_file()),
                "tarballs": sum(1 for path in requests if path.endswith(".tgz")),
                "changed": sum(1 for host in result.stats.values() if host["changed"] > 0),
                "stdout": result.stdout if profile else ""}

    def check_installed(self, count: int, version: str) -> None:
        for node in self.nodes[:count]:
            answer = node.run("CNI_COMMAND=VERSION /opt/cni/bin/bridge </dev/null", check=False)
            if answer.returncode != 0 or "cniVersion" not in answer.stdout:
                raise BenchError("node %s has no working /opt/cni/bin/bridge after installing %s" % (node.name, version))


def check_one_download(approach: str, what: str, figures: dict) -> None:
    """Ours starts every run with an empty controller cache: exactly one tarball must be served."""
    if approach == "ours" and figures["tarballs"] != 1:
        raise BenchError("ours served %d tarballs for a %s of one architecture; it must fetch exactly one"
                         % (figures["tarballs"], what))


def measure(bed: Bed, approach: str, count: int) -> dict:
    """First install on wiped nodes, then the re-run with nothing to do."""
    playbook = APPROACHES[approach]
    bed.wipe(count)
    first = bed.play(playbook, count, bed.extra_vars(approach, VERSION_A))
    if first["changed"] != count:
        raise BenchError("%s first install changed %d of %d nodes" % (approach, first["changed"], count))
    check_one_download(approach, "first install", first)
    bed.check_installed(count, VERSION_A)
    rerun = bed.play(playbook, count, bed.extra_vars(approach, VERSION_A))
    if rerun["changed"] != 0:
        raise BenchError("%s re-run changed %d nodes; it must change none" % (approach, rerun["changed"]))
    return {"first": first, "rerun": rerun}


def measure_upgrade(bed: Bed, approach: str, count: int) -> dict:
    playbook = APPROACHES[approach]
    bed.wipe(count)
    bed.play(playbook, count, bed.extra_vars(approach, VERSION_A))
    upgrade = bed.play(playbook, count, bed.extra_vars(approach, VERSION_B))
    if upgrade["changed"] != count:
        raise BenchError("%s upgrade changed %d of %d nodes" % (approach, upgrade["changed"], count))
    check_one_download(approach, "upgrade", upgrade)
    bed.check_installed(count, VERSION_B)
    return {"upgrade": upgrade}


def run_transport(bed: Bed, sizes: list, rounds: int, upgrade: bool) -> dict:
    """samples[scenario][approach] = list of per-round figures; approaches alternate each round."""
    samples: dict = {}
    for index in range(rounds):
        order = list(APPROACHES) if index % 2 == 0 else list(reversed(APPROACHES))
        for count in sizes:
            for approach in order:
                for phase, figures in measure(bed, approach, count).items():
                    samples.setdefault("%s/%d" % (phase, count), {}).setdefault(approach, []).append(figures)
                    log("%s round %d: %-8s %-5s %2d node(s) %6.2f s, %d requests, %d tarball(s)" % (
                        bed.transport, index + 1, approach, phase, count, figures["wall"], figures["requests"], figures["tarballs"]))
        if upgrade:
            count = sizes[-1]
            for approach in order:
                figures = measure_upgrade(bed, approach, count)["upgrade"]
                samples.setdefault("upgrade/%d" % count, {}).setdefault(approach, []).append(figures)
                log("%s round %d: %-8s upgrade %2d node(s) %6.2f s, %d requests" % (
                    bed.transport, index + 1, approach, count, figures["wall"], figures["requests"]))
    return samples


def medians(samples: dict) -> dict:
    table = {}
    for scenario, by_approach in samples.items():
        row = {}
        for approach, runs in by_approach.items():
            row[approach] = {key: statistics.median(run[key] for run in runs)
                             for key in ("wall", "requests", "bytes", "tarballs")}
            row[approach]["walls"] = [round(run["wall"], 3) for run in runs]
        if "baseline" in row and "ours" in row:
            row["ratio"] = row["ours"]["wall"] / row["baseline"]["wall"]
        table[scenario] = row
    return table


def marginal(table: dict, phase: str, sizes: list) -> dict:
    """Seconds each further node adds, from the smallest to the largest fleet."""
    if len(sizes) < 2:
        return {}
    low, high = table["%s/%d" % (phase, sizes[0])], table["%s/%d" % (phase, sizes[-1])]
    return {approach: (high[approach]["wall"] - low[approach]["wall"]) / (sizes[-1] - sizes[0]) for approach in APPROACHES}


def print_table(transport: str, table: dict, sizes: list) -> None:
    print("\n%s transport (medians)" % transport)
    header = ("scenario", "baseline s", "ours s", "ratio", "requests b/o", "MB served b/o", "tarballs b/o")
    print("  %-12s %10s %10s %7s %16s %16s %14s" % header)
    for scenario, row in table.items():
        base, ours = row["baseline"], row["ours"]
        print("  %-12s %10.2f %10.2f %6.2fx %16s %16s %14s" % (
            scenario, base["wall"], ours["wall"], row["ratio"], "%g / %g" % (base["requests"], ours["requests"]),
            "%.2f / %.2f" % (base["bytes"] / 1e6, ours["bytes"] / 1e6), "%g / %g" % (base["tarballs"], ours["tarballs"])))
    for phase in ("first", "rerun"):
        cost = marginal(table, phase, sizes)
        if cost:
            print("  per further node, %-5s baseline %.3f s, ours %.3f s" % (phase, cost["baseline"], cost["ours"]))
            low, high = table["%s/%d" % (phase, sizes[0])], table["%s/%d" % (phase, sizes[-1])]
            print("  growth %d -> %d nodes, %-5s baseline %.2fx, ours %.2fx" % (
                sizes[0], sizes[-1], phase, high["baseline"]["wall"] / low["baseline"]["wall"], high["ours"]["wall"] / low["ours"]["wall"]))


def profile(bed: Bed) -> dict:
    """profile_tasks output of one node's first install and re-run with ours, and the floor."""
    bed.wipe(1)
    found = {}
    first = bed.play(APPROACHES["ours"], 1, bed.extra_vars("ours", VERSION_A), profile=True)
    rerun = bed.play(APPROACHES["ours"], 1, bed.extra_vars("ours", VERSION_A), profile=True)
    floors = [bed.play(FLOOR, 1, {}, profile=True) for dummy in range(3)]
    floor = sorted(floors, key=lambda run: run["wall"])[1]
    for name, run in (("ours first install", first), ("ours re-run", rerun), ("floor (ping)", floor)):
        found[name] = {"wall": run["wall"], "profile": profile_lines(run["stdout"])}
    return found


def profile_lines(stdout: str) -> list:
    lines = stdout.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("=====")), None)
    return [line for line in lines[start + 1:] if line.strip()] if start is not None else []


def boot_nodes(transport: str, count: int, workdir: Path, key: Path | None) -> tuple[list, dict]:
    rootfs = ROOTFS_CACHE
    if transport == "ssh":
        import sshbed
        rootfs = sshbed.ensure_ssh_rootfs()
    nodes = [BootedNode("bench-%s-%d" % (transport, index), workdir / ("node-%s-%d" % (transport, index)), rootfs_cache=rootfs)
             for index in range(count)]
    host_vars = {}
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda node: node.start(), nodes))
        if transport == "ssh":
            import sshbed
            for node in nodes:
                host_vars[node.name] = sshbed.inventory_vars(sshbed.start_sshd(node, key), key)
    except BaseException:
        stop_nodes(nodes)
        raise
    return nodes, host_vars


def stop_nodes(nodes: list) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda node: node.stop(), nodes))


def plot(document: dict, path: Path) -> None:
    """Wall time against node count, both approaches, first install and re-run, per transport."""
    python = str(TOOLING_PYTHON) if TOOLING_PYTHON.is_file() else sys.executable
    source = path.with_suffix(".plot.json")
    source.write_text(json.dumps(document))
    try:
        subprocess.run([python, str(BENCH / "plot.py"), str(source), str(path)], check=True)
    finally:
        source.unlink()


def scenario_order(item) -> tuple:
    phase, count = item[0].split("/")
    return (("first", "rerun", "upgrade").index(phase), int(count))


def markdown(document: dict) -> str:
    """The results as the Markdown table docs/benchmarks.md shows."""
    lines = ["| transport | scenario | baseline s | ours s | ours / baseline | requests (baseline / ours) | tarballs served |",
             "| --- | --- | ---: | ---: | ---: | --- | --- |"]
    for transport, entry in sorted(document["transports"].items()):
        for scenario, row in sorted(entry["table"].items(), key=scenario_order):
            base, ours = row["baseline"], row["ours"]
            lines.append("| %s | %s | %.1f | %.1f | %.2f× | %g / %g | %g / %g |" % (
                transport, scenario.replace("/", ", ") + " node(s)", base["wall"], ours["wall"], row["ratio"],
                base["requests"], ours["requests"], base["tarballs"], ours["tarballs"]))
    return "\n".join(lines)


def log(message: str) -> None:
    print("bench: %s" % message, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--nodes", default="1,5,20", help="fleet sizes, comma separated (default 1,5,20)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--transports", default="local,ssh", help="local, ssh or both (default both)")
    parser.add_argument("--no-upgrade", action="store_true", help="skip the upgrade of the largest fleet")
    parser.add_argument("--profile", action="store_true", help="per-task profile of one node and the floor")
    parser.add_argument("--smoke", action="store_true", help="1 node, 1 round, local, results in a temp dir")
    parser.add_argument("--out", default=str(BENCH / "results"))
    parser.add_argument("--merge", action="store_true",
                        help="keep the other transports of the latest results (a transport run on its own)")
    parser.add_argument("--markdown", action="store_true", help="print the latest results in --out as a Markdown table")
    args = parser.parse_args()
    if args.markdown:
        print(markdown(json.loads((Path(args.out) / "latest.json").read_text())))
        return 0
    if os.geteuid() != 0:
        raise SystemExit("bench: boots systemd-nspawn nodes and needs root")
    sizes = sorted(int(n) for n in args.nodes.split(","))
    transports = [t for t in args.transports.split(",") if t]
    rounds, upgrade = args.rounds, not args.no_upgrade
    if args.smoke:
        sizes, transports, rounds, upgrade = [1], ["local"], 1, True
    document = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "sizes": sizes, "rounds": rounds,
                "versions": [VERSION_A, VERSION_B], "cpus": os.cpu_count(), "transports": {}}
    with tempfile.TemporaryDirectory(prefix="nodeprep-bench-", dir="/var/tmp") as temp:
        temp = Path(temp)
        releases = {version: build_release(temp / "mirror", version) for version in (VERSION_A, VERSION_B)}
        document["tarball_bytes"] = {v: r.path.stat().st_size for v, r in releases.items()}
        key = None
        if "ssh" in transports:
            import sshbed
            key = sshbed.client_key(temp)
        with LocalServer(temp / "mirror", access_log=temp / "access.log") as mirror:
            for transport in transports:
                log("booting %d %s node(s)" % (sizes[-1], transport))
                nodes, host_vars = boot_nodes(transport, sizes[-1], temp, key)
                try:
                    bed = Bed(transport, nodes, mirror, temp, host_vars)
                    table = medians(run_transport(bed, sizes, rounds, upgrade))
                    entry = {"table": table, "marginal": {p: marginal(table, p, sizes) for p in ("first", "rerun")}}
                    if args.profile or args.smoke:
                        entry["profile"] = profile(bed)
                    document["transports"][transport] = entry
                finally:
                    stop_nodes(nodes)
                print_table(transport, table, sizes)
                for name, found in entry.get("profile", {}).items():
                    print("\n  profile, %s: %.2f s wall" % (name, found["wall"]))
                    for line in found["profile"]:
                        print("    " + line)
        out = Path(temp / "results") if args.smoke else Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        if args.merge and (out / "latest.json").is_file():
            earlier = json.loads((out / "latest.json").read_text())
            for transport, entry in earlier.get("transports", {}).items():
                document["transports"].setdefault(transport, dict(entry, started=earlier.get("started"), rounds=earlier.get("rounds")))
        stamp = document["started"].replace(":", "")
        for name in ("%s.json" % stamp, "latest.json"):
            (out / name).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
        plot(document, out / "latest.png")
        if not (out / "latest.png").stat().st_size:
            raise BenchError("the plot is empty")
        log("results in %s (json and latest.png)" % out)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print("bench: FAILED: %s" % exc, file=sys.stderr)
        sys.exit(1)
