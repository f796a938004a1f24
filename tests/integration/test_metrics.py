"""verify.yml's fleet state on real parts: the node's textfile served by Debian's node_exporter and accepted
by promtool, the run's fleet.json and junit.xml, and Debian's Prometheus scraping two nodes to answer
"which nodes are not on the wanted version".

Two nodes of the monitoring rootfs (testbed_lib/monitoring.py: bookworm, Debian's containerd 1.6.20,
prometheus-node-exporter 1.5, prometheus 2.42) on the host's network, so the release mirror and both
exporters share one loopback; every server binds 127.0.0.1 on a free port, and Prometheus is stopped by PID.
"""
from __future__ import annotations

import json
import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from testbed_lib import monitoring
from testbed_lib.node import ROOTFS_STAMP, BootedNode
from tests.fixtures import boot_factory, node_workdir

REPO = Path(__file__).resolve().parents[2]
SITE = "playbooks/site.yml"
VERIFY = "playbooks/verify.yml"
TEXTFILE = monitoring.TEXTFILE_DIR + "/nodeprep_cni.prom"
CONFLIST = {"cniVersion": "0.4.0", "name": "pods",
            "plugins": [{"type": "bridge", "bridge": "cni-metrics0",
                         "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.86.0.0/24"}]]}},
                        {"type": "portmap", "capabilities": {"portMappings": True}}]}


def documented_queries() -> dict:
    """The Grafana query set of docs/metrics.md: heading -> PromQL."""
    text = (REPO / "docs/metrics.md").read_text()
    return dict((title, query.strip()) for title, query in re.findall(r"^### ([^\n]+)\n```promql\n(.+?)```", text, re.M | re.S))


QUERIES = documented_queries()
SKEW_QUERY = QUERIES["Nodes not on the wanted version"]


@pytest.fixture
def monitoring_nodes(rootfs, tmp_path_factory):
    if not (monitoring.ROOTFS / ROOTFS_STAMP).is_file():
        pytest.fail("no monitoring rootfs at %s: run tools/testbed.py runtimes (make runtimes)" % monitoring.ROOTFS)

    def build(name: str) -> BootedNode:
        return BootedNode(name, node_workdir(tmp_path_factory, name), suite="bookworm", containerd=True,
                          rootfs_cache=monitoring.ROOTFS)

    yield from boot_factory(build)


def samples(lines) -> dict:
    """Series (name and labels as written) -> value."""
    series = (line.rsplit(" ", 1) for line in lines if line and not line.startswith("#"))
    return dict((name, float(value)) for name, value in series)


def promtool(node: BootedNode, text: str):
    return node.run(["promtool", "check", "metrics"], input=text, check=False)


