"""Kubernetes' own plugin package on a real node: a ``kubernetes-cni`` .deb (built here, shaped like
kubelet's: it owns /opt/cni/bin/bridge and friends) installed by apt from a local flat repo.

The release install refuses the package's names before anything reaches the node, naming the
package and the fixes; the opt-in takes them over; verify.yml names them as package-owned and warns;
a package upgrade writes the package's files back over our links, which verify.yml reports.
"""
from __future__ import annotations

import json
import os

import yaml

from testbed_lib.apt_repo import KUBERNETES_CNI, add_kubernetes_cni, build_flat_repo
from testbed_lib.tree import node_state

VERIFY = "playbooks/verify.yml"
TASK = "nodeprep.cni.cni_plugins : Install the wanted release unless the node has it intact, and link it"
REPORT_TASK = "nodeprep.cni.cni_plugins : Read the node's CNI plugin state"
FIRST, UPGRADE = "1.6.0-1.1", "1.6.1-1.1"


def dpkg_owner(node, path) -> str:
    return node.run(["dpkg-query", "-S", path]).stdout.split(":")[0]


def apt_install(node, package):
    node.run("apt-get update -qq && apt-get install -y -qq %s >/dev/null" % package, timeout=300)


def failure_messages(result) -> str:
    return "\n".join(str(t.result.get("msg", "")) for t in result.task_results() if t.failed)


def warnings_of(result, task, host) -> str:
    return json.dumps(result.result(task, host).get("warnings") or [])


def test_kubernetes_cni_is_refused_then_taken_over_then_its_upgrade_reported(
        node, mirror, inventory, run_playbook, role_vars, tmp_path):
    booted = node("kcni", private_network=True)
    repo = build_flat_repo(booted.path("/srv/nodeprep-apt"))
    add_kubernetes_cni(repo, FIRST)
    booted.path("/etc/apt/sources.list").write_text("deb [trusted=yes] file:/srv/nodeprep-apt ./\n")
    apt_install(booted, KUBERNETES_CNI)
    assert dpkg_owner(booted, "/opt/cni/bin/bridge") == KUBERNETES_CNI
    inv = inventory([booted])
    role_only = tmp_path / "cni_plugins_role.yml"
    role_only.write_text(yaml.safe_dump([{"name": "The plugins role alone", "hosts": "nodes", "gather_facts": False,
                                          "roles": ["nodeprep.cni.cni_plugins"]}]))
    release = role_vars("9.0.0", cni_plugins_link_dirs=[])

    # The default: refused before anything reaches the node (check mode predicts it), naming package and fixes.
    before = node_state(booted)
    for check in (True, False):
        refused = run_playbook(role_only, inv, extra_vars=release, check=check)
        assert refused.rc != 0, refused.describe()
        message = failure_messages(refused)
        assert "/opt/cni/bin/bridge" in message and "owned by package kubernetes-cni" in message, message
        for fix in ("cni_plugins_bin_dir", "cni_plugins_source: package", "cni_plugins_package_name: kubernetes-cni",
                    "cni_plugins_adopt_package_files: true", "nothing was changed"):
            assert fix in message, (fix, message)
        assert node_state(booted) == before, "check" if check else "real run"

    # The opt-in takes the names over; the run warns that the package's next upgrade overwrites them.
    taken = run_playbook(role_only, inv, extra_vars=dict(release, cni_plugins_adopt_package_files=True))
    assert taken.rc == 0, taken.describe()
    assert "package kubernetes-cni owns (adopt_package_files)" in warnings_of(taken, TASK, booted.name)
    assert os.readlink(booted.path("/opt/cni/bin/bridge")) == "/opt/cni/versions/current/bridge"
    assert booted.run("readlink -f /opt/cni/bin/bridge").stdout.strip() == "/opt/cni/versions/v9.0.0/bridge"
    again = run_playbook(role_only, inv, extra_vars=dict(release, cni_plugins_adopt_package_files=True))
    assert again.rc == 0 and again.changed(booted.name) == 0, again.describe()

    reports = tmp_path / "reports"
    verified = run_playbook(VERIFY, inv, extra_vars={"nodeprep_report_dir": str(reports)}, verbosity=1)
    assert verified.rc == 0, verified.describe()
    warned = warnings_of(verified, REPORT_TASK, booted.name)
    assert "take over names that package kubernetes-cni owns" in warned and "next upgrade overwrites them" in warned, warned
    shown = verified.result("Show the node's report", booted.name)["msg"]
    assert any(line.startswith("package-owned: /opt/cni/bin/bandwidth kubernetes-cni linked") for line in shown), shown
    report = json.loads((reports / (booted.name + ".json")).read_text())["cni_plugins"]
    owned = dict((entry["path"], (entry["package"], entry["status"])) for entry in report["package_owned"])
    assert owned["/opt/cni/bin/bridge"] == (KUBERNETES_CNI, "linked"), owned
    assert report["healthy"] is True
    print("verify after the opt-in:", warned)

    # The package is upgraded: dpkg writes its new files over our links. verify.yml says so.
    add_kubernetes_cni(repo, UPGRADE)
    apt_install(booted, KUBERNETES_CNI)
    assert not os.path.islink(booted.path("/opt/cni/bin/bridge"))
    upgraded = run_playbook(VERIFY, inv, extra_vars={"nodeprep_report_dir": str(reports)}, verbosity=1)
    assert upgraded.rc == 0, upgraded.describe()
    warned = warnings_of(upgraded, REPORT_TASK, booted.name)
    assert "package kubernetes-cni's own files are where nodeprep's links belong, at /opt/cni/bin/bandwidth" in warned, warned
    report = json.loads((reports / (booted.name + ".json")).read_text())["cni_plugins"]
    owned = dict((entry["path"], entry["status"]) for entry in report["package_owned"])
    assert owned["/opt/cni/bin/bridge"] == "package file" and report["healthy"] is False, report
    assert report["link_summary"]["foreign"] >= 1
    print("verify after the package upgrade:", warned)
