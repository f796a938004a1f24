"""The playbooks under ansible-runner, the engine AWX runs every job with.

Two nodes are installed as two job slices (each its own runner job with its own private data
dir and an empty controller cache, as AWX gives each slice), then one whole-inventory job must
find nothing to change; verify.yml then reports both nodes. Status, per-host changes taken from
the job events, and the artifacts a controller keeps are checked for each job.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import ansible_runner
import pytest

from testbed_lib.ansible_runner import REPO, ansible_env

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
