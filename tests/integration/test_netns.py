"""The netns role on real systemd nodes: a shared tmpfs on /run/netns, now and after a reboot.

Namespaces made by ``ip netns add`` must reach other mount namespaces (that is what shared
propagation is for), existing ones must survive the role, and a real CNI ADD/DEL must work into
a namespace through the installed links. Nodes with a plugin ADD have a private network.
"""
from __future__ import annotations

import json
import subprocess

from tests.testbed.tree import node_state

NETNS = "tests/integration/playbooks/netns.yml"
SITE = "playbooks/site.yml"
FINDMNT = "findmnt -n -o TARGET,SOURCE,FSTYPE,PROPAGATION --mountpoint /run/netns"
FLATCAR_OS_RELEASE = """NAME="Flatcar Container Linux by Kinvolk"
ID=flatcar
ID_LIKE=coreos
VERSION=4081.2.0
VERSION_ID=4081.2.0
PRETTY_NAME="Flatcar Container Linux by Kinvolk 4081.2.0 (Oklo)"
"""
NETWORK = {
    "cniVersion": "1.0.0", "name": "podnet", "type": "bridge", "bridge": "cni-netns0", "isGateway": True,
    "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.9.0/24"}]]},
}


def findmnt(node) -> str:
    return " ".join(node.run(FINDMNT).stdout.split())


def assert_shared_tmpfs(node):
    line = findmnt(node)
    target, source, fstype, propagation = line.split()
    assert (target, fstype) == ("/run/netns", "tmpfs"), line
    assert "shared" in propagation.split(","), line
    assert node.run("realpath /var/run/netns").stdout.strip() == "/run/netns"
    return line


def converge(run_playbook, inventory, node, playbook=NETNS, extra_vars=None):
    """Converge, then idempotence (changed=0), then a check-mode pass that changes nothing."""
    first = run_playbook(playbook, inventory, extra_vars=extra_vars)
    assert first.rc == 0, first.describe()
    assert first.changed(node.name) > 0
    again = run_playbook(playbook, inventory, extra_vars=extra_vars)
    assert again.rc == 0, again.describe()
    assert again.changed(node.name) == 0, again.describe()
    before = node_state(node)
    checked = run_playbook(playbook, inventory, extra_vars=extra_vars, check=True)
    assert checked.rc == 0, checked.describe()
    assert checked.changed(node.name) == 0, checked.describe()
    assert node_state(node) == before
    return first


def report(result, node) -> dict:
    return result.result("nodeprep.cni.netns : Sum up the node's netns state", node.name)["ansible_facts"]["netns_report"]


