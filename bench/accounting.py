"""What one ansible-playbook run costs the controller: CPU seconds and peak memory of its process tree.

Each run starts inside a cgroup of its own (cgroup v2, which tracks CPU time for every cgroup even
where no controller is enabled, as on hosts whose other hierarchies are v1). Everything the run
forks stays in it, daemonised SSH ControlPersist masters included, so the cgroup's ``cpu.stat``
(user + system) is the whole tree's CPU, exited processes counted. Processes that work *on a node*
leave it: over SSH they are the node's sshd's children anyway; over the test bed's nsenter
connection the connection's wrapper moves itself into a second cgroup ("node side") before it
enters the node, so the module runs charged to the nodes, not to the controller.

Memory: a thread samples the cgroup's processes every ``interval`` seconds and sums their RSS and
PSS (``/proc/<pid>/smaps_rollup``); the peak of each sum is kept. RSS counts a page once per
process that maps it (forked workers share most of their parent's pages copy-on-write), so its sum
overstates; PSS splits each shared page between its users, so its sum is what the tree really
holds. A peak shorter than the interval can be missed. Page cache (the controller's tarball cache)
is not process memory and is not counted.
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

CGROUP_PARENT = "nodeprep-bench"


def parse_cpu_stat(text: str) -> tuple[float, float]:
    """(user, system) seconds from a cgroup v2 ``cpu.stat``."""
    fields = dict(line.split(None, 1) for line in text.splitlines() if line.strip())
    try:
        return int(fields["user_usec"]) / 1e6, int(fields["system_usec"]) / 1e6
    except KeyError as exc:
        raise ValueError("cpu.stat has no %s line" % exc) from exc


def parse_smaps_rollup(text: str) -> tuple[int, int]:
    """(Rss, Pss) in bytes from ``/proc/<pid>/smaps_rollup``."""
    found = {}
    for line in text.splitlines():
        name, _sep, rest = line.partition(":")
        if name in ("Rss", "Pss"):
            value, unit = rest.split()
            if unit != "kB":
                raise ValueError("unexpected unit %r in smaps_rollup" % unit)
            found[name] = int(value) * 1024
    if set(found) != {"Rss", "Pss"}:
        raise ValueError("smaps_rollup has no Rss and Pss lines")
    return found["Rss"], found["Pss"]


def read_pids(procs_file: Path) -> list[int]:
    try:
        return [int(p) for p in procs_file.read_text().split()]
    except OSError:
        return []


def rss_pss(pid: int) -> tuple[int, int] | None:
    try:
        return parse_smaps_rollup(Path("/proc/%d/smaps_rollup" % pid).read_text())
    except (OSError, ValueError):
        return None  # gone between the listing and the read, or a kernel thread


def pss_of(pids: list[int]) -> int:
    return sum(found[1] for found in map(rss_pss, pids) if found)


def cgroup2_root() -> Path | None:
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        for line in mountinfo:
            fields = line.split()
            if fields[fields.index("-") + 1] == "cgroup2":
                return Path(fields[4])
    return None


class Cgroup:
    """One cgroup v2 directory: who is in it and the CPU they used."""

    def __init__(self, path: Path):
        self.path = path
        path.mkdir(parents=True, exist_ok=True)

    @property
    def procs_file(self) -> Path:
        return self.path / "cgroup.procs"

    def pids(self) -> list[int]:
        return read_pids(self.procs_file)

    def cpu(self) -> tuple[float, float]:
        return parse_cpu_stat((self.path / "cpu.stat").read_text())

    def end_leftovers(self, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL, to what a run left behind in its cgroup (SSH ControlPersist
        masters); returns how many there were. Waits until the cgroup is empty."""
        left = self.pids()
        deadline = time.monotonic() + timeout
        signum = signal.SIGTERM
        while self.pids():
            for pid in self.pids():
                try:
                    os.kill(pid, signum)
                except ProcessLookupError:
                    pass
            if time.monotonic() > deadline:
                if signum == signal.SIGKILL:
                    raise RuntimeError("processes %s stay in %s" % (self.pids(), self.path))
                signum, deadline = signal.SIGKILL, time.monotonic() + 5
            time.sleep(0.05)
        return len(left)

    def remove(self) -> None:
        try:
            self.path.rmdir()
        except OSError:
            pass


