"""Checks shared by the containerd scenarios' verifiers: containerd's own view and a real pod."""
from __future__ import annotations

import json
import tomllib

from tests.testbed.cri import CRI

SUBNET = "10.86.0."
CONFLIST = {
    "cniVersion": "0.4.0",
    "name": "podnet",
    "plugins": [
        {"type": "bridge", "bridge": "cni-mol0", "isGateway": True, "ipMasq": False,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": SUBNET + "0/24"}]]}},
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ],
}


def searched_dirs(node) -> list[str]:
    """The plugin dirs in containerd's own config dump (bin_dir on 1.x, bin_dirs on 2.x)."""
    plugins = tomllib.loads(node.run(["containerd", "config", "dump"]).stdout)["plugins"]
    cni = plugins.get("io.containerd.cri.v1.runtime", plugins.get("io.containerd.grpc.v1.cri", {})).get("cni", {})
    return cni["bin_dirs"] if "bin_dirs" in cni else [cni["bin_dir"]]


def run_pod(node, name: str = "molecule-pod"):
    """Writes the test conflist, waits for NetworkReady and starts (then removes) a real sandbox."""
    node.path("/etc/cni/net.d").mkdir(parents=True, exist_ok=True)
    node.path("/etc/cni/net.d/10-podnet.conflist").write_text(json.dumps(CONFLIST))
    with CRI(node) as cri:
        cri.wait_ready()
        status = cri.wait_network_ready()
        sandbox = cri.run_pod_sandbox(name)
        cri.remove_pod_sandbox(sandbox.id)
    return status, sandbox
