"""A Flatcar-shaped VM (testbed_lib/vm_flatcar.py): Debian userland with a read-only erofs ``/usr``
on a disk of its own, ``/etc`` and ``/var`` writable, booted on its own kernel.
"""
from __future__ import annotations

import os

import pytest

from testbed_lib import vm, vm_flatcar

# Emulated boots slow down with the machine's load far more than nodes do (TESTBED.md); still bounded.
BOOT_TIMEOUT = 600.0


def require_image() -> None:
    if os.geteuid() != 0:
        pytest.skip("VM nodes read the root-owned test-bed cache and need root")
    if not vm.image_info(vm_flatcar.FLATCAR_IMAGE):
        pytest.fail("no Flatcar-shaped VM image at %s: run tools/testbed.py vm-image-flatcar (make vm-lane)"
                    % vm_flatcar.FLATCAR_IMAGE)


@pytest.fixture(scope="module")
def flatcar(tmp_path_factory):
    require_image()
    node = vm_flatcar.flatcar_node("flatcar", tmp_path_factory.mktemp("vm-flatcar") / "vm", boot_timeout=BOOT_TIMEOUT)
    try:
        node.start()
        yield node
    finally:
        node.stop()


def usr_is_read_only_erofs(node: vm.VirtualNode) -> None:
    usr = vm_flatcar.findmnt(node, "/usr")
    assert (usr["source"], usr["fstype"]) == ("/dev/vdb", "erofs"), usr
    assert "ro" in usr["options"].split(","), usr
    # The disk itself is read-only (QEMU attaches it so), not only the mount.
    assert node.run(["blockdev", "--getro", "/dev/vdb"]).stdout.strip() == "1"
    denied = node.run(["touch", "/usr/nodeprep-probe"], check=False)
    assert denied.returncode != 0 and "Read-only file system" in denied.stderr, denied


def test_usr_is_a_read_only_erofs_and_the_node_says_flatcar(flatcar):
    usr_is_read_only_erofs(flatcar)
    root = vm_flatcar.findmnt(flatcar, "/")
    assert (root["source"], root["fstype"]) == ("/dev/vda", "ext4") and "rw" in root["options"].split(","), root
    assert flatcar.run(["readlink", "/etc/os-release"]).stdout.strip() == "../usr/lib/os-release"
    assert "ID=flatcar\n" in flatcar.read_file("/etc/os-release")
    # containerd runs from the read-only /usr, its config in the writable /etc.
    assert flatcar.run(["systemctl", "is-active", "containerd"]).stdout.strip() == "active"
    assert flatcar.run("readlink /proc/$(systemctl show -P MainPID containerd)/exe").stdout.strip() == "/usr/bin/containerd"
    assert vm_flatcar.findmnt(flatcar, "/run/netns") is None  # nothing made it a mount yet
