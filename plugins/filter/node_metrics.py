# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Renders one node's verify report in Prometheus' text exposition format, for node_exporter's textfile collector."""

from __future__ import annotations

import re
import time

from ansible.errors import AnsibleFilterError

from ansible_collections.nodeprep.cni.plugins.plugin_utils._cni_report import (
    NODE_REASON_KEYS, current_version_entry, problems as node_problems, skew_text)

PREFIX = "nodeprep_cni_"
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# Stands for "no such thing on this node" in an _info label, so that a node without a current version
# still has a series and shows up in "not on the wanted version".
NONE = "none"


def escape_label_value(value) -> str:
    """A label value as the text format wants it: backslash, double quote and line feed escaped."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    """HELP text escapes only backslash and line feed."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


class Family:
    """One metric family: its HELP and TYPE lines, then its samples."""

    def __init__(self, name: str, help_text: str, metric_type: str = "gauge"):
        if not _METRIC_NAME.match(name):
            raise ValueError("invalid metric name %r" % name)
        self.name, self.help, self.type = name, help_text, metric_type
        self.samples: list = []

    def add(self, value, **labels) -> "Family":
        for label in labels:
            if not _LABEL_NAME.match(label) or label.startswith("__"):
                raise ValueError("invalid label name %r on %s" % (label, self.name))
        self.samples.append((labels, value))
        return self

    def lines(self) -> list:
        out = ["# HELP %s %s" % (self.name, escape_help(self.help)), "# TYPE %s %s" % (self.name, self.type)]
        for labels, value in self.samples:
            text = ",".join('%s="%s"' % (key, escape_label_value(labels[key])) for key in sorted(labels))
            out.append("%s%s %s" % (self.name, "{%s}" % text if text else "", format_value(value)))
        return out


def render(families) -> str:
    """The exposition text; families without samples are left out (their HELP alone would be noise)."""
    lines = []
    for family in families:
        if family.samples:
            lines.extend(family.lines())
    return "\n".join(lines) + "\n"


def _source_labels(cni: dict) -> dict:
    source = cni.get("current_source") or {}
    kind = source.get("type") or NONE
    if kind == "package":
        where = "%s %s" % (source.get("package", ""), source.get("package_version", ""))
    else:
        where = source.get("url") or NONE
    return {"source_type": kind, "source": where.strip() or NONE}


def families(report: dict, problems=None, wanted=None, timestamp=None) -> list:
    """The node's metric families, from a report as playbooks/verify.yml writes it."""
    cni, runtime = report.get("cni_plugins") or {}, report.get("runtime") or {}
    netns, coverage = report.get("netns") or {}, report.get("coverage") or {}
    current = current_version_entry(cni)
    if wanted is None:
        wanted = (report.get("wanted") or {}).get("version")
    if problems is None:
        problems = node_problems(dict(report, wanted={"version": wanted}) if wanted else report)
    problems = set(str(p) for p in problems)

    def family(name, help_text):
        return Family(PREFIX + name, help_text)

    out = [
        family("plugins_info", "The CNI plugins version current on the node (none without one) and where it came from.")
        .add(1, version=cni.get("current") or NONE, **_source_labels(cni)),
        family("plugins_wanted_info", "The CNI plugins version verify was told to expect (cni_plugins_version)."),
        family("plugins_skew", "Whether the current version is not the wanted one (1) or is (0); absent when none is wanted."),
        family("plugins_intact", "Whether every file of the current version matches its install manifest (1) or not (0).")
        .add(bool(current.get("intact", False))),
        family("plugins_drifted_files", "Files of the current version that no longer match the install manifest.")
        .add(len(current.get("drifted") or [])),
        family("plugins_versions_installed", "Versions kept in the versions dir, the current one included.")
        .add(len(cni.get("versions") or [])),
        family("links", "Plugin links in the bin dir and the link dirs, by status."),
        family("netns_shared", "Whether the netns dir is a mounted tmpfs with shared propagation (1) or not (0).")
        .add(bool(netns.get("mounted")) and netns.get("fstype") == "tmpfs" and bool(netns.get("shared"))),
        family("netns_ok", "Whether the netns dir is a shared, writable, persistent tmpfs that /var/run/netns reaches (1).")
        .add(bool(netns.get("ok"))),
        family("runtime_info", "The container runtime verify found (none without one) and its version.")
        .add(1, runtime=runtime.get("runtime") or NONE, version=runtime.get("version") or NONE),
        family("runtime_cri_reachable", "Whether the runtime's CRI socket answered (1) or not (0).")
        .add(bool(runtime.get("cri_reachable"))),
        family("runtime_network_ready", "The runtime's CRI NetworkReady condition (1 ready; 0 not ready or CRI unreachable).")
        .add(bool(runtime.get("cri_reachable")) and bool(runtime.get("network_ready"))),
        family("runtime_plugin_dirs_current", "Whether every plugin dir the runtime searches resolves to the current version.")
        .add(bool(runtime.get("plugin_dirs_current"))),
        family("configs", "CNI configs found in the config dirs.").add(int(coverage.get("configs") or 0)),
        family("coverage_ok", "Whether every plugin type and CNI version the configs name can run here (1) or not (0).")
        .add(bool(coverage.get("ok"))),
        family("missing_plugin_types", "Plugin types that configs or the runtime name but no plugin dir holds.")
        .add(len(set(coverage.get("missing_types") or []))),
        family("missing_plugin_type", "One series per plugin type configs or the runtime name but no plugin dir holds."),
        family("ready", "Whether verify found the node ready for CNI networking (1) or not (0).").add(not problems),
        family("problem", "One series per reason key verify knows, 1 when the node is not ready for that reason."),
        family("last_verify_timestamp_seconds", "When verify last wrote this file, in seconds since the Unix epoch.")
        .add(float(time.time() if timestamp is None else timestamp)),
    ]
    named = dict((f.name[len(PREFIX):], f) for f in out)
    if wanted:
        named["plugins_wanted_info"].add(1, version=str(wanted))
        named["plugins_skew"].add(bool(skew_text(cni, {"version": str(wanted)})))
    for status, count in sorted((cni.get("link_summary") or {}).items()):
        named["links"].add(int(count), status=status)
    for plugin_type in sorted(set(coverage.get("missing_types") or [])):
        named["missing_plugin_type"].add(1, type=plugin_type)
    # Every key, 0 or 1, so that a dashboard sums a series that always exists.
    for reason in NODE_REASON_KEYS:
        named["problem"].add(reason in problems, reason=reason)
    return out


def node_metrics(report, problems=None, wanted=None, timestamp=None):
    """The textfile for one node: ``report`` as verify.yml builds it, ``problems`` the reasons it is not ready."""
    if not isinstance(report, dict) or "host" not in report:
        raise AnsibleFilterError("node_metrics expects one node report, a dict with 'host' as verify.yml builds it")
    if problems is not None and not isinstance(problems, (list, tuple, dict)):
        raise AnsibleFilterError("node_metrics: problems must be a list of reasons, not %r" % (problems,))
    unknown = sorted(set(str(p) for p in problems or []) - set(NODE_REASON_KEYS))
    if unknown:
        raise AnsibleFilterError("node_metrics: unknown reason %s; valid reasons: %s"
                                 % (", ".join(unknown), ", ".join(NODE_REASON_KEYS)))
    try:
        return render(families(report, problems, wanted, timestamp))
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError("node_metrics: %s" % exc)


class FilterModule:
    """nodeprep.cni's Prometheus filter."""

    def filters(self):
        return {"node_metrics": node_metrics}
