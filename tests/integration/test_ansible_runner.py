"""The playbooks under ansible-runner, the engine AWX runs every job with.

An upgrade job (its own ansible-runner process, as AWX runs it) over SSH nodes, two of them powered
off mid-batch, reports them unreachable in its set_stats artifact and summary file, with the mirror's
Authorization header injected as the example credential type does and kept out of the artifacts.

Two nodes are installed as two job slices (each its own runner job with its own private data
dir and an empty controller cache, as AWX gives each slice), then one whole-inventory job must
find nothing to change; verify.yml then reports both nodes. Status, per-host changes taken from
the job events, and the artifacts a controller keeps are checked for each job.
"""
from __future__ import annotations

import base64
import json
import os
import subprocess
from collections import Counter
from pathlib import Path

import ansible_runner
import pytest
import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment

from testbed_lib.ansible_runner import REPO, ansible_env
from testbed_lib.http_server import LocalServer
from testbed_lib.node import BootedNode
from tests.fixtures import boot_factory, node_workdir
from tests.unit.test_awx_examples import load

VERSION = "9.1.0"


@pytest.fixture
def runner_job(tmp_path, monkeypatch):
    """``runner_job(name, playbook, inventory, extravars, limit=None)`` runs one runner job."""
    # The runner starts ansible-playbook from PATH: the one of the venv running the tests.
    monkeypatch.setenv("PATH", "%s:%s" % (Path(os.sys.executable).parent, os.environ["PATH"]))

    def run(name, playbook, inventory, extravars, limit=None):
        private = tmp_path / ("job-" + name)
        (private / "env").mkdir(parents=True)
        envvars = {key: value for key, value in ansible_env(local_temp=str(tmp_path)).items()
                   if key.startswith("ANSIBLE_")}
        envvars.pop("ANSIBLE_STDOUT_CALLBACK")  # the runner's own event callback must stay
        result = ansible_runner.run(
            private_data_dir=str(private), playbook=str(REPO / playbook), inventory=str(inventory),
            extravars=extravars, envvars=envvars, limit=limit, quiet=True, ident=name)
        return result

    return run


def changed_per_host(job) -> Counter:
    """Changed task results per host, counted from the job's event stream as AWX does."""
    counts = Counter()
    for event in job.events:
        data = event.get("event_data", {})
        if event["event"] == "runner_on_ok" and data.get("res", {}).get("changed"):
            counts[data["host"]] += 1
    return counts


def check_artifacts(job, name) -> dict:
    """The artifacts a controller keeps: status, rc, stdout and one file per event."""
    artifacts = Path(job.config.artifact_dir)
    assert artifacts.name == name
    assert (artifacts / "status").read_text() == "successful"
    assert (artifacts / "rc").read_text() == "0"
    assert "PLAY RECAP" in (artifacts / "stdout").read_text()
    event_files = sorted((artifacts / "job_events").glob("*.json"))
    kinds = Counter(json.loads(f.read_text())["event"] for f in event_files)
    assert kinds["playbook_on_start"] == 1 and kinds["playbook_on_stats"] == 1, kinds
    return {"events": len(event_files), "kinds": dict(kinds)}


