"""A Flatcar-shaped VM node: Debian userland with a read-only erofs ``/usr``, real reboots.

What Flatcar's layout means for the collection, on Debian's own kernel under QEMU (vm.py):

* ``/usr`` is an erofs image on a disk of its own (``/dev/vdb``, attached read-only by QEMU),
  mounted read-only by the initramfs from the root's ``/etc/fstab`` before systemd starts (the
  merged ``/usr`` holds ``/sbin/init``, so it must be there before the switch to the root);
* the root (``/dev/vda``, ext4) holds ``/etc``, ``/var``, ``/opt`` and ``/root``, writable;
* ``/etc/os-release`` links to ``/usr/lib/os-release``, which says ``ID=flatcar`` (so the roles load
  their Flatcar vars) while its name says what the image is: not a Flatcar release;
* Debian's containerd 1.6 runs from the read-only ``/usr`` with pods (the bookworm containerd
  node rootfs: runc, the sandbox image archive), its config in the writable ``/etc/containerd``;
* ``/etc/selinux/config`` exists with SELinux disabled, as on an image Ignition can write to.

Cached in ``/var/cache/nodeprep-testbed/vm-flatcar-bookworm/`` (``usr.img`` beside vm.py's files),
keyed by its recipe. ``root-tree/`` keeps the root without ``/usr``: the starting point of a root
that another tool than Ansible prepares for its first boot (``ignition_root``).
"""
from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import grpc
from cri_api.v1.api_pb2_grpc import RuntimeServiceStub

from testbed_lib import cri, vm
from testbed_lib.node import TESTBED_CACHE

FLATCAR_IMAGE = TESTBED_CACHE / "vm-flatcar-bookworm"
USR_IMAGE = "usr.img"
ROOT_TREE = "root-tree"
# Bumped whenever finish() or the files below change.
VARIANT_RECIPE = "flatcar-2:erofs-usr"
# Ansible takes any os-release that mentions "Debian" anywhere for Debian's: the file names the
# image's shape, not its userland.
OS_RELEASE = """NAME="Flatcar-shaped nodeprep test image"
ID=flatcar
ID_LIKE=coreos
VERSION=0.0.0
VERSION_ID=0.0.0
PRETTY_NAME="Flatcar-shaped test image with a read-only erofs /usr"
"""
FILES = {
    # /usr from its own read-only disk; the initramfs mounts it before systemd starts.
    "etc/fstab": "/dev/vda / ext4 rw,errors=remount-ro 0 1\n/dev/vdb /usr erofs ro 0 0\n",
    # The initramfs must be able to mount erofs by itself.
    "etc/initramfs-tools/modules": "erofs\n",
    "etc/selinux/config": "SELINUX=disabled\nSELINUXTYPE=mcs\n",
}
# The initramfs mounts /usr writable when the command line's last word on it is "rw", and a
# read-only disk refuses that: "ro" after vm.py's "rw" mounts both read-only, then systemd remounts
# the root read-write as its fstab says (Debian's own default boot).
KERNEL_ARGS = "ro"
IGNITION = "/usr/lib/dracut/modules.d/30ignition/ignition"  # Debian's package ships it only there
# Ignition enables a unit only by naming it in this preset file; systemd applies presets
# ("systemctl preset-all") at a machine's first boot, so that boot is the one that enables it.
IGNITION_PRESET = "etc/systemd/system-preset/20-ignition.preset"
# systemd takes a boot for the machine's first when /etc/machine-id is missing or says
# "uninitialized" (machine-id(5)); the cached root's empty file is there for a new ID per VM.
FIRST_BOOT_MACHINE_ID = "uninitialized\n"
# systemd applies a first boot's presets as it starts, before it remounts anything: the root must
# be writable by then or the step fails (ENOENT, nothing enabled). Flatcar's own command line
# (rootflags=rw mount.usrflags=ro) has its initramfs mount the root read-write under the read-only
# /usr; Debian's mounts both as the one ro/rw word says (KERNEL_ARGS). So a first-boot VM gets one
# more initramfs-tools script, run once /usr is mounted: it remounts the root read-write.
ROOT_RW_SCRIPT = "scripts/init-bottom/nodeprep-root-rw"
ROOT_RW = """#!/bin/sh
# The root read-write under the read-only /usr, as Flatcar's initramfs leaves it (nodeprep test bed).
case "$1" in prereqs) exit 0 ;; esac
mount -o remount,rw "${rootmnt:?}"
"""
INIT_BOTTOM_ORDER = "scripts/init-bottom/ORDER"


