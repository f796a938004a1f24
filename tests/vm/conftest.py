"""The VM lane's fixture: VM nodes (testbed_lib/vm.py) booted per test and always powered off."""
from __future__ import annotations

import pytest

from testbed_lib import vm
from tests.fixtures import boot_factory
from tests.vm.images import require_image


@pytest.fixture
def virtual_node(tmp_path_factory):
    """Factory: ``virtual_node(name="vm", **options)`` boots a VM from the cached image and waits for
    SSH; ``options`` go to ``vm.VirtualNode`` (``disks``, ``kernel_args``, ...).

    Every VM started through it is stopped at teardown (power-off, else QEMU killed by its PID),
    even when the test fails.
    """
    require_image()

    def build(name: str = "vm", **options) -> vm.VirtualNode:
        return vm.VirtualNode(name, tmp_path_factory.mktemp("vm-" + name) / "vm", **options)

    yield from boot_factory(build)
