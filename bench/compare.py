"""nodeprep.cni's cni_plugins role against the common approach (bench/baseline.yml), outside in.

Same throwaway test-bed nodes (each an overlayfs over one cached rootfs, so a hundred fit in
memory), same local mirror (a release repacked from Debian's plugins, its access log counted),
same Ansible settings for both (pipelining, no fact gathering, forks = node count); the two
approaches alternate within each round and every figure is a median of rounds.

Scenarios, per transport (the test bed's nsenter/chroot connection, and real SSH to an OpenSSH
server inside each node), each at every fleet size of that transport:
  first   first install on fresh nodes
  rerun   the same playbook again, nothing to do
  verify  playbooks/verify.yml on the installed nodes (ours alone: the common approach has none)
  upgrade the largest fleet from the installed version to a newer one
  floor   one `ping` play on one node: what any play costs, for the 1-node figures above it
Each run is checked, so a broken harness fails instead of timing nonsense: the first install and
the upgrade must change every node and leave a bridge plugin that answers CNI_COMMAND=VERSION,
the re-run must change nothing, verify must pass.

Every run also records what it cost the controller (bench/accounting.py): CPU seconds (user +
system) and peak memory of the ansible-playbook process tree, the nodes' work excluded.
bench/project.py turns the figures into a 1,000-node projection.

Prints a table, writes bench/results/<UTC time>.json and latest.json, and plots wall time and
controller CPU against node count (bench/results/latest.png). With --profile also the per-task
profile (ansible.posix.profile_tasks) of one node's first install and re-run, and of the floor.

Usage: .venv/bin/python bench/compare.py [--sizes 1,20,100] [--ssh-sizes 1,20,50] [--rounds 3]
                                         [--transports local,ssh]
       .venv/bin/python bench/compare.py --smoke      (1 node, 1 round, local: the harness works)
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

# pylint: disable=wrong-import-position
import accounting  # noqa: E402  (bench/accounting.py)
import project  # noqa: E402  (bench/project.py)
from testbed_lib import ansible_runner  # noqa: E402
from testbed_lib.http_server import LocalServer  # noqa: E402
from testbed_lib.releases import build_release  # noqa: E402
from testbed_lib.node import ROOTFS_CACHE, BootedNode  # noqa: E402

BENCH = REPO / "bench"
APPROACHES = {"baseline": BENCH / "baseline.yml", "ours": BENCH / "ours.yml"}
FLOOR = BENCH / "floor.yml"
VERIFY = REPO / "playbooks" / "verify.yml"
VERSION_A, VERSION_B = "9.0.0", "9.1.0"
ARCH = "amd64"
# The sizes: 100 nodes over the test bed's own connection, 50 over SSH.
DEFAULT_SIZES = {"local": [1, 20, 100], "ssh": [1, 20, 50]}
# What either approach leaves on a node; removed between runs so each first install is one.
WIPE = "rm -rf /opt/cni /var/cache/nodeprep /tmp/cni-plugins-linux-*"
TOOLING_PYTHON = REPO / ".cache" / "venv-release" / "bin" / "python"
# Medians kept per scenario and approach.
FIGURES = ("wall", "requests", "bytes", "tarballs", "cpu", "peak_pss", "peak_rss")
# Node start-up: this many boots at once (each is mostly waiting on systemd), and a budget for all.
BOOT_PARALLEL = 8
BOOT_SECONDS_PER_NODE = 3.0
BOOT_SECONDS_FIXED = 60.0


class BenchError(RuntimeError):
    """A run failed or did not do what it must: the figures would mean nothing."""


class RunFailed(BenchError):
    """ansible-playbook itself failed on some node (e.g. a download timed out under load): worth one retry."""


def failed_hosts(stdout: str) -> list:
    """'host: task: message' for every failed or unreachable host in the json callback's output."""
    try:
        document = json.loads(stdout)
    except ValueError:
        return []
    found = []
    for play in document.get("plays", []):
        for task in play.get("tasks", []):
            for host, reply in task.get("hosts", {}).items():
                if reply.get("failed") or reply.get("unreachable"):
                    found.append("%s: %s: %s" % (host, task.get("task", {}).get("name"), str(reply.get("msg", ""))[:300]))
    return found


