"""The check every VM test makes first: root, and the cached image it boots."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from testbed_lib import vm


def require_image(image: Path = vm.VM_IMAGE, what: str = "VM image", build: str = "tools/testbed.py vm-image") -> None:
    """Skips without root (the test-bed cache is root's); fails, naming how to build it, without the image."""
    if os.geteuid() != 0:
        pytest.skip("VM nodes read the root-owned test-bed cache and need root")
    if not vm.image_info(image):
        pytest.fail("no %s at %s: run %s (make vm-lane)" % (what, image, build))
