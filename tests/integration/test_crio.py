"""CRI-O built from its release tag (testbed_lib/runtimes.py) reads the containerd role's drop-in.

``crio config`` prints the configuration CRI-O would run with, after its main file and every
``crio.conf.d`` drop-in: it must name exactly the role's plugin dirs and network dir.
"""
from __future__ import annotations

import shutil
import tomllib

import pytest
import yaml

from testbed_lib import runtimes

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