NODE_SIDE_WRAPPER = """#!/bin/sh
# The node's own chroot_exe, with what it runs charged to the bench's node-side cgroup.
{join}
exec {exe} "$@"
"""


class Bed:
    """Booted nodes of one transport, the mirror, and the playbook runs against them."""

    def __init__(self, transport: str, nodes: list, mirror: LocalServer, workdir: Path, host_vars: dict,
                 costs: accounting.Accounting):
        self.transport = transport
        self.nodes = nodes
        self.mirror = mirror
        self.workdir = workdir
        self.host_vars = host_vars
        self.costs = costs
        self.run_index = 0
        # Runs that failed and were done again from a wipe: reported with the results, never hidden.
        self.retried: list = []

    def wipe(self, count: int) -> None:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda node: node.run(WIPE), self.nodes[:count]))

    def inventory(self, count: int) -> Path:
        path = self.workdir / ("inventory-%s-%d.yml" % (self.transport, count))
        if not path.is_file():
            chosen = self.nodes[:count]
            host_vars = {node.name: dict(self.host_vars.get(node.name, {})) for node in chosen}
            if self.transport == "local":
                for node in chosen:
                    host_vars[node.name]["ansible_chroot_exe"] = str(self.node_side_wrapper(node))
            ansible_runner.write_inventory(path, chosen, host_vars=host_vars)
        return path

    def node_side_wrapper(self, node) -> Path:
        """Over the nsenter connection the module runs as the controller's grandchild: this wrapper
        moves it into the node-side cgroup first, so only the controller's own work is counted."""
        wrapper = node.workdir / "bench-chroot-exe"
        if not wrapper.is_file():
            wrapper.write_text(NODE_SIDE_WRAPPER.format(join=self.costs.wrapper_line(), exe=node.chroot_exe))
            wrapper.chmod(0o755)
        return wrapper

    def extra_vars(self, approach: str, version: str) -> dict:
        if approach == "baseline":
            return {"bench_version": version, "bench_base_url": self.mirror.base_url, "bench_arch": ARCH}
        self.run_index += 1
        # Every run of ours starts with an empty controller cache, as an AWX job does.
        return {"cni_plugins_version": version, "cni_plugins_base_url": self.mirror.base_url,
                "cni_plugins_controller_cache_dir": str(self.workdir / ("controller-cache-%s-%d" % (self.transport, self.run_index)))}

    def play(self, playbook: Path, count: int, extra_vars: dict, profile: bool = False, env: dict | None = None) -> dict:
        """One timed ansible-playbook run: wall time, what the mirror served, what the controller spent."""
        self.mirror.clear()
        env = dict(env or {}, ANSIBLE_FORKS=str(count))
        # A fresh ControlPath dir per run: a run never reuses the SSH masters of the run before.
        env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = tempfile.mkdtemp(prefix="cp-", dir=self.workdir)
        if profile:
            env.update(ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
                       PROFILE_TASKS_SORT_ORDER="none", PROFILE_TASKS_TASK_OUTPUT_LIMIT="all")
        result, wall, cost, largest = self.accounted_run(playbook, count, extra_vars, env, json_output=not profile)
        requests = self.mirror.requests
        if result.rc != 0:
            failed = failed_hosts(result.stdout)
            raise RunFailed("%s failed on %d %s node(s): %s" % (
                playbook.name, count, self.transport, "; ".join(failed[:5]) if failed else "\n" + result.describe()))
        served = [self.mirror.root / path.lstrip("/") for path in requests]
        figures = {"wall": wall, "requests": len(requests), "bytes": sum(p.stat().st_size for p in served if p.is_file()),
                   "tarballs": sum(1 for path in requests if path.endswith(".tgz")),
                   "changed": sum(1 for host in result.stats.values() if host["changed"] > 0),
                   "stdout": result.stdout if profile else "", "largest_process_rss": largest}
        figures.update(cost.as_dict())
        return figures

    def accounted_run(self, playbook: Path, count: int, extra_vars: dict, env: dict, json_output: bool,
                      timeout: float = 3600) -> tuple:
        """ansible-playbook in a cgroup of its own; (result, wall, Cost, largest single process's RSS)."""
        command = ansible_runner.playbook_command(playbook, self.inventory(count), extra_vars)
        with tempfile.TemporaryDirectory(prefix="ansible-local-", dir=self.workdir) as local_temp, \
                tempfile.TemporaryFile(dir=self.workdir) as out, tempfile.TemporaryFile(dir=self.workdir) as err:
            with self.costs.measured() as run:
                started = time.perf_counter()
                with subprocess.Popen(self.costs.command(run.cgroup, command), stdout=out, stderr=err, cwd=str(self.workdir),
                                      env=ansible_runner.ansible_env(env, json_output, local_temp)) as process:
                    timer = threading.Timer(timeout, process.kill)
                    timer.start()
                    # wait4, not wait: its rusage names the largest single process of the tree.
                    _pid, status, usage = os.wait4(process.pid, 0)
                    wall = time.perf_counter() - started
                    timer.cancel()
                    process.returncode = os.waitstatus_to_exitcode(status)
            cost = run.cost
            out.seek(0)
            err.seek(0)
            result = ansible_runner.PlaybookResult(process.returncode, out.read().decode(errors="replace"),
                                                   err.read().decode(errors="replace"), command)
        if json_output:
            ansible_runner.parse_json_output(result)
        else:
            result.stats = ansible_runner.parse_recap(result.stdout)
        return result, wall, cost, usage.ru_maxrss * 1024

    def check_installed(self, count: int, version: str) -> None:
        def answer(node):
            return node, node.run("CNI_COMMAND=VERSION /opt/cni/bin/bridge </dev/null", check=False)
        with ThreadPoolExecutor(max_workers=8) as pool:
            for node, reply in pool.map(answer, self.nodes[:count]):
                if reply.returncode != 0 or "cniVersion" not in reply.stdout:
                    raise BenchError("node %s has no working /opt/cni/bin/bridge after installing %s" % (node.name, version))


