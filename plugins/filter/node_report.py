# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One node's verify report, assembled here alone from what the modules and roles read."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.nodeprep.cni.plugins.plugin_utils._cni_report import REASONS, problems

SCHEMA_VERSION = 1
# What a module's registered result carries besides its findings.
_RESULT_NOISE = ("changed", "failed", "invocation")


def _runtime_part(containerd: dict, dirs: dict) -> dict:
    """The runtime's part: the dirs it searches (containerd_info, or crio_info on CRI-O) checked by cni_info (``dirs``)."""
    bin_dirs = list(containerd.get("bin_dirs") or [])
    links = dirs.get("links") or []
    bad_dirs = {link.get("dir") for link in links if link.get("status") != "ok"}
    ok_dirs = {link.get("dir") for link in links if link.get("status") == "ok"}
    good = [d for d in bin_dirs if d not in bad_dirs and d in ok_dirs]
    cri = containerd.get("cri") or {}
    return {
        "runtime": (containerd.get("runtime") or "containerd") if containerd.get("installed") or cri.get("reachable") else "none",
        "version": containerd.get("version"),
        "dirs_from": containerd.get("source"),
        "plugin_dirs": bin_dirs,
        "plugin_dirs_not_current": [d for d in bin_dirs if d not in good],
        "plugin_dirs_current": bool(bin_dirs) and len(good) == len(bin_dirs),
        "link_problems": ["%s: %s" % (link.get("path"), link.get("status")) for link in links if link.get("status") != "ok"],
        "current": dirs.get("current"),
        "conf_dir": containerd.get("conf_dir"),
        "cri_reachable": cri.get("reachable"),
        "cri_error": cri.get("error"),
        "network_ready": cri.get("network_ready"),
        "network_message": ((cri.get("conditions") or {}).get("NetworkReady") or {}).get("message", ""),
        "last_cni_load_status": cri.get("last_cni_load_status"),
        "missing_types": dirs.get("missing_types") or [],
        "coverage_problems": (dirs.get("coverage") or {}).get("problems") or [],
        "runtime_plugins": containerd.get("runtime_plugins"),
        "use_internal_loopback": containerd.get("use_internal_loopback"),
        "cni_status": dirs.get("cni_status") or [],
    }


def _coverage_part(coverage: dict, runtime: dict) -> dict:
    """The configs' coverage (cni_info on the role's dirs) joined with what the runtime itself runs for
    every pod (containerd's loopback) on the dirs the runtime searches."""
    found = dict(coverage.get("coverage") or {})
    problems = runtime.get("coverage_problems") or []
    found.update({
        "ok": bool(found.get("ok")) and not problems,
        "missing_types": sorted(set((found.get("missing_types") or []) + (runtime.get("missing_types") or []))),
        "problems": list(dict.fromkeys((found.get("problems") or []) + problems)),
        "plugin_dirs": coverage.get("plugin_dirs"),
        "files": coverage.get("configs"),
    })
    return found


def _usable(result) -> dict:
    return result if isinstance(result, dict) and not result.get("skipped") else {}


def _wanted(wanted):
    """``{source, version}`` as the cni_plugins role's report says (cni_plugins_wanted), None when not known."""
    if wanted is None:
        return None
    if isinstance(wanted, str):
        return {"source": "release", "version": wanted}
    if isinstance(wanted, dict):
        return {"source": wanted.get("source") or "release", "version": wanted.get("version")}
    raise AnsibleFilterError("node_report: wanted must be a version or the cni_plugins role's cni_plugins_wanted, not %r"
                             % (wanted,))


def _report(cni_plugins, host, netns, coverage, containerd, containerd_dirs, wanted) -> dict:
    containerd, containerd_dirs = _usable(containerd), _usable(containerd_dirs)
    runtime = _runtime_part(containerd, containerd_dirs) if containerd else {}
    report = {
        "schema_version": SCHEMA_VERSION,
        "host": host,
        "wanted": _wanted(wanted),
        "cni_plugins": {key: value for key, value in cni_plugins.items() if key not in _RESULT_NOISE},
        "runtime": runtime,
        "netns": netns or {},
        "coverage": _coverage_part(_usable(coverage), runtime),
    }
    found = problems(report)
    report["skew"] = "skew" in found if report["wanted"] else None
    report["problems"] = found
    return report


def _joined(pairs) -> str:
    return "; ".join("%s: %s" % pair for pair in pairs)


