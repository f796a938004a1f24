"""The installed plugins do real work: a CNI ADD, CHECK and DEL through /opt/cni/bin on a node.

The node has its own network namespace, so the bridge, veth and addresses never reach the host.
The release is fetched on the controller and copied in, since the node cannot reach the mirror.
"""
from __future__ import annotations

import json

SITE = "playbooks/site.yml"
NETWORK = {
    "cniVersion": "1.0.0",
    "name": "podnet",
    "type": "bridge",
    "bridge": "cni-test0",
    "isGateway": True,
    "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.7.0/24"}]]},
}


def cni(node, command: str, prev_result=None, container: str = "c1"):
    env = ("CNI_COMMAND=%s CNI_CONTAINERID=%s CNI_NETNS=/run/netns/pod1 CNI_IFNAME=eth0 CNI_PATH=/opt/cni/bin"
           % (command, container))
    config = json.dumps(dict(NETWORK, prevResult=prev_result) if prev_result else NETWORK)
    return node.run("%s /opt/cni/bin/bridge" % env, input=config, check=False)


def test_bridge_add_check_del_through_installed_links(node, mirror, inventory, run_playbook, role_vars):
    booted = node("cni-add", private_network=True)
    inv = inventory([booted])
    installed = run_playbook(SITE, inv, extra_vars=role_vars("9.0.0", cni_plugins_download_on="controller"))
    assert installed.rc == 0, installed.describe()

    booted.run("ip netns add pod1")
    added = cni(booted, "ADD")
    assert added.returncode == 0, added.stdout + added.stderr
    result = json.loads(added.stdout)
    address = result["ips"][0]["address"]
    assert address.startswith("10.244.7.")
    inside = booted.run("ip netns exec pod1 ip -o -4 addr show dev eth0").stdout
    assert address in inside
    assert "cni-test0" in booted.run("ip -o link show type bridge").stdout
    checked = cni(booted, "CHECK", prev_result=result)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    deleted = cni(booted, "DEL")
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    assert booted.run("ip netns exec pod1 ip -o link show dev eth0", check=False).returncode != 0