def check_one_download(approach: str, what: str, figures: dict) -> None:
    """Ours starts every run with an empty controller cache: exactly one tarball must be served."""
    if approach == "ours" and figures["tarballs"] != 1:
        raise BenchError("ours served %d tarballs for a %s of one architecture; it must fetch exactly one"
                         % (figures["tarballs"], what))


def measure(bed: Bed, approach: str, count: int) -> dict:
    """First install on wiped nodes, then the re-run with nothing to do; after ours, verify."""
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
    found = {"first": first, "rerun": rerun}
    if approach == "ours":
        found["verify"] = bed.play(VERIFY, count, {"nodeprep_hosts": "nodes", "cni_plugins_version": VERSION_A,
                                                   "nodeprep_report_dir": str(bed.workdir / "reports")})
    return found


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


def retried_once(bed: Bed, what: str, step):
    """step() (which starts from wiped nodes), done once more if a playbook run failed; the failure is kept."""
    try:
        return step()
    except RunFailed as exc:
        log("%s: %s; once more from wiped nodes" % (what, exc))
        bed.retried.append({"what": what, "error": str(exc)[:2000]})
        return step()


def save_partial(path: Path, transport: str, rounds: int, samples: dict) -> None:
    """The figures so far, for a run that fails before its end (removed when the transport completes)."""
    path.write_text(json.dumps({"transport": transport, "rounds": rounds, "samples": samples}, indent=1, sort_keys=True) + "\n")


def keep(samples: dict, transport: str, index: int, scenario: str, approach: str, figures: dict) -> None:
    samples.setdefault(scenario, {}).setdefault(approach, []).append(figures)
    log("%s round %d: %-8s %-12s %6.2f s, %d requests, %d tarball(s), controller %.2f CPU s, peak %.0f MB PSS" % (
        transport, index + 1, approach, scenario, figures["wall"], figures["requests"], figures["tarballs"],
        figures["cpu"], figures["peak_pss"] / 1e6))


