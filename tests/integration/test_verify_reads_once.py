"""verify.yml reads each node once: one real cni_info execution per node answers the cni_plugins report,
the dirs the runtime searches and the configs' coverage, on a node running containerd (all three checks)
and on one without a runtime (no runtime dirs to check). Counted from the module's own answers (the
arguments it reports it was invoked with), so a skipped or merely listed task does not count.
"""
from __future__ import annotations

import json

from testbed_lib.cri import pod_conflist

SITE = "playbooks/site.yml"
VERIFY = "playbooks/verify.yml"
CONFLIST = pod_conflist("10.87.0.", "reads-once0")
# Options only cni_info has: a result invoked with all of them is one cni_info execution.
CNI_INFO_ONLY = {"conf_dirs", "plugin_dirs", "probe_versions", "runtime_plugins", "cni_status", "package_owners"}


def cni_info_runs(result, host: str) -> list:
    return [task for task in result.task_results(host=host)
            if CNI_INFO_ONLY <= set(((task.result.get("invocation") or {}).get("module_args") or {}))]


def test_one_cni_info_run_per_node_answers_every_check(containerd_node, node, mirror, inventory, run_playbook,
                                                       role_vars, tmp_path):
    runtime = containerd_node("bookworm", name="reads-ctrd")
    plain = node("reads-plain")
    inv = inventory([runtime, plain])
    installed = run_playbook(SITE, inv, extra_vars=role_vars("9.0.0"))
    assert installed.rc == 0, installed.describe()
    runtime.path("/etc/cni/net.d/10-podnet.conflist").write_text(json.dumps(CONFLIST))
    reports = tmp_path / "reports"

    verified = run_playbook(VERIFY, inv, extra_vars={"nodeprep_report_dir": str(reports)})
    assert verified.rc == 0, verified.describe()

    for booted in (runtime, plain):
        runs = cni_info_runs(verified, booted.name)
        assert len(runs) == 1, (booted.name, [task.task for task in runs])
        asked = runs[0].result["invocation"]["module_args"]
        report = json.loads((reports / (booted.name + ".json")).read_text())
        assert report["cni_plugins"]["current"] == "9.0.0" and report["cni_plugins"]["healthy"] is True
        # The coverage check's answer came from that run: Multus's dirs and its view's name.
        views = [view["name"] for view in asked["views"]]
        assert views[0] == "multus"
        assert report["coverage"]["plugin_dirs"] == ["/opt/cni/bin"]
        if booted is runtime:
            assert views == ["multus", "runtime"]
            assert report["runtime"]["runtime"] == "containerd" and report["runtime"]["plugin_dirs"] == ["/opt/cni/bin"]
            assert report["runtime"]["plugin_dirs_current"] is True and report["runtime"]["link_problems"] == []
            assert [entry["path"] for entry in report["coverage"]["files"]] == ["/etc/cni/net.d/10-podnet.conflist"]
            assert report["coverage"]["ok"] is True
        else:
            assert views == ["multus"]
            assert report["runtime"]["runtime"] == "none"
