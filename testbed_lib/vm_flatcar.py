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
that another tool than Ansible prepares for its first boot.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
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
