"""k3s's tree on a test node, as a k3s release leaves it, without k3s itself."""
from __future__ import annotations

K3S_DATA = "/var/lib/rancher/k3s/data"
K3S_AGENT = "/var/lib/rancher/k3s/agent"
K3S_BUNDLED = ("bridge", "host-local", "loopback", "portmap")


def fake_k3s(node) -> None:
    """k3s's tree as a release from October 2024 on leaves it (no k3s binary): its static plugin dir
    with links to the multi-call binary, and the version-2 containerd config it generates."""
    release = node.path(K3S_DATA + "/0f1e2d3c")
    (release / "bin").mkdir(parents=True)
    (release / "bin/cni").write_text("#!/bin/sh\necho \"k3s cni $(basename \"$0\")\"\n")
    (release / "bin/cni").chmod(0o755)
    node.path(K3S_DATA + "/current").symlink_to("0f1e2d3c")
    static = node.path(K3S_DATA + "/cni")
    static.mkdir()
    for name in K3S_BUNDLED:
        (static / name).symlink_to("../0f1e2d3c/bin/cni")
    config = node.path(K3S_AGENT + "/etc/containerd/config.toml")
    config.parent.mkdir(parents=True)
    config.write_text('version = 2\n\n[plugins."io.containerd.grpc.v1.cri".cni]\n'
                      '  bin_dir = "%s/cni"\n  conf_dir = "%s/etc/cni/net.d"\n' % (K3S_DATA, K3S_AGENT))
    node.path(K3S_AGENT + "/etc/cni/net.d").mkdir(parents=True)
