"""/run/netns after converge and after a reboot, on both nodes.

The findmnt lines are printed (pytest -s, or the scenario log) for the record.
"""
from __future__ import annotations

import json
import subprocess
import time

import pytest

FINDMNT = ["findmnt", "-n", "-o", "TARGET,SOURCE,FSTYPE,PROPAGATION", "--mountpoint", "/run/netns"]
NETWORK = {
    "cniVersion": "1.0.0", "name": "podnet", "type": "bridge", "bridge": "cni-netns0", "isGateway": True,
    "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.9.0/24"}]]},
}
NODES = ["debian", "rhel", "flatcar"]


def shared_tmpfs(node) -> str:
    line = " ".join(node.run(FINDMNT).stdout.split())
    target, _source, fstype, propagation = line.split()
    assert (target, fstype) == ("/run/netns", "tmpfs"), line
    assert "shared" in propagation.split(","), line
    assert node.run(["realpath", "/var/run/netns"]).stdout.strip() == "/run/netns"
    return line


class SecondMountNamespace:
    """A process in a mount namespace of its own, a slave of the node's: it receives shared mounts."""

    def __init__(self, node):
        self.node = node
        self.process = subprocess.Popen(
            node.nsenter_command(["unshare", "--mount", "--propagation", "slave", "sleep", "300"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.pid = None
        deadline = time.monotonic() + 10
        while not self.pid and time.monotonic() < deadline:
            found = node.run(["pgrep", "-n", "-x", "sleep"], check=False).stdout.strip()
            self.pid = int(found) if found else None
            time.sleep(0.05)
        assert self.pid, "the second mount namespace did not start"
        assert node.run(["readlink", "/proc/%d/ns/mnt" % self.pid]).stdout != node.run(
            ["readlink", "/proc/1/ns/mnt"]).stdout

    def run(self, command: str, **kwargs):
        return self.node.run(["nsenter", "-t", str(self.pid), "-m", "--", "sh", "-c", command], **kwargs)

    def close(self):
        self.process.kill()
        self.process.wait(timeout=10)


@pytest.mark.parametrize("name", NODES)
def test_netns_shared_tmpfs_namespaces_cni_add_and_reboot(testbed_node, name):
    node = testbed_node(name)
    print("%s findmnt after converge: %s" % (name, shared_tmpfs(node)))
    # The namespace made before the role is still there and usable.
    assert "early" in node.run(["ip", "netns", "list"]).stdout
    node.run(["ip", "netns", "exec", "early", "ip", "link", "set", "lo", "up"])

    second = SecondMountNamespace(node)
    try:
        node.run(["ip", "netns", "add", "pod1"])
        # Its nsfs mount reached the other mount namespace: the propagation is shared.
        assert set(second.run("findmnt -n -o FSTYPE /run/netns/pod1").stdout.split()) == {"nsfs"}
        env = "CNI_CONTAINERID=c1 CNI_NETNS=/var/run/netns/pod1 CNI_IFNAME=eth0 CNI_PATH=/opt/cni/bin"
        added = second.run("CNI_COMMAND=ADD %s /opt/cni/bin/bridge" % env, input=json.dumps(NETWORK), check=False)
        assert added.returncode == 0, added.stdout + added.stderr
        address = json.loads(added.stdout)["ips"][0]["address"].split("/")[0]
        assert address in node.run(["ip", "netns", "exec", "pod1", "ip", "-o", "-4", "addr", "show", "dev", "eth0"]).stdout
        deleted = second.run("CNI_COMMAND=DEL %s /opt/cni/bin/bridge" % env, input=json.dumps(NETWORK), check=False)
        assert deleted.returncode == 0, deleted.stdout + deleted.stderr
        assert node.run(["ip", "netns", "exec", "pod1", "ip", "link", "show", "dev", "eth0"], check=False).returncode != 0
    finally:
        second.close()

    node.restart()
    print("%s findmnt after reboot: %s" % (name, shared_tmpfs(node)))
    assert node.run(["systemctl", "is-active", "run-netns.mount", "nodeprep-netns-propagation.service"]).stdout.split() == [
        "active", "active"]


@pytest.mark.parametrize("name, mount_bin", [("debian", "/bin/mount"), ("rhel", "/usr/bin/mount"),
                                             ("flatcar", "/usr/bin/mount")])
def test_os_values(testbed_node, name, mount_bin):
    unit = testbed_node(name).path("/etc/systemd/system/nodeprep-netns-propagation.service").read_text()
    assert "ExecStart=%s --make-shared /run/netns" % mount_bin in unit


def test_flatcar_values_and_legacy_link(testbed_node):
    node = testbed_node("flatcar")
    assert node.run(["touch", "/usr/probe"], check=False).returncode != 0  # /usr is read-only
    assert node.run(["readlink", "/var/run/netns"]).stdout.strip() == "/run/netns"
    assert node.path("/var/run").is_dir() and not node.path("/var/run").is_symlink()
