"""What the cni_plugins role costs a node over real SSH, counted in commands: Ansible's -vvv names every
ssh and sftp process it starts (each one a round trip through the connection's master), so the count is
exact, not timed. A node that has the version costs one command; a first install four (ask, make the
task's temporary directory, transfer, install), and the node is left with the verified tarball in its
cache and no temporary directory.
"""
from __future__ import annotations

import hashlib
import os
import re

import pytest

from testbed_lib.node import BootedNode
from tests.fixtures import boot_factory, node_workdir

PLAY = "bench/ours.yml"
VERSION = "9.0.0"
COMMAND = re.compile(r"^<127\.0\.0\.1> SSH: EXEC (ssh|sftp|scp) ")


@pytest.fixture
def ssh_node(tmp_path_factory):
    # Imported on first use: it puts tools/ on sys.path.
    from bench import sshbed  # pylint: disable=import-outside-toplevel
    rootfs = sshbed.ensure_ssh_rootfs()

    def build(name):
        return BootedNode(name, node_workdir(tmp_path_factory, name), rootfs_cache=rootfs)

    yield from boot_factory(build)


def commands(result) -> list:
    """The ssh/sftp processes the run started, in order (one host in the inventory)."""
    return [match.group(1) for match in map(COMMAND.match, result.stdout.splitlines()) if match]


def test_a_settled_node_costs_one_command_and_a_first_install_four(ssh_node, mirror, role_vars, run_playbook, tmp_path):
    from bench import sshbed  # pylint: disable=import-outside-toplevel
    from testbed_lib import ansible_runner  # pylint: disable=import-outside-toplevel
    booted = ssh_node("rt-ssh")
    key = sshbed.client_key(tmp_path)
    inventory = ansible_runner.write_inventory(tmp_path / "ssh.yml", [booted],
                                               host_vars={booted.name: sshbed.inventory_vars(sshbed.start_sshd(booted, key), key)})
    env = {"ANSIBLE_SSH_CONTROL_PATH_DIR": str(tmp_path / "cp")}
    extra = role_vars(VERSION, cni_plugins_link_dirs=[])

    first = run_playbook(PLAY, inventory, extra_vars=extra, env=env, json_output=False, verbosity=3)
    assert first.rc == 0 and first.stats[booted.name]["changed"] == 1, first.describe()
    assert commands(first) == ["ssh", "ssh", "sftp", "ssh"], first.stdout[-6000:]
    cached = booted.path("/var/cache/nodeprep/cni/" + mirror.releases[VERSION].filename)
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == mirror.releases[VERSION].sha256
    assert os.readlink(booted.path("/opt/cni/versions/current")) == "v" + VERSION
    remote_tmp = booted.path("/tmp/.ansible-remote")  # ANSIBLE_REMOTE_TEMP of the test runs
    assert not remote_tmp.exists() or os.listdir(remote_tmp) == [], "the task's temporary directory was left behind"

    again = run_playbook(PLAY, inventory, extra_vars=extra, env=env, json_output=False, verbosity=3)
    assert again.rc == 0 and again.stats[booted.name]["changed"] == 0, again.describe()
    assert commands(again) == ["ssh"], again.stdout[-6000:]