class SecondMountNamespace:
    """A process in a mount namespace of its own, slave to the node's: it receives shared mounts."""

    def __init__(self, node):
        self.node = node
        self.process = subprocess.Popen(
            node.nsenter_command(["unshare", "--mount", "--propagation", "slave", "sleep", "300"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.pid = None
        for _attempt in range(100):
            found = node.run("pgrep -n -x sleep", check=False).stdout.strip()
            if found:
                self.pid = int(found)
                break
            subprocess.run(["sleep", "0.05"], check=True)
        assert self.pid, "the second mount namespace did not start"
        own = node.run("readlink /proc/1/ns/mnt").stdout
        assert node.run("readlink /proc/%d/ns/mnt" % self.pid).stdout != own

    def run(self, command, **kwargs):
        return self.node.run(["nsenter", "-t", str(self.pid), "-m", "--", "sh", "-c", command], **kwargs)

    def close(self):
        self.process.kill()
        self.process.wait(timeout=10)


def test_fresh_node_shared_tmpfs_survives_reboot_and_carries_a_real_cni_add(
        node, inventory, run_playbook, role_vars):
    booted = node("netns", private_network=True)
    inv = inventory([booted])
    assert booted.run(FINDMNT, check=False).returncode != 0  # nothing mounted there yet

    first = converge(run_playbook, inv, booted, SITE, extra_vars=role_vars("9.0.0"))
    before = assert_shared_tmpfs(booted)
    facts = report(first, booted)
    assert facts["ok"] is True and facts["persistent"] is True
    assert facts["cni_bin_dir"]["propagates"] is True
    print("findmnt after converge:", before)

    second = SecondMountNamespace(booted)
    try:
        booted.run("ip netns add pod1")
        # The namespace's nsfs mount reached the other mount namespace: propagation is shared.
        assert second.run("findmnt -n -o FSTYPE /run/netns/pod1").stdout.strip() == "nsfs"
        env = ("CNI_CONTAINERID=c1 CNI_NETNS=/var/run/netns/pod1 CNI_IFNAME=eth0 CNI_PATH=/opt/cni/bin")
        added = second.run("CNI_COMMAND=ADD %s /opt/cni/bin/bridge" % env, input=json.dumps(NETWORK), check=False)
        assert added.returncode == 0, added.stdout + added.stderr
        address = json.loads(added.stdout)["ips"][0]["address"]
        assert address.split("/")[0] in booted.run("ip netns exec pod1 ip -o -4 addr show dev eth0").stdout
        deleted = second.run("CNI_COMMAND=DEL %s /opt/cni/bin/bridge" % env, input=json.dumps(NETWORK), check=False)
        assert deleted.returncode == 0, deleted.stdout + deleted.stderr
        assert booted.run("ip netns exec pod1 ip link show dev eth0", check=False).returncode != 0
    finally:
        second.close()

    booted.restart()
    after = assert_shared_tmpfs(booted)
    print("findmnt after reboot:", after)
    assert booted.run("systemctl is-active run-netns.mount nodeprep-netns-propagation.service").stdout.split() == [
        "active", "active"]
    rerun = run_playbook(NETNS, inv)
    assert rerun.rc == 0 and rerun.changed(booted.name) == 0, rerun.describe()


def test_existing_namespace_survives_the_role(node, inventory, run_playbook):
    booted = node("netns-existing", private_network=True)
    booted.run("ip netns add early && ip netns exec early ip link set lo up")
    inv = inventory([booted])
    converge(run_playbook, inv, booted)
    assert "early" in booted.run("ip netns list").stdout
    assert "LOOPBACK,UP" in booted.run("ip netns exec early ip -o link show lo").stdout
    assert_shared_tmpfs(booted)
    # The unit's own tmpfs takes over from the next boot on.
    booted.restart()
    line = assert_shared_tmpfs(booted)
    assert line.split()[1] == "tmpfs"


def test_readonly_usr_flatcar_without_var_run_link(node, inventory, run_playbook):
    booted = node("netns-flatcar", private_network=True, readonly_usr=True)
    # Another OS, and a /var/run that is a directory of its own, from the next boot on.
    os_release = booted.path("/etc/os-release")
    os_release.unlink()
    os_release.write_text(FLATCAR_OS_RELEASE)
    var_run = booted.path("/var/run")
    var_run.unlink()
    var_run.mkdir()
    booted.restart()
    assert booted.run("touch /usr/probe", check=False).returncode != 0  # /usr is read-only
    inv = inventory([booted])
    first = converge(run_playbook, inv, booted)
    facts = report(first, booted)
    assert facts["readonly_usr"] is True and facts["ok"] is True
    assert booted.run("readlink /var/run/netns").stdout.strip() == "/run/netns"
    assert booted.path("/etc/systemd/system/run-netns.mount").is_file()
    assert "ExecStart=/usr/bin/mount --make-shared /run/netns" in booted.path(
        "/etc/systemd/system/nodeprep-netns-propagation.service").read_text()
    booted.run("ip netns add pod1")
    assert booted.run("findmnt -n -o FSTYPE /run/netns/pod1").stdout.strip() == "nsfs"
    booted.restart()
    assert_shared_tmpfs(booted)