def test_node_exporter_serves_verify_metrics_and_prometheus_finds_the_skewed_node(
        monitoring_nodes, inventory, run_playbook, role_vars, tmp_path):
    timings = {}
    started = time.monotonic()
    old, new = monitoring_nodes("metrics-old"), monitoring_nodes("metrics-new")
    timings["boot"] = time.monotonic() - started
    inv = inventory([old, new], host_vars={old.name: {"cni_plugins_version": "9.0.0"},
                                           new.name: {"cni_plugins_version": "9.1.0"}})
    site_vars = role_vars("9.1.0", cni_plugins_list=["bridge", "host-local", "loopback", "portmap"])
    site_vars.pop("cni_plugins_version")  # each host's own, from the inventory
    started = time.monotonic()
    installed = run_playbook(SITE, inv, extra_vars=site_vars)
    timings["site"] = time.monotonic() - started
    assert installed.rc == 0, installed.describe()
    # A network add-on's config on the old node only: its containerd becomes NetworkReady, the new one's not.
    old.path("/etc/cni/net.d").mkdir(parents=True, exist_ok=True)
    old.path("/etc/cni/net.d/10-pods.conflist").write_text(json.dumps(CONFLIST))

    reports = tmp_path / "reports"
    verify_vars = {"nodeprep_report_dir": str(reports), "nodeprep_verify_textfile_dir": monitoring.TEXTFILE_DIR,
                   "cni_plugins_version": "9.1.0"}
    started = time.monotonic()
    verified = run_playbook(VERIFY, inv, extra_vars=verify_vars)
    timings["verify"] = time.monotonic() - started
    assert verified.rc == 0, verified.describe()

    # The textfile: the node's own state, accepted by promtool as it lies on the node.
    text = old.path(TEXTFILE).read_text()
    print("nodeprep_cni.prom on %s:\n%s" % (old.name, text))
    checked = promtool(old, text)
    print("promtool check metrics (textfile): rc %d %s%s" % (checked.returncode, checked.stdout, checked.stderr))
    assert checked.returncode == 0 and not (checked.stdout + checked.stderr).strip()
    assert 'nodeprep_cni_plugins_info{source="%s/v9.0.0/cni-plugins-linux-amd64-v9.0.0.tgz",source_type="release",' \
           'version="9.0.0"} 1' % site_vars["cni_plugins_base_url"] in text
    assert 'nodeprep_cni_plugins_wanted_info{version="9.1.0"} 1' in text
    assert "nodeprep_cni_runtime_network_ready 1" in text
    assert "nodeprep_cni_runtime_network_ready 0" in new.path(TEXTFILE).read_text()
    assert "nodeprep_cni_netns_shared 1" in text
    assert old.path(TEXTFILE).stat().st_mode & 0o777 == 0o644
    assert not [p.name for p in old.path(monitoring.TEXTFILE_DIR).iterdir() if p.name != "nodeprep_cni.prom"]

    # The run's files on the controller.
    fleet = json.loads((reports / "fleet" / "fleet.json").read_text())
    assert fleet["hosts"] == 2 and fleet["versions"] == {old.name: "9.0.0", new.name: "9.1.0"}
    shown = verified.task_results("Show the fleet table and summary")
    assert set(fleet["nodes"]) == {old.name, new.name} and [fleet["summary"]] == [r.result["msg"][-1] for r in shown]
    suite = ET.parse(reports / "fleet" / "junit.xml").getroot().find("testsuite")
    cases = dict((case.get("name"), case) for case in suite.findall("testcase"))
    assert set(cases) == {old.name, new.name} and suite.get("tests") == "2"
    for host, case in cases.items():
        reasons = fleet["not_ready"].get(host)
        assert (case.find("failure") is not None) == bool(reasons)
        if reasons:
            assert case.find("failure").get("message") == "; ".join("%s: %s" % (key, fleet["details"][host][key])
                                                                    for key in reasons)

    # The old node is skewed (9.0.0, wanted 9.1.0), in its report, fleet.json, JUnit and metrics; by default
    # (nodeprep_verify_fail_on: [coverage]) that does not fail the run.
    node_json = json.loads((reports / ("%s.json" % old.name)).read_text())
    assert node_json["wanted"] == {"source": "release", "version": "9.1.0"} and node_json["skew"] is True
    assert node_json["problems"]["skew"] == "current 9.0.0, wanted 9.1.0"
    assert fleet["counts"]["skew"] == 1 and fleet["not_ready"][old.name] == ["skew"] and new.name not in fleet["not_ready"]
    assert fleet["wanted"] == {old.name: "9.1.0", new.name: "9.1.0"}
    assert "skew: 1 (%s)" % old.name in fleet["reasons"]
    assert cases[old.name].find("failure").get("message") == "skew: current 9.0.0, wanted 9.1.0"
    assert 'nodeprep_cni_problem{reason="skew"} 1' in text and "nodeprep_cni_plugins_skew 1" in text
    assert 'nodeprep_cni_problem{reason="skew"} 0' in new.path(TEXTFILE).read_text()
    stats = verified.task_results("Keep the fleet summary as the job's artifact")[0].result["ansible_stats"]["data"]
    assert stats["nodeprep_fleet"]["counts"]["skew"] == 1 and stats["nodeprep_fleet"]["fail_on"] == ["coverage"]

    # Asked to gate on skew, the same fleet fails the old node alone, after every report was written again.
    written = [reports / ("%s.json" % n.name) for n in (old, new)]
    for path in written + [reports / "fleet" / "fleet.json", reports / "fleet" / "junit.xml"]:
        path.unlink()
    old.path(TEXTFILE).unlink()
    started = time.monotonic()
    gated = run_playbook(VERIFY, inv, extra_vars=dict(verify_vars, nodeprep_verify_fail_on=["skew"]))
    timings["verify gated"] = time.monotonic() - started
    assert gated.rc != 0, gated.describe()
    failed = gated.result("Fail the nodes that are not ready for a reason nodeprep_verify_fail_on names", old.name)
    print("verify -e nodeprep_verify_fail_on=[skew] on %s: %s" % (old.name, failed["msg"]))
    assert failed["failed"] and failed["msg"].startswith("skew: current 9.0.0, wanted 9.1.0 (nodeprep_verify_fail_on)")
    assert "cni_plugins_version" in failed["msg"]
    assert not [r for r in gated.task_results("Fail the nodes that are not ready for a reason nodeprep_verify_fail_on names",
                                              new.name) if r.result.get("failed")]
    assert json.loads((reports / ("%s.json" % old.name)).read_text())["skew"] is True
    assert (reports / ("%s.json" % new.name)).is_file() and (reports / "fleet" / "junit.xml").is_file()
    assert json.loads((reports / "fleet" / "fleet.json").read_text())["counts"]["skew"] == 1
    text = old.path(TEXTFILE).read_text()  # the gated run's file, which node_exporter serves below
    assert 'nodeprep_cni_problem{reason="skew"} 1' in text

    refused = run_playbook(VERIFY, inv, extra_vars=dict(verify_vars, nodeprep_verify_fail_on=["skwe"]))
    assert refused.rc != 0
    message = refused.task_results("Refuse unknown or invalid nodeprep_* variables before any host is touched")[0].result["msg"]
    assert "nodeprep_verify_fail_on: [skwe] is not valid" in message
    assert "one of unreported, no_version, skew, drift, runtime, netns, coverage" in message
    assert not refused.task_results("Read the node's CNI plugin state and the version it should have")

    # node_exporter, as Debian packages it, serves the file on each node's loopback.
    urls = {}
    for node in (old, new):
        urls[node.name] = monitoring.start_node_exporter(node, monitoring.free_port())
    scrape = monitoring.fetch(old, urls[old.name])
    ours = [line for line in scrape.splitlines() if "nodeprep_cni_" in line]
    print("node_exporter scrape of %s (our lines):\n%s" % (old.name, "\n".join(ours)))
    assert samples(ours) == samples(text.splitlines())  # node_exporter sorts families and reformats numbers
    assert 'node_textfile_scrape_error 0' in scrape
    whole = promtool(old, scrape)
    print("promtool check metrics (whole scrape): rc %d\n%s%s" % (whole.returncode, whole.stdout, whole.stderr))
    assert "nodeprep_cni" not in whole.stdout + whole.stderr

    # Prometheus on the old node scrapes both exporters and names the node not on the wanted version.
    targets = [url.split("/")[2] for url in urls.values()]
    started = time.monotonic()
    with monitoring.Prometheus(old, monitoring.free_port(), targets) as prometheus:
        prometheus.wait_for("nodeprep_cni_plugins_info", 2)
        skewed = prometheus.wait_for(SKEW_QUERY, 1)
        ready = prometheus.query("sum(nodeprep_cni_runtime_network_ready)")
        answers = dict((title, prometheus.query(query)) for title, query in QUERIES.items())
    timings["prometheus"] = time.monotonic() - started
    print("PromQL %s -> %s" % (SKEW_QUERY, json.dumps(skewed)))
    assert skewed[0]["metric"]["instance"] == targets[0] and skewed[0]["metric"]["version"] == "9.0.0"
    assert ready[0]["value"][1] == "1"
    assert len(QUERIES) >= 8
    assert sorted(r["metric"]["version"] for r in answers["Nodes per CNI plugins version"]) == ["9.0.0", "9.1.0"]
    assert answers["Scraped nodes without a nodeprep file"] == []
    assert answers["Nodes verify has not seen for a day"] == []
    assert [r["metric"]["instance"] for r in answers["Runtimes not NetworkReady"]] == [targets[1]]
    print("timings: %s" % ", ".join("%s %.1f s" % item for item in timings.items()))


