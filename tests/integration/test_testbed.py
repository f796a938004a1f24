"""Smoke tests of the test bed itself: a node boots real systemd and Ansible reaches it."""
from __future__ import annotations

import json
import socket
import subprocess

import yaml

SMOKE_PLAY = [{
    "name": "Smoke",
    "hosts": "nodes",
    "gather_facts": False,
    "tasks": [
        {"name": "Gather facts", "ansible.builtin.setup": {"gather_subset": ["!all", "!min", "service_mgr", "distribution"]}},
        {"name": "Write a file", "ansible.builtin.copy": {"dest": "/etc/nodeprep-smoke", "content": "{{ inventory_hostname }}\n",
                                                          "mode": "0644"}},
        {"name": "Read it back", "ansible.builtin.slurp": {"src": "/etc/nodeprep-smoke"}},
    ],
}]


def host_interfaces() -> set[str]:
    return {name for _index, name in socket.if_nameindex()}


def test_ansible_reaches_a_booted_node(node, inventory, run_playbook, tmp_path):
    smoke = node("smoke")
    playbook = tmp_path / "smoke.yml"
    playbook.write_text(yaml.safe_dump(SMOKE_PLAY, sort_keys=False))

    result = run_playbook(playbook, inventory([smoke]))

    assert result.rc == 0, result.describe()
    facts = result.result("Gather facts", "smoke")["ansible_facts"]
    assert facts["ansible_service_mgr"] == "systemd"
    assert facts["ansible_distribution"] == "Debian"
    assert result.stats["smoke"]["changed"] == 1 and result.stats["smoke"]["failed"] == 0
    written = smoke.path("/etc/nodeprep-smoke")
    assert written.read_text() == "smoke\n"
    assert smoke.run(["cat", "/etc/nodeprep-smoke"]).stdout == "smoke\n"

    again = run_playbook(playbook, inventory([smoke]))
    assert again.rc == 0 and again.stats["smoke"]["changed"] == 0, again.describe()


def test_private_network_node_sees_only_its_own_interfaces(node):
    isolated = node("isolated", private_network=True)

    links = json.loads(isolated.run(["ip", "-json", "link", "show"]).stdout)

    inside = {link["ifname"] for link in links}
    assert inside == {"lo"}
    assert host_interfaces() - {"lo"}, "the host should have interfaces beyond lo for this test to mean anything"


def test_shared_network_node_sees_the_host_interfaces(node):
    shared = node("shared")

    links = json.loads(shared.run(["ip", "-json", "link", "show"]).stdout)

    assert {link["ifname"] for link in links} == host_interfaces()


def test_readonly_usr_node(node):
    immutable = node("immutable", readonly_usr=True)

    denied = immutable.run(["touch", "/usr/nodeprep-probe"], check=False)
    allowed = immutable.run(["touch", "/opt/nodeprep-probe"], check=False)

    assert denied.returncode != 0 and "Read-only" in denied.stderr
    assert allowed.returncode == 0


def test_built_containerds_are_cached_static_and_name_their_release(tmp_path):
    from testbed_lib import runtimes

    for version in runtimes.CONTAINERD_VERSIONS:
        program = runtimes.containerd(version)
        assert runtimes.is_built(program), "run tools/testbed.py runtimes (make runtimes)"
        # Warm: the stamp is found and no go command runs (no staging dir appears).
        assert runtimes.ensure_built(program) == runtimes.containerd_bin_dir(version)
        assert not list(runtimes.RUNTIMES_CACHE.glob(program.home.name + ".build-*"))
        assert runtimes.build_info(program)["build"]["tag"] == "v" + version
        binaries = sorted(p.name for p in runtimes.containerd_bin_dir(version).iterdir())
        assert binaries == ["containerd", "containerd-shim-runc-v2", "ctr"]
        for binary in binaries:
            header = (runtimes.containerd_bin_dir(version) / binary).read_bytes()[:4096]
            assert header.startswith(b"\x7fELF") and b"ld-linux" not in header, binary  # static: no interpreter
        reply = subprocess.run([str(runtimes.containerd_bin_dir(version) / "containerd"), "--version"],
                               capture_output=True, text=True, check=True).stdout.split()
        assert reply[:3] == ["containerd", runtimes.CONTAINERD_MODULE, version]
