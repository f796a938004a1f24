"""Every playbook refuses a mistyped or invalid nodeprep_* variable in its first task, before any host is touched.

The inventory's nodes are SSH hosts on a loopback port nothing listens on: any task that reached one
would make it unreachable. A refused run shows the check as the only task and no host contacted, in
--check and under any --tags alike; the control run with valid variables passes the check and then
does reach for the hosts, so the refusals are the check's doing.
"""
from __future__ import annotations

import socket
import sys

import pytest
import yaml

CHECK_TASK = "Refuse unknown or invalid nodeprep_* variables before any host is touched"
NODES = ["n1", "n2", "n3"]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def nodes_inventory(tmp_path):
    def write(host_vars=None):
        port = closed_port()
        hosts = {name: {"ansible_host": "127.0.0.1", "ansible_port": port, "ansible_user": "nobody",
                        "ansible_python_interpreter": "/usr/bin/python3",
                        "ansible_ssh_common_args": "-o ConnectTimeout=5 -o BatchMode=yes",
                        **(host_vars or {}).get(name, {})} for name in NODES}
        path = tmp_path / "inventory.yml"
        path.write_text(yaml.safe_dump({"all": {"children": {"nodes": {"hosts": hosts}}}}))
        return path
    return write


@pytest.fixture
def local_inventory(tmp_path):
    path = tmp_path / "local.yml"
    path.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    return path


def refused(result, message: str) -> None:
    """Only the check ran, it failed with ``message``, and no host was reached."""
    assert result.rc == 2, result.describe()
    assert {task.task for task in result.tasks} == {CHECK_TASK}, result.describe()
    failures = [task.result for task in result.tasks if task.failed]
    assert failures and message in failures[0]["msg"], result.describe()
    for host, stats in result.stats.items():
        assert stats["unreachable"] == 0 and stats["ok"] == 0 and stats["changed"] == 0, (host, result.describe())


@pytest.mark.parametrize("check", [False, True], ids=["run", "check"])
def test_a_mistyped_upgrade_variable_is_refused_with_the_name_meant(nodes_inventory, run_playbook, check):
    result = run_playbook("playbooks/upgrade.yml", nodes_inventory(), check=check,
                          extra_vars={"cni_plugins_version": "1.9.1", "nodeprep_upgrade_batchs": 2})
    refused(result, "unknown variable nodeprep_upgrade_batchs (given with -e): did you mean nodeprep_upgrade_batch? "
                    "upgrade.yml reads: nodeprep_hosts, nodeprep_report_dir, nodeprep_upgrade_batch, "
                    "nodeprep_upgrade_cni_add, nodeprep_upgrade_max_fail_percentage.")


def test_the_check_runs_whatever_the_tags(nodes_inventory, run_playbook):
    result = run_playbook("playbooks/site.yml", nodes_inventory(), check=True, args=["--tags", "multus"],
                          extra_vars={"nodeprep_upgrade_batchs": 2})
    refused(result, "unknown variable nodeprep_upgrade_batchs (given with -e): did you mean nodeprep_upgrade_batch "
                    "(read by upgrade.yml)? site.yml reads: nodeprep_bake, nodeprep_hosts, nodeprep_runtime.")


def test_the_last_batchs_inventory_is_checked_before_the_first_batch_runs(nodes_inventory, run_playbook):
    inventory = nodes_inventory({"n3": {"nodeprep_upgrade_cni_add": "maybe"}})
    result = run_playbook("playbooks/upgrade.yml", inventory, extra_vars={"cni_plugins_version": "1.9.1"})
    refused(result, "nodeprep_upgrade_cni_add: maybe is not valid (n3). It takes a bool (default false).")
    assert sorted(result.stats) == ["n1"], result.describe()  # serial 1: n2 and n3 never started


def test_an_inventory_typo_names_its_host(nodes_inventory, run_playbook):
    result = run_playbook("playbooks/verify.yml", nodes_inventory({"n2": {"nodeprep_verify_textfile_dirs": "/x"}}))
    refused(result, "unknown variable nodeprep_verify_textfile_dirs (set for n2): did you mean nodeprep_verify_textfile_dir?")


def test_bake_refuses_a_bad_runtime(nodes_inventory, run_playbook):
    result = run_playbook("playbooks/bake.yml", nodes_inventory(), extra_vars={"nodeprep_runtime": "crio"})
    refused(result, "nodeprep_runtime: crio is not valid. It takes one of containerd, none (default containerd).")


def test_the_controller_playbooks_refuse_too(local_inventory, run_playbook, tmp_path):
    result = run_playbook("playbooks/mirror.yml", local_inventory, check=True,
                          extra_vars={"nodeprep_mirror_vesions": ["1.9.1"]})
    refused(result, "unknown variable nodeprep_mirror_vesions (given with -e): did you mean nodeprep_mirror_versions?")
    assert "nodeprep_mirror_dir is required" in result.tasks[0].result["msg"], result.describe()
    result = run_playbook("playbooks/render.yml", local_inventory, extra_vars={"nodeprep_hots": "nodes"})
    refused(result, "unknown variable nodeprep_hots (given with -e): did you mean nodeprep_hosts (read by site.yml, "
                    "verify.yml, upgrade.yml, bake.yml, rollback.yml, uninstall.yml)? render.yml reads: none.")
    assert not list(tmp_path.glob("nodeprep-artifacts*")), "render wrote artifacts after the refusal"


def test_valid_variables_pass_and_the_run_goes_on_to_the_hosts(nodes_inventory, run_playbook):
    # Another playbook's variable from the inventory is left alone: one inventory serves every playbook.
    inventory = nodes_inventory({"n2": {"nodeprep_upgrade_batch": "25%"}})
    result = run_playbook("playbooks/site.yml", inventory, check=True,
                          extra_vars={"nodeprep_runtime": "none", "nodeprep_hosts": "nodes", "nodeprep_bake": "false"})
    check = result.result(CHECK_TASK, "n1")
    assert not check.get("failed") and check["hosts"] == 3, result.describe()
    assert check["variables"] == ["nodeprep_bake", "nodeprep_hosts", "nodeprep_runtime", "nodeprep_upgrade_batch"]
    # Past the check, the run reaches for the nodes (which answer nothing here).
    assert all(result.stats[name]["unreachable"] == 1 for name in NODES), result.describe()
