"""Test nodes with their own kernel: Debian bookworm booted under QEMU, reached over real SSH.

The nspawn nodes (node.py) share the host's kernel, so they cannot show what needs a kernel of its
own: SELinux enforcing, device-mapper targets, real reboots and power cuts. A VM node can.

The image is built once from the cached bookworm rootfs (``tools/testbed.py vm-image``) and kept
under ``/var/cache/nodeprep-testbed/vm-bookworm/``, keyed by its recipe::

    disk.img       the root filesystem: raw ext4 made with ``mkfs.ext4 -d`` (no loop mount)
    vmlinuz        Debian's linux-image-amd64, booted directly (-kernel/-initrd)
    initrd.img
    .nodeprep-vm-complete   the recipe, the kernel release and the build's seconds (JSON)

An image variant (another directory) may add guest files, a step before the root becomes a disk
image, and read-only disks of its own, which every VM of it gets after the root (``disks`` in
the stamp: raw images in the image dir, attached read-only, so no VM writes to them either).

A build runs in a staging dir next to its final place and is renamed into place with its stamp, so
an interrupted build never looks complete; a warm run reads the stamp and does nothing.

Each VM writes only to its own copy-on-write overlay (a qcow2 file whose backing file is the
cached image), its console goes to a log file, and SSH reaches it through QEMU's user-mode
networking: a port on 127.0.0.1 forwarded to the guest's 22. The per-VM SSH host key and root's
authorized key come in through QEMU's firmware config, so nothing per VM is ever written into
the image. Every wait is bounded; the VM is powered off from inside, and QEMU killed by its PID
only when that fails.
"""
from __future__ import annotations

import fcntl
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from testbed_lib.node import TESTBED_CACHE, machine_name, pid_alive

VM_IMAGE = TESTBED_CACHE / "vm-bookworm"
IMAGE_STAMP = ".nodeprep-vm-complete"
BUILD_LOCK = TESTBED_CACHE / ".vm-image.lock"
# The kernel, what loads it and its modules, and what Ansible talks to.
PACKAGES = ("linux-image-amd64", "initramfs-tools", "udev", "kmod", "openssh-server")
# The rootfs masks these for containers; a VM has devices and kernel modules of its own.
UNMASKED_UNITS = ("systemd-udevd.service", "systemd-udev-trigger.service", "systemd-modules-load.service")
# The first-boot wizard would wait for answers on the serial console (the image has an empty
# machine-id, so every VM's first boot is a first boot).
VM_MASKED_UNITS = ("systemd-firstboot.service",)
DISK_SIZE = "4G"  # sparse: the image and the overlays take only what is written
# Bumped whenever the files below or the build steps change, so an old image is rebuilt.
RECIPE_VERSION = "2"

GUEST_ADDRESS = "10.0.2.15"  # QEMU's user-mode network: guest, gateway (the host) and DNS
# The gateway's address reaches the host's loopback: a server on 127.0.0.1 (a release mirror) is
# there for the guest without listening anywhere else.
HOST_ADDRESS = "10.0.2.2"
FW_CFG_PREFIX = "opt/nodeprep"
GUEST_FILES = {
    "etc/fstab": "/dev/vda / ext4 rw,errors=remount-ro 0 1\n",
    # Static, so boot never waits for DHCP; net.ifnames=0 on the command line keeps the name eth0.
    "etc/systemd/network/10-nodeprep-vm.network":
        "[Match]\nName=eth0\n\n[Network]\nAddress=%s/24\nGateway=10.0.2.2\nDNS=10.0.2.3\n" % GUEST_ADDRESS,
    "etc/modules-load.d/nodeprep-vm.conf": "qemu_fw_cfg\n",
    "etc/ssh/sshd_config.d/nodeprep-vm.conf": (
        "HostKey /etc/ssh/ssh_host_ed25519_key\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUseDNS no\n"),
    "usr/local/sbin/nodeprep-vm-seed": """#!/bin/sh
# Installs this VM's SSH host key and root's authorized key from QEMU's firmware config (fw_cfg):
# the host makes them per VM, so the shared disk image holds none.
set -eu
seed=/sys/firmware/qemu_fw_cfg/by_name/%s
[ -d "$seed" ] || modprobe qemu_fw_cfg
install -d -m 0700 /root/.ssh
install -m 0600 "$seed/authorized_keys/raw" /root/.ssh/authorized_keys
install -m 0600 "$seed/ssh_host_ed25519_key/raw" /etc/ssh/ssh_host_ed25519_key
install -m 0644 "$seed/ssh_host_ed25519_key.pub/raw" /etc/ssh/ssh_host_ed25519_key.pub
""" % FW_CFG_PREFIX,
    "etc/systemd/system/nodeprep-vm-seed.service": """[Unit]
Description=SSH keys of this VM from QEMU's firmware config
After=systemd-modules-load.service
Before=ssh.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/nodeprep-vm-seed

[Install]
WantedBy=multi-user.target
""",
    "etc/systemd/system/ssh.service.d/nodeprep-vm.conf":
        "[Unit]\nRequires=nodeprep-vm-seed.service\nAfter=nodeprep-vm-seed.service\n",
    # zstd is only recommended by initramfs-tools; gzip is always there.
    "etc/initramfs-tools/conf.d/nodeprep-vm.conf": "COMPRESS=gzip\n",
}
ENABLED_UNITS = ("systemd-networkd.service", "nodeprep-vm-seed.service", "ssh.service")
KERNEL_COMMAND_LINE = "root=/dev/vda rw console=ttyS0 net.ifnames=0"