def test_site_and_verify_as_sliced_awx_jobs(node, inventory, role_vars, runner_job, tmp_path):
    nodes = [node("slice1"), node("slice2")]
    hosts = inventory(nodes)
    figures = {}

    for index, booted in enumerate(nodes, start=1):
        name = "site-slice%d" % index
        extravars = role_vars(VERSION, cni_plugins_controller_cache_dir=str(tmp_path / ("cache-%d" % index)))
        job = runner_job(name, "playbooks/site.yml", hosts, extravars, limit=booted.name)
        assert job.status == "successful", job.stdout.read()
        assert job.rc == 0
        changed = changed_per_host(job)
        # The slice touched its own node only, and installed there.
        assert set(job.stats["ok"]) == {booted.name}, job.stats
        assert changed[booted.name] > 0 and job.stats["changed"][booted.name] == changed[booted.name]
        assert booted.path("/opt/cni/versions/current").is_symlink()
        assert os.readlink(booted.path("/opt/cni/versions/current")) == "v" + VERSION
        figures[name] = dict(check_artifacts(job, name), changed=dict(changed))

    whole = runner_job("site-all", "playbooks/site.yml", hosts,
                       role_vars(VERSION, cni_plugins_controller_cache_dir=str(tmp_path / "cache-all")))
    assert whole.status == "successful", whole.stdout.read()
    assert set(whole.stats["ok"]) == {n.name for n in nodes}
    assert changed_per_host(whole) == Counter(), "a re-run after the slices changed something"
    assert all(count == 0 for count in whole.stats.get("changed", {}).values()), whole.stats
    figures["site-all"] = dict(check_artifacts(whole, "site-all"), changed={})

    reports = tmp_path / "reports"
    verify = runner_job("verify", "playbooks/verify.yml", hosts,
                        dict(role_vars(VERSION), nodeprep_report_dir=str(reports)))
    assert verify.status == "successful", verify.stdout.read()
    for booted in nodes:
        report = json.loads((reports / ("%s.json" % booted.name)).read_text())
        assert report["cni_plugins"]["current"] == VERSION
        assert report["cni_plugins"]["healthy"] is True
    stdout = (Path(verify.config.artifact_dir) / "stdout").read_text()
    header = next(line for line in stdout.splitlines() if '"node ' in line)
    rows = [line for line in stdout.splitlines() if any('"%s ' % n.name in line for n in nodes)]
    assert len(rows) == 2 and all(VERSION in row for row in rows), stdout
    # The table's columns line up across nodes.
    assert {row.index(VERSION) for row in rows} == {header.index("version")}, stdout
    assert "fleet: 2 nodes" in stdout
    stats = next(e for e in verify.events if e["event"] == "playbook_on_stats")
    fleet = stats["event_data"]["artifact_data"]["nodeprep_fleet"]
    assert fleet["summary"].startswith("fleet: 2 nodes, %d ready" % fleet["ready"]), fleet
    assert set(fleet["not_ready"]) <= {n.name for n in nodes}
    figures["verify"] = check_artifacts(verify, "verify")
    print("ansible-runner jobs: " + json.dumps(figures, sort_keys=True))


# --- an upgrade from AWX: a node lost mid-batch, a mirror credential -------------------------------

UPGRADE_TO = "9.1.0"
# The injector's input, as an AWX user types it into the credential: never in a template's vars.
MIRROR_USER, MIRROR_TOKEN = "nodeprep", "s3cret-mirror-token-4711"

# Used as the node's ssh_executable: powers the node off (a clean shutdown of the whole node, so its
# sshd and every session go with it) once the new release has landed on it, before Ansible's next
# connection; that connection is refused and Ansible marks the host unreachable mid-batch.
POWER_OFF_THEN_SSH = """#!/bin/sh
if [ -e {landed} ] && kill -0 {init} 2>/dev/null; then
    kill -TERM {leader}
    tries=0
    while kill -0 {init} 2>/dev/null && [ $tries -lt 300 ]; do sleep 0.1; tries=$((tries + 1)); done
fi
exec ssh "$@"
"""


@pytest.fixture
def ssh_node(tmp_path_factory):
    """``ssh_node(name)`` boots a node from the OpenSSH rootfs (bench/sshbed.py: built once, cached);
    stopped at teardown. ``sshbed.start_sshd`` then serves it on 127.0.0.1."""
    rootfs = sshbed().ensure_ssh_rootfs()

    def build(name):
        return BootedNode(name, node_workdir(tmp_path_factory, name), rootfs_cache=rootfs)

    yield from boot_factory(build)


def sshbed():
    """bench/sshbed.py, imported on first use (it puts tools/ on sys.path)."""
    from bench import sshbed as module  # pylint: disable=import-outside-toplevel
    return module


def render_injector(template, inputs: dict):
    """A credential type's injector rendered as AWX renders it: a sandboxed Jinja2 per string."""
    if isinstance(template, dict):
        return {key: render_injector(value, inputs) for key, value in template.items()}
    return ImmutableSandboxedEnvironment().from_string(template).render(**inputs)


