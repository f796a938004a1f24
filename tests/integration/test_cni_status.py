"""CNI STATUS (spec 1.1.0) as the runtime and verify.yml see it, on Debian sid's containerd 2.1 with
upstream's plugins v1.9.1 built from their release tag (testbed_lib/runtimes.py).

With every plugin of a 1.1.0 conflist installed, STATUS answers ok, NetworkReady holds and a pod
gets its address through our links. With portmap left out, verify.yml names it; containerd 2.1+
runs STATUS for such a conflist and turns NetworkReady false, which the report shows next to it.
"""
from __future__ import annotations

import json
import shutil
import time

import pytest
import yaml

from testbed_lib import runtimes
from testbed_lib.cri import CRI, pod_conflist

SUBNET = "10.86.0."
CONFLIST = dict(pod_conflist(SUBNET, "cni-status0"), cniVersion="1.1.0")
CONFLIST_PATH = "/etc/cni/net.d/10-podnet.conflist"
PLUGINS = list(runtimes.PLUGINS_COMMANDS)


@pytest.fixture(scope="module")
def upstream_plugins():
    program = runtimes.cni_plugins()
    if not runtimes.is_built(program):
        pytest.fail("no CNI plugins %s build in %s: run tools/bootstrap (make bootstrap)" % (program.version, program.home))
    return program.bin_dir


def write_playbooks(tmp_path, plugins):
    path = tmp_path / ("install-%d.yml" % len(plugins))
    path.write_text(yaml.safe_dump([
        {"name": "Install upstream's plugins and point containerd at them", "hosts": "nodes", "gather_facts": False,
         "tasks": [{"name": "Install the plugins", "nodeprep.cni.cni_install": {
             "src_dir": "/srv/cni-plugins", "version": runtimes.PLUGINS_VERSION, "plugins": plugins}}]},
        {"name": "The runtime role", "hosts": "nodes", "gather_facts": False, "roles": ["nodeprep.cni.containerd"],
         "vars": {"containerd_cni_bin_dirs": ["/opt/cni/bin"]}},
    ]))
    return path


def runtime_report(run_playbook, inv, reports, host):
    verified = run_playbook("playbooks/verify.yml", inv, extra_vars={"nodeprep_report_dir": str(reports)}, verbosity=1)
    shown = verified.result("Show the node's report", host)["msg"]
    return verified, json.loads((reports / (host + ".json")).read_text())["runtime"], shown


def test_status_next_to_network_ready_on_containerd_21(upstream_plugins, containerd_node, inventory, run_playbook, tmp_path):
    booted = containerd_node("sid", name="ctrd-status")
    source = booted.path("/srv/cni-plugins")
    source.mkdir(parents=True)
    for name in sorted(p.name for p in upstream_plugins.iterdir()):
        shutil.copy2(upstream_plugins / name, source / name)
    inv = inventory([booted])
    every = [name.rsplit("/", 1)[-1] for name in PLUGINS]
    installed = run_playbook(write_playbooks(tmp_path, every), inv)
    assert installed.rc == 0, installed.describe()
    answer = json.loads(booted.run("CNI_COMMAND=VERSION /opt/cni/bin/bridge </dev/null").stdout)
    assert "1.1.0" in answer["supportedVersions"], answer
    booted.path(CONFLIST_PATH).write_text(json.dumps(CONFLIST))

    reports = tmp_path / "reports"
    with CRI(booted) as cri:
        cri.wait_ready()
        cri.wait_network_ready()
        sandbox = cri.run_pod_sandbox("pod-status")
        cri.remove_pod_sandbox(sandbox.id)
    assert sandbox.ip.startswith(SUBNET), sandbox
    verified, runtime, shown = runtime_report(run_playbook, inv, reports, booted.name)
    assert verified.rc == 0, verified.describe()
    assert runtime["cni_status"] == [{"path": CONFLIST_PATH, "ran": True, "ok": True, "message": "ok"}], runtime
    assert runtime["network_ready"] is True and runtime["missing_types"] == []
    print("pod address:", sandbox.ip, "| verify:", shown)

    # portmap left out: verify names it; containerd runs STATUS itself and reports the network not ready.
    removed = run_playbook(write_playbooks(tmp_path, [name for name in every if name != "portmap"]), inv)
    assert removed.rc == 0, removed.describe()
    with CRI(booted) as cri:
        status = None
        for _attempt in range(30):
            status = cri.status()
            if not status["conditions"]["NetworkReady"]["status"]:
                break
            time.sleep(1)
    verified, runtime, shown = runtime_report(run_playbook, inv, reports, booted.name)
    assert verified.rc != 0, verified.describe()  # verify fails after writing the report, naming portmap
    assert runtime["missing_types"] == ["portmap"], runtime
    assert runtime["cni_status"][0]["ran"] is False and "not covered" in runtime["cni_status"][0]["message"]
    assert runtime["network_ready"] is False, (runtime, status)
    assert "portmap" in runtime["network_message"], runtime
    print("verify with portmap left out:", shown)