# Environment variable that asks for another QEMU accelerator. TCG (software emulation) is the
# default: a KVM guest stalled right after the firmware on the machines this was built on.
ACCEL_VARIABLE = "NODEPREP_VM_ACCEL"
SSH_OPTIONS = ("-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
               "-o", "StrictHostKeyChecking=yes", "-o", "HostKeyAlgorithms=ssh-ed25519",
               "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=6",
               "-o", "LogLevel=ERROR")


def guest_url(url: str) -> str:
    """A URL of a server on the host's 127.0.0.1 as the guest reaches it."""
    prefix = url.split("://", 1)[0] + "://"
    if not url.startswith(prefix + "127.0.0.1"):
        raise ValueError("%s is not on the host's 127.0.0.1" % url)
    return prefix + HOST_ADDRESS + url[len(prefix + "127.0.0.1"):]


class VMError(RuntimeError):
    """A VM did not build, boot or stop, or a command inside it failed."""


def log(message: str) -> None:
    print("testbed: %s" % message, flush=True)


# --- the image ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ImageVariant:
    """What an image of its own adds to the common one.

    ``packages`` are installed with the common ones and ``files`` (guest path: text) written before
    them; ``finish(root, staging, run)`` runs on the finished tree just before it becomes
    ``disk.img`` (it may label it, or move ``/usr`` into a read-only disk image in ``staging``) and
    returns what goes into the stamp (``disks``: read-only disks every VM of the image gets).
    ``recipe`` names what ``finish`` does: change it whenever ``finish`` changes, it keys the cache.
    """
    recipe: str
    packages: tuple[str, ...] = ()
    files: dict = field(default_factory=dict)
    finish: Callable[[Path, Path, Callable[..., str]], dict | None] | None = None


def image_recipe(base_recipe: str, variant: ImageVariant | None = None) -> str:
    """The recipe an image is keyed by: the common one's, and its variant's if it has one."""
    files_json = json.dumps(dict(GUEST_FILES, **(variant.files if variant else {})), sort_keys=True)
    recipe = "vm-%s:%s:%s:%s:%s:%s:%s:%s" % (
        RECIPE_VERSION, ",".join(PACKAGES), ",".join(UNMASKED_UNITS), ",".join(VM_MASKED_UNITS),
        ",".join(ENABLED_UNITS), KERNEL_COMMAND_LINE, files_json, base_recipe)
    if variant is None:
        return recipe
    return "%s:%s:%s" % (recipe, ",".join(variant.packages), variant.recipe)


def image_info(image: Path = VM_IMAGE) -> dict:
    """The stamp of a complete image ({} when there is none)."""
    try:
        return json.loads((image / IMAGE_STAMP).read_text())
    except (OSError, ValueError):
        return {}


def image_is_complete(recipe: str, image: Path = VM_IMAGE) -> bool:
    return image_info(image).get("recipe") == recipe