def run_transport(bed: Bed, sizes: list, rounds: int, upgrade: bool, save=None) -> dict:
    """samples[scenario][approach] = list of per-round figures; approaches alternate each round.
    save(samples), when given, is called after every measurement, so a run that fails late keeps its figures."""
    samples: dict = {}
    # Unmeasured: the first plays after boot pay for cold caches (Python's, the page cache's), which
    # would land on whichever approach the first round runs first.
    bed.play(FLOOR, 1, {})
    bed.play(APPROACHES["ours"], 1, bed.extra_vars("ours", VERSION_A))
    bed.play(APPROACHES["baseline"], 1, bed.extra_vars("baseline", VERSION_A))
    for index in range(rounds):
        order = list(APPROACHES) if index % 2 == 0 else list(reversed(APPROACHES))
        for count in sizes:
            for approach in order:
                what = "%s round %d: %s at %d node(s)" % (bed.transport, index + 1, approach, count)
                for phase, figures in retried_once(bed, what, functools.partial(measure, bed, approach, count)).items():
                    keep(samples, bed.transport, index, "%s/%d" % (phase, count), approach, figures)
                if save:
                    save(samples)
            if count == 1:
                keep(samples, bed.transport, index, "floor/1", "floor", bed.play(FLOOR, 1, {}))
        if upgrade:
            count = sizes[-1]
            for approach in order:
                what = "%s round %d: %s upgrade at %d node(s)" % (bed.transport, index + 1, approach, count)
                found = retried_once(bed, what, functools.partial(measure_upgrade, bed, approach, count))
                keep(samples, bed.transport, index, "upgrade/%d" % count, approach, found["upgrade"])
                if save:
                    save(samples)
    return samples


def medians(samples: dict) -> dict:
    table = {}
    for scenario, by_approach in samples.items():
        row = {}
        for approach, runs in by_approach.items():
            row[approach] = {key: statistics.median(run[key] for run in runs) for key in FIGURES}
            row[approach]["walls"] = [round(run["wall"], 3) for run in runs]
            row[approach]["cpus"] = [round(run["cpu"], 3) for run in runs]
        if "baseline" in row and "ours" in row:
            row["ratio"] = row["ours"]["wall"] / row["baseline"]["wall"]
            row["cpu_ratio"] = row["ours"]["cpu"] / row["baseline"]["cpu"]
        table[scenario] = row
    return table


def marginal(table: dict, phase: str, sizes: list) -> dict:
    """Seconds each further node adds, from the smallest to the largest fleet."""
    if len(sizes) < 2:
        return {}
    low, high = table["%s/%d" % (phase, sizes[0])], table["%s/%d" % (phase, sizes[-1])]
    return {approach: (high[approach]["wall"] - low[approach]["wall"]) / (sizes[-1] - sizes[0]) for approach in APPROACHES}


def print_table(transport: str, table: dict, sizes: list) -> None:
    print("\n%s transport (medians; controller = the ansible-playbook process tree)" % transport)
    header = ("scenario", "baseline s", "ours s", "ratio", "requests b/o", "MB served b/o", "tarballs b/o",
              "ctl CPU s b/o", "CPU ratio", "peak MB PSS b/o")
    print("  %-12s %10s %10s %7s %14s %14s %12s %15s %9s %17s" % header)
    for scenario, row in sorted(table.items(), key=scenario_order):
        if "ratio" not in row:
            continue
        base, ours = row["baseline"], row["ours"]
        print("  %-12s %10.2f %10.2f %6.2fx %14s %14s %12s %15s %8.2fx %17s" % (
            scenario, base["wall"], ours["wall"], row["ratio"], "%g / %g" % (base["requests"], ours["requests"]),
            "%.2f / %.2f" % (base["bytes"] / 1e6, ours["bytes"] / 1e6), "%g / %g" % (base["tarballs"], ours["tarballs"]),
            "%.2f / %.2f" % (base["cpu"], ours["cpu"]), row["cpu_ratio"],
            "%.0f / %.0f" % (base["peak_pss"] / 1e6, ours["peak_pss"] / 1e6)))
    for scenario, row in sorted(table.items(), key=scenario_order):
        if "ratio" not in row:
            for approach, figures in row.items():
                print("  %-12s %-8s %.2f s, controller %.2f CPU s, peak %.0f MB PSS" % (
                    scenario, approach, figures["wall"], figures["cpu"], figures["peak_pss"] / 1e6))
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


