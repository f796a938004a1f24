# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turns the per-node reports of verify.yml (see node_report) into one aligned table, a fleet summary with
counts per reason, and the gate that fails the run on the reasons nodeprep_verify_fail_on names."""

from __future__ import annotations

from collections import Counter

from ansible.errors import AnsibleFilterError

from ansible_collections.nodeprep.cni.plugins.plugin_utils._cni_report import (
    REASON_KEYS, REASONS, coverage_text, current_version_entry, drift_text, netns_text, problems, runtime_checked, sample)

COLUMNS = ("node", "version", "links", "drift", "runtime", "netns", "coverage")
# Hosts named per reason in the summary, and versions named in it: the rest are counted.
SAMPLE_HOSTS = 5
SAMPLE_VERSIONS = 5


def _version_cell(cni: dict, skew: str) -> str:
    current = cni.get("current")
    if not current:
        return "none"
    cell = current if current_version_entry(cni).get("intact", False) else current + " (not intact)"
    return cell + " SKEW" if skew else cell


def _links_cell(cni: dict) -> str:
    summary = cni.get("link_summary") or {}
    total = sum(summary.values())
    return "%d/%d ok" % (summary.get("ok", 0), total) if total else "none"


def _runtime_cell(runtime: dict) -> str:
    if not runtime_checked(runtime):
        return "-"
    dirs = "dirs current" if runtime.get("plugin_dirs_current") else "dirs NOT current"
    if not runtime.get("cri_reachable"):
        cri = "CRI unreachable"
    else:
        cri = "NetworkReady" if runtime.get("network_ready") else "network not ready"
    return " ".join(part for part in (runtime.get("runtime"), runtime.get("version") or "", dirs + ",", cri) if part)


def _versions_text(reports) -> str:
    versions = Counter((r.get("cni_plugins") or {}).get("current") for r in reports)
    versions.pop(None, None)
    ranked = sorted(versions.items(), key=lambda item: (-item[1], str(item[0])))
    text = ", ".join("%s x%d" % item for item in ranked[:SAMPLE_VERSIONS])
    if len(ranked) > SAMPLE_VERSIONS:
        text += " and %d other versions on %d nodes" % (len(ranked) - SAMPLE_VERSIONS,
                                                        sum(n for _v, n in ranked[SAMPLE_VERSIONS:]))
    return text


def _wanted_text(reports) -> str:
    wanted = Counter(str((r.get("wanted") or {}).get("version") or (r.get("wanted") or {}).get("source") or "")
                     for r in reports)
    wanted.pop("", None)
    return ", ".join(sorted(wanted))


def fleet_report(reports, unreported=None, sample_hosts=SAMPLE_HOSTS):
    """Render reports (one dict per node, as verify.yml writes them) and name the nodes without one."""
    if not isinstance(reports, list) or not all(isinstance(r, dict) and "host" in r for r in reports):
        raise AnsibleFilterError("fleet_report expects a list of node reports, each a dict with 'host'")
    rows, not_ready, details = [], {}, {}
    for report in sorted(reports, key=lambda r: str(r["host"])):
        cni, host = report.get("cni_plugins") or {}, str(report["host"])
        found = problems(report)
        rows.append((host, _version_cell(cni, found.get("skew")), _links_cell(cni), drift_text(cni),
                     _runtime_cell(report.get("runtime") or {}), netns_text(report.get("netns") or {}),
                     coverage_text(report.get("coverage") or {})))
        if found:
            not_ready[host] = list(found)
            details[host] = found
    for host in sorted(str(h) for h in unreported or []):
        rows.append((host, "no report",) + ("-",) * (len(COLUMNS) - 2))
        not_ready[host] = ["unreported"]
        details[host] = {"unreported": REASONS["unreported"][0]}

    widths = [max(len(row[i]) for row in [COLUMNS] + rows) for i in range(len(COLUMNS))]
    table = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in [COLUMNS] + rows]
    hosts = dict((key, sorted(h for h, keys in not_ready.items() if key in keys)) for key in REASON_KEYS)
    counts = dict((key, len(names)) for key, names in hosts.items())
    total = len(rows)
    summary = "fleet: %d node%s, %d ready, %d not ready" % (total, "" if total == 1 else "s",
                                                            total - len(not_ready), len(not_ready))
    if not_ready:
        summary += " (%s)" % ", ".join("%s %d" % (key, n) for key, n in counts.items() if n)
    versions, wanted = _versions_text(reports), _wanted_text(reports)
    if versions:
        summary += "; versions " + versions
    if wanted:
        summary += "; wanted " + wanted
    reason_lines = ["%s: %d (%s)" % (key, counts[key], sample(hosts[key], int(sample_hosts)))
                    for key in REASON_KEYS if counts[key]]
    return {"table": table, "summary": summary, "reason_lines": reason_lines, "counts": counts,
            "ready": total - len(not_ready), "not_ready": not_ready, "details": details}


def _fail_on_problem(fail_on, variable) -> str:
    if isinstance(fail_on, str) or not isinstance(fail_on, (list, tuple)):
        return "%s must be a list of reasons (for example [skew, drift, coverage]), not %r; valid reasons: %s" % (
            variable, fail_on, ", ".join(REASON_KEYS))
    unknown = [str(key) for key in fail_on if key not in REASONS]
    if unknown:
        return "%s: unknown reason%s %s; valid reasons: %s" % (
            variable, "" if len(unknown) == 1 else "s", ", ".join(unknown), ", ".join(REASON_KEYS))
    return ""


def verify_fail_on(fail_on, variable="nodeprep_verify_fail_on", check=False):
    """The reasons a verify run fails on, in REASON_KEYS order; a bad value is one clear error listing the valid
    ones (with ``check``, that error's text is returned instead, "" for a good value)."""
    problem = _fail_on_problem(fail_on, variable)
    if check:
        return problem
    if problem:
        raise AnsibleFilterError(problem)
    return [key for key in REASON_KEYS if key in fail_on]


def fleet_gate(fleet, fail_on, sample_hosts=SAMPLE_HOSTS):
    """What fails the run: per reason of ``fail_on`` that some node has, its count, sampled hosts and fix."""
    if not isinstance(fleet, dict) or not isinstance(fleet.get("not_ready"), dict):
        raise AnsibleFilterError("fleet_gate expects fleet_report's result")
    fail_on = verify_fail_on(fail_on)
    details = fleet.get("details") or {}
    failing, lines, messages = {}, [], {}
    for host, keys in sorted(fleet["not_ready"].items()):
        named = [key for key in fail_on if key in keys]
        if named:
            found = details.get(host) or {}
            messages[host] = "%s (nodeprep_verify_fail_on). Fix: %s" % (
                "; ".join("%s: %s" % (key, found.get(key) or REASONS[key][0]) for key in named),
                "; ".join("%s - %s" % (key, REASONS[key][1]) for key in named))
    for key in fail_on:
        hosts = sorted(h for h, keys in fleet["not_ready"].items() if key in keys)
        if hosts:
            failing[key] = hosts
            lines.append("%s: %d (%s): %s; fix: %s" % (
                key, len(hosts), sample(hosts, int(sample_hosts)), REASONS[key][0], REASONS[key][1]))
    hosts = sorted(set(h for names in failing.values() for h in names))
    return {"failed": bool(failing), "fail_on": fail_on, "reasons": list(failing), "hosts": hosts,
            "lines": lines, "messages": messages,
            "msg": ("verify fails on %s (nodeprep_verify_fail_on), %d node%s: %s" % (
                ", ".join(failing), len(hosts), "" if len(hosts) == 1 else "s", " | ".join(lines))) if failing else ""}


class FilterModule:
    """nodeprep.cni's report filters."""

    def filters(self):
        return {"fleet_report": fleet_report, "verify_fail_on": verify_fail_on, "fleet_gate": fleet_gate}