def ensure_image(base: Path, base_recipe: str, install: Callable[[Path, list], None],
                 run: Callable[..., str], image: Path = VM_IMAGE, variant: ImageVariant | None = None) -> Path:
    """Builds the VM image from the cached rootfs ``base`` unless one with the same recipe exists.

    ``install(root, packages)`` installs Debian packages into a root and ``run(root, *command)``
    runs a command inside one (tools/testbed.py's nspawn helpers). A ``variant`` (an image of its
    own, in its own dir) adds to the common recipe: see ImageVariant.
    """
    recipe = image_recipe(base_recipe, variant)
    if image_is_complete(recipe, image):
        return image
    image.parent.mkdir(parents=True, exist_ok=True)
    with open(BUILD_LOCK, "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another checkout may be building it right now
        if image_is_complete(recipe, image):
            return image
        for stale in image.parent.glob(image.name + ".build-*"):
            log("removing interrupted build %s" % stale)
            shutil.rmtree(stale, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=image.name + ".build-", dir=image.parent))
        try:
            info = _build_image(staging, base, install, run, variant)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        info["recipe"] = recipe
        (staging / IMAGE_STAMP).write_text(json.dumps(info, sort_keys=True) + "\n")
        staging.chmod(0o755)
        if image.exists():
            shutil.rmtree(image)
        os.rename(staging, image)
    log("VM image ready in %.0f s: %s (kernel %s)" % (info["seconds"], image, info["kernel"]))
    return image