def boot_budget(count: int) -> float:
    return BOOT_SECONDS_FIXED + BOOT_SECONDS_PER_NODE * count


def boot_nodes(transport: str, count: int, workdir: Path, key: Path | None, parallel: int = BOOT_PARALLEL) -> tuple[list, dict]:
    """``count`` nodes booted ``parallel`` at a time (with their sshd over SSH), all within
    boot_budget(count) seconds, or none: whatever did boot is stopped again and the run fails."""
    rootfs = ROOTFS_CACHE
    if transport == "ssh":
        import sshbed  # pylint: disable=import-outside-toplevel
        rootfs = sshbed.ensure_ssh_rootfs()
    nodes = [BootedNode("bench-%s-%d" % (transport, index), workdir / ("node-%s-%d" % (transport, index)), rootfs_cache=rootfs)
             for index in range(count)]
    host_vars: dict = {}
    abandon = threading.Event()

    def start(node):
        if abandon.is_set():
            return
        node.start()
        if transport == "ssh":
            host_vars[node.name] = sshbed.inventory_vars(sshbed.start_sshd(node, key), key)

    started = time.monotonic()
    pool = ThreadPoolExecutor(max_workers=parallel)
    try:
        futures = [pool.submit(start, node) for node in nodes]
        done, pending = wait(futures, timeout=boot_budget(count), return_when=FIRST_EXCEPTION)
        abandon.set()
        pool.shutdown(wait=True, cancel_futures=True)
        for future in done:
            future.result()  # the first node that failed to boot, with its console
        if pending:
            raise BenchError("%d of %d %s nodes booted within %.0f s; the rest are stopped"
                             % (count - len(pending), count, transport, boot_budget(count)))
    except BaseException:
        abandon.set()
        pool.shutdown(wait=True, cancel_futures=True)
        stop_nodes(nodes)
        raise
    log("%d %s node(s) up in %.1f s (%d at a time)" % (count, transport, time.monotonic() - started, parallel))
    return nodes, host_vars


def nodes_pss(nodes: list) -> int:
    """The summed PSS of every process of the nodes (their own cgroups), in bytes."""
    total = 0
    for node in nodes:
        for cgroup in node.cgroups:
            for procs in cgroup.rglob("cgroup.procs"):
                total += accounting.pss_of(accounting.read_pids(procs))
        if not node.cgroups:
            raise BenchError("node %s has no cgroup to measure" % node.name)
    return total


def stop_nodes(nodes: list) -> None:
    """Each node's nspawn by its pid (node.stop), several at once."""
    with ThreadPoolExecutor(max_workers=BOOT_PARALLEL) as pool:
        list(pool.map(lambda node: node.stop(), nodes))


def plot(document: dict, path: Path) -> None:
    """Wall time and controller CPU against node count, both approaches, per transport."""
    python = str(TOOLING_PYTHON) if TOOLING_PYTHON.is_file() else sys.executable
    source = path.with_suffix(".plot.json")
    source.write_text(json.dumps(document))
    try:
        subprocess.run([python, str(BENCH / "plot.py"), str(source), str(path)], check=True)
    finally:
        source.unlink()


PHASES = ("first", "rerun", "verify", "upgrade", "floor")


def scenario_order(item) -> tuple:
    phase, count = item[0].split("/")
    return (PHASES.index(phase), int(count))


