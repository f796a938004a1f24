"""Throwaway test nodes: a Debian rootfs booted with real systemd under systemd-nspawn.

Each node is an overlayfs over one cached, read-only rootfs, mounted in the host's mount
namespace so that the host (and Ansible's chroot connection, which checks paths on the host)
can see the node's files. Commands run inside the node's namespaces through nsenter.
"""
from __future__ import annotations

import os
import re
import secrets
import shlex
import signal
import subprocess
import time
from pathlib import Path

from testbed_lib import runtimes

TESTBED_CACHE = Path("/var/cache/nodeprep-testbed")
ROOTFS_CACHE = TESTBED_CACHE / "rootfs-bookworm"
# Debian suites with a containerd rootfs: bookworm 1.6.20, trixie 1.7.24, sid 2.1.9.
SUITES = ("bookworm", "trixie", "sid")
ROOTFS_STAMP = ".nodeprep-testbed-complete"
INOTIFY_INSTANCES = 8192
NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Plain systemd-nspawn fails here (no system bus, PID 1 is not systemd). A private mount
# namespace with a tmpfs on /run/systemd gives it scratch space that never touches the host.
NSPAWN_SCRIPT = 'mount -t tmpfs tmpfs /run/systemd && exec systemd-nspawn -q --register=no --keep-unit "$@"'
# With --keep-unit nspawn puts the node under its own cgroup ("payload"/"supervisor"); started
# from the root cgroup every node would share one. Moving the shell into a cgroup of its own
# first keeps nodes apart and gives stop() a cgroup to clean.
JOIN_CGROUPS = 'for procs in $NODEPREP_CGROUP_PROCS; do echo $$ > "$procs" || exit 1; done; '
CGROUP_PARENT = "nodeprep-testbed"

CHROOT_WRAPPER = """#!/bin/sh
# chroot_exe for community.general.chroot, written by testbed_lib/node.py.
# Called as: <this> <chroot path on the host> <shell> -c <command>. The node's own mount
# namespace already has its rootfs as root, so the host path is dropped and nsenter takes the
# node's root and working directory instead.
shift
exec nsenter -t {pid} -m -u -i -n -p -C -r -w -- env -i PATH={path} LANG=C.UTF-8 HOME=/root "$@"
"""


class NodeError(RuntimeError):
    """A node did not boot, or a command inside it failed."""


def rootfs_path(suite: str = "bookworm", containerd: bool = False) -> Path:
    """The cached rootfs for a suite: plain bookworm, or a suite's rootfs with containerd and runc.

    Only bookworm has a plain rootfs; trixie and sid nodes always come with containerd.
    """
    if suite not in SUITES:
        raise NodeError("unknown suite %r: use one of %s" % (suite, ", ".join(SUITES)))
    if suite == "bookworm" and not containerd:
        return ROOTFS_CACHE
    return TESTBED_CACHE / ("rootfs-containerd-%s" % suite)


def nspawn_prefix() -> list[str]:
    """The command that runs systemd-nspawn in a private mount namespace (append nspawn options)."""
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", JOIN_CGROUPS + NSPAWN_SCRIPT, "nspawn"]


def cgroup_hierarchies() -> list[Path]:
    """Mount points of the hierarchies systemd uses: cgroup2 and the v1 name=systemd one."""
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        for line in mountinfo:
            fields = line.split()
            separator = fields.index("-")
            fstype, options = fields[separator + 1], fields[separator + 3]
            if fstype == "cgroup2" or (fstype == "cgroup" and "name=systemd" in options.split(",")):
                found.append(Path(fields[4]))
    return found


def _remove_cgroup_tree(path: Path) -> None:
    if not path.is_dir():
        return
    for child in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        try:
            child.rmdir()
        except OSError:
            pass
    try:
        path.rmdir()
    except OSError:
        pass


def private_cgroups(name: str) -> tuple[list[Path], dict[str, str]]:
    """Fresh cgroups for one nspawn run, and the environment that makes nspawn_prefix() join them."""
    cgroups = [root / CGROUP_PARENT / name for root in cgroup_hierarchies()]
    for cgroup in cgroups:
        cgroup.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, NODEPREP_CGROUP_PROCS=" ".join(str(c / "cgroup.procs") for c in cgroups))
    return cgroups, env


def remove_cgroups(cgroups: list[Path]) -> None:
    for cgroup in cgroups:
        _remove_cgroup_tree(cgroup)


