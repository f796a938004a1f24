"""Machine name (uname -m) to release architecture label."""

from __future__ import annotations

import platform

import pytest

from ansible_collections.nodeprep.cni.plugins.module_utils._arch import SUPPORTED_ARCHES, arch_from_machine, node_arch


@pytest.mark.parametrize("machine, arch", [
    ("x86_64", "amd64"),
    ("amd64", "amd64"),
    ("aarch64", "arm64"),
    ("arm64", "arm64"),
    ("armv7l", "arm"),
    ("armv6l", "arm"),
    ("armhf", "arm"),
    ("ppc64le", "ppc64le"),
    ("s390x", "s390x"),
    ("riscv64", "riscv64"),
    ("mips64le", "mips64le"),
    (" X86_64\n", "amd64"),  # as read from a command's output
])
def test_machine_maps_to_release_arch(machine, arch):
    assert arch_from_machine(machine) == arch
    assert arch in SUPPORTED_ARCHES


@pytest.mark.parametrize("machine", ["sparc64", "ppc64", "alpha", ""])
def test_unknown_machine_fails_naming_it_and_the_fix(machine):
    with pytest.raises(ValueError) as info:
        arch_from_machine(machine)
    message = str(info.value)
    assert repr(machine) in message
    assert "arch option" in message
    for arch in SUPPORTED_ARCHES:
        assert arch in message


def test_none_fails_cleanly():
    with pytest.raises(ValueError, match="None"):
        arch_from_machine(None)


def test_every_mapped_value_is_supported():
    from ansible_collections.nodeprep.cni.plugins.module_utils._arch import MACHINE_TO_ARCH
    assert set(MACHINE_TO_ARCH.values()) <= set(SUPPORTED_ARCHES)


def test_node_arch_is_this_machine():
    assert node_arch() == arch_from_machine(platform.machine())
    assert node_arch() in SUPPORTED_ARCHES
