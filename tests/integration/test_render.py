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
    from testbed_lib.ansible_runner import run_playbook
    from tests.fixtures import REPO
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
    # The dir and the options reach the inner shell as its arguments, never as its code.
    assert script.rstrip().endswith("' netns-activate /run/netns mode=0755,nosuid,nodev,noexec")
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


def render(out, targets, **extra):
    from testbed_lib.ansible_runner import run_playbook
    from tests.fixtures import REPO
    inventory = out / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    return run_playbook(REPO / RENDER, inventory, extra_vars=dict(extra, netns_render_dir=str(out / "out"),
                                                                  netns_render_targets=targets))


# A valid absolute path that is also shell code: quotes, command substitutions, a separator, a
# specifier and a variable. Each payload would create a file in /run/m (on the scratch /run of
# run_activation) if it ever ran.
HOSTILE_DIR = "/run/net ns'$(touch /run/m/1)'\"`touch /run/m/2`\";touch /run/m/3;%n$HOME\\x-y"


def run_activation(script: str, target: str, tmp_path, runs: int = 2):
    """Runs the rendered script (as Bottlerocket's bootstrap container does, as root, at every boot)
    in a private mount and PID namespace with a scratch tmpfs on /run; returns the mounts at target
    and what the payloads left in /run/m."""
    path = tmp_path / "activate.sh"
    path.write_text(script)
    wrapper = ('mount -t tmpfs scratch /run && mkdir /run/m && for i in $(seq "$2"); do sh "$0"; done'
               ' && ls -A /run/m && findmnt --json -o TARGET,FSTYPE,PROPAGATION,OPTIONS --mountpoint "$1"')
    done = subprocess.run(["unshare", "--mount", "--pid", "--fork", "--mount-proc", "--propagation", "private",
                           "sh", "-c", wrapper, str(path), target, str(runs)],
                          capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    markers, mounts = done.stdout.split("{", 1)
    return json.loads("{" + mounts)["filesystems"], markers.split()


def test_a_hostile_netns_dir_is_quoted_in_every_artifact_and_the_script_runs_no_injected_code(tmp_path):
    target = HOSTILE_DIR
    targets = [{"os": "fcos", "netns_dir": target}, {"os": "talos", "netns_dir": target},
               {"os": "bottlerocket", "netns_dir": target}]
    result = render(tmp_path, targets)
    assert result.rc == 0, result.describe()
    out = tmp_path / "out"

    settings = tomllib.loads((out / "bottlerocket" / "netns-settings.toml").read_text())
    script = base64.b64decode(settings["settings"]["bootstrap-containers"]["nodeprep-netns"]["user-data"]).decode()
    # Run twice, as at every boot: the second run keeps the first mount and stacks none.
    [mount], markers = run_activation(script, target, tmp_path)
    assert markers == [], "the netns dir ran as shell code"
    assert (mount["target"], mount["fstype"], mount["propagation"]) == (target, "tmpfs", "shared")
    assert {"nosuid", "nodev", "noexec", "mode=755"} <= set(mount["options"].split(","))
    # The same script with the old, unquoted template runs the payloads: the check can fail.

    real_name = subprocess.run(["systemd-escape", "--path", "--suffix=mount", "--", target],
                               capture_output=True, text=True, check=True).stdout.strip()
    ignition = json.loads((out / "ignition" / "netns-fcos.ign").read_text())
    found = units(ignition)
    assert sorted(found) == ["nodeprep-netns-propagation.service", real_name]
    assert "\nWhere=%s\n" % target.replace("%", "%%") in found[real_name]["contents"]
    service = found["nodeprep-netns-propagation.service"]["contents"]
    assert "\nRequires=%s\nAfter=%s\n" % (real_name, real_name) in service
    quoted = target.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    assert '\nExecStart=/usr/bin/mount --make-shared "%s"\n' % quoted in service
    checked = subprocess.run(["ignition-validate", str(out / "ignition" / "netns-fcos.ign")], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    [talos] = yaml.safe_load((out / "talos" / "netns-patch.yaml").read_text())["machine"]["kubelet"]["extraMounts"]
    assert talos["source"] == talos["destination"] == target
    patch = yaml.safe_load((out / "kustomize" / "bottlerocket" / "multus-netns-patch.yaml").read_text())
    assert patch["spec"]["template"]["spec"]["volumes"][0]["hostPath"]["path"] == target + "/"


@pytest.mark.parametrize("bad, problem", [
    ("var/run/netns", "is not an absolute path"),
    ("/var/run/../netns", "is not a normalised path (write it as /var/netns)"),
    ("/run/net\nns", "holds a control character"),
])
def test_a_netns_dir_that_is_not_absolute_and_normalised_is_refused_before_anything_is_written(tmp_path, bad, problem):
    targets = [{"os": "fcos", "netns_dir": "/run/netns"}, {"os": "talos", "netns_dir": bad}]
    result = render(tmp_path, targets)
    assert result.rc != 0
    messages = " ".join(str(item.get("msg", "")) for task in result.task_results() if task.failed
                        for item in task.result.get("results", [task.result]))
    assert "netns_render_targets[1].netns_dir %r %s" % (bad, problem) in messages, result.describe()
    assert "set netns_render_targets[1].netns_dir to an absolute, normalised directory such as /run/netns" in messages
    assert not (tmp_path / "out").exists()
