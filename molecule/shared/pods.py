"""Checks shared by the containerd scenarios' verifiers: containerd's own view and a real pod."""
from __future__ import annotations

from testbed_lib import cri

SUBNET = "10.86.0."
CONFLIST = cri.pod_conflist(SUBNET, "cni-mol0")


def searched_dirs(node) -> list[str]:
    """The plugin dirs in containerd's own config dump (bin_dir on 1.x, bin_dirs on 2.x)."""
    return cri.searched_dirs(node.run(["containerd", "config", "dump"]).stdout)


def run_pod(node, name: str = "molecule-pod"):
    """Writes the test conflist, waits for NetworkReady and starts (then removes) a real sandbox."""
    _version, status, sandbox = cri.run_pod(node, CONFLIST, name)
    return status, sandbox
