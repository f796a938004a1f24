# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Carry out an install plan, journalling the undo of every change before making it."""

from __future__ import annotations

import json
import os
import shutil
import time

from ansible_collections.nodeprep.cni.plugins.module_utils._adoption import describe, keep_copy, put_back
from ansible_collections.nodeprep.cni.plugins.module_utils._atomic import (
    atomic_move,
    atomic_symlink,
    atomic_write,
    fsync_dir,
    make_dir,
    missing_dirs,
    unlink_quietly,
)
from ansible_collections.nodeprep.cni.plugins.module_utils._install_tree import ADOPTED_INDEX, STAGE_PREFIX, TRASH_PREFIX
from ansible_collections.nodeprep.cni.plugins.module_utils._manifest import MANIFEST_NAME, build_manifest, is_plugin_name, read_manifest, write_manifest
from ansible_collections.nodeprep.cni.plugins.module_utils._package_source import copy_plugin_dir, list_plugin_dir
from ansible_collections.nodeprep.cni.plugins.module_utils._paths import is_inside
from ansible_collections.nodeprep.cni.plugins.module_utils._probe import probe_plugin
from ansible_collections.nodeprep.cni.plugins.module_utils._staging import make_stage


def clean_leftovers(versions_dir: str) -> None:
    """Stage and trash directories are only ever ours; once the journal is settled, none is needed."""
    try:
        names = os.listdir(versions_dir)
    except OSError:
        return
    for name in names:
        if name.startswith((STAGE_PREFIX, TRASH_PREFIX)):
            shutil.rmtree(os.path.join(versions_dir, name), ignore_errors=True)


def _readlink(path: str):
    try:
        return os.readlink(path)
    except OSError:
        return None


def _read_text(path: str):
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