def finish(root: Path, staging: Path, _run: Callable[..., str]) -> dict:
    """Moves ``/usr`` (with a Flatcar os-release) into an erofs image, leaving an empty mount point."""
    os_release = root / "usr/lib/os-release"
    os_release.unlink()
    os_release.write_text(OS_RELEASE)
    if os.readlink(root / "etc/os-release") != "../usr/lib/os-release":
        raise vm.VMError("the root's /etc/os-release does not link to /usr/lib/os-release")
    subprocess.run(["mkfs.erofs", "--quiet", str(staging / USR_IMAGE), str(root / "usr")], check=True)
    shutil.rmtree(root / "usr")
    (root / "usr").mkdir(mode=0o755)
    subprocess.run(["cp", "-a", "--reflink=auto", "%s/." % root, str(staging / ROOT_TREE)], check=True)
    return {"disks": [USR_IMAGE], "usr_bytes": (staging / USR_IMAGE).stat().st_size}


VARIANT = vm.ImageVariant(recipe=VARIANT_RECIPE, files=FILES, finish=finish)


def ensure_image(base: Path, base_recipe: str, install: Callable[[Path, list], None],
                 run: Callable[..., str], image: Path = FLATCAR_IMAGE) -> Path:
    """The Flatcar-shaped image from the cached bookworm containerd rootfs ``base`` (see vm.ensure_image)."""
    return vm.ensure_image(base, base_recipe, install, run, image=image, variant=VARIANT)


def flatcar_node(name: str, workdir: Path, image: Path = FLATCAR_IMAGE, **options) -> vm.VirtualNode:
    """A VM of the Flatcar-shaped image (``options`` as for vm.VirtualNode)."""
    options["kernel_args"] = " ".join(filter(None, (KERNEL_ARGS, options.get("kernel_args", ""))))
    return vm.VirtualNode(name, workdir, image=image, **options)


def _cpio_files(initrd: bytes) -> dict[str, tuple[int, bytes]]:
    """The regular files (name: mode, content) of an uncompressed newc cpio archive."""
    files, offset = {}, 0
    while initrd[offset:offset + 6] == b"070701":
        fields = [int(initrd[offset + 6 + 8 * i:offset + 14 + 8 * i], 16) for i in range(13)]
        mode, size, name_size = fields[1], fields[6], fields[11]
        name = initrd[offset + 110:offset + 110 + name_size - 1].decode()
        start = (offset + 110 + name_size + 3) & ~3
        if name == "TRAILER!!!":
            break
        if mode & 0o170000 == 0o100000:
            files[name] = (mode, initrd[start:start + size])
        offset = (start + size + 3) & ~3
    return files


def _cpio_newc(files: dict[str, tuple[int, bytes]]) -> bytes:
    """An uncompressed newc cpio archive of regular files (name: mode, content)."""
    archive = b""
    for inode, (name, (mode, content)) in enumerate(list(files.items()) + [("TRAILER!!!", (0, b""))], start=1):
        encoded = name.encode() + b"\0"
        fields = (inode if mode else 0, mode, 0, 0, 1 if mode else 0, 0, len(content), 0, 0, 0, 0, len(encoded), 0)
        archive += b"070701" + b"".join(b"%08X" % field for field in fields) + encoded
        archive += b"\0" * (-len(archive) % 4) + content
        archive += b"\0" * (-len(archive) % 4)
    return archive


def first_boot_initrd(initrd: Path, dest: Path) -> None:
    """``initrd`` with ``ROOT_RW`` added to its init-bottom scripts (see ``ROOT_RW_SCRIPT``).

    The kernel unpacks concatenated archives in turn, a later file replacing an earlier one, so the
    script and a new ``ORDER`` (which initramfs-tools reads to run the scripts) follow the original.
    """
    original = initrd.read_bytes()
    with gzip.open(initrd) as unpacked:
        order = _cpio_files(unpacked.read())[INIT_BOTTOM_ORDER][1].decode()
    # First, so the root is writable whatever the other scripts do.
    added = {ROOT_RW_SCRIPT: (0o100755, ROOT_RW.encode()),
             INIT_BOTTOM_ORDER: (0o100644, ('/%s "$@"\n%s' % (ROOT_RW_SCRIPT, order)).encode())}
    dest.write_bytes(original + b"\0" * (-len(original) % 4) + _cpio_newc(added))


@dataclass
class IgnitionRun:
    """What ``ignition_root`` made: the image dir to boot, the root tree it was made from, and per
    Ignition stage its exit code, log and seconds."""

    image: Path
    root: Path
    stages: dict