def test_upgrade_job_reports_a_node_lost_mid_batch_as_unreachable(ssh_node, mirror, role_vars, tmp_path):
    names = ["up-a", "up-b", "up-c"]
    lost = ["up-b", "up-c"]
    key = sshbed().client_key(tmp_path)
    booted = {name: ssh_node(name) for name in names}
    hosts = {}
    for name, node in booted.items():
        hosts[name] = sshbed().inventory_vars(sshbed().start_sshd(node, key), key)
        if name in lost:
            wrapper = tmp_path / ("ssh-" + name)
            wrapper.write_text(POWER_OFF_THEN_SSH.format(
                landed=node.path("/opt/cni/versions/v" + UPGRADE_TO), init=node.pid, leader=node.leader_pid))
            wrapper.chmod(0o755)
            hosts[name]["ansible_ssh_executable"] = str(wrapper)

    # The extra vars AWX writes for a job: the survey's answers plus what the mirror credential injects.
    injectors = load(REPO / "examples/awx/credential_types.yml")["nodeprep_awx_mirror_credential_type"]["injectors"]
    authorization = "Basic " + base64.b64encode(("%s:%s" % (MIRROR_USER, MIRROR_TOKEN)).encode()).decode()
    injected = render_injector(injectors["extra_vars"], {"authorization": authorization})
    private = tmp_path / "job"
    reports = tmp_path / "reports"
    with LocalServer(mirror.releases[UPGRADE_TO].path.parents[1], credentials="%s:%s" % (MIRROR_USER, MIRROR_TOKEN)) as locked:
        extravars = dict(role_vars(UPGRADE_TO, cni_plugins_base_url=locked.base_url),
                         nodeprep_upgrade_batch=[2, 1], nodeprep_upgrade_max_fail_percentage=50,
                         nodeprep_report_dir=str(reports), **injected)
        (private / "env").mkdir(parents=True)
        (private / "inventory").mkdir()
        (private / "env/extravars").write_text(json.dumps(extravars))
        envvars = {key: value for key, value in ansible_env(local_temp=str(tmp_path)).items() if key.startswith("ANSIBLE_")}
        envvars.pop("ANSIBLE_STDOUT_CALLBACK")  # the runner's own event callback must stay
        envvars["ANSIBLE_SSH_CONTROL_PATH_DIR"] = str(tmp_path / "cp")
        (private / "env/envvars").write_text(json.dumps(envvars))
        (private / "inventory/hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
        # A process of its own: ansible-runner in-process installs signal handlers in pytest's.
        env = dict(os.environ, PATH="%s:%s" % (Path(os.sys.executable).parent, os.environ["PATH"]))
        done = subprocess.run([str(Path(os.sys.executable).parent / "ansible-runner"), "run", str(private),
                               "-p", str(REPO / "playbooks/upgrade.yml"), "--ident", "upgrade"],
                              capture_output=True, text=True, env=env, timeout=600, check=False)
        sent = [headers.get("Authorization") for _path, headers in locked.request_log]

    artifacts = private / "artifacts/upgrade"
    stdout = (artifacts / "stdout").read_text()
    assert done.returncode != 0 and (artifacts / "status").read_text() == "failed", stdout[-6000:]
    # The release came from the mirror through the credential's header, and only with it.
    assert sent and set(sent) == {authorization}, sent
    events = [json.loads(f.read_text()) for f in sorted((artifacts / "job_events").glob("*.json"))]
    stats = next(e for e in events if e["event"] == "playbook_on_stats")["event_data"]
    assert set(stats["dark"]) == set(lost), stats
    upgrade = stats["artifact_data"]["nodeprep_upgrade"]
    # Batch 1 lost up-b and kept up-a (1 of 2 is within the 50 % allowance); batch 2 lost its only
    # node, which ends the play: the summary written before that batch stands.
    assert upgrade["unreachable"] == lost, upgrade
    assert upgrade["moved"] == ["up-a"] and upgrade["not_reached"] == [], upgrade
    assert upgrade["rolled_back"] == {} and upgrade["failed"] == {} and upgrade["stopped"] is True, upgrade
    assert upgrade["counts"] == {"moved": 1, "already": 0, "rolled_back": 0, "failed": 0, "unreachable": 2,
                                 "not_reached": 0}, upgrade
    assert json.loads((reports / "upgrade-summary.json").read_text()) == upgrade
    # The summary shown after batch 1 already named the node lost there.
    shown = [e["event_data"]["res"]["msg"] for e in events
             if e["event"] == "runner_on_ok" and e["event_data"].get("task") == "Show the upgrade summary"]
    assert len(shown) == 1 and "unreachable: up-b" in shown[0] and "not reached: up-c" in shown[0], shown
    assert os.readlink(booted["up-a"].path("/opt/cni/versions/current")) == "v" + UPGRADE_TO
    # The header's secret is nowhere in what the controller keeps of the job.
    secret_forms = (MIRROR_TOKEN, authorization.split()[1])
    for path in artifacts.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert not any(form in text for form in secret_forms), "the mirror secret is in %s" % path
    print("upgrade job: " + json.dumps({"dark": stats["dark"], "nodeprep_upgrade": upgrade}, sort_keys=True))
