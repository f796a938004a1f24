# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading verify's node reports on the controller, shared by the verify filters: the current version's
entry, and why a node is not ready, as fixed reason keys."""

from __future__ import annotations

from ansible_collections.nodeprep.cni.plugins.module_utils._release import normalize_version

# Why verify finds a node not ready. The keys are a contract: fleet.json, the JUnit report, the metrics'
# reason label, set_stats and nodeprep_verify_fail_on all use them, so dashboards and gates can rely on
# them. Each has what it means and what to change.
REASONS = {
    "unreported": ("no report: the node failed or was unreachable during verify",
                   "read the node's own error above; make it reachable and re-run verify.yml"),
    "no_version": ("no CNI plugins version is current",
                   "run site.yml on the node"),
    "skew": ("the current version is not the wanted one (cni_plugins_version)",
             "run site.yml or upgrade.yml with cni_plugins_version set to the wanted version"),
    "drift": ("plugin links or files no longer match the install (an add-on copied over them, or a link was removed)",
              "re-run site.yml: it repairs the version from the cache or the mirror"),
    "runtime": ("the container runtime searches plugin dirs that do not resolve to the current version",
                "re-run site.yml so the containerd role points the runtime at the plugin dirs"),
    "netns": ("the netns dir is not a shared, persistent tmpfs that /var/run/netns reaches",
              "run site.yml (the netns role)"),
    "coverage": ("a CNI config names a plugin type or CNI version that no plugin dir has",
                 "add the missing types to cni_plugins_list (or leave it empty) and re-run site.yml, or fix the configs"),
}
REASON_KEYS = tuple(REASONS)
# The reasons a node can find in its own report (a node that writes its metrics was reached).
NODE_REASON_KEYS = tuple(key for key in REASON_KEYS if key != "unreported")


def current_version_entry(cni: dict) -> dict:
    """The entry of cni_info's ``versions`` that is current, or an empty dict when none is."""
    for entry in cni.get("versions") or []:
        if entry.get("version") == cni.get("current"):
            return entry
    return {}


def same_version(current, wanted) -> bool:
    """Whether two release versions name the same release (``v1.9.1`` and ``1.9.1`` do)."""
    def canonical(version):
        try:
            return normalize_version(version)
        except ValueError:
            return str(version)
    return canonical(current) == canonical(wanted)


def skew_text(cni: dict, wanted) -> str:
    """Why the current version is not the wanted one, or "" when it is (or nothing is wanted)."""
    wanted = wanted or {}
    current = cni.get("current")
    if wanted.get("source") == "package":
        kind = (cni.get("current_source") or {}).get("type")
        if current and kind and kind != "package":
            return "current %s is from a %s, wanted the OS package (cni_plugins_source: package)" % (current, kind)
        return ""
    if not wanted.get("version"):
        return ""
    if not current:
        return "no current version, wanted %s" % wanted["version"]
    if same_version(current, wanted["version"]):
        return ""
    return "current %s, wanted %s" % (current, wanted["version"])


def drift_text(cni: dict) -> str:
    """What moved away from the install: link problems, then files changed inside the version; "none"."""
    parts = ["%s %d" % (status, count) for status, count in sorted((cni.get("link_summary") or {}).items())
             if status != "ok" and count]
    drifted = current_version_entry(cni).get("drifted") or []
    if drifted:
        parts.append("changed: " + ",".join(sorted(drifted)))
    return ", ".join(parts) or "none"


def netns_text(netns: dict) -> str:
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


def coverage_text(coverage: dict) -> str:
    if coverage.get("ok"):
        return "ok (%s configs)" % coverage.get("configs", 0)
    missing = sorted(set(coverage.get("missing_types") or []))
    return "missing: " + ",".join(missing) if missing else "NOT covered"


def runtime_checked(runtime: dict) -> bool:
    """Whether a runtime was found whose plugin dirs verify could check."""
    return runtime.get("runtime") not in (None, "", "none")


def problems(report: dict) -> dict:
    """Why a node is not ready: reason key -> what was found, in REASON_KEYS order; empty when ready."""
    cni, runtime = report.get("cni_plugins") or {}, report.get("runtime") or {}
    netns, coverage = report.get("netns") or {}, report.get("coverage") or {}
    found = {}
    if not cni.get("current"):
        found["no_version"] = "no current version"
    skew = skew_text(cni, report.get("wanted"))
    if skew:
        found["skew"] = skew
    if cni.get("current"):
        drift = drift_text(cni)
        if drift != "none" or not current_version_entry(cni).get("intact", False):
            found["drift"] = drift if drift != "none" else "%s not intact" % cni["current"]
    if runtime_checked(runtime) and not runtime.get("plugin_dirs_current"):
        not_current = runtime.get("plugin_dirs_not_current") or runtime.get("plugin_dirs") or []
        found["runtime"] = "%s searches %s, not the current version" % (
            runtime.get("runtime"), ", ".join(not_current) or "no plugin dir")
    if not netns.get("ok"):
        found["netns"] = netns_text(netns)
    if not coverage.get("ok"):
        found["coverage"] = "; ".join(coverage.get("problems") or []) or coverage_text(coverage)
    return found


def sample(hosts, cap: int) -> str:
    """``hosts`` named up to ``cap``, the rest counted: never a line naming every host of a fleet."""
    hosts = list(hosts)
    shown = ", ".join(hosts[:cap])
    return shown + (" and %d more" % (len(hosts) - cap) if len(hosts) > cap else "")