def ignition_root(config: Path, workdir: Path, image: Path = FLATCAR_IMAGE) -> IgnitionRun:
    """An image dir whose root is a fresh copy of the image's root after Ignition applied ``config``.

    The copy is put in the state of a machine that never booted (``FIRST_BOOT_MACHINE_ID``, and an
    initrd that leaves the root writable: ``ROOT_RW_SCRIPT``), then
    Debian's ``ignition`` runs its ``fetch-offline`` and ``files`` stages on it (the ``file``
    platform, ``-root``) in a private mount namespace, as the initramfs runs them against the
    mounted root on a real first boot. The root then becomes ``disk.img`` of an image dir that shares
    the cached kernel, initrd and ``usr.img``; the tree stays for checks on the host.
    """
    root = workdir / "root"
    run_dir = workdir / "ignition-run"
    run_dir.mkdir(parents=True)
    subprocess.run(["cp", "-a", "--reflink=auto", "%s/." % (image / ROOT_TREE), str(root)], check=True)
    machine_id = root / "etc/machine-id"
    machine_id.unlink(missing_ok=True)
    machine_id.write_text(FIRST_BOOT_MACHINE_ID)
    machine_id.chmod(0o444)
    env = dict(os.environ, IGNITION_CONFIG_FILE=str(config))
    stages = {}
    for stage in ("fetch-offline", "files"):
        started = time.monotonic()
        result = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", IGNITION, "-platform", "file", "-stage", stage,
             "-root", str(root), "-config-cache", str(run_dir / "config.json"), "-state-file", str(run_dir / "state"),
             "-neednet", str(run_dir / "neednet"), "-log-to-stdout"],
            capture_output=True, text=True, env=env, timeout=120, check=False)
        stages[stage] = {"rc": result.returncode, "log": result.stdout + result.stderr,
                         "seconds": round(time.monotonic() - started, 1)}
        if stage == "fetch-offline" and result.returncode != 0:
            raise vm.VMError("ignition fetch-offline failed:\n%s" % stages[stage]["log"])
    booted = workdir / "image"
    booted.mkdir()
    for name in ("vmlinuz", USR_IMAGE, vm.IMAGE_STAMP):
        (booted / name).symlink_to(image / name)
    first_boot_initrd(image / "initrd.img", booted / "initrd.img")
    disk = booted / "disk.img"
    subprocess.run(["truncate", "-s", vm.DISK_SIZE, str(disk)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "nodeprep-root", "-d", str(root), str(disk)], check=True)
    return IgnitionRun(image=booted, root=root, stages=stages)


class ForwardedCRI(cri.CRI):
    """The CRI of a VM's containerd, through a Unix socket that the VM's SSH connection forwards."""

    # The base class reaches an nspawn node's socket through /proc; this one reaches it over SSH.
    def __init__(self, node: vm.VirtualNode, timeout: float = 60.0, socket: str = cri.SOCKET):  # pylint: disable=super-init-not-called
        self.node = node
        self.timeout = timeout
        self.local = Path(tempfile.mkdtemp(prefix="cri-", dir=node.workdir)) / "containerd.sock"
        forward = subprocess.run(node.ssh_command() + ["-O", "forward", "-L", "%s:%s" % (self.local, socket)],
                                 capture_output=True, text=True, timeout=60, check=False)
        if forward.returncode != 0:
            raise vm.VMError("VM %s: cannot forward %s: %s" % (node.name, socket, forward.stderr.strip()))
        self.channel = grpc.insecure_channel("unix://%s" % self.local)
        self.runtime = RuntimeServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()
        subprocess.run(self.node.ssh_command() + ["-O", "cancel", "-L", "%s:%s" % (self.local, cri.SOCKET)],
                       capture_output=True, timeout=60, check=False)
        shutil.rmtree(self.local.parent, ignore_errors=True)

    def __enter__(self) -> "ForwardedCRI":
        return self


def findmnt(node: vm.VirtualNode, target: str) -> dict | None:
    """findmnt's own view of the mount point ``target`` (TARGET, SOURCE, FSTYPE, PROPAGATION, OPTIONS), or None."""
    result = node.run(["findmnt", "--json", "-o", "TARGET,SOURCE,FSTYPE,PROPAGATION,OPTIONS", "--mountpoint", target],
                      check=False)
    if result.returncode not in (0, 1) or (result.returncode == 1 and result.stdout.strip()):
        raise vm.VMError("VM %s: findmnt %s failed: %s" % (node.name, target, result.stderr))
    return json.loads(result.stdout)["filesystems"][0] if result.returncode == 0 else None


def findmnt_line(node: vm.VirtualNode, target: str) -> str:
    """``findmnt -o TARGET,FSTYPE,PROPAGATION`` of ``target`` as a person reads it (for the figures)."""
    return " ".join(node.run(["findmnt", "-n", "-o", "TARGET,FSTYPE,PROPAGATION", "--mountpoint", target],
                             check=False).stdout.split())
