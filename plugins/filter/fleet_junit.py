# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Renders one verify run as a JUnit XML report: a test case per node, failing with the reasons it is not ready."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET

from ansible.errors import AnsibleFilterError

SUITE = "nodeprep.cni verify"
# XML 1.0 has no way to carry most control characters, not even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(value) -> str:
    return _NOT_XML.sub("?", str(value))


def _reasons(found) -> list:
    """A host's reasons: a list, or reason key -> what was found (fleet_report's ``details``)."""
    if isinstance(found, dict):
        return ["%s: %s" % item for item in found.items()]
    return [str(r) for r in found or []]


def fleet_junit(hosts, not_ready=None, versions=None, timestamp=None, name=SUITE, wanted=None):
    """``hosts`` the play's hosts, ``not_ready`` host -> reasons (fleet_report's ``details`` or ``not_ready``),
    ``versions`` host -> current, ``wanted`` host -> the version verify expected."""
    if not isinstance(hosts, (list, tuple)):
        raise AnsibleFilterError("fleet_junit expects the list of the run's hosts, not %r" % (hosts,))
    not_ready = not_ready or {}
    versions, wanted = versions or {}, wanted or {}
    if not isinstance(not_ready, dict) or not isinstance(versions, dict) or not isinstance(wanted, dict):
        raise AnsibleFilterError("fleet_junit: not_ready, versions and wanted must be dicts keyed by host")
    stamp = time.gmtime(time.time() if timestamp is None else float(timestamp))
    names = sorted(set(str(h) for h in hosts) | set(str(h) for h in not_ready))
    failed = [h for h in names if not_ready.get(h)]
    suites = ET.Element("testsuites", name=_text(name), tests=str(len(names)), failures=str(len(failed)), errors="0")
    suite = ET.SubElement(suites, "testsuite", name=_text(name), tests=str(len(names)), failures=str(len(failed)),
                          errors="0", skipped="0", timestamp=time.strftime("%Y-%m-%dT%H:%M:%S", stamp))
    for host in names:
        case = ET.SubElement(suite, "testcase", classname="nodeprep.cni.verify", name=_text(host), time="0")
        named = [(key, found[host]) for key, found in (("cni_plugins_version", versions), ("cni_plugins_wanted", wanted))
                 if found.get(host)]
        if named:
            properties = ET.SubElement(case, "properties")
            for key, value in named:
                ET.SubElement(properties, "property", name=key, value=_text(value))
        reasons = _reasons(not_ready.get(host))
        if reasons:
            failure = ET.SubElement(case, "failure", type="not ready", message=_text("; ".join(reasons)))
            failure.text = _text("\n".join("%s: %s" % (host, reason) for reason in reasons))
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


class FilterModule:
    """nodeprep.cni's JUnit filter."""

    def filters(self):
        return {"fleet_junit": fleet_junit}
