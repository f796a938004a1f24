# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A durable undo log: before each change, how to take it back reaches the disk first.

A run records one *undo* entry (fsync'd) before every change it makes. If the run fails, the
entries are applied newest first and the node is back where this run found it; only what this
run did is undone, never what another run did before it. A run killed outright (kill -9, power
loss) leaves the journal behind, and the next run replays it before it reads the node.

Once every change is made, a ``commit`` entry lists the leftovers to delete (renamed-away
version directories, copies that are no longer needed). From then on the run is complete: a
replay only finishes the cleanup.

Every undo is idempotent and conditional: it restores the recorded *before* only while the path
is still in a state this run could have produced, so it never clobbers someone else's file and
is harmless when the change itself never happened (a kill between the record and the change).
"""

from __future__ import annotations

import json
import os
import shutil

from ansible_collections.nodeprep.cni.plugins.module_utils._adoption import put_back, same_content
from ansible_collections.nodeprep.cni.plugins.module_utils._atomic import (
    atomic_move,
    atomic_symlink,
    atomic_write,
    fsync_dir,
    remove_temps,
    rmdir_quietly,
    unlink_quietly,
)

JOURNAL_NAME = ".journal"


class Journal:
    """Append-only JSON lines at *path*, each fsync'd before the change it describes."""

    def __init__(self, path: str):
        self.path = path
        self._handle = None

    def exists(self) -> bool:
        return os.path.exists(self.path)

    def record(self, entry: dict) -> None:
        if self._handle is None:
            self._handle = open(self.path, "a", encoding="utf-8")
            fsync_dir(os.path.dirname(self.path))
        self._handle.write(json.dumps(entry, sort_keys=True) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def entries(self) -> list:
        """Complete entries in order; a torn last line (killed mid-write) was never acted on."""
        try:
            with open(self.path, "r", encoding="utf-8") as handle:
                lines = handle.read().split("\n")
        except FileNotFoundError:
            return []
        found = []
        for line in lines:
            try:
                found.append(json.loads(line))
            except ValueError:
                break
        return found

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def remove(self) -> None:
        self.close()
        unlink_quietly(self.path)
        fsync_dir(os.path.dirname(self.path))


class Transaction:
    """Runs changes with their undo recorded first; ``rollback`` or ``commit`` ends it."""

    def __init__(self, journal: Journal):
        self.journal = journal
        self.committed = False

    def step(self, undo: dict, action, *args):
        self.journal.record(undo)
        return action(*args)

    def commit(self, cleanup: list) -> None:
        self.journal.record({"kind": "commit", "cleanup": cleanup})
        self.committed = True
        finish_cleanup(cleanup)
        self.journal.remove()

    def rollback(self) -> list:
        """Undo this run's changes, newest first; returns what could not be undone."""
        entries = self.journal.entries()
        remove_our_temps(entries)
        problems = undo_entries(entries)
        self.journal.remove()
        return problems


def recover(journal: Journal) -> str:
    """Settle a journal left by a killed run: '' (none), 'completed' or 'rolled back'."""
    if not journal.exists():
        return ""
    entries = journal.entries()
    # First, so that no temp keeps a directory this run made from being removed by its undo.
    remove_our_temps(entries)
    committed = [e for e in entries if e.get("kind") == "commit"]
    if committed:
        finish_cleanup(committed[-1].get("cleanup", []))
        outcome = "completed"
    else:
        undo_entries(entries)
        outcome = "rolled back"
    journal.remove()
    return outcome


def remove_our_temps(entries: list) -> None:
    """Remove the temp names a killed run (or a killed recovery) left beside any path it journalled.

    Every temp is made beside the name it is renamed to, after that name's entry is recorded, so
    the journal names every directory one can be in. A temp only ever holds a copy of a file that
    still has its own name (a user's file being kept or put back), so removing it loses nothing,
    and afterwards a user's file has exactly one name.
    """
    seen = set()
    for entry in entries:
        for key in ("path", "stored", "src", "dst", "backup"):
            value = entry.get(key)
            if isinstance(value, str) and value and value not in seen:
                seen.add(value)
                remove_temps(os.path.dirname(value), os.path.basename(value))


def undo_entries(entries: list) -> list:
    problems = []
    for entry in reversed(entries):
        if entry.get("kind") == "commit":
            continue
        try:
            UNDO[entry["kind"]](entry)
        except OSError as exc:
            problems.append("%s: %s" % (entry.get("path") or entry.get("dst"), exc))
    return problems


def finish_cleanup(cleanup: list) -> None:
    for item in cleanup:
        if item["kind"] == "rmtree":
            shutil.rmtree(item["path"], ignore_errors=True)
        elif item["kind"] == "drop_copy":
            # A kept copy goes only once the file it copies is back in place, byte for byte.
            if same_content(item["path"], item["original"]):
                unlink_quietly(item["path"])
                rmdir_quietly(os.path.dirname(item["path"]))
        elif item["kind"] == "rmdir":
            rmdir_quietly(item["path"])


# undo of each kind of change -----------------------------------------------------------------

def _undo_path(entry: dict) -> None:
    """A symlink (a plugin link or a pointer) goes back to its recorded target, or away."""
    path, before = entry["path"], entry.get("before")
    if os.path.lexists(path) and not os.path.islink(path):
        return  # a real file sits there now: not something this run made
    if before is None:
        unlink_quietly(path)
    elif not (os.path.islink(path) and os.readlink(path) == before):
        atomic_symlink(before, path)


def _undo_rename(entry: dict) -> None:
    if os.path.lexists(entry["dst"]) and not os.path.lexists(entry["src"]):
        atomic_move(entry["dst"], entry["src"])


def _undo_replace(entry: dict) -> None:
    """A file replaced in one rename gets its kept original back the same way."""
    if entry.get("backup") is None:
        unlink_quietly(entry["path"])
    elif os.path.lexists(entry["backup"]):
        atomic_move(entry["backup"], entry["path"])


def _undo_mkdir(entry: dict) -> None:
    rmdir_quietly(entry["path"])


def _undo_file(entry: dict) -> None:
    if entry.get("before") is None:
        unlink_quietly(entry["path"])
    else:
        atomic_write(entry["path"], entry["before"].encode("utf-8"), 0o644)


def _undo_adopt(entry: dict) -> None:
    """The user's file returns by one rename over our link; the kept copy goes only after."""
    path, stored = entry["path"], entry["stored"]
    if not os.path.lexists(stored):
        return  # the copy was never completed, so the original was never replaced
    if _is_original(path, entry):
        unlink_quietly(stored)
    elif not os.path.lexists(path) or os.path.islink(path):
        put_back(stored, path)
        unlink_quietly(stored)
    rmdir_quietly(os.path.dirname(stored))


def _undo_restore(entry: dict) -> None:
    """A file put back by `absent` gives way to our link again; its kept copy never left."""
    path, stored = entry["path"], entry["stored"]
    if os.path.lexists(stored) and same_content(path, stored):
        atomic_symlink(entry["link_target"], path)


def _is_original(path: str, entry: dict) -> bool:
    if entry.get("link_target") is not None:
        return os.path.islink(path) and os.readlink(path) == entry["link_target"]
    return not os.path.islink(path) and same_content(path, entry["stored"])


UNDO = {
    "path": _undo_path,
    "rename": _undo_rename,
    "replace": _undo_replace,
    "mkdir": _undo_mkdir,
    "file": _undo_file,
    "adopt": _undo_adopt,
    "restore": _undo_restore,
}