def _build_image(staging: Path, base: Path, install, run, variant: ImageVariant | None = None) -> dict:
    started = time.monotonic()
    root = staging / "root"
    log("copying %s into %s" % (base, root))
    subprocess.run(["cp", "-a", "--reflink=auto", "%s/." % base, str(root)], check=True)
    for stamp in root.glob(".nodeprep-*"):
        stamp.unlink()
    for relative, content in dict(GUEST_FILES, **(variant.files if variant else {})).items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    (root / "usr/local/sbin/nodeprep-vm-seed").chmod(0o755)
    install(root, list(PACKAGES) + list(variant.packages if variant else ()))
    for unit in UNMASKED_UNITS:
        mask = root / "etc/systemd/system" / unit
        if mask.is_symlink() and os.readlink(mask) == "/dev/null":
            mask.unlink()
    for unit in VM_MASKED_UNITS:
        mask = root / "etc/systemd/system" / unit
        mask.unlink(missing_ok=True)
        mask.symlink_to("/dev/null")
    run(root, "systemctl", "enable", *ENABLED_UNITS)
    # Keys made when the package was installed would be shared by every VM: each VM gets its own.
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    # systemd would copy D-Bus's id into the empty /etc/machine-id: every VM would share it.
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    shutil.rmtree(root / "var/lib/apt/lists", ignore_errors=True)
    (root / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    if len(kernels) != 1:
        raise VMError("expected one kernel in the VM root, found %s" % [k.name for k in kernels])
    release = kernels[0].name[len("vmlinuz-"):]
    initrd = root / "boot" / ("initrd.img-" + release)
    if not initrd.is_file():
        raise VMError("no initrd for kernel %s in the VM root" % release)
    shutil.copyfile(kernels[0], staging / "vmlinuz")
    shutil.copyfile(initrd, staging / "initrd.img")
    # Last, so it sees (and may label or move) the finished tree.
    extra = (variant.finish(root, staging, run) or {}) if variant and variant.finish else {}
    disk = staging / "disk.img"
    subprocess.run(["truncate", "-s", DISK_SIZE, str(disk)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "nodeprep-root", "-d", str(root), str(disk)], check=True)
    shutil.rmtree(root)
    return dict(extra, kernel=release, seconds=round(time.monotonic() - started, 1))


# --- one VM ---------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def default_accel() -> str:
    return os.environ.get(ACCEL_VARIABLE, "tcg")


class VirtualNode:
    """One VM. Use as a context manager, or call start() and stop().

    ``timings`` records how long the last boot, reboot and power-off took (seconds).
    """

    def __init__(self, name: str, workdir: str | os.PathLike, image: Path = VM_IMAGE,
                 memory_mb: int = 1024, cpus: int = 1, accel: str | None = None,
                 boot_timeout: float = 300.0, stop_timeout: float = 120.0,
                 disks: tuple[str, ...] = (), kernel_args: str = ""):
        self.name = name
        self.machine = machine_name(name)
        self.workdir = Path(workdir)
        self.image = Path(image)
        self.memory_mb = memory_mb
        self.cpus = cpus
        self.accel = accel or default_accel()
        self.boot_timeout = boot_timeout
        self.stop_timeout = stop_timeout
        # Empty disks besides the root, by size ("64M"): /dev/vdb, /dev/vdc, ... in the guest
        # (after the image's own read-only disks, where an image variant has some).
        self.disks = tuple(disks)
        # Appended to the kernel command line (e.g. "security=selinux selinux=1 enforcing=1").
        self.kernel_args = kernel_args
        self.overlay = self.workdir / "overlay.qcow2"
        self.console_log = self.workdir / "console.log"
        self.qemu_log = self.workdir / "qemu.log"
        self.key = self.workdir / "id_ed25519"
        self.host_key = self.workdir / "ssh_host_ed25519_key"
        self.known_hosts = self.workdir / "known_hosts"
        self.control_path = self.workdir / "cm"
        self.port: int | None = None
        self.pid: int | None = None
        self.timings: dict[str, float] = {}
        self.last_exit: str | None = None  # "poweroff" or how QEMU had to be stopped
        self.system_state: str | None = None  # systemd's state after the last boot
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> "VirtualNode":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __repr__(self) -> str:
        return "VirtualNode(%r, machine=%r, pid=%r, port=%r)" % (self.name, self.machine, self.pid, self.port)

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> "VirtualNode":
        """Boots the VM (on its existing overlay, if stop() kept one) and waits for SSH."""
        if not image_info(self.image):
            raise VMError("no complete VM image at %s: run tools/testbed.py vm-image" % self.image)
        try:
            self.prepare()
            started = time.monotonic()
            self._launch()
            self.wait_for_ssh(self.boot_timeout, started)
            self.timings["boot_to_ssh"] = round(time.monotonic() - started, 1)
            state = self.wait_until_running(max(30.0, self.boot_timeout - (time.monotonic() - started)))
            self.timings["boot_to_running"] = round(time.monotonic() - started, 1)
            self.system_state = state
        except BaseException:
            self.stop(keep=True)
            raise
        return self

    def prepare(self) -> None:
        """The files a boot starts from: the overlay over the cached image and the SSH keys."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.overlay.exists():
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw",
                            "-b", str(self.image / "disk.img"), str(self.overlay)], check=True)
        for index, size in enumerate(self.disks):
            if not self.disk_path(index).exists():
                subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(self.disk_path(index)), size], check=True)
        for key in (self.key, self.host_key):
            if not key.exists():
                subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", self.machine,
                                "-f", str(key)], check=True)

    def disk_path(self, index: int) -> Path:
        """The host file of the extra disk ``index`` (``/dev/vd`` + "bcd..."[index] in the guest)."""
        return self.workdir / ("disk-%d.qcow2" % index)

    def qemu_command(self) -> list[str]:
        accel = ["-accel", self.accel] + (["-cpu", "host"] if self.accel == "kvm" else [])
        # Everything the guest reaches of the host is this one forward, on the loopback only.
        netdev = "user,id=net0,hostfwd=tcp:127.0.0.1:%d-:22" % self.port
        seed = [("authorized_keys", Path(str(self.key) + ".pub")), ("ssh_host_ed25519_key", self.host_key),
                ("ssh_host_ed25519_key.pub", Path(str(self.host_key) + ".pub"))]
        command = [
            "qemu-system-x86_64", "-name", self.machine, "-nodefaults", "-no-user-config",
            *accel, "-m", str(self.memory_mb), "-smp", str(self.cpus),
            "-display", "none", "-serial", "file:%s" % self.console_log,
            "-kernel", str(self.image / "vmlinuz"), "-initrd", str(self.image / "initrd.img"),
            "-append", " ".join(filter(None, (KERNEL_COMMAND_LINE, "systemd.hostname=" + self.machine, self.kernel_args))),
            "-drive", "file=%s,format=qcow2,if=virtio" % self.overlay,
            *(argument for name in image_info(self.image).get("disks", ())
              for argument in ("-drive", "file=%s,format=raw,if=virtio,readonly=on" % (self.image / name))),
            *(argument for index in range(len(self.disks))
              for argument in ("-drive", "file=%s,format=qcow2,if=virtio" % self.disk_path(index))),
            "-netdev", netdev, "-device", "virtio-net-pci,netdev=net0",
        ]
        for name, path in seed:
            command += ["-fw_cfg", "name=%s/%s,file=%s" % (FW_CFG_PREFIX, name, path)]
        return command

    def _launch(self) -> None:
        self.port = free_port()
        host_public = Path(str(self.host_key) + ".pub").read_text().split()
        self.known_hosts.write_text("[127.0.0.1]:%d %s %s\n" % (self.port, host_public[0], host_public[1]))
        with open(self.qemu_log, "ab") as qemu_log:
            self._process = subprocess.Popen(self.qemu_command(), stdin=subprocess.DEVNULL, stdout=qemu_log,
                                             stderr=subprocess.STDOUT, start_new_session=True)
        self.pid = self._process.pid

    def _fail_if_exited(self) -> None:
        if self._process is not None and self._process.poll() is not None:
            raise VMError("VM %s: QEMU exited with %s\n%s\nconsole:\n%s" % (
                self.machine, self._process.returncode, self.qemu_output(), self.console()))

    def wait_for_ssh(self, timeout: float, started: float | None = None) -> None:
        """Until a command runs over SSH; bounded by ``timeout`` seconds from ``started``."""
        deadline = (started or time.monotonic()) + timeout
        last = None
        while time.monotonic() < deadline:
            self._fail_if_exited()
            last = self.run(["true"], check=False, timeout=30, master=False)
            if last.returncode == 0:
                return
            time.sleep(1)
        raise VMError("VM %s: no SSH on 127.0.0.1:%s after %.0f s (last: %s)\nconsole:\n%s" % (
            self.machine, self.port, timeout, last.stderr.strip() if last else "", self.console()))

    def wait_until_running(self, timeout: float) -> str:
        """systemd's state once the boot has finished ("running" or "degraded")."""
        result = self.run("timeout %d systemctl is-system-running --wait" % int(timeout), check=False,
                          timeout=timeout + 30)
        state = result.stdout.strip()
        if state not in ("running", "degraded"):
            raise VMError("VM %s: systemd is %r after %.0f s\nconsole:\n%s" % (
                self.machine, state, timeout, self.console()))
        return state

    def boot_id(self) -> str:
        return self.run(["cat", "/proc/sys/kernel/random/boot_id"]).stdout.strip()

    def reboot(self) -> str:
        """A real reboot: the guest's kernel restarts inside the same QEMU. Returns the new boot id."""
        before = self.boot_id()
        started = time.monotonic()
        self.run(["systemctl", "--no-block", "reboot"], check=False, timeout=30)
        self.disconnect()
        deadline = started + self.boot_timeout
        while time.monotonic() < deadline:
            self._fail_if_exited()
            result = self.run(["cat", "/proc/sys/kernel/random/boot_id"], check=False, timeout=30, master=False)
            if result.returncode == 0 and result.stdout.strip() != before:
                self.timings["reboot_to_ssh"] = round(time.monotonic() - started, 1)
                self.system_state = self.wait_until_running(max(30.0, deadline - time.monotonic()))
                return result.stdout.strip()
            time.sleep(1)
        raise VMError("VM %s: did not come back from a reboot in %.0f s\nconsole:\n%s" % (
            self.machine, self.boot_timeout, self.console()))

    def stop(self, keep: bool = False) -> None:
        """Powers the VM off from inside and waits for QEMU to exit; kills QEMU by its PID when that
        does not happen in ``stop_timeout``. Removes the VM's files unless ``keep``."""
        if self.pid is not None and self._is_our_qemu():
            started = time.monotonic()
            if self.run(["systemctl", "--no-block", "poweroff"], check=False, timeout=30).returncode == 0 \
                    and self._wait_exit(self.stop_timeout):
                self.last_exit = "poweroff"
            else:
                self.last_exit = "killed"
                self._signal(signal.SIGTERM)  # QEMU quits at once, as if the power were cut
                if not self._wait_exit(10):
                    self._signal(signal.SIGKILL)
                    self._wait_exit(10)
            self.timings["poweroff"] = round(time.monotonic() - started, 1)
        self.disconnect()
        if self._process is not None:
            self._process.poll()  # reap, so no zombie is left behind
        self.pid = None
        if not keep and self.workdir.exists():
            shutil.rmtree(self.workdir, ignore_errors=True)

    def restart(self) -> "VirtualNode":
        """A power cycle: power-off, then a new QEMU on the same overlay."""
        self.stop(keep=True)
        return self.start()

    def _is_our_qemu(self) -> bool:
        # Guards against signalling an unrelated process that reused the pid.
        if self._process is not None and self._process.poll() is not None:
            return False
        try:
            cmdline = Path("/proc/%d/cmdline" % self.pid).read_bytes().split(b"\0")
        except OSError:
            return False
        return self.machine.encode() in cmdline

    def _wait_exit(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None:
                if self._process.poll() is not None:
                    return True
            elif not pid_alive(self.pid):
                return True
            time.sleep(0.2)
        return False

    def _signal(self, signum: int) -> None:
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            pass

    def exit_code(self) -> int | None:
        """QEMU's exit status once it has ended (0 after a power-off from inside)."""
        return self._process.returncode if self._process is not None else None

    def console(self) -> str:
        try:
            return self.console_log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def qemu_output(self) -> str:
        try:
            return self.qemu_log.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    # --- inside the VM ----------------------------------------------------------------------

    def ssh_command(self, master: bool = True) -> list[str]:
        """ssh to the VM's root, with arguments still to append (a remote command line)."""
        if self.port is None:
            raise VMError("VM %s is not running" % self.name)
        # One SSH connection carries every command (a handshake costs seconds under emulation);
        # stop() and reboot() close it.
        shared = ["-o", "ControlMaster=auto", "-o", "ControlPersist=300", "-o", "ControlPath=%s" % self.control_path] \
            if master else ["-o", "ControlMaster=no", "-o", "ControlPath=none"]
        return ["ssh", *SSH_OPTIONS, *shared, "-o", "UserKnownHostsFile=%s" % self.known_hosts,
                "-i", str(self.key), "-p", str(self.port), "-l", "root", "127.0.0.1"]

    def disconnect(self) -> None:
        """Closes the shared SSH connection (the next command opens a new one)."""
        if self.port is not None and self.control_path.exists():
            subprocess.run(self.ssh_command() + ["-O", "exit"], capture_output=True, timeout=30, check=False)

    def run(self, command: list[str] | str, check: bool = True, input: str | bytes | None = None,
            timeout: float | None = 120, text: bool = True, master: bool = True) -> subprocess.CompletedProcess:
        """Runs a command (argv list, or a string for the remote shell) inside the VM over SSH."""
        if isinstance(input, bytes):
            text = False
        remote = shlex.join(command) if isinstance(command, list) else command
        try:
            result = subprocess.run(self.ssh_command(master) + ["--", remote], input=input, capture_output=True,
                                    text=text, timeout=timeout, check=False,
                                    stdin=subprocess.DEVNULL if input is None else None)
        except subprocess.TimeoutExpired as expired:
            if check:
                raise VMError("VM %s: %s did not end in %s s" % (self.name, remote, timeout)) from expired
            return subprocess.CompletedProcess(expired.cmd, 255, "" if text else b"", "timed out after %s s" % timeout)
        if check and result.returncode != 0:
            raise VMError("VM %s: %s exited %d\nstdout: %s\nstderr: %s" % (
                self.name, remote, result.returncode, result.stdout, result.stderr))
        return result

    def read_file(self, path: str) -> str:
        return self.run(["cat", "--", path]).stdout

    def write_file(self, path: str, content: str | bytes, mode: int = 0o644) -> None:
        """Writes a file inside the VM (through a temp file and a rename, then a flush to disk)."""
        temp = "%s.nodeprep-tmp" % path
        self.run("cat > %s && chmod %o %s && mv -f %s %s && sync" % (
            shlex.quote(temp), mode, shlex.quote(temp), shlex.quote(temp), shlex.quote(path)), input=content)

    # --- Ansible ----------------------------------------------------------------------------

    def inventory_vars(self) -> dict:
        return {
            "ansible_connection": "ansible.builtin.ssh",
            "ansible_host": "127.0.0.1",
            "ansible_port": self.port,
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(self.key),
            # The same shared connection as run(), and the VM's own host key.
            "ansible_ssh_args": "-o ControlMaster=auto -o ControlPersist=300 -o ControlPath=%s" % self.control_path,
            "ansible_ssh_common_args": "-o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes "
                                       "-o HostKeyAlgorithms=ssh-ed25519 -o IdentitiesOnly=yes" % self.known_hosts,
            "ansible_python_interpreter": "/usr/bin/python3",
        }

    # --- persistence for manual VMs ---------------------------------------------------------

    def state(self) -> dict:
        return {"name": self.name, "machine": self.machine, "workdir": str(self.workdir), "image": str(self.image),
                "memory_mb": self.memory_mb, "cpus": self.cpus, "accel": self.accel, "port": self.port,
                "pid": self.pid, "disks": list(self.disks), "kernel_args": self.kernel_args}

    @classmethod
    def from_state(cls, state: dict) -> "VirtualNode":
        """A VM started by another process (tools/testbed.py vm-up): stop() finds its QEMU by PID."""
        node = cls(state["name"], state["workdir"], image=Path(state["image"]), memory_mb=state["memory_mb"],
                   cpus=state["cpus"], accel=state["accel"], disks=tuple(state.get("disks", ())),
                   kernel_args=state.get("kernel_args", ""))
        node.machine, node.port, node.pid = state["machine"], state["port"], state["pid"]
        return node
