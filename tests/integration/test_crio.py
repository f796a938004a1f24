"""CRI-O built from its release tag (testbed_lib/runtimes.py) reads the containerd role's drop-in.

``crio config`` prints the configuration CRI-O would run with, after its main file and every
``crio.conf.d`` drop-in: it must name exactly the role's plugin dirs and network dir. On a node
running CRI-O (testbed_lib/crio_rootfs.py), site.yml is predicted by check mode, converges, changes
nothing on a re-run, and a real pod sandbox that failed for want of plugins before gets its address
from bridge + host-local found through our links, through CRI-O's own CRI.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import tomllib

import pytest
import yaml

from testbed_lib import cri, crio_rootfs, runtimes
from testbed_lib.node import ROOTFS_STAMP, BootedNode
from testbed_lib.tree import snapshot

DROP_IN = "/etc/crio/crio.conf.d/10-nodeprep-cni.conf"


@pytest.fixture(scope="module")
def crio_bin():
    program = runtimes.crio()
    if not runtimes.is_built(program):
        pytest.fail("no CRI-O %s build in %s: run make runtimes" % (program.version, program.home))
    return program.bin_dir / "crio"


def crio_config(node) -> dict:
    return tomllib.loads(node.run(["crio", "--log-level", "error", "config"]).stdout)


def test_crio_config_names_the_roles_plugin_dirs_and_network_dir(crio_bin, node, inventory, run_playbook, tmp_path):
    booted = node("crio")
    shutil.copy2(crio_bin, booted.path("/usr/bin/crio"))
    version = booted.run(["crio", "--version"]).stdout
    assert "1.36.3" in version, version
    # Without a drop-in CRI-O prints its defaults as comments: no plugin_dirs key is set.
    assert "plugin_dirs" not in crio_config(booted)["crio"].get("network", {})

    playbook = tmp_path / "crio_role.yml"
    playbook.write_text(yaml.safe_dump([{"name": "The runtime role on a CRI-O node", "hosts": "nodes", "gather_facts": False,
                                         "roles": ["nodeprep.cni.containerd"]}]))
    inv = inventory([booted])
    wanted = {"containerd_cni_bin_dirs": ["/opt/cni/bin", "/var/lib/cni/extra"]}  # runtime auto: CRI-O's binary is found
    applied = run_playbook(playbook, inv, extra_vars=wanted)
    assert applied.rc == 0, applied.describe()
    assert booted.path(DROP_IN).is_file()
    network = crio_config(booted)["crio"]["network"]
    print("crio config [crio.network]:", network)
    assert network["plugin_dirs"] == ["/opt/cni/bin", "/var/lib/cni/extra"], network
    assert network["network_dir"] == "/etc/cni/net.d", network
    again = run_playbook(playbook, inv, extra_vars=wanted)
    assert again.rc == 0 and again.changed(booted.name) == 0, again.describe()


SUBNET = "10.88.0."
LINK_DIR = "/usr/local/lib/cni"
RESULTS = os.environ.get("NODEPREP_RESULTS")


@pytest.fixture
def crio_node(rootfs, tmp_path_factory):
    """A private-network node running CRI-O as built by make runtimes; stopped at teardown."""
    cache = runtimes.crio_rootfs_path()
    if not (cache / ROOTFS_STAMP).is_file():
        pytest.fail("no CRI-O node rootfs at %s: run tools/testbed.py runtimes (make runtimes)" % cache)
    # The nspawn options of a sid containerd node (keyring and bpf syscalls, the unified cgroup
    # hierarchy sid's systemd wants) are what CRI-O needs too.
    booted = BootedNode("crio-pods", tmp_path_factory.mktemp("node-crio") / "node", private_network=True,
                        suite=runtimes.RUNTIME_SUITE, containerd=True, rootfs_cache=cache)
    try:
        yield booted.start()
    finally:
        booted.stop()


def runtime_version(cri_version: str) -> str:
    """``1.36.3`` from the CRI's ``cri-o 1.36.3``."""
    return cri_version.split()[-1]


def start_pod(node, name: str):
    with cri.CRI(node, socket=crio_rootfs.SOCKET) as client:
        version = client.wait_ready()
        status = client.wait_network_ready()
        sandbox = client.run_pod_sandbox(name, pid_per_container=True)
        client.remove_pod_sandbox(sandbox.id)
        return version, status, sandbox


