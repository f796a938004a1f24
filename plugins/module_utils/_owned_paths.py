# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which files, links and directories a role created on the node, so its uninstall takes back exactly those.

A role notes the paths it is about to create *before* it creates them: what is missing then (and each
missing parent directory) is recorded as created by nodeprep; what is there already is recorded as
found, and an uninstall leaves it. A file is recorded with the sha256 of the content the role writes,
so a file changed since (by a user, or by the software it serves) is left and reported. A directory
is removed only when nothing but what this record removes was in it. Planning reads the node only;
``apply`` carries out exactly the planned removals.
"""

from __future__ import annotations

import json
import os
import stat

from ansible_collections.nodeprep.cni.plugins.module_utils._atomic import atomic_write, make_dirs, missing_dirs
from ansible_collections.nodeprep.cni.plugins.module_utils._hashing import file_digest

KINDS = ("file", "dir", "link")


def read_record(path: str) -> tuple:
    """``(paths, record_dirs)``: ``{path: {"kind", "created", "sha256"?, "target"?}}`` and the directories
    made to hold the record itself; an unreadable or foreign file reads as empty."""
    try:
        with open(path, "rb") as handle:
            record = json.loads(handle.read().decode("utf-8"))
    except (OSError, ValueError):
        return {}, []
    record = record if isinstance(record, dict) else {}
    paths, dirs = record.get("paths"), record.get("record_dirs")
    return (paths if isinstance(paths, dict) else {}), (dirs if isinstance(dirs, list) else [])


def write_record(path: str, paths: dict, record_dirs: list) -> None:
    """The record, atomically. Directories made for it are named in it (several records may share one
    directory, so an uninstall removes such a directory only once it is empty)."""
    record_dirs = list(record_dirs) + [d for d in missing_dirs(os.path.dirname(path)) if d not in record_dirs]
    make_dirs(os.path.dirname(path))
    atomic_write(path, json.dumps({"paths": paths, "record_dirs": record_dirs}, indent=2, sort_keys=True).encode("utf-8") + b"\n",
                 0o644)


def _kind(path: str) -> str:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return "missing"
    if stat.S_ISLNK(info.st_mode):
        return "link"
    if stat.S_ISDIR(info.st_mode):
        return "dir"
    if stat.S_ISREG(info.st_mode):
        return "file"
    return "other"


def note(record: dict, wanted: list) -> dict:
    """The record after noting *wanted* (``[{path, kind, sha256?, target?}]``) on the node as it is now."""
    new = dict((path, dict(entry)) for path, entry in record.items())
    for item in wanted:
        path = os.path.normpath(item["path"])
        if item["kind"] not in KINDS or not os.path.isabs(path):
            raise ValueError("paths entry %s: give an absolute path and a kind of %s" % (item["path"], ", ".join(KINDS)))
        parent = os.path.dirname(path)
        for directory in missing_dirs(parent):
            new.setdefault(directory, {"kind": "dir", "created": True})
        entry = new.get(path)
        if entry is None:
            entry = {"kind": item["kind"], "created": _kind(path) == "missing"}
            new[path] = entry
        # The content the role writes now is what an uninstall compares with.
        for key in ("sha256", "target"):
            if item.get(key):
                entry[key] = item[key]
    return new


def plan_removal(record: dict) -> tuple:
    """``(remove, left)``: the paths to remove, in order (files and links, then directories deepest
    first), and ``[{path, why}]`` for those that stay."""
    remove, left = [], []
    for path in sorted(p for p, e in record.items() if e.get("kind") != "dir"):
        entry = record[path]
        found = _kind(path)
        if found == "missing":
            continue
        why = _why_file_stays(path, entry, found)
        if why:
            left.append({"path": path, "why": why})
        else:
            remove.append(path)
    going = set(remove)
    for path in sorted((p for p, e in record.items() if e.get("kind") == "dir"), key=lambda p: (-p.count("/"), p)):
        entry = record[path]
        found = _kind(path)
        if found == "missing":
            continue
        if not entry.get("created"):
            continue  # it was there before: never ours to remove, nothing to report either
        if found != "dir":
            left.append({"path": path, "why": "no longer a directory (now a %s); not nodeprep's" % found})
            continue
        others = sorted(name for name in os.listdir(path) if os.path.join(path, name) not in going)
        if others:
            shown = ", ".join(others[:5]) + (" and %d more" % (len(others) - 5) if len(others) > 5 else "")
            left.append({"path": path, "why": "not empty, it still holds: %s" % shown})
        else:
            remove.append(path)
            going.add(path)
    return remove, left


def _why_file_stays(path: str, entry: dict, found: str):
    if not entry.get("created"):
        return "it was there before nodeprep wrote it; left as it is"
    if found != entry["kind"]:
        return "now a %s, not the %s nodeprep made; left as it is" % (found, entry["kind"])
    if found == "link" and entry.get("target") and os.readlink(path) != entry["target"]:
        return "now points at %s, not at %s as nodeprep made it; left as it is" % (os.readlink(path), entry["target"])
    if found == "file" and entry.get("sha256") and file_digest(path) != entry["sha256"]:
        return "changed since nodeprep wrote it; left as it is"
    return None


def apply(remove: list) -> None:
    for path in remove:
        if _kind(path) == "dir":
            os.rmdir(path)
        else:
            os.unlink(path)
