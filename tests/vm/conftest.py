"""The VM lane's fixture: VM nodes (testbed_lib/vm.py) booted per test and always powered off."""
from __future__ import annotations

import os

import pytest

from testbed_lib import vm
from tests.fixtures import boot_factory


@pytest.fixture
def virtual_node(tmp_path_factory):
    """Factory: ``virtual_node(name="vm", **options)`` boots a VM from the cached image and waits for
    SSH; ``options`` go to ``vm.VirtualNode`` (``disks``, ``kernel_args``, ...).

    Every VM started through it is stopped at teardown (power-off, else QEMU killed by its PID),
    even when the test fails.
    """
    if os.geteuid() != 0:
        pytest.skip("VM nodes read the root-owned test-bed cache and need root")
    if not vm.image_info():
        pytest.fail("no VM image at %s: run tools/testbed.py vm-image (make vm-lane)" % vm.VM_IMAGE)

    def build(name: str = "vm", **options) -> vm.VirtualNode:
        return vm.VirtualNode(name, tmp_path_factory.mktemp("vm-" + name) / "vm", **options)

    yield from boot_factory(build)
