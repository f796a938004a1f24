"""containerd uses the installed plugins: Debian's real containerd 1.6 (bookworm), 1.7 (trixie)
and 2.1 (sid), each in a private-network node with a local sandbox image.

From the package's own config (a user's own config is the user-config Molecule scenario):
site.yml converges, a re-run changes nothing, containerd's own ``config dump`` names our plugin
dir, the CRI reports NetworkReady for a test conflist, and a real pod sandbox gets an address
from bridge + host-local found through our links.
"""
from __future__ import annotations

import json
import os
import time

import pytest

from testbed_lib.cri import CRI, CRIError, pod_conflist, run_pod, searched_dirs

SITE = "playbooks/site.yml"
SUITES = ("bookworm", "trixie", "sid")
SUBNET = "10.85.0."
CONFLIST = pod_conflist(SUBNET, "cni-pod0")
RESULTS = os.environ.get("NODEPREP_RESULTS")


def record(**values):
    """Appends a measurement for the closing note (when NODEPREP_RESULTS names a file)."""
    if RESULTS:
        with open(RESULTS, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(values) + "\n")


def converge(run_playbook, inventory, role_vars, booted, **extra):
    started = time.monotonic()
    result = run_playbook(SITE, inventory([booted]), extra_vars=role_vars("9.0.0", cni_plugins_link_dirs=[], **extra))
    return result, time.monotonic() - started


def config_dump(node) -> str:
    return node.run(["containerd", "config", "dump"]).stdout


@pytest.mark.parametrize("suite", SUITES)
def test_package_config(suite, containerd_node, mirror, inventory, run_playbook, role_vars):
    booted = containerd_node(suite)
    package_config = booted.path("/etc/containerd/config.toml").read_text()
    assert "/usr/lib/cni" in package_config  # Debian's default, which has no plugins on this node

    first, seconds = converge(run_playbook, inventory, role_vars, booted)
    assert first.rc == 0, first.describe()
    again, _seconds = converge(run_playbook, inventory, role_vars, booted)
    assert again.rc == 0 and again.changed(booted.name) == 0, again.describe()

    assert searched_dirs(config_dump(booted)) == ["/opt/cni/bin"]
    written = booted.path("/etc/containerd/config.toml").read_text()
    assert written == package_config.replace('bin_dir = "/usr/lib/cni"', 'bin_dir = "/opt/cni/bin"')
    backups = list(booted.path("/etc/containerd").glob("config.toml.*~"))
    assert [b.read_text() for b in backups] == [package_config]

    version, status, sandbox = run_pod(booted, CONFLIST, "pod1")
    assert status["conditions"]["NetworkReady"]["status"], status
    assert sandbox.ip.startswith(SUBNET), sandbox
    record(suite=suite, containerd=version, config="package", converge_seconds=round(seconds, 1),
           rerun_changed=again.changed(booted.name), sandbox_ip=sandbox.ip)


# One suite per left-out plugin: the same containerd code path fails on every version. A delegate
# the conflist chains (portmap) is named by the config's coverage; loopback, which no conflist names
# but containerd runs for every pod (use_internal_loopback is off by default), by the runtime's.
@pytest.mark.parametrize("suite, left_out", [("trixie", "portmap"), ("sid", "loopback")])
def test_left_out_delegate_is_named_by_verify_before_the_sandbox_fails(
        suite, left_out, containerd_node, mirror, inventory, run_playbook, role_vars, tmp_path):
    booted = containerd_node(suite)
    inv = inventory([booted])
    wanted = [name for name in ("bridge", "host-local", "loopback", "portmap") if name != left_out]
    converged = run_playbook(SITE, inv, extra_vars=role_vars("9.0.0", cni_plugins_link_dirs=[], cni_plugins_list=wanted))
    assert converged.rc == 0, converged.describe()
    booted.path("/etc/cni/net.d/10-podnet.conflist").write_text(json.dumps(CONFLIST))

    reports = tmp_path / "reports"
    verified = run_playbook("playbooks/verify.yml", inv, extra_vars=role_vars("9.0.0", nodeprep_report_dir=str(reports)))
    # verify.yml writes the report, then fails naming the config (or the runtime) and the plugin it lacks.
    assert verified.rc != 0, verified.describe()
    failures = " ".join(str(t.result.get("msg", "")) for t in verified.task_results(host=booted.name) if t.failed)
    named_by = "10-podnet.conflist" if left_out == "portmap" else "(runs it for every pod)"
    assert named_by in failures and left_out in failures, failures
    report = json.loads((reports / ("%s.json" % booted.name)).read_text())
    runtime = report["runtime"]
    assert runtime["missing_types"] == [left_out]
    assert runtime["runtime_plugins"] == ["loopback"] and runtime["use_internal_loopback"] is False
    assert left_out in report["coverage"]["missing_types"] and report["coverage"]["ok"] is False
    assert runtime["plugin_dirs"] == ["/opt/cni/bin"] and runtime["plugin_dirs_current"] is True
    assert runtime["network_ready"] is True  # readiness never looks at the plugin binaries

    with CRI(booted) as cri:
        cri.wait_network_ready()
        with pytest.raises(CRIError) as failure:
            cri.run_pod_sandbox("pod-missing")
    assert 'failed to find plugin "%s"' % left_out in failure.value.details
    record(suite=suite, missing_plugin_error=failure.value.details[-160:])
