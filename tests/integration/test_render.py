"""Artifacts for hosts Ansible cannot log into, rendered on the controller by playbooks/render.yml.

The Ignition JSON goes through Debian's real validator (ignition-validate); the Butane, Talos,
Bottlerocket and Kustomize files are parsed and checked field by field.
"""
from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import tomllib

import pytest
import yaml

RENDER = "playbooks/render.yml"
TARGETS = [{"os": "fcos", "netns_dir": "/run/netns"}, {"os": "flatcar", "netns_dir": "/run/netns"},
           {"os": "talos", "netns_dir": "/var/run/netns"}, {"os": "bottlerocket", "netns_dir": "/run/netns"}]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    from tests.testbed.ansible_runner import run_playbook
    from tests.testbed.fixtures import REPO
    out = tmp_path_factory.mktemp("artifacts")
    inventory = out / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    result = run_playbook(REPO / RENDER, inventory, extra_vars={"netns_render_dir": str(out / "out"),
                                                                "netns_render_targets": TARGETS})
    assert result.rc == 0, result.describe()
    again = run_playbook(REPO / RENDER, inventory, extra_vars={"netns_render_dir": str(out / "out"),
                                                               "netns_render_targets": TARGETS})
    assert again.rc == 0 and again.changed("localhost") == 0, again.describe()
    return out / "out"


def units(document) -> dict:
    return dict((unit["name"], unit) for unit in document["systemd"]["units"])


@pytest.mark.parametrize("target", ["fcos", "flatcar"])
def test_ignition_passes_the_real_validator(rendered, target):
    validator = shutil.which("ignition-validate")
    assert validator, "ignition-validate is missing: run tools/bootstrap (Debian package ignition)"
    path = rendered / "ignition" / ("netns-%s.ign" % target)
    checked = subprocess.run([validator, str(path)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    document = json.loads(path.read_text())
    assert document["ignition"]["version"] == "3.3.0"
    found = units(document)
    assert sorted(found) == ["nodeprep-netns-propagation.service", "run-netns.mount"]
    assert all(unit["enabled"] is True for unit in found.values())
    assert "Where=/run/netns\nType=tmpfs\n" in found["run-netns.mount"]["contents"]
    assert "ExecStart=/usr/bin/mount --make-shared /run/netns\n" in found["nodeprep-netns-propagation.service"]["contents"]

    # The validator is not a rubber stamp: a unit that is not valid systemd syntax fails it.
    broken = json.loads(path.read_text())
    broken["systemd"]["units"][0]["contents"] = "[Mount\nWhere=/run/netns\n"
    bad = path.with_name("broken.ign")
    bad.write_text(json.dumps(broken))
    assert subprocess.run([validator, str(bad)], capture_output=True, check=False).returncode != 0


@pytest.mark.parametrize("target, variant, version", [("fcos", "fcos", "1.4.0"), ("flatcar", "flatcar", "1.0.0")])
def test_butane_matches_its_ignition(rendered, target, variant, version):
    butane = yaml.safe_load((rendered / "butane" / ("netns-%s.bu" % target)).read_text())
    assert (butane["variant"], butane["version"]) == (variant, version)
    ignition = json.loads((rendered / "ignition" / ("netns-%s.ign" % target)).read_text())
    assert units(butane) == units(ignition)


def test_talos_patch_binds_its_netns_dir_shared(rendered):
    patch = yaml.safe_load((rendered / "talos" / "netns-patch.yaml").read_text())
    [mount] = patch["machine"]["kubelet"]["extraMounts"]
    assert mount["source"] == mount["destination"] == "/var/run/netns"
    assert mount["type"] == "bind" and {"rbind", "rshared"} <= set(mount["options"])


def test_bottlerocket_settings_run_the_activation_script(rendered):
    settings = tomllib.loads((rendered / "bottlerocket" / "netns-settings.toml").read_text())
    container = settings["settings"]["bootstrap-containers"]["nodeprep-netns"]
    assert container["mode"] == "always" and container["essential"] is True
    script = base64.b64decode(container["user-data"]).decode()
    assert script.startswith("#!/bin/sh\n")
    assert "mount --make-shared /run/netns" in script and "mountpoint -q /run/netns" in script
    checked = subprocess.run(["sh", "-n"], input=script, text=True, capture_output=True, check=False)
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize("target", TARGETS, ids=[t["os"] for t in TARGETS])
def test_kustomize_overlay_mounts_the_hosts_netns_dir(rendered, target):
    overlay = rendered / "kustomize" / target["os"]
    kustomization = yaml.safe_load((overlay / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    assert kustomization["resources"][0].endswith("multus-daemonset-thick.yml")
    [patch_ref] = kustomization["patches"]
    assert patch_ref["target"]["name"] == "kube-multus-ds" and (overlay / patch_ref["path"]).is_file()
    patch = yaml.safe_load((overlay / patch_ref["path"]).read_text())
    spec = patch["spec"]["template"]["spec"]
    [volume] = spec["volumes"]
    assert volume["name"] == "host-run-netns" and volume["hostPath"]["path"] == target["netns_dir"] + "/"
    [mount] = spec["containers"][0]["volumeMounts"]
    assert mount["name"] == "host-run-netns" and mount["mountPropagation"] == "HostToContainer"
