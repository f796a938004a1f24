# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Map a node's machine name (uname -m) to the architecture label of release assets."""

from __future__ import annotations

import platform

# Release assets use Go's GOARCH names; the kernel reports its own spelling.
MACHINE_TO_ARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "armv7": "arm",
    "armv6l": "arm",
    "armhf": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "mips64": "mips64le",
    "mips64le": "mips64le",
}

SUPPORTED_ARCHES = ("amd64", "arm", "arm64", "ppc64le", "s390x", "riscv64", "mips64le")


def arch_from_machine(machine: str) -> str:
    """Return the release architecture for a ``uname -m`` value, or raise ValueError naming it."""
    key = (machine or "").strip().lower()
    if key in MACHINE_TO_ARCH:
        return MACHINE_TO_ARCH[key]
    raise ValueError(
        "unsupported machine architecture %r; set the arch option to one of %s"
        % (machine, ", ".join(SUPPORTED_ARCHES))
    )


def node_arch() -> str:
    """Architecture of the machine this code runs on."""
    return arch_from_machine(platform.machine())