class MemorySampler(threading.Thread):
    """Peak summed RSS and PSS of a cgroup's processes, sampled every ``interval`` seconds."""

    def __init__(self, cgroup: Cgroup, interval: float = 0.5):
        super().__init__(daemon=True)
        self.cgroup = cgroup
        self.interval = interval
        self.peak_rss = 0
        self.peak_pss = 0
        self.peak_processes = 0
        self.samples = 0
        self._stop_event = threading.Event()

    def sample(self) -> None:
        rss = pss = count = 0
        for found in map(rss_pss, self.cgroup.pids()):
            if found:
                rss, pss, count = rss + found[0], pss + found[1], count + 1
        self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
        self.peak_processes = max(self.peak_processes, count)
        self.samples += 1

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._stop_event.set()
        if self.ident is not None:
            self.join()


@dataclass
class Cost:
    user: float
    system: float
    peak_rss: int
    peak_pss: int
    peak_processes: int
    samples: int
    leftovers: int

    @property
    def cpu(self) -> float:
        return self.user + self.system

    def as_dict(self) -> dict:
        return {"cpu": self.cpu, "cpu_user": self.user, "cpu_system": self.system, "peak_rss": self.peak_rss,
                "peak_pss": self.peak_pss, "peak_processes": self.peak_processes, "memory_samples": self.samples,
                "leftovers": self.leftovers}


class Accounting:
    """The bench's cgroups: one per playbook run for the controller, one for node-side work."""

    def __init__(self, interval: float = 0.5):
        root = cgroup2_root()
        if root is None:
            raise RuntimeError("no cgroup v2 hierarchy is mounted: the controller's CPU cannot be measured")
        self.base = root / CGROUP_PARENT / str(os.getpid())
        self.node_side = Cgroup(self.base / "node-side")
        self.interval = interval
        self.runs = 0

    def wrapper_line(self) -> str:
        """The shell line a connection wrapper runs first to charge what follows to the nodes."""
        return 'echo $$ > %s || exit 1' % self.node_side.procs_file

    def command(self, cgroup: Cgroup, command: list[str]) -> list[str]:
        """``command`` started inside ``cgroup`` (the shell writes itself in, then execs it)."""
        return ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(cgroup.procs_file)] + list(command)

    def new_run(self) -> Cgroup:
        self.runs += 1
        return Cgroup(self.base / ("run-%d" % self.runs))

    @contextlib.contextmanager
    def measured(self):
        """A new run's cgroup with its memory sampler going (start the run with command(run.cgroup, ...));
        when the block ends, whatever the run left is ended and run.cost holds its totals."""
        cgroup = self.new_run()
        run = MeasuredRun(cgroup, MemorySampler(cgroup, self.interval))
        run.sampler.start()
        try:
            yield run
        finally:
            run.cost = finish(cgroup, run.sampler)

    def node_cpu(self) -> float:
        user, system = self.node_side.cpu()
        return user + system

    def close(self) -> None:
        for cgroup in (self.node_side,):
            cgroup.end_leftovers()
            cgroup.remove()
        for child in self.base.glob("run-*"):
            Cgroup(child).remove()
        for directory in (self.base, self.base.parent):
            try:
                directory.rmdir()
            except OSError:
                pass


@dataclass
class MeasuredRun:
    """One run of Accounting.measured(): its cgroup, its sampler, and its Cost once the block ended."""
    cgroup: Cgroup
    sampler: MemorySampler
    cost: Cost | None = field(default=None)


def finish(cgroup: Cgroup, sampler: MemorySampler) -> Cost:
    """After the run's main process ended: leftovers ended, the last sample, the totals."""
    sampler.sample()
    sampler.stop()
    leftovers = cgroup.end_leftovers()
    user, system = cgroup.cpu()
    cgroup.remove()
    return Cost(user, system, sampler.peak_rss, sampler.peak_pss, sampler.peak_processes, sampler.samples, leftovers)


def memory_available() -> int:
    """MemAvailable of the machine, in bytes."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("/proc/meminfo has no MemAvailable")
