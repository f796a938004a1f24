# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The install manifest: what a version directory must hold, byte for byte."""

from __future__ import annotations

import json
import os
import stat
import time

from ansible_collections.nodeprep.cni.plugins.module_utils._atomic import atomic_write
from ansible_collections.nodeprep.cni.plugins.module_utils._hashing import file_digest, run_digest
from ansible_collections.nodeprep.cni.plugins.module_utils._release import public_url

MANIFEST_NAME = ".nodeprep-manifest.json"
MANIFEST_SCHEMA = 1
# Shipped in every release tarball but not plugins: kept, never linked or probed.
NON_PLUGIN_FILES = frozenset(("LICENSE", "README.md"))


def is_plugin_name(name: str) -> bool:
    return name not in NON_PLUGIN_FILES and not name.startswith(".")


def build_manifest(version_dir: str, version: str, names, source_url: str, tarball_sha256, digests=None, source=None) -> dict:
    """The manifest of *version_dir*; *digests* are sha256 values taken while the files were written,
    *source* says where the files came from: a release (the default) or a package and its version."""
    files = {}
    for name in sorted(names):
        path = os.path.join(version_dir, name)
        files[name] = {
            "sha256": (digests or {}).get(name) or file_digest(path),
            "mode": "%04o" % stat.S_IMODE(os.lstat(path).st_mode),
            "plugin": is_plugin_name(name),
        }
    source_url = public_url(source_url)  # the manifest is world-readable: never a password in it
    return {
        "schema_version": MANIFEST_SCHEMA,
        "version": version,
        "source_url": source_url,
        "tarball_sha256": tarball_sha256,
        "source": source or {"type": "release", "url": source_url},
        "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "files": files,
    }


def write_manifest(version_dir: str, manifest: dict) -> None:
    data = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8") + b"\n"
    atomic_write(os.path.join(version_dir, MANIFEST_NAME), data, 0o644)


def read_manifest(version_dir: str):
    """The manifest dict, or None when it is absent or unreadable (an incomplete install)."""
    try:
        with open(os.path.join(version_dir, MANIFEST_NAME), "rb") as handle:
            manifest = json.loads(handle.read().decode("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        return None
    return manifest


def plugin_names(manifest: dict) -> list:
    return sorted(name for name, entry in manifest["files"].items() if entry.get("plugin", is_plugin_name(name)))


def check_file(version_dir: str, name: str, entry: dict, digests=None) -> str:
    """'ok', 'missing' or 'drifted' for one manifest entry (*digests*: the run's, see run_digest)."""
    path = os.path.join(version_dir, name)
    try:
        info = os.lstat(path)
    except OSError:
        return "missing"
    if not stat.S_ISREG(info.st_mode):
        return "drifted"
    if entry.get("mode") and entry["mode"] != "%04o" % stat.S_IMODE(info.st_mode):
        return "drifted"
    if run_digest(path, digests) != entry.get("sha256"):
        return "drifted"
    return "ok"


def verify_version_dir(version_dir: str, digests=None) -> dict:
    """Compare a version directory with its manifest.

    Returns {"manifest", "intact", "missing", "drifted"}; a directory without a readable
    manifest is never intact (it may be a half-finished install by someone else).
    """
    manifest = read_manifest(version_dir)
    result = {"manifest": manifest, "intact": False, "missing": [], "drifted": []}
    if manifest is None:
        return result
    for name, entry in sorted(manifest["files"].items()):
        status = check_file(version_dir, name, entry, digests)
        if status != "ok":
            result[status].append(name)
    result["intact"] = not result["missing"] and not result["drifted"]
    return result
