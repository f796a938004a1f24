"""Power cuts during install, upgrade, rollback and uninstall, replayed from a real kernel's block log.

``tests/reliability`` kills the module with ``kill -9``: that proves the order of its steps, but
the page cache keeps every write of a killed process. A cut power keeps only what reached the
disk. So, in a VM (vm.py) with Debian's kernel:

1. ``record``: the versions dir and the bin dir live on an ext4 made on ``/dev/mapper/`` +
   ``DM_NAME``, a ``log-writes`` target over an empty data disk (/dev/vdb) that appends every write
   to a log disk (/dev/vdc). The user's own files go there first; then the operations run as
   playbooks over SSH (cni_release from a mirror on the host, cni_install), each between two
   marks, with a ``sync`` after it. The VM is powered off and the log disk copied out.
2. ``check`` (on the host, in a private mount namespace, run as ``python -m testbed_lib.power_cut``):
   the log is replayed (logwrites.py) onto a zeroed image, and the disk as it was at each flush or
   FUA entry of an operation (every ``every``-th of them) is mounted at /opt/cni, as the node had
   it. Each must show: ``current`` complete, every link resolving to a runnable plugin or as it
   was, each of the user's files somewhere, ``e2fsck -fn`` clean; for every ``settle_every``-th
   state the operation run again (in-process) ends where the uncut run ended, says ``changed``
   exactly when it had something to do, and a run after that changes nothing.

The host's own /opt is never touched: the checker refuses to mount unless it is in a mount
namespace of its own, where a tmpfs covers /opt first.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

DM_NAME = "nodeprep-logw"
MOUNT = "/opt/cni"
VERSIONS_DIR = MOUNT + "/versions"
BIN_DIR = MOUNT + "/bin"
# The logged filesystem holds every dir the operations write; each is bound to its node path.
LOGGED = "/srv/nodeprep-logged"
CONTAINERD_DIR = "/etc/containerd"
UNIT_DIR = "/etc/systemd/system"
STATE_DIR = "/var/lib/nodeprep"
BINDS = {"cni": MOUNT, "containerd": CONTAINERD_DIR, "units": UNIT_DIR, "state": STATE_DIR}
# Where the checker mounts a crash state (/opt/cni is bound to its cni/, as in the VM).
IMAGE_MOUNT = "/opt/.nodeprep-logged"
DATA_DISK, LOG_DISK = "/dev/vdb", "/dev/vdc"
# Small on purpose: the whole data disk is copied once per crash state.
DISKS = ("64M", "512M")
OPERATIONS = ("install", "upgrade", "rollback", "uninstall")
CONFIG_OPERATIONS = ("containerd", "containerd-absent", "netns", "netns-absent")
CONTAINERD_CONFIG = CONTAINERD_DIR + "/config.toml"
CONTAINERD_STATE = CONTAINERD_DIR + "/nodeprep-cni-state.json"
NETNS_UNITS = (UNIT_DIR + "/run-netns.mount", UNIT_DIR + "/nodeprep-netns-propagation.service")
NETNS_RECORD = STATE_DIR + "/netns.json"
# Each must be whole after a cut, as before the operation or as after it: the config with the
# user's registry login, the record that takes our edit back, the units and the role's record.
CONFIG_FILES = (CONTAINERD_CONFIG, CONTAINERD_STATE) + NETNS_UNITS + (NETNS_RECORD,)
# The node's containerd config before us: the user's, with a registry password that must survive.
USER_CONTAINERD_CONFIG = (b'version = 2\n[plugins."io.containerd.grpc.v1.cri".cni]\n  bin_dir = "/usr/lib/cni"\n'
                          b'  conf_dir = "/etc/cni/net.d"\n'
                          b'[plugins."io.containerd.grpc.v1.cri".registry.configs."registry.example".auth]\n'
                          b'  username = "robot"\n  password = "s3cret-of-the-user"\n')
CONTAINERD_VERSION = "1.7.24"
VERSIONS = {"install": "9.0.0", "upgrade": "9.1.0"}
PLUGINS = ("bridge", "host-local", "loopback", "portmap")
# What the node holds before us: an add-on's own bridge (adopted on install, given back on
# uninstall) and a plugin of another project that we never touch.
USER_FILES = {
    BIN_DIR + "/bridge": b"#!/bin/sh\n# bridge dropped here by an add-on's init container\necho '{}'\n",
    BIN_DIR + "/calico": b"\x7fELF calico plugin, not ours\n" + bytes(range(256)) * 16,
}
VERSION_ANSWER = 'echo \'{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}\''
TIMEOUT = 600
# ext4's default, and its weakest ordering: metadata journaled, file data written whenever, and no
# flush of a file's data when it is renamed over another. Code that fsyncs what it must passes
# under both; code that counts on ext4's ordering fails under the second.
ORDERED = "data=ordered"
WRITEBACK = "data=writeback,noauto_da_alloc"
# The control: the common "write a temp file, rename it into place" without any fsync, left to
# the filesystem's periodic commit (5 s) before a sync. Under WRITEBACK some crash state must show
# its name with the content missing, or the replay proves nothing.
CONTROL = "control"
CONTROL_FILE = BIN_DIR + "/control"
CONTROL_WRITER = "seq 100000 > {0}/.control.new && mv {0}/.control.new {1} && sleep 7 && sync".format(BIN_DIR, CONTROL_FILE)


def end_mark(operation: str) -> str:
    return operation + "-synced"


# --- the releases and the module's arguments -------------------------------------------------------

def build_releases(root: Path) -> dict:
    """Two releases of script plugins (each answers CNI's VERSION command), small enough that the
    log holds every byte."""
    from testbed_lib.releases import dir_member, file_member, pack, write_release

    built = {}
    for operation, version in VERSIONS.items():
        members = [dir_member("./"), file_member("./LICENSE", b"license text\n", 0o644)]
        members += [file_member("./" + name, ("#!/bin/sh\n# %s %s\n%s\n" % (name, version, VERSION_ANSWER)).encode(),
                                0o755) for name in PLUGINS]
        built[operation] = write_release(root, version, "amd64", pack(members), plugins=list(PLUGINS))
    return built


def install_args(operation: str, src: str | None = None) -> dict:
    args = {"versions_dir": VERSIONS_DIR, "bin_dir": BIN_DIR, "link_dirs": [], "lock_timeout": 60,
            "probe_timeout": 60}
    if operation in VERSIONS:
        args.update(src=src, version=VERSIONS[operation])
    elif operation == "rollback":
        args["state"] = "rollback"
    else:
        args["state"] = "absent"
    return args


def containerd_args(operation: str) -> dict:
    args = {"path": CONTAINERD_CONFIG, "containerd_version": CONTAINERD_VERSION, "validate": False}
    if operation == "containerd":
        args["bin_dirs"] = [BIN_DIR]
    else:
        args["state"] = "absent"
    return args


def playbook(operation: str, base_url: str, release) -> list:
    if operation.startswith("containerd"):
        tasks = [{"name": "Point containerd at the plugins (%s)" % operation, "nodeprep.cni.containerd_cni": containerd_args(operation)}]
        return [{"name": "Power-cut recording: " + operation, "hosts": "all", "gather_facts": False, "tasks": tasks}]
    if operation.startswith("netns"):
        return [{"name": "Power-cut recording: " + operation, "hosts": "all", "gather_facts": False,
                 "tasks": [{"name": "Run the netns role", "ansible.builtin.include_role": {"name": "nodeprep.cni.netns"},
                            "vars": {"netns_state": "absent" if operation.endswith("absent") else "present"}}]}]
    tasks = []
    if operation in VERSIONS:
        tasks.append({"name": "Fetch the release", "register": "fetched", "nodeprep.cni.cni_release": {
            "version": VERSIONS[operation], "base_url": base_url, "checksum": "sha256:" + release.sha256}})
    module = install_args(operation, "{{ fetched.path }}" if operation in VERSIONS else None)
    tasks.append({"name": "Run cni_install (%s)" % operation, "nodeprep.cni.cni_install": module})
    return [{"name": "Power-cut recording: " + operation, "hosts": "all", "gather_facts": False, "tasks": tasks}]


# --- recording in a VM --------------------------------------------------------------------------------

@dataclass
class Recording:
    log: Path  # the log disk, raw
    data_size: int  # bytes of the data disk (replay starts from that many zeros)
    seconds: dict = field(default_factory=dict)
    results: dict = field(default_factory=dict)  # operation -> whether its run changed something
    config_operations: tuple = CONFIG_OPERATIONS
    operations: tuple = OPERATIONS


def _in_vm(node, command) -> None:
    # Generous: under software emulation on a loaded machine even a sync can take minutes.
    node.run(command, timeout=TIMEOUT)


def _mark(node, name: str) -> None:
    _in_vm(node, ["dmsetup", "message", DM_NAME, "0", "mark", name])


def record(node, workdir: Path, releases: dict, mirror, mount_options: str = ORDERED,
           config_operations: tuple = CONFIG_OPERATIONS, operations: tuple = OPERATIONS) -> Recording:
    """Runs the operations in the booted VM ``node`` (started with ``disks=DISKS``) over the logged
    disk mounted with ``mount_options``, then the control writer; powers the VM off and copies the
    log out."""
    from testbed_lib import ansible_runner, vm

    started = time.monotonic()
    timings = {}
    _in_vm(node, "modprobe dm-log-writes && dmsetup create %s --table \"0 $(blockdev --getsz %s) log-writes %s %s\"" % (
        DM_NAME, DATA_DISK, DATA_DISK, LOG_DISK))
    # Inode tables and journal written now, so no background zeroing runs into the operations.
    _in_vm(node, ["mkfs.ext4", "-q", "-E", "nodiscard,lazy_itable_init=0,lazy_journal_init=0", "/dev/mapper/" + DM_NAME])
    _in_vm(node, ["mkdir", "-p", LOGGED])
    _in_vm(node, ["mount", "-o", mount_options, "/dev/mapper/" + DM_NAME, LOGGED])
    for sub, target in BINDS.items():
        # The unit dir keeps what the node has there (enabled units); the others start empty.
        _in_vm(node, "mkdir -p {0}/{1} {2} && cp -a {2}/. {0}/{1}/ && mount --bind {0}/{1} {2}".format(LOGGED, sub, target))
    _in_vm(node, ["mkdir", "-p", BIN_DIR])
    for path, data in USER_FILES.items():
        node.write_file(path, data, 0o755)
    node.write_file(CONTAINERD_CONFIG, USER_CONTAINERD_CONFIG, 0o600)
    _in_vm(node, ["sync"])
    _mark(node, "setup")
    inventory = ansible_runner.write_inventory(workdir / "inventory.yml", [node])
    base_url = vm.guest_url(mirror.base_url)
    results = {}
    for operation in tuple(operations) + tuple(config_operations):
        book = workdir / ("%s.yml" % operation)
        book.write_text(json.dumps(playbook(operation, base_url, releases.get(operation)), indent=1))
        _mark(node, operation)
        began = time.monotonic()
        result = ansible_runner.run_playbook(book, inventory, timeout=TIMEOUT)
        timings[operation] = round(time.monotonic() - began, 1)
        if result.rc != 0:
            raise AssertionError("%s failed in the VM:\n%s" % (operation, result.describe()))
        results[operation] = {"changed": result.changed(node.name) > 0}
        _in_vm(node, ["sync"])
        _mark(node, end_mark(operation))
    _mark(node, CONTROL)
    _in_vm(node, CONTROL_WRITER)
    _mark(node, end_mark(CONTROL))
    for target in reversed(list(BINDS.values())):
        _in_vm(node, ["umount", target])
    _in_vm(node, ["umount", LOGGED])
    _in_vm(node, ["dmsetup", "remove", DM_NAME])
    timings["record"] = round(time.monotonic() - started, 1)
    node.stop(keep=True)
    if node.last_exit != "poweroff":
        raise AssertionError("the VM did not power off cleanly: %s" % node.qemu_output())
    log = workdir / "log.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(node.disk_path(1)), str(log)], check=True, timeout=TIMEOUT)
    size = json.loads(subprocess.run(["qemu-img", "info", "--output", "json", str(node.disk_path(0))],
                                     capture_output=True, text=True, check=True).stdout)["virtual-size"]
    return Recording(log, size, timings, results, tuple(config_operations), tuple(operations))


# --- checking the crash states (host, private mount namespace) ---------------------------------------

def check_in_namespace(recording: Recording, workdir: Path, releases: dict, every: int = 1,
                       settle_every: int = 1) -> dict:
    """Runs ``check`` in a child process in a mount namespace of its own; returns its report."""
    spec = {"log": str(recording.log), "data_size": recording.data_size, "workdir": str(workdir),
            "every": every, "settle_every": settle_every, "parent_namespace": mount_namespace(),
            "config_operations": list(recording.config_operations), "operations": list(recording.operations),
            "sources": {operation: str(release.path) for operation, release in releases.items()}}
    spec_path = workdir / "check.json"
    spec_path.write_text(json.dumps(spec))
    report_path = workdir / "report.json"
    completed = subprocess.run(["unshare", "--mount", "--propagation", "private", "--",
                                sys.executable, "-m", "testbed_lib.power_cut", str(spec_path), str(report_path)],
                               cwd=str(REPO), capture_output=True, text=True, timeout=3600, check=False)
    if completed.returncode != 0 or not report_path.exists():
        raise AssertionError("the crash-state check failed (exit %d):\n%s\n%s" % (
            completed.returncode, completed.stdout[-4000:], completed.stderr[-8000:]))
    return json.loads(report_path.read_text())


def _run(*command: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=check)


def mount_namespace() -> str:
    return os.readlink("/proc/self/ns/mnt")


class Mounted:
    """A crash state mounted at /opt/cni: ``path`` maps a node path to where it is here (the same)."""

    def __init__(self, image: Path):
        self.image = image

    def __enter__(self) -> "Mounted":
        # Mounting replays the ext4 journal, as the next boot after the cut would.
        _run("mount", "-o", "loop", str(self.image), IMAGE_MOUNT)
        _run("mount", "--bind", IMAGE_MOUNT + "/cni", MOUNT)
        return self

    def __exit__(self, *exc_info) -> None:
        _run("umount", MOUNT)
        _run("umount", IMAGE_MOUNT)

    @staticmethod
    def path(inside: str) -> Path:
        for sub, target in BINDS.items():
            if target != MOUNT and (inside == target or inside.startswith(target + "/")):
                return Path(IMAGE_MOUNT, sub, inside[len(target):].lstrip("/"))
        return Path(inside)

    @classmethod
    def read(cls, inside: str) -> bytes | None:
        try:
            return cls.path(inside).read_bytes()
        except FileNotFoundError:
            return None


def user_places() -> dict:
    """How many names each of the user's files has on the logged filesystem."""
    wanted = {hashlib.sha256(data).hexdigest(): path for path, data in USER_FILES.items()}
    places = dict.fromkeys(USER_FILES, 0)
    for directory, _dirs, files in os.walk(MOUNT):
        for name in files:
            path = os.path.join(directory, name)
            if os.path.islink(path):
                continue
            with open(path, "rb") as handle:
                digest = hashlib.sha256(handle.read()).hexdigest()
            if digest in wanted:
                places[wanted[digest]] += 1
    return places


def temps() -> list:
    from tests.reliability import install_support as support

    return sorted(os.path.join(directory, name) for directory, dirs, files in os.walk(MOUNT)
                  for name in files + dirs if support.TEMP_NAME.match(name))


def fsck(image: Path) -> str | None:
    """None when ``e2fsck -fn`` finds the filesystem clean, else its report."""
    result = _run("e2fsck", "-fn", str(image), check=False)
    return None if result.returncode == 0 else "e2fsck exit %d: %s" % (result.returncode, result.stdout[-1500:])


def _settle(operation: str, sources: dict, expected: dict, before: dict) -> list:
    from ansible_collections.nodeprep.cni.plugins.modules import cni_install
    from tests.reliability import install_support as support
    from testbed_lib.in_process import run_module_in_process

    problems = []
    args = install_args(operation, sources.get(operation))
    settled = run_module_in_process(cni_install, args)
    if settled.get("failed"):
        return ["the next run failed: %s" % settled.get("msg")]
    after = support.picture(Mounted)
    if after != expected:
        problems.append("the next run left %s, the uncut run %s" % (after, expected))
    if settled["changed"] != (before != expected):
        problems.append("the next run said changed=%s with the state %s to reach %s" % (
            settled["changed"], "already" if before == expected else "not yet", expected))
    if temps():
        problems.append("temp names left after the next run: %s" % temps())
    if set(user_places().values()) != {1}:
        problems.append("after the next run the user's files have %s names" % user_places())
    again = run_module_in_process(cni_install, args)
    if again.get("failed") or again["changed"]:
        problems.append("a run after the settling one: changed=%s %s" % (again.get("changed"), again.get("msg", "")))
    return problems


def config_problems(start: dict, end: dict) -> tuple[list, bool]:
    """A crash state of the containerd config write or of the netns units: each of CONFIG_FILES
    whole, as before the run or as after it; the config never changed without its undo record;
    each enabled unit complete."""
    problems = []
    now = {path: Mounted.read(path) for path in start}
    for path, data in now.items():
        if data not in (start[path], end[path]):
            problems.append("%s is neither as before the run nor as after it: %r" % (path, (data or b"")[:120]))
    if now[CONTAINERD_CONFIG] != start[CONTAINERD_CONFIG] and now[CONTAINERD_CONFIG] == end[CONTAINERD_CONFIG] \
            and end[CONTAINERD_STATE] is not None and now[CONTAINERD_STATE] != end[CONTAINERD_STATE]:
        problems.append("%s holds the edit but %s does not record it yet" % (CONTAINERD_CONFIG, CONTAINERD_STATE))
    units = Mounted.path(UNIT_DIR)
    for link in units.glob("*.wants/*"):
        name = UNIT_DIR + "/" + link.name
        if link.is_symlink() and name in now and now[name] != end.get(name) and now[name] != start.get(name):
            problems.append("%s is enabled but its unit file is torn" % link.name)
    if now.get(CONTAINERD_CONFIG) not in (None, USER_CONTAINERD_CONFIG) and b"s3cret-of-the-user" not in now[CONTAINERD_CONFIG]:
        problems.append("the user's registry settings are gone from %s" % CONTAINERD_CONFIG)
    return problems, now == end


def check(spec: dict) -> dict:
    """Every selected crash state of every operation, checked; a report of counts and problems."""
    from testbed_lib.logwrites import Replayer, fresh_image, read_log
    from tests.reliability import install_support as support

    if mount_namespace() == spec["parent_namespace"]:
        raise SystemExit("refusing to mount over %s outside a private mount namespace" % MOUNT)
    _run("mount", "-t", "tmpfs", "-o", "mode=0755", "nodeprep-power-cut", "/opt")
    os.makedirs(MOUNT)
    os.makedirs(IMAGE_MOUNT)
    workdir = Path(spec["workdir"])
    log = read_log(spec["log"])
    marks = log.marks()
    started = time.monotonic()
    state = workdir / "state.img"
    pictures, files = {}, {}
    with Replayer(log, fresh_image(workdir / "marks.img", spec["data_size"])) as replay:
        names = [m for op in tuple(spec["operations"]) + tuple(spec["config_operations"]) for m in (op, end_mark(op))]
        for name in ["setup"] + names + [end_mark(CONTROL)]:
            replay.advance(marks[name])
            with Mounted(replay.snapshot(state)):
                pictures[name] = support.picture(Mounted, dirs=(BIN_DIR,))
                files[name] = {path: Mounted.read(path) for path in CONFIG_FILES}
    control_entry = pictures[end_mark(CONTROL)]["entries"].get(CONTROL_FILE)
    report = {"entries": len(log.entries), "operations": {}, "problems": []}
    with Replayer(log, fresh_image(workdir / "replay.img", spec["data_size"])) as replay:
        for operation in spec["operations"]:
            points = log.durable_points(marks[operation], marks[end_mark(operation)])
            chosen = points[::spec["every"]]
            if points and chosen[-1] != points[-1]:
                chosen.append(points[-1])  # the last flush of an operation is always one of them
            start, expected = pictures[operation], pictures[end_mark(operation)]
            figures = {"flush_points": len(points), "checked": 0, "settled": 0, "reached_end": 0}
            for number, index in enumerate(chosen):
                where = "%s, entry %d (flush %d of %d)" % (operation, index, points.index(index) + 1, len(points))
                replay.advance(index)
                image = replay.snapshot(state)
                problems = []
                with Mounted(image):
                    before = support.picture(Mounted, dirs=(BIN_DIR,))
                    problems += support.invariant_problems(Mounted, start, pictures["setup"], dirs=(BIN_DIR,))
                    lost = [path for path, count in user_places().items() if count == 0]
                    if lost:
                        problems.append("the user's %s is gone" % ", ".join(lost))
                    figures["reached_end"] += int(before == expected)
                    if number % spec["settle_every"] == 0 or index == chosen[-1]:
                        problems += _settle(operation, spec["sources"], expected, before)
                        figures["settled"] += 1
                damage = fsck(image)
                if damage:
                    problems.append(damage)
                figures["checked"] += 1
                report["problems"] += ["%s: %s" % (where, problem) for problem in problems]
            report["operations"][operation] = figures
        for operation in spec["config_operations"]:
            points = log.durable_points(marks[operation], marks[end_mark(operation)])
            chosen = points[::spec["every"]]
            if points and chosen[-1] != points[-1]:
                chosen.append(points[-1])
            figures = {"flush_points": len(points), "checked": 0, "settled": 0, "reached_end": 0}
            for index in chosen:
                where = "%s, entry %d (flush %d of %d)" % (operation, index, points.index(index) + 1, len(points))
                replay.advance(index)
                image = replay.snapshot(state)
                with Mounted(image):
                    problems, at_end = config_problems(files[operation], files[end_mark(operation)])
                damage = fsck(image)
                if damage:
                    problems.append(damage)
                figures["checked"] += 1
                figures["reached_end"] += int(at_end)
                report["problems"] += ["%s: %s" % (where, problem) for problem in problems]
            report["operations"][operation] = figures
        control = {"flush_points": 0, "torn": 0}
        for index in log.durable_points(marks[CONTROL], marks[end_mark(CONTROL)]):
            replay.advance(index)
            with Mounted(replay.snapshot(state)):
                found = support.picture(Mounted, dirs=(BIN_DIR,))["entries"].get(CONTROL_FILE)
            control["flush_points"] += 1
            control["torn"] += int(found is not None and found != control_entry)
        report["control"] = control
    report["seconds"] = round(time.monotonic() - started, 1)
    return report


def main(argv: list[str]) -> int:
    for entry in (str(REPO / ".cache" / "collections"), str(REPO)):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    spec = json.loads(Path(argv[0]).read_text())
    report = check(spec)
    Path(argv[1]).write_text(json.dumps(report, indent=1, sort_keys=True))
    return 0


def describe(report: dict) -> str:
    lines = ["%-10s %5s flush/FUA points, %4s crash states checked, %4s settled by a next run, "
             "%4s already at the end state" % (op, f["flush_points"], f["checked"], f["settled"], f["reached_end"])
             for op, f in report["operations"].items()]
    lines.append("control (rename without fsync): %(torn)d of %(flush_points)d crash states show it torn" % report["control"])
    lines.append("log entries %d, check %.0f s, problems %d" % (report["entries"], report["seconds"],
                                                                len(report["problems"])))
    return "\n".join(lines + report["problems"][:40])


def run(workdir: Path, every: int = 1, settle_every: int = 1, mount_options: str = WRITEBACK,
        config_operations: tuple = CONFIG_OPERATIONS, operations: tuple = OPERATIONS) -> dict:
    """Boots a VM, records the operations (the plugins', then ``config_operations``), checks the
    crash states; the report with the figures."""
    from testbed_lib import vm
    from testbed_lib.http_server import LocalServer

    workdir.mkdir(parents=True, exist_ok=True)
    releases = build_releases(workdir / "mirror")
    node = vm.VirtualNode("power-cut", workdir / "vm", disks=DISKS, boot_timeout=TIMEOUT, stop_timeout=TIMEOUT)
    try:
        node.start()
        boot = dict(node.timings)
        with LocalServer(workdir / "mirror") as mirror:
            recording = record(node, workdir, releases, mirror, mount_options, config_operations, operations)
        report = check_in_namespace(recording, workdir, releases, every, settle_every)
    finally:
        node.stop()
    report.update(boot=boot, record=recording.seconds, results=recording.results, mount_options=mount_options)
    return report


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