def _lines(report: dict) -> list:
    """The node's report in words, as verify.yml shows it with -v."""
    cni, runtime = report.get("cni_plugins") or {}, report.get("runtime") or {}
    netns, coverage = report.get("netns") or {}, report.get("coverage") or {}
    source = cni.get("current_source") or {}
    parts = (source.get("type"), source.get("package") or source.get("url"), source.get("package_version"))
    source_text = " ".join(str(part) for part in parts if part)
    wanted = report.get("wanted") or {}
    lines = [
        "current %s, previous %s" % (cni.get("current") or "-", cni.get("previous") or "-"),
        "wanted: %s%s" % (wanted.get("version") or wanted.get("source") or "-", " (SKEW)" if report.get("skew") else ""),
        "healthy: %s" % cni.get("healthy"),
        "source: %s" % (source_text or "-"),
        "versions: %s" % (", ".join(str(v.get("version")) for v in cni.get("versions") or []) or "none"),
        "not intact: %s" % (", ".join(str(v.get("version")) for v in cni.get("versions") or [] if not v.get("intact"))
                            or "none"),
        "links: %s" % ", ".join("%s %s" % item for item in (cni.get("link_summary") or {}).items()),
        "unmanaged: %s" % (_joined((k, " ".join(v)) for k, v in (cni.get("unmanaged") or {}).items()) or "none"),
        "adopted: %s" % (", ".join(str(a.get("original")) for a in cni.get("adopted") or []) or "none"),
        "package-owned: %s" % ("; ".join("%s %s %s" % (p.get("path"), p.get("package"), p.get("status"))
                                         for p in cni.get("package_owned") or []) or "none"),
        "missing plugin types: %s" % (", ".join(cni.get("missing_types") or []) or "none"),
    ]
    if runtime:
        not_current = runtime.get("plugin_dirs_not_current") or []
        lines += [
            "%s %s (dirs from %s)" % (runtime.get("runtime"), runtime.get("version") or "-", runtime.get("dirs_from")),
            "plugin dirs searched: %s" % (", ".join(runtime.get("plugin_dirs") or []) or "none"),
            "all resolve to current %s: %s%s" % (
                runtime.get("current") or "-", runtime.get("plugin_dirs_current"),
                " (not: %s)" % ", ".join(not_current) if not_current else ""),
            "config dir: %s" % (runtime.get("conf_dir") or "-"),
            "NetworkReady: %s %s" % (runtime.get("network_ready") if runtime.get("cri_reachable")
                                     else "CRI not reachable: %s" % runtime.get("cri_error"),
                                     runtime.get("network_message") or ""),
            "CNI STATUS (conflists of CNI 1.1.0+): %s" % (
                _joined((s.get("path"), s.get("message")) for s in runtime.get("cni_status") or [] if s.get("ran"))
                or "none asked"),
            "last CNI load: %s" % (runtime.get("last_cni_load_status") or "-"),
            "plugins the runtime runs for every pod: %s" % (
                ", ".join(runtime.get("runtime_plugins") or []) or "none (it brings lo up itself)"),
            "plugin types configs use but the runtime cannot find: %s" % (
                ", ".join(runtime.get("missing_types") or []) or "none"),
        ]
    bin_dir = netns.get("cni_bin_dir") or {}
    lines += [
        "netns: %s %s %s, persistent %s, %s -> %s" % (
            netns.get("dir"), netns.get("fstype") or "not mounted", netns.get("propagation") or "-",
            netns.get("persistent"), netns.get("var_run_dir"), netns.get("var_run_resolves_to"))
        + ("" if netns.get("mounts_known", True) else " (mounts unknown: %s)" % netns.get("mounts_reason")),
        "CNI bin dir %s on %s: %s" % (bin_dir.get("path"), bin_dir.get("mount"), bin_dir.get("propagation")),
        "coverage: %s (%s configs)" % ("ok" if coverage.get("ok") else "NOT covered", coverage.get("configs")),
    ] + ["coverage problem: %s" % problem for problem in coverage.get("problems") or []]
    found = report.get("problems") or {}
    lines.append("ready: %s" % ("yes" if not found else "no (%s)" % ", ".join(found)))
    lines += ["%s: %s (%s)" % (key, text, REASONS[key][0]) for key, text in found.items()]
    return lines


def node_report(cni_plugins, host, netns=None, coverage=None, containerd=None, containerd_dirs=None, wanted=None):
    """The node's report for the JSON file and the fleet table, and the same in words."""
    if not isinstance(cni_plugins, dict) or not isinstance(host, str):
        raise AnsibleFilterError("node_report expects the cni_plugins role's report (a cni_info result) and the host's name")
    report = _report(cni_plugins, host, netns, coverage, containerd, containerd_dirs, wanted)
    return {"report": report, "lines": _lines(report)}


class FilterModule:
    """nodeprep.cni's node report filter."""

    def filters(self):
        return {"node_report": node_report}
