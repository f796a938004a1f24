# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One node's uninstall summary: what each role removed, restored and left, and why."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

# Paths named in full per part; the rest are counted, so 500 nodes still give a readable log.
SHOWN = 8


def _label(item) -> str:
    """A path, or what a part names an entry by (a runtime names a config file and its key)."""
    if isinstance(item, dict):
        where = item.get("path") or item.get("file") or ""
        return "%s %s" % (where, item["key"]) if item.get("key") else str(where or item)
    return str(item)


def _named(paths: list) -> str:
    paths = [_label(item) for item in paths]
    shown = ", ".join(paths[:SHOWN])
    return shown + (" and %d more" % (len(paths) - SHOWN) if len(paths) > SHOWN else "")


def uninstall_summary(parts, host, check_mode=False):
    """Lines for *host* from ``{part: {removed, restored, left}}`` (each role's ``<role>_undo`` fact)."""
    if not isinstance(parts, dict):
        raise AnsibleFilterError("uninstall_summary expects a dict of each part's undo fact, got %s" % type(parts).__name__)
    verb = ("would remove", "would restore", "would leave") if check_mode else ("removed", "restored", "left")
    lines = ["%s: uninstall%s" % (host, " (check mode: nothing changed)" if check_mode else "")]
    for part, undo in parts.items():
        undo = undo or {}
        removed, restored, left = undo.get("removed") or [], undo.get("restored") or [], undo.get("left") or []
        if not (removed or restored or left):
            lines.append("%s: nothing of nodeprep's found" % part)
            continue
        if removed:
            lines.append("%s: %s %d: %s" % (part, verb[0], len(removed), _named(removed)))
        if restored:
            lines.append("%s: %s %d: %s" % (part, verb[1], len(restored), _named(restored)))
        for item in left:
            why = item.get("why") or item.get("reason") if isinstance(item, dict) else None
            lines.append("%s: %s %s: %s" % (part, verb[2], _label(item), why or "no reason given"))
    return lines


class FilterModule:
    """nodeprep.cni's uninstall summary filter."""

    def filters(self):
        return {"uninstall_summary": uninstall_summary}
