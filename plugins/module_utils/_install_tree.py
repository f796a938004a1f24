# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The install tree: versions_dir with its version dirs and pointers, and the links to them.

Both the installer and the read-only report use this, so they classify a link the same way.
"Layout" in this collection means something else: the distribution's layout (the ``layout``
option, ``_distro_layout``), which decides whether a distribution's own plugin dir joins the tree.
"""

from __future__ import annotations

import json
import os

from ansible_collections.nodeprep.cni.plugins.module_utils._atomic import atomic_write
from ansible_collections.nodeprep.cni.plugins.module_utils._hashing import run_digest
from ansible_collections.nodeprep.cni.plugins.module_utils._manifest import read_manifest
from ansible_collections.nodeprep.cni.plugins.module_utils._paths import canonical, is_inside
from ansible_collections.nodeprep.cni.plugins.module_utils._versions import dir_version, version_key

STATE_NAME = ".nodeprep-state.json"
ADOPTED_DIR = ".adopted"
ADOPTED_INDEX = "index.json"
LOCK_NAME = ".lock"
STAGE_PREFIX = ".stage-"
TRASH_PREFIX = ".trash-"

LINK_OK = "ok"
LINK_MISSING = "missing"
LINK_FOREIGN = "foreign"
LINK_DANGLING = "dangling"
LINK_DRIFTED = "drifted"
LINK_STALE = "stale"


class InstallTree:
    """Paths and read-only queries of one node's install tree.

    Every directory is canonicalised, so `/opt` -> `/var/opt` (Fedora CoreOS) or a link dir given
    through a symlink is recognised as the directory it is.
    """

    def __init__(self, versions_dir: str, bin_dir: str, link_dirs=(), distro_dir: str = ""):
        self.versions_dir = canonical(versions_dir)
        # A distribution's own plugin dir (k3s's static dir, an image's /bin), filled only where
        # names are free; none ("") for the standard tree.
        self.distro_dir = canonical(distro_dir) if distro_dir else ""
        self.bin_dir = canonical(bin_dir)
        self.given = {}
        self.link_dirs = []
        for given in [bin_dir] + list(link_dirs or []):
            directory = canonical(given)
            if directory not in self.link_dirs:
                self.link_dirs.append(directory)
            self.given.setdefault(directory, []).append(given)

    def problems(self) -> list:
        """Why these directories cannot be used as given; empty when they can."""
        found = []
        for directory in self.link_dirs:
            names = " and ".join(sorted(set(self.given[directory])))
            if is_inside(directory, self.versions_dir):
                found.append("bin_dir/link_dirs entry %s resolves to %s, inside versions_dir %s: its links would replace "
                             "the plugins they point at; choose a directory outside versions_dir" % (names, directory, self.versions_dir))
            elif len(set(self.given[directory])) > 1:
                found.append("bin_dir/link_dirs entries %s are the same directory (%s); list it once" % (names, directory))
        return found

    # paths -----------------------------------------------------------------------------------
    def version_dir(self, version: str) -> str:
        return os.path.join(self.versions_dir, "v" + version)

    def pointer_path(self, name: str) -> str:
        return os.path.join(self.versions_dir, name)

    @property
    def lock_path(self) -> str:
        return os.path.join(self.versions_dir, LOCK_NAME)

    @property
    def state_path(self) -> str:
        return os.path.join(self.versions_dir, STATE_NAME)

    @property
    def adopted_root(self) -> str:
        return os.path.join(self.versions_dir, ADOPTED_DIR)

    def link_target(self, plugin: str) -> str:
        """What every plugin link points at: through `current`, so one rename switches them all."""
        return os.path.join(self.versions_dir, "current", plugin)

    # queries ---------------------------------------------------------------------------------
    def pointer(self, name: str):
        """Version that `current` or `previous` names, or None."""
        try:
            target = os.readlink(self.pointer_path(name))
        except OSError:
            return None
        found = dir_version(os.path.basename(target.rstrip("/")))
        return found.text if found else None

    def installed_versions(self) -> list:
        """Versions with a directory under versions_dir, oldest version first."""
        try:
            entries = os.listdir(self.versions_dir)
        except OSError:
            return []
        versions = [
            entry[1:] for entry in entries
            if dir_version(entry) and os.path.isdir(os.path.join(self.versions_dir, entry))
            and not os.path.islink(os.path.join(self.versions_dir, entry))
        ]
        return sorted(versions, key=version_key)

    def is_ours(self, path: str) -> bool:
        """A symlink we made: it points into versions_dir (however versions_dir was spelled then)."""
        try:
            target = os.readlink(path)
        except OSError:
            return False
        # The target's directory is resolved, its last name is not: a link into `current` is ours
        # whatever `current` names, a link through `..` out of versions_dir is not.
        return is_inside(os.path.join(os.path.dirname(path), os.path.dirname(target)), self.versions_dir)

    def classify_link(self, directory: str, plugin: str, manifest, digest_cache=None) -> dict:
        """Status of `<directory>/<plugin>` against the current version's manifest."""
        path = os.path.join(directory, plugin)
        entry = {"dir": directory, "name": plugin, "path": path, "target": None}
        if not os.path.lexists(path):
            entry["status"] = LINK_MISSING
            return entry
        if not self.is_ours(path):
            entry["target"] = os.readlink(path) if os.path.islink(path) else None
            entry["status"] = LINK_FOREIGN
            return entry
        entry["target"] = os.readlink(path)
        if entry["target"] != self.link_target(plugin):
            entry["status"] = LINK_STALE
        elif not os.path.isfile(path):
            entry["status"] = LINK_DANGLING
        else:
            entry["status"] = LINK_OK
            expected = ((manifest or {}).get("files") or {}).get(plugin, {}).get("sha256")
            if expected and run_digest(path, digest_cache) != expected:
                entry["status"] = LINK_DRIFTED
        return entry

    def current_manifest(self):
        version = self.pointer("current")
        return read_manifest(self.version_dir(version)) if version else None

    # recorded state ----------------------------------------------------------------------------
    def read_state(self) -> dict:
        try:
            with open(self.state_path, "rb") as handle:
                state = json.loads(handle.read().decode("utf-8"))
        except (OSError, ValueError):
            state = {}
        if not isinstance(state, dict):
            state = {}
        state.setdefault("link_dirs", [])
        state.setdefault("created_dirs", [])
        # The distributions' plugin dirs this install linked into, whatever layout a later run names.
        state.setdefault("distro_dirs", [])
        return state

    def write_state(self, state: dict) -> None:
        atomic_write(self.state_path, json.dumps(state, indent=2, sort_keys=True).encode("utf-8") + b"\n", 0o644)

    def read_adopted(self) -> list:
        try:
            with open(os.path.join(self.adopted_root, ADOPTED_INDEX), "rb") as handle:
                records = json.loads(handle.read().decode("utf-8"))
        except (OSError, ValueError):
            return []
        return records if isinstance(records, list) else []

    def write_adopted(self, records: list) -> None:
        atomic_write(os.path.join(self.adopted_root, ADOPTED_INDEX), json.dumps(records, indent=2).encode("utf-8") + b"\n", 0o644)