def markdown(document: dict) -> str:
    """The results as the Markdown tables docs/benchmarks.md shows."""
    lines = ["| transport | scenario | baseline s | ours s | ours / baseline | requests (baseline / ours) | tarballs served "
             "| controller CPU s (baseline / ours) | CPU ratio | peak controller MB, PSS (baseline / ours) |",
             "| --- | --- | ---: | ---: | ---: | --- | --- | --- | ---: | --- |"]
    singles = ["| transport | scenario | s | controller CPU s | peak controller MB, PSS |", "| --- | --- | ---: | ---: | ---: |"]
    for transport, entry in sorted(document["transports"].items()):
        for scenario, row in sorted(entry["table"].items(), key=scenario_order):
            label = scenario.replace("/", ", ") + " node(s)"
            if "ratio" not in row:
                for approach, figures in row.items():
                    singles.append("| %s | %s (%s) | %.1f | %.2f | %.0f |" % (
                        transport, label, approach, figures["wall"], figures.get("cpu", 0), figures.get("peak_pss", 0) / 1e6))
                continue
            base, ours = row["baseline"], row["ours"]
            lines.append("| %s | %s | %.1f | %.1f | %.2f× | %g / %g | %g / %g | %.2f / %.2f | %.2f× | %.0f / %.0f |" % (
                transport, label, base["wall"], ours["wall"], row["ratio"], base["requests"], ours["requests"],
                base["tarballs"], ours["tarballs"], base.get("cpu", 0), ours.get("cpu", 0), row.get("cpu_ratio", 0),
                base.get("peak_pss", 0) / 1e6, ours.get("peak_pss", 0) / 1e6))
    floors = ["| transport | phase | floor s | baseline above floor s | ours above floor s | ours / baseline above floor |",
              "| --- | --- | ---: | ---: | ---: | ---: |"]
    for transport, entry in sorted(document["transports"].items()):
        for phase, found in entry.get("over_floor", {}).items():
            floors.append("| %s | %s, 1 node | %.2f | %.2f | %.2f | %s |" % (
                transport, phase, found["floor"], found["baseline"], found["ours"],
                "%.2f×" % found["ratio"] if found["ratio"] is not None else "n/a"))
    return "\n".join(lines + [""] + singles + [""] + floors)


def log(message: str) -> None:
    print("bench: %s" % message, flush=True)


def parse_sizes(text: str) -> list:
    sizes = sorted({int(n) for n in text.split(",") if n.strip()})
    if not sizes or sizes[0] < 1:
        raise SystemExit("bench: fleet sizes are positive whole numbers, comma separated (e.g. 1,20,100), not %r" % text)
    return sizes


