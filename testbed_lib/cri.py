"""A CRI client for the containerd inside a test node (no crictl is packaged here).

The node's containerd socket is reachable from the host through the node's init process:
``/proc/<pid>/root/run/containerd/containerd.sock``. The generated gRPC stubs come from the
``container-runtime-interface-api`` package.
"""
from __future__ import annotations

import json
import time
import tomllib
import uuid
from dataclasses import dataclass

import grpc
from cri_api.v1 import api_pb2
from cri_api.v1.api_pb2_grpc import RuntimeServiceStub

SOCKET = "/run/containerd/containerd.sock"


class CRIError(RuntimeError):
    """A CRI call failed; ``details`` holds containerd's own message."""

    def __init__(self, call: str, details: str):
        super().__init__("%s: %s" % (call, details))
        self.details = details


@dataclass
class Sandbox:
    id: str
    ip: str


class CRI:
    def __init__(self, node, timeout: float = 60.0, socket: str = SOCKET):
        self.node = node
        self.timeout = timeout
        self.channel = grpc.insecure_channel("unix://%s" % node.path(socket).as_posix().replace(
            str(node.rootfs), "/proc/%d/root" % node.pid, 1))
        self.runtime = RuntimeServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> "CRI":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _call(self, name: str, request):
        try:
            return getattr(self.runtime, name)(request, timeout=self.timeout)
        except grpc.RpcError as error:
            raise CRIError(name, error.details() or str(error)) from None

    def wait_ready(self, timeout: float = 30.0) -> str:
        """Waits until the CRI answers (containerd may still be starting) and returns its version."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.version()
            except CRIError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def version(self) -> str:
        reply = self._call("Version", api_pb2.VersionRequest())
        return "%s %s" % (reply.runtime_name, reply.runtime_version)

    def status(self) -> dict:
        """Conditions by type, plus containerd's verbose info (lastCNILoadStatus, config)."""
        reply = self._call("Status", api_pb2.StatusRequest(verbose=True))
        info = {}
        for key, value in reply.info.items():
            try:
                info[key] = json.loads(value)
            except ValueError:
                info[key] = value
        return {"conditions": {c.type: {"status": c.status, "reason": c.reason, "message": c.message}
                               for c in reply.status.conditions}, "info": info}

    def wait_network_ready(self, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        status = self.status()
        while not status["conditions"]["NetworkReady"]["status"] and time.monotonic() < deadline:
            time.sleep(0.5)
            status = self.status()
        return status

    def run_pod_sandbox(self, name: str, pid_per_container: bool = False) -> Sandbox:
        """Starts a sandbox and returns its id and address.

        ``pid_per_container`` asks what kubelet asks for a pod without ``shareProcessNamespace``: a
        PID namespace per container. CRI-O then runs no infra container at all (``drop_infra_ctr``),
        only pinns' namespaces, which CNI's ADD runs in.
        """
        linux = api_pb2.LinuxPodSandboxConfig()
        if pid_per_container:
            linux = api_pb2.LinuxPodSandboxConfig(security_context=api_pb2.LinuxSandboxSecurityContext(
                namespace_options=api_pb2.NamespaceOption(pid=api_pb2.CONTAINER)))
        config = api_pb2.PodSandboxConfig(
            metadata=api_pb2.PodSandboxMetadata(name=name, namespace="default", uid=str(uuid.uuid4()), attempt=0),
            hostname=name, log_directory="/var/log/pods/%s" % name, linux=linux)
        reply = self._call("RunPodSandbox", api_pb2.RunPodSandboxRequest(config=config))
        status = self._call("PodSandboxStatus", api_pb2.PodSandboxStatusRequest(pod_sandbox_id=reply.pod_sandbox_id))
        return Sandbox(reply.pod_sandbox_id, status.status.network.ip)

    def remove_pod_sandbox(self, sandbox_id: str) -> None:
        self._call("StopPodSandbox", api_pb2.StopPodSandboxRequest(pod_sandbox_id=sandbox_id))
        self._call("RemovePodSandbox", api_pb2.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id))


def pod_conflist(subnet: str, bridge: str) -> dict:
    """The conflist the pod tests chain: bridge with host-local addresses from subnet, then portmap."""
    return {
        "cniVersion": "0.4.0",
        "name": "podnet",
        "plugins": [
            {"type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": False,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet + "0/24"}]]}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def searched_dirs(dump: str) -> list[str]:
    """The CNI plugin dirs containerd's own config dump names (bin_dir in 1.x, bin_dirs in 2.x)."""
    plugins = tomllib.loads(dump)["plugins"]
    cni = plugins.get("io.containerd.cri.v1.runtime", plugins.get("io.containerd.grpc.v1.cri", {})).get("cni", {})
    return cni["bin_dirs"] if "bin_dirs" in cni else [cni["bin_dir"]]


def run_pod(node, conflist: dict, name: str):
    """Writes conflist, waits for NetworkReady and starts (then removes) a real sandbox.

    Returns containerd's version, the CRI status and the sandbox.
    """
    node.path("/etc/cni/net.d").mkdir(parents=True, exist_ok=True)
    node.path("/etc/cni/net.d/10-podnet.conflist").write_text(json.dumps(conflist))
    with CRI(node) as cri:
        version = cri.wait_ready()
        status = cri.wait_network_ready()
        sandbox = cri.run_pod_sandbox(name)
        try:
            return version, status, sandbox
        finally:
            cri.remove_pod_sandbox(sandbox.id)
