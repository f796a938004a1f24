# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turns the per-node reports of verify.yml (see node_report) into one aligned table and a fleet summary line."""

from __future__ import annotations

from collections import Counter

from ansible.errors import AnsibleFilterError

from ansible_collections.nodeprep.cni.plugins.plugin_utils._cni_report import current_version_entry

COLUMNS = ("node", "version", "links", "drift", "containerd", "netns", "coverage")


def _version_cell(cni: dict) -> str:
    current = cni.get("current")
    if not current:
        return "none"
    return current if current_version_entry(cni).get("intact", False) else current + " (not intact)"


def _links_cell(cni: dict) -> str:
    summary = cni.get("link_summary") or {}
    total = sum(summary.values())
    return "%d/%d ok" % (summary.get("ok", 0), total) if total else "none"


def _drift_cell(cni: dict) -> str:
    """What moved away from the install: link problems, then files changed inside the version."""
    parts = ["%s %d" % (status, count) for status, count in sorted((cni.get("link_summary") or {}).items())
             if status != "ok" and count]
    drifted = current_version_entry(cni).get("drifted") or []
    if drifted:
        parts.append("changed: " + ",".join(sorted(drifted)))
    return ", ".join(parts) or "none"


def _containerd_ok(runtime: dict) -> bool:
    return runtime.get("runtime") != "containerd" or bool(runtime.get("plugin_dirs_current"))


def _containerd_cell(runtime: dict) -> str:
    if runtime.get("runtime") != "containerd":
        return "-"
    dirs = "dirs current" if runtime.get("plugin_dirs_current") else "dirs NOT current"
    if not runtime.get("cri_reachable"):
        cri = "CRI unreachable"
    else:
        cri = "NetworkReady" if runtime.get("network_ready") else "network not ready"
    return " ".join(part for part in (runtime.get("version") or "", dirs + ",", cri) if part)


def _netns_cell(netns: dict) -> str:
    if netns.get("ok"):
        return "shared tmpfs"
    if netns.get("mounts_known") is False:
        return "mounts unknown"
    if not netns.get("mounted"):
        return "not mounted"
    problems = []
    if netns.get("fstype") != "tmpfs":
        problems.append(netns.get("fstype") or "?")
    if not netns.get("shared"):
        problems.append("not shared")
    if not netns.get("persistent"):
        problems.append("not persistent")
    if not netns.get("var_run_ok"):
        problems.append("/var/run/netns elsewhere")
    return ", ".join(problems)


def _coverage_cell(coverage: dict) -> str:
    if coverage.get("ok"):
        return "ok (%s configs)" % coverage.get("configs", 0)
    missing = sorted(set(coverage.get("missing_types") or []))
    return "missing: " + ",".join(missing) if missing else "NOT covered"


def _problems(report: dict) -> list:
    """Why a node is not ready, in words a dashboard can show."""
    cni, runtime = report.get("cni_plugins") or {}, report.get("runtime") or {}
    netns, coverage = report.get("netns") or {}, report.get("coverage") or {}
    problems = []
    if not cni.get("current"):
        problems.append("no current version")
    elif _drift_cell(cni) != "none" or not current_version_entry(cni).get("intact", False):
        problems.append("plugins drifted")
    if not _containerd_ok(runtime):
        problems.append("containerd dirs not current")
    if not netns.get("ok"):
        problems.append("netns")
    if not coverage.get("ok"):
        problems.append("coverage")
    return problems


def fleet_report(reports, unreported=None):
    """Render reports (one dict per node, as verify.yml writes them) and name the nodes without one."""
    if not isinstance(reports, list) or not all(isinstance(r, dict) and "host" in r for r in reports):
        raise AnsibleFilterError("fleet_report expects a list of node reports, each a dict with 'host'")
    rows, not_ready = [], {}
    for report in sorted(reports, key=lambda r: str(r["host"])):
        cni = report.get("cni_plugins") or {}
        rows.append((str(report["host"]), _version_cell(cni), _links_cell(cni), _drift_cell(cni),
                     _containerd_cell(report.get("runtime") or {}), _netns_cell(report.get("netns") or {}),
                     _coverage_cell(report.get("coverage") or {})))
        problems = _problems(report)
        if problems:
            not_ready[str(report["host"])] = problems
    for host in sorted(str(h) for h in unreported or []):
        rows.append((host, "no report",) + ("-",) * (len(COLUMNS) - 2))
        not_ready[host] = ["no report (failed or unreachable)"]

    widths = [max(len(row[i]) for row in [COLUMNS] + rows) for i in range(len(COLUMNS))]
    table = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in [COLUMNS] + rows]
    versions = Counter((r.get("cni_plugins") or {}).get("current") for r in reports)
    versions.pop(None, None)
    total = len(rows)
    summary = "fleet: %d node%s, %d ready, %d not ready" % (total, "" if total == 1 else "s",
                                                            total - len(not_ready), len(not_ready))
    if not_ready:
        summary += " (" + "; ".join("%s: %s" % (host, ", ".join(why)) for host, why in sorted(not_ready.items())) + ")"
    if versions:
        summary += "; versions " + ", ".join("%s x%d" % (v, n) for v, n in sorted(versions.items()))
    return {"table": table, "summary": summary, "ready": total - len(not_ready), "not_ready": not_ready}


class FilterModule:
    """nodeprep.cni's report filters."""

    def filters(self):
        return {"fleet_report": fleet_report}