def main() -> int:  # pylint: disable=too-many-locals,too-many-statements,too-many-branches
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--sizes", "--nodes", dest="sizes", default=",".join(map(str, DEFAULT_SIZES["local"])),
                        help="fleet sizes over the local connection, comma separated (default 1,20,100)")
    parser.add_argument("--ssh-sizes", default=",".join(map(str, DEFAULT_SIZES["ssh"])),
                        help="fleet sizes over SSH (default 1,20,50)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--transports", default="local,ssh", help="local, ssh or both (default both)")
    parser.add_argument("--no-upgrade", action="store_true", help="skip the upgrade of the largest fleet")
    parser.add_argument("--profile", action="store_true", help="per-task profile of one node and the floor")
    parser.add_argument("--boot-parallel", type=int, default=BOOT_PARALLEL, help="nodes booted at once (default %d)" % BOOT_PARALLEL)
    parser.add_argument("--memory-interval", type=float, default=0.5, help="seconds between memory samples (default 0.5)")
    parser.add_argument("--smoke", action="store_true", help="1 and 2 nodes, 1 round, local, results in a temp dir")
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
    sizes = {"local": parse_sizes(args.sizes), "ssh": parse_sizes(args.ssh_sizes)}
    transports = [t for t in args.transports.split(",") if t]
    unknown = set(transports) - set(sizes)
    if unknown:
        raise SystemExit("bench: unknown transport(s) %s in --transports: use local, ssh or both" % ", ".join(sorted(unknown)))
    rounds, upgrade = args.rounds, not args.no_upgrade
    if args.smoke:
        sizes["local"], transports, rounds, upgrade = [1, 2], ["local"], 1, True
    document = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "sizes": {t: sizes[t] for t in transports},
                "rounds": rounds, "versions": [VERSION_A, VERSION_B], "cpus": os.cpu_count(), "transports": {},
                "method": accounting.__doc__.strip()}
    started = time.monotonic()
    stamp = document["started"].replace(":", "")
    with tempfile.TemporaryDirectory(prefix="nodeprep-bench-", dir="/var/tmp") as temp:
        temp = Path(temp)
        out = Path(temp / "results") if args.smoke else Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        releases = {version: build_release(temp / "mirror", version) for version in (VERSION_A, VERSION_B)}
        document["tarball_bytes"] = {v: r.path.stat().st_size for v, r in releases.items()}
        key = None
        if "ssh" in transports:
            import sshbed  # pylint: disable=import-outside-toplevel
            key = sshbed.client_key(temp)
        costs = accounting.Accounting(interval=args.memory_interval)
        try:
            with LocalServer(temp / "mirror", access_log=temp / "access.log") as mirror:
                for transport in transports:
                    count = sizes[transport][-1]
                    log("booting %d %s node(s), %d at a time, within %.0f s" % (count, transport, args.boot_parallel, boot_budget(count)))
                    available = accounting.memory_available()
                    nodes, host_vars = boot_nodes(transport, count, temp, key, args.boot_parallel)
                    try:
                        node_memory = {"available_drop": (available - accounting.memory_available()) / count,
                                       "pss": nodes_pss(nodes) / count}
                        log("memory per booted node: %.1f MB PSS of its processes, %.1f MB less MemAvailable" % (
                            node_memory["pss"] / 1e6, node_memory["available_drop"] / 1e6))
                        bed = Bed(transport, nodes, mirror, temp, host_vars, costs)
                        partial = out / ("%s-%s-partial.json" % (stamp, transport))
                        table = medians(run_transport(bed, sizes[transport], rounds, upgrade, save=functools.partial(
                            save_partial, partial, transport, rounds)))
                        partial.unlink()
                        entry = {"table": table, "sizes": sizes[transport], "node_memory": node_memory, "retried": bed.retried,
                                 "marginal": {p: marginal(table, p, sizes[transport]) for p in ("first", "rerun")},
                                 "over_floor": project.over_floor(table)}
                        entry["controller"] = project.controller_costs(table)
                        if args.profile:
                            entry["profile"] = profile(bed)
                        document["transports"][transport] = entry
                    finally:
                        stop_nodes(nodes)
                    print_table(transport, table, sizes[transport])
                    for retry in entry["retried"]:
                        print("  done again after a failed run: %s: %s" % (retry["what"], retry["error"][:300]))
                    for phase, found in entry["over_floor"].items():
                        print("  1 node above the floor (%.2f s), %-5s baseline %.2f s, ours %.2f s: %s" % (
                            found["floor"], phase, found["baseline"], found["ours"],
                            "%.2fx" % found["ratio"] if found["ratio"] is not None else "n/a"))
                    for name, found in entry.get("profile", {}).items():
                        print("\n  profile, %s: %.2f s wall" % (name, found["wall"]))
                        for line in found["profile"]:
                            print("    " + line)
        finally:
            costs.close()
        document["seconds"] = time.monotonic() - started
        if args.merge and (out / "latest.json").is_file():
            earlier = json.loads((out / "latest.json").read_text())
            for transport, entry in earlier.get("transports", {}).items():
                document["transports"].setdefault(transport, dict(entry, started=earlier.get("started"), rounds=earlier.get("rounds")))
        for name in ("%s.json" % stamp, "latest.json"):
            (out / name).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
        plot(document, out / "latest.png")
        if not (out / "latest.png").stat().st_size:
            raise BenchError("the plot is empty")
        print()
        print(project.report(document, project.Fleet()))
        log("results in %s (json and latest.png); %.0f s in all" % (out, document["seconds"]))
    return 0


def run_main(entry, name: str) -> None:
    """A bench script's exit: its status, or a harness failure named in one line and status 1."""
    try:
        sys.exit(entry())
    except BenchError as exc:
        print("%s: FAILED: %s" % (name, exc), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    run_main(main, "bench")
