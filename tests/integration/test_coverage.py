"""The coverage check on a real node: a conflist naming a missing delegate and a NAD whose IPAM
plugin is not installed are named by verify.yml with the file they came from; once the plugins
are added to cni_plugins_list and site.yml re-runs, the check passes.
"""
from __future__ import annotations

import json

import yaml

from testbed_lib.tree import snapshot

SITE = "playbooks/site.yml"
VERIFY = "playbooks/verify.yml"
SUBSET = ["bridge", "host-local", "loopback", "portmap"]
MACVLAN = {
    "cniVersion": "0.4.0", "name": "storage",
    "plugins": [{"type": "macvlan", "master": "eth0", "ipam": {"type": "host-local", "subnet": "10.9.0.0/24"}},
                {"type": "portmap", "capabilities": {"portMappings": True}}],
}
NAD = {
    "apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
    "metadata": {"name": "fixed", "namespace": "apps"},
    "spec": {"config": json.dumps({"cniVersion": "0.4.0", "type": "bridge",
                                   "ipam": {"type": "static", "addresses": [{"address": "10.10.0.5/24"}]}})},
}


def etc_state(node) -> dict:
    return {"etc": snapshot(node.path("/etc")), "run_multus": node.path("/run/multus").exists()}


def test_missing_delegate_named_then_covered(node, inventory, run_playbook, role_vars, tmp_path):
    booted = node("coverage")
    inv = inventory([booted])
    nad_file = tmp_path / "nads" / "fixed.yaml"
    nad_file.parent.mkdir()
    nad_file.write_text(yaml.safe_dump(NAD))
    conflist = booted.path("/etc/cni/net.d/10-storage.conflist")
    conflist.parent.mkdir(parents=True)
    conflist.write_text(json.dumps(MACVLAN))
    broken = booted.path("/etc/cni/multus/net.d/20-half.conf")
    broken.parent.mkdir(parents=True)
    broken.write_text('{"cniVersion": "1.0.0", "type": "macvlan",')
    reports = tmp_path / "reports"
    common = {"nodeprep_report_dir": str(reports), "multus_network_attachment_files": [str(nad_file)]}

    installed = run_playbook(SITE, inv, extra_vars=role_vars("9.0.0", cni_plugins_list=SUBSET, **common))
    assert installed.rc == 0, installed.describe()

    verified = run_playbook(VERIFY, inv, extra_vars=common)
    assert verified.rc != 0, verified.describe()
    report = json.loads((reports / "coverage.json").read_text())
    coverage = report["coverage"]
    print("coverage report:", json.dumps(coverage["problems"], indent=2))
    assert coverage["ok"] is False
    assert coverage["missing_types"] == ["macvlan", "static"]
    assert coverage["problems"] == [
        "/etc/cni/net.d/10-storage.conflist: plugin type(s) not installed in any plugin dir: macvlan",
        "/etc/cni/multus/net.d/20-half.conf is not valid JSON: Expecting property name enclosed in double quotes:"
        " line 1 column 43 (char 42)",
        "%s#apps/fixed: plugin type(s) not installed in any plugin dir: static" % nad_file,
    ]
    files = dict((entry["path"], entry) for entry in coverage["files"])
    # Installed types are never reported missing.
    assert files["/etc/cni/net.d/10-storage.conflist"]["types"] == ["host-local", "macvlan", "portmap"]
    assert files["/etc/cni/net.d/10-storage.conflist"]["missing_types"] == ["macvlan"]
    failed = verified.result("Fail the nodes that are not ready for a reason nodeprep_verify_fail_on names", booted.name)
    assert "10-storage.conflist" in failed["msg"] and "fixed.yaml#apps/fixed" in failed["msg"]
    assert report["netns"]["ok"] is True and report["netns"]["fstype"] == "tmpfs"
    only_report = run_playbook(VERIFY, inv, extra_vars=dict(common, multus_coverage_report_only=True))
    assert only_report.rc == 0, only_report.describe()

    # With Multus enabled and the plugins listed, the role refuses the config that is not JSON
    # before changing anything.
    multus = dict(common, multus_enabled=True, multus_delegate_plugins=["macvlan", "static", "bridge", "host-local"])
    before = etc_state(booted)
    fixed = role_vars("9.0.0", cni_plugins_list=SUBSET + ["macvlan", "static"], **multus)
    refused = run_playbook(SITE, inv, extra_vars=fixed)
    assert refused.rc != 0
    message = refused.result("nodeprep.cni.multus : Fail before a pod would, naming each config and what it lacks",
                             booted.name)["msg"]
    assert "/etc/cni/multus/net.d/20-half.conf is not valid JSON" in message
    assert "10-storage.conflist" not in message  # macvlan is linked now
    assert etc_state(booted) == before

    broken.unlink()
    applied = run_playbook(SITE, inv, extra_vars=fixed)
    assert applied.rc == 0, applied.describe()
    again = run_playbook(SITE, inv, extra_vars=fixed)
    assert again.rc == 0 and again.changed(booted.name) == 0, again.describe()
    checked = run_playbook(SITE, inv, extra_vars=fixed, check=True)
    assert checked.rc == 0 and checked.changed(booted.name) == 0, checked.describe()

    passed = run_playbook(VERIFY, inv, extra_vars=common)
    assert passed.rc == 0, passed.describe()
    assert json.loads((reports / "coverage.json").read_text())["coverage"]["ok"] is True

    daemon = json.loads(booted.path("/etc/cni/net.d/multus.d/daemon-config.json").read_text())
    assert daemon["cniConfigDir"] == "/host/etc/cni/net.d" and daemon["socketDir"] == "/host/run/multus/"
    for directory in ("/etc/cni/multus/net.d", "/run/multus", "/var/lib/cni/multus"):
        assert booted.run(["test", "-d", directory], check=False).returncode == 0, directory

    # The CNI bin dir on a private mount: verify reports it, and with Multus enabled the netns
    # role refuses before changing anything (Multus's installer mounts it Bidirectional).
    booted.run("mount --bind /opt/cni/bin /opt/cni/bin && mount --make-private /opt/cni/bin")
    reported = run_playbook(VERIFY, inv, extra_vars=common)
    assert reported.rc == 0, reported.describe()
    bin_dir = json.loads((reports / "coverage.json").read_text())["netns"]["cni_bin_dir"]
    assert bin_dir == {"path": "/opt/cni/bin", "mount": "/opt/cni/bin", "propagation": "private", "propagates": False}
    before = etc_state(booted)
    refused = run_playbook(SITE, inv, extra_vars=fixed)
    assert refused.rc != 0
    assert "/opt/cni/bin is on the mount /opt/cni/bin with private propagation" in refused.stdout
    assert etc_state(booted) == before