def test_textfile_dir_refusal_and_check_mode_change_nothing(monitoring_nodes, inventory, run_playbook, role_vars,
                                                            tmp_path):
    booted = monitoring_nodes("metrics-check")
    inv = inventory([booted])
    assert run_playbook(SITE, inv, extra_vars=role_vars("9.0.0")).rc == 0
    reports = str(tmp_path / "reports")

    missing = run_playbook(VERIFY, inv, extra_vars={"nodeprep_report_dir": reports,
                                                    "nodeprep_verify_textfile_dir": "/var/lib/no-such-exporter"})
    assert missing.rc != 0
    message = missing.result("Refuse a textfile directory node_exporter cannot be reading", booted.name)["msg"]
    assert message.startswith("nodeprep_verify_textfile_dir: /var/lib/no-such-exporter is not an existing directory")
    assert not booted.path("/var/lib/no-such-exporter").exists()

    textfile = booted.path(TEXTFILE)
    assert not textfile.exists()
    # The wanted version comes from the same variables as site.yml's, as group_vars would give both.
    vars_ = {"nodeprep_report_dir": reports, "nodeprep_verify_textfile_dir": monitoring.TEXTFILE_DIR,
             "cni_plugins_version": "9.0.0"}
    predicted = run_playbook(VERIFY, inv, extra_vars=vars_, check=True, diff=True)
    assert predicted.rc == 0, predicted.describe()
    assert predicted.result("Write the node's metrics for node_exporter's textfile collector", booted.name)["changed"]
    assert not textfile.exists()  # check mode never writes on the node
    assert run_playbook(VERIFY, inv, extra_vars=vars_).rc == 0
    assert "nodeprep_cni_ready 1" in textfile.read_text()