def test_a_pod_on_a_running_crio_gets_its_address_through_our_links(
        crio_node, mirror, inventory, run_playbook, role_vars, tmp_path):
    booted = crio_node
    assert booted.run(["systemctl", "is-active", "crio"], check=False).stdout.strip() == "active"
    wanted = ["/opt/cni/bin", LINK_DIR]
    assert crio_config(booted)["crio"].get("network", {}).get("plugin_dirs") != wanted
    booted.path("/etc/cni/net.d").mkdir(parents=True, exist_ok=True)
    booted.path("/etc/cni/net.d/10-podnet.conflist").write_text(json.dumps(cri.pod_conflist(SUBNET, "cni-crio0")))
    # No plugin in CRI-O's default dir nor in ours before the play; Debian's plugins in /usr/lib/cni
    # (which skopeo's dependencies bring) are on the node but in no dir CRI-O is pointed at.
    for directory in ["/opt/cni/bin"] + wanted:
        assert not booted.path(directory).exists() or not any(booted.path(directory).iterdir()), directory
    assert booted.path("/usr/lib/cni/bridge").is_file()

    inv = inventory([booted])
    extra = role_vars("9.0.0", cni_plugins_link_dirs=[LINK_DIR])
    before = {path: snapshot(booted.path(path)) for path in ("/etc/crio", "/opt/cni", LINK_DIR)}
    predicted = run_playbook("playbooks/site.yml", inv, extra_vars=extra, check=True)
    assert predicted.rc == 0 and predicted.changed(booted.name) > 0, predicted.describe()
    assert {path: snapshot(booted.path(path)) for path in before} == before

    started = time.monotonic()
    first = run_playbook("playbooks/site.yml", inv, extra_vars=extra)
    seconds = round(time.monotonic() - started, 1)
    assert first.rc == 0, first.describe()
    again = run_playbook("playbooks/site.yml", inv, extra_vars=extra)
    assert again.rc == 0 and again.changed(booted.name) == 0, again.describe()

    network = crio_config(booted)["crio"]["network"]
    assert network["plugin_dirs"] == wanted and network["network_dir"] == "/etc/cni/net.d", network
    assert "/usr/lib/cni" not in network["plugin_dirs"]
    for directory in wanted:
        assert booted.path(directory + "/bridge").is_symlink(), directory
    assert os.readlink(booted.path("/opt/cni/bin/bridge")) == "/opt/cni/versions/current/bridge"
    # The handler restarted the running CRI-O, which now reads the drop-in.
    version, status, sandbox = start_pod(booted, "pod-after")
    assert version == "cri-o %s" % runtimes.CRIO_VERSION
    assert status["conditions"]["NetworkReady"]["status"], status
    assert sandbox.ip.startswith(SUBNET), sandbox

    # verify.yml finds CRI-O (by its config dir), reads its dirs from `crio config` and its CRI, and names it.
    reports = tmp_path / "reports"
    verified = run_playbook("playbooks/verify.yml", inv, extra_vars=dict(extra, nodeprep_report_dir=str(reports),
                                                                         nodeprep_verify_fail_on=["skew", "runtime"]))
    assert verified.rc == 0, verified.describe()
    report = json.loads((reports / ("%s.json" % booted.name)).read_text())
    runtime = report["runtime"]
    print("verify on CRI-O:", verified.result("Show the fleet table and summary", booted.name)["msg"])
    assert (runtime["runtime"], runtime["version"], runtime["dirs_from"]) == ("crio", runtime_version(version), "crio config")
    assert runtime["plugin_dirs"] == wanted and runtime["plugin_dirs_current"] is True, runtime
    assert runtime["conf_dir"] == "/etc/cni/net.d" and runtime["cri_reachable"] and runtime["network_ready"], runtime
    assert runtime["runtime_plugins"] == [] and report["skew"] is False and "runtime" not in report["problems"]
    row = verified.result("Show the fleet table and summary", booted.name)["msg"][1]
    assert "crio %s dirs current, NetworkReady" % runtime_version(version) in row, row
    if RESULTS:
        with open(RESULTS, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"runtime": version, "converge_seconds": seconds,
                                     "rerun_changed": again.changed(booted.name), "sandbox_ip": sandbox.ip,
                                     "plugin_dirs": network["plugin_dirs"],
                                     "network_dir": network["network_dir"]}) + "\n")