def raise_inotify_limit(minimum: int = INOTIFY_INSTANCES) -> None:
    """Each booted systemd takes several inotify instances; the default 128 caps nodes at ~15."""
    knob = Path("/proc/sys/fs/inotify/max_user_instances")
    if int(knob.read_text()) < minimum:
        knob.write_text(str(minimum))


def machine_name(name: str) -> str:
    """A unique, hostname-safe machine name, so parallel nodes never collide."""
    base = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:40] or "node"
    return "np-%s-%s" % (base, secrets.token_hex(3))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] == "Z"


def _children(pid: int) -> list[int]:
    children = []
    try:
        tasks = list(Path("/proc/%d/task" % pid).glob("*/children"))
    except OSError:
        return children  # the process ended while the tree was walked: it has no children now
    for task in tasks:
        try:
            children.extend(int(c) for c in task.read_text().split())
        except OSError:
            continue
    return children


def _descendants(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        for child in _children(queue.pop()):
            found.append(child)
            queue.append(child)
    return found


def _namespace_pid(pid: int) -> int | None:
    """The pid a process has in its own (innermost) PID namespace."""
    try:
        for line in Path("/proc/%d/status" % pid).read_text().splitlines():
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
    except OSError:
        return None
    return None


def _is_mounted(path: Path) -> bool:
    target = str(path)
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        return any(line.split()[4] == target for line in mountinfo)


class BootedNode:
    """One booted node. Use as a context manager, or call start() and stop()."""

    def __init__(self, name: str, workdir: str | os.PathLike, private_network: bool = False,
                 readonly_usr: bool = False, rootfs_cache: Path | None = None,
                 boot_timeout: float = 60.0, detached: bool = False, suite: str = "bookworm",
                 containerd: bool = False, os_release: str | None = None,
                 containerd_version: str | None = None):
        self.name = name
        self.machine = machine_name(name)
        self.workdir = Path(workdir)
        self.private_network = private_network
        self.readonly_usr = readonly_usr
        # A containerd built from its release tag (testbed_lib/runtimes.py) instead of Debian's.
        self.containerd_version = containerd_version
        if containerd_version:
            suite = runtimes.RUNTIME_SUITE
            rootfs_cache = rootfs_cache or runtimes.containerd_rootfs_path(containerd_version)
        self.suite = suite
        self.containerd = containerd or suite != "bookworm" or bool(containerd_version)
        # Replaces /etc/os-release in the node's own layer (other OS families, same userland).
        self.os_release = os_release
        self.rootfs_cache = Path(rootfs_cache) if rootfs_cache else rootfs_path(suite, self.containerd)
        self.boot_timeout = boot_timeout
        # Detached nodes outlive this Python process (tools/testbed.py node-up).
        self.detached = detached
        self.rootfs = self.workdir / "rootfs"
        self.chroot_exe = self.workdir / "chroot-exe"
        self.console_log = self.workdir / "console.log"
        self.leader_pid: int | None = None
        self.pid: int | None = None
        self.cgroups: list[Path] = []
        self._process: subprocess.Popen | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> "BootedNode":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __repr__(self) -> str:
        return "BootedNode(%r, machine=%r, pid=%r)" % (self.name, self.machine, self.pid)

    def start(self) -> "BootedNode":
        if not (self.rootfs_cache / ROOTFS_STAMP).is_file():
            raise NodeError("no complete rootfs at %s: run tools/bootstrap" % self.rootfs_cache)
        raise_inotify_limit()
        try:
            self._mount_overlay()
            self._write_os_release()
            self._launch()
            self.pid = self._find_init_pid()
            self._write_chroot_exe()
            self._wait_until_booted()
        except BaseException:
            self.stop()
            raise
        return self

    def _mount_overlay(self) -> None:
        for sub in ("upper", "work", "rootfs"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        options = "lowerdir=%s,upperdir=%s,workdir=%s" % (
            self.rootfs_cache, self.workdir / "upper", self.workdir / "work")
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(self.rootfs)],
                       check=True, capture_output=True, text=True)

    def open_as_image(self, chroot_exe: str) -> "BootedNode":
        """The node's root mounted but never booted, as an image build sees it, reached through
        *chroot_exe* (called as: <exe> <root on the host> <shell> -c <command>). inventory_vars()
        then points at it; stop() takes the mount back."""
        try:
            self._mount_overlay()
            self.chroot_exe.write_text(chroot_exe)
            self.chroot_exe.chmod(0o755)
        except BaseException:
            self.stop()
            raise
        return self

    def _write_os_release(self) -> None:
        if self.os_release is None:
            return
        target = self.rootfs / "etc/os-release"
        if target.is_symlink() or target.exists():
            target.unlink()
        target.write_text(self.os_release)

    def nspawn_command(self) -> list[str]:
        command = nspawn_prefix() + ["-b", "-D", str(self.rootfs), "--machine", self.machine]
        if self.private_network:
            command.append("--private-network")
        if self.readonly_usr:
            command.append("--bind-ro=%s:/usr" % (self.rootfs / "usr"))
        if self.containerd:
            # containerd needs the keyring and bpf syscalls; its overlayfs snapshots cannot live
            # on the node's own overlayfs root, so its store is a tmpfs.
            command += ["--system-call-filter=@keyring bpf", "--tmpfs=/var/lib/containerd"]
        return command

    def nspawn_environment(self) -> dict[str, str]:
        if not self.containerd:
            return {}
        if self.suite == "sid":
            return {"SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1"}  # sid's systemd refuses cgroup v1
        return {}

    def _launch(self) -> None:
        self.cgroups, env = private_cgroups(self.machine)
        env.update(self.nspawn_environment())
        with open(self.console_log, "ab") as console:
            self._process = subprocess.Popen(
                self.nspawn_command(), stdin=subprocess.DEVNULL, stdout=console,
                stderr=subprocess.STDOUT, start_new_session=True, env=env)
        self.leader_pid = self._process.pid

    def _find_init_pid(self) -> int:
        """The node's systemd: the nspawn descendant that is PID 1 in its own namespace."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            self._fail_if_leader_died()
            for pid in _descendants(self.leader_pid):
                if _namespace_pid(pid) == 1:
                    return pid
            time.sleep(0.05)
        raise NodeError("node %s: no init process after 20 s\n%s" % (self.machine, self.console()))

    def _wait_until_booted(self) -> None:
        deadline = time.monotonic() + self.boot_timeout
        state = ""
        while time.monotonic() < deadline:
            self._fail_if_leader_died()
            state = self.run(["systemctl", "is-system-running"], check=False).stdout.strip()
            if state in ("running", "degraded"):
                return
            time.sleep(0.1)
        raise NodeError("node %s: systemd still %r after %.0f s\n%s"
                        % (self.machine, state, self.boot_timeout, self.console()))

    def _fail_if_leader_died(self) -> None:
        if self._process is not None and self._process.poll() is not None:
            raise NodeError("node %s: systemd-nspawn exited with %s\n%s"
                            % (self.machine, self._process.returncode, self.console()))

    def console(self) -> str:
        try:
            return self.console_log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0, keep: bool = False) -> None:
        """Clean shutdown (SIGTERM to nspawn), then ever harder; always unmounts.

        Removes the node's files unless ``keep``: then start() boots it again on the same layer.
        """
        if self.leader_pid and self._is_our_leader():
            self._terminate_leader(timeout)
        self._kill_leftovers()
        if self._process is not None:
            self._process.poll()  # reap, so no zombie is left behind
        self._unmount()
        if not keep and self.workdir.exists() and not _is_mounted(self.rootfs):
            subprocess.run(["rm", "-rf", "--one-file-system", str(self.workdir)], check=False)
        self.pid = None
        self.leader_pid = None

    def restart(self) -> "BootedNode":
        """A power cycle: a clean shutdown, then a boot on the same overlay upper dir."""
        self.stop(keep=True)
        self.os_release = None  # already in the node's layer
        return self.start()

    def _is_our_leader(self) -> bool:
        # Guards against signalling an unrelated process that reused the pid.
        try:
            cmdline = Path("/proc/%d/cmdline" % self.leader_pid).read_bytes()
        except OSError:
            return False
        return self.machine.encode() in cmdline.split(b"\0")

    def _terminate_leader(self, timeout: float) -> None:
        # nspawn turns SIGTERM into a clean poweroff of the node's systemd.
        self._signal(self.leader_pid, signal.SIGTERM)
        if self._wait_gone(self.leader_pid, timeout):
            return
        self._signal(self.leader_pid, signal.SIGKILL)
        self._wait_gone(self.leader_pid, 5)

    def _kill_leftovers(self) -> None:
        # A killed nspawn leaves the node's init running. Killing PID 1 of the node's PID
        # namespace takes every process of the namespace with it; the cgroup catches the rest
        # (e.g. nsenter'd commands still running).
        if self.pid and pid_alive(self.pid) and _namespace_pid(self.pid) == 1:
            self._signal(self.pid, signal.SIGKILL)
            self._wait_gone(self.pid, 5)
        for _attempt in range(50):
            pids = self._cgroup_pids()
            if not pids:
                break
            for pid in pids:
                self._signal(pid, signal.SIGKILL)
            time.sleep(0.1)
        remove_cgroups(self.cgroups)

    def _cgroup_pids(self) -> set[int]:
        pids = set()
        for cgroup in self.cgroups:
            for procs in cgroup.rglob("cgroup.procs") if cgroup.is_dir() else []:
                try:
                    pids.update(int(p) for p in procs.read_text().split())
                except OSError:
                    continue
        pids.discard(os.getpid())
        return pids

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and pid == self._process.pid:
                if self._process.poll() is not None:
                    return True
            elif not pid_alive(pid):
                return True
            time.sleep(0.05)
        return False

    @staticmethod
    def _signal(pid: int, signum: int) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    def _unmount(self) -> None:
        if not _is_mounted(self.rootfs):
            return
        for _attempt in range(20):
            if subprocess.run(["umount", str(self.rootfs)], capture_output=True, check=False).returncode == 0:
                return
            time.sleep(0.1)
        subprocess.run(["umount", "-l", str(self.rootfs)], check=False)

    # --- inside the node --------------------------------------------------------------------

    def nsenter_command(self, command: list[str] | str) -> list[str]:
        if self.pid is None:
            raise NodeError("node %s is not running" % self.name)
        if isinstance(command, str):
            command = ["sh", "-c", command]
        return ["nsenter", "-t", str(self.pid), "-m", "-u", "-i", "-n", "-p", "-C", "-r", "-w", "--",
                "env", "-i", "PATH=" + NODE_PATH, "LANG=C.UTF-8", "HOME=/root"] + list(command)

    def run(self, command: list[str] | str, check: bool = True, input: str | bytes | None = None,
            timeout: float | None = 120, text: bool = True) -> subprocess.CompletedProcess:
        """Runs a command (argv list, or a string for sh -c) inside the node."""
        if isinstance(input, bytes):
            text = False
        result = subprocess.run(self.nsenter_command(command), input=input, capture_output=True,
                                text=text, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise NodeError("node %s: %s exited %d\nstdout: %s\nstderr: %s" % (
                self.name, shlex.join(command) if isinstance(command, list) else command,
                result.returncode, result.stdout, result.stderr))
        return result

    def path(self, inside: str) -> Path:
        """The host path of a path inside the node (through the overlay mount)."""
        return self.rootfs / inside.lstrip("/")

    # --- Ansible ----------------------------------------------------------------------------

    def _write_chroot_exe(self) -> None:
        self.chroot_exe.write_text(CHROOT_WRAPPER.format(pid=self.pid, path=NODE_PATH))
        self.chroot_exe.chmod(0o755)

    def inventory_vars(self) -> dict:
        return {
            "ansible_connection": "community.general.chroot",
            "ansible_host": str(self.rootfs),
            "ansible_chroot_exe": str(self.chroot_exe),
            "ansible_python_interpreter": "/usr/bin/python3",
        }

    # --- persistence for manual nodes -------------------------------------------------------

    def state(self) -> dict:
        return {"name": self.name, "machine": self.machine, "workdir": str(self.workdir),
                "leader_pid": self.leader_pid, "pid": self.pid, "cgroups": [str(c) for c in self.cgroups],
                "private_network": self.private_network, "readonly_usr": self.readonly_usr,
                "suite": self.suite, "containerd": self.containerd, "rootfs_cache": str(self.rootfs_cache),
                "containerd_version": self.containerd_version}

    @classmethod
    def from_state(cls, state: dict) -> "BootedNode":
        node = cls(state["name"], state["workdir"], private_network=state["private_network"],
                   readonly_usr=state["readonly_usr"], detached=True, suite=state.get("suite", "bookworm"),
                   containerd=state.get("containerd", False), rootfs_cache=state.get("rootfs_cache"),
                   containerd_version=state.get("containerd_version"))
        node.machine = state["machine"]
        node.leader_pid = state["leader_pid"]
        node.pid = state["pid"]
        node.cgroups = [Path(c) for c in state["cgroups"]]
        return node