class Executor:
    """Runs each planned operation as one journalled step of *tx*."""

    def __init__(self, tree, tx, run_command, probe_timeout: float, source_url=None, tarball=None, source=None):
        self.tree = tree
        self.tarball = tarball  # the ReleaseTarball of src, for install and repair
        self.source = source  # the package a directory source belongs to, recorded in the manifest
        self.tx = tx
        self.run_command = run_command
        self.probe_timeout = probe_timeout
        self.source_url = source_url
        self.cleanup = []
        self.new_records = []

    def run(self, plan) -> None:
        for op in plan.ops:
            getattr(self, "_" + op["op"])(op)
        self.tx.commit(self.cleanup)

    # directories -------------------------------------------------------------------------------
    def _mkdir(self, op):
        self._make_dir(op["path"], 0o755)

    def _make_dir(self, path: str, mode: int) -> None:
        self.tx.step({"kind": "mkdir", "path": path}, make_dir, path, mode)

    def _make_dirs(self, path: str, mode: int) -> None:
        for directory in missing_dirs(path):
            self._make_dir(directory, mode)

    def _rmdir(self, op):
        self.cleanup.append({"kind": "rmdir", "path": op["path"]})

    # versions ----------------------------------------------------------------------------------
    def _stage(self, version: str, src: str, src_kind: str = "tarball") -> str:
        """The plugins unpacked (or copied) next to their final place, invisible to runtimes, probed and manifested."""
        if src_kind == "dir":
            stage_dir = make_stage(self.tree.versions_dir, version)
            self.cleanup.append({"kind": "rmtree", "path": stage_dir})
            names = copy_plugin_dir(src, list_plugin_dir(src), stage_dir)
            archive_sha256, digests, source = None, None, dict(self.source or {}, type="package", dir=src)
        else:
            stage_dir, unpacked = self.tarball.staged()
            self.cleanup.append({"kind": "rmtree", "path": stage_dir})
            names, archive_sha256, digests, source = unpacked.names, unpacked.archive_sha256, unpacked.digests, None
        for name in names:
            if is_plugin_name(name):
                probe_plugin(self.run_command, os.path.join(stage_dir, name), self.probe_timeout)
        source_url = self.source_url or "file://" + os.path.abspath(src)
        write_manifest(stage_dir, build_manifest(stage_dir, version, names, source_url, archive_sha256, digests=digests, source=source))
        return stage_dir

    def _install(self, op):
        stage_dir = self._stage(op["version"], op["src"], op.get("src_kind", "tarball"))
        version_dir = self.tree.version_dir(op["version"])
        # The stage's entries reach the disk before one rename publishes them as the version.
        fsync_dir(stage_dir)
        self.tx.step({"kind": "rename", "src": stage_dir, "dst": version_dir}, atomic_move, stage_dir, version_dir)

    def _repair(self, op):
        # File by file, each replaced in one rename, so `current` never lacks a file; the
        # replaced file is kept (hard-linked) aside until the run commits. Files the manifest
        # does not name are left alone.
        stage_dir = self._stage(op["version"], op["src"], op.get("src_kind", "tarball"))
        version_dir = self.tree.version_dir(op["version"])
        aside = os.path.join(self.tree.versions_dir, "%sv%s-%d" % (TRASH_PREFIX, op["version"], os.getpid()))
        self._make_dir(aside, 0o700)
        self.cleanup.append({"kind": "rmtree", "path": aside})
        for name in sorted(read_manifest(stage_dir)["files"]) + [MANIFEST_NAME]:
            target, backup = os.path.join(version_dir, name), os.path.join(aside, name)
            if os.path.lexists(target):
                os.link(target, backup)
            else:
                backup = None
            self.tx.step({"kind": "replace", "path": target, "backup": backup},
                         atomic_move, os.path.join(stage_dir, name), target)

    def _remove_version(self, op):
        # One rename makes the version vanish; the tree is deleted once the run has committed.
        version_dir = self.tree.version_dir(op["version"])
        trash = os.path.join(self.tree.versions_dir, "%sv%s-%d" % (TRASH_PREFIX, op["version"], os.getpid()))
        self.tx.step({"kind": "rename", "src": version_dir, "dst": trash}, atomic_move, version_dir, trash)
        self.cleanup.append({"kind": "rmtree", "path": trash})

    def _set_aside(self, op):
        self._make_dirs(os.path.dirname(op["stored"]), 0o700)
        self.tx.step({"kind": "rename", "src": op["path"], "dst": op["stored"]}, atomic_move, op["path"], op["stored"])
        self._record(op["path"], op["stored"], {"kind": "dir"})

    # links and pointers ------------------------------------------------------------------------
    def _point(self, op):
        path = self.tree.pointer_path(op["name"])
        before = _readlink(path)
        if op["version"] is None:
            self.tx.step({"kind": "path", "path": path, "before": before}, unlink_quietly, path)
        else:
            self.tx.step({"kind": "path", "path": path, "before": before}, atomic_symlink, "v" + op["version"], path)

    def _link(self, op):
        path = op["path"]
        self.tx.step({"kind": "path", "path": path, "before": _readlink(path)}, atomic_symlink, op["target"], path)

    def _unlink(self, op):
        path = op["path"]
        self.tx.step({"kind": "path", "path": path, "before": _readlink(path)}, os.unlink, path)

    def _adopt(self, op):
        path, stored = op["path"], op["stored"]
        found = describe(path)
        self._make_dirs(os.path.dirname(stored), 0o700)
        undo = dict(found, kind="adopt", path=path, stored=stored)
        self.tx.step(undo, keep_copy, path, stored)
        atomic_symlink(op["target"], path)  # the same step: its undo puts the kept copy back
        if op.get("package"):
            found = dict(found, package=op["package"])  # cni_info warns about it from this record
        self._record(path, stored, found)

    def _restore(self, op):
        path, stored, record = op["path"], op["stored"], op["record"]
        if record.get("kind") == "dir":
            self.tx.step({"kind": "rename", "src": stored, "dst": path}, atomic_move, stored, path)
        else:
            link_target = _readlink(path) or self.tree.link_target(os.path.basename(path))
            self.tx.step({"kind": "restore", "path": path, "stored": stored, "link_target": link_target},
                         put_back, stored, path)
            self.cleanup.append({"kind": "drop_copy", "path": stored, "original": path})
        batch = os.path.dirname(stored)
        while batch != self.tree.adopted_root and is_inside(batch, self.tree.adopted_root):
            self.cleanup.append({"kind": "rmdir", "path": batch})
            batch = os.path.dirname(batch)
        self.cleanup.append({"kind": "rmdir", "path": self.tree.adopted_root})

    def _record(self, original: str, stored: str, found: dict) -> None:
        record = dict(found, original=original, stored=os.path.relpath(stored, self.tree.adopted_root),
                      adopted_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        self.new_records.append(record)

    # recorded state ----------------------------------------------------------------------------
    def _write_file(self, path: str, data):
        before = _read_text(path)
        if data is None:
            self.tx.step({"kind": "file", "path": path, "before": before}, unlink_quietly, path)
        else:
            self.tx.step({"kind": "file", "path": path, "before": before}, atomic_write, path, data, 0o644)

    def _write_state(self, op):
        data = json.dumps(op["state"], indent=2, sort_keys=True).encode("utf-8") + b"\n"
        self._write_file(self.tree.state_path, data)

    def _remove_state(self, op):
        self._write_file(self.tree.state_path, None)

    def _write_adopted(self, op):
        records = list(op["records"]) + self.new_records
        index = os.path.join(self.tree.adopted_root, ADOPTED_INDEX)
        if not records:
            self._write_file(index, None)
            return
        self._make_dirs(self.tree.adopted_root, 0o700)
        self._write_file(index, json.dumps(records, indent=2).encode("utf-8") + b"\n")
