#!/usr/bin/python
# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Install CNI plugins into versioned directories and link them where runtimes look."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cni_install
short_description: Install CNI plugin releases side by side and switch between them atomically
version_added: 0.1.0
description:
  - Installs a verified CNI plugins release tarball into C(<versions_dir>/v<version>/) with a
    manifest that records every file's sha256, proves each plugin runs on the node with
    C(CNI_COMMAND=VERSION), then flips the C(current) and C(previous) symlinks with one rename each.
  - Links each plugin into O(bin_dir) and every O(link_dirs) entry as
    C(<plugin> -> <versions_dir>/current/<plugin>), so switching C(current) switches every link at once.
  - When the wanted version is already installed and every file matches its manifest, nothing is
    changed and no tarball is needed; a drifted or missing file is repaired from O(src).
  - Files in the link directories whose names are not plugins of the release are never touched.
    A file with a plugin's name that this module did not create is adopted (kept under
    C(<versions_dir>/.adopted/)) and restored by O(state=absent).
  - Holds an exclusive lock (C(<versions_dir>/.lock)) while it works, so concurrent runs serialise.
author:
  - nodeprep.cni contributors (@nodeprep)
options:
  src:
    description:
      - Path on the node of a verified release tarball, as returned by M(nodeprep.cni.cni_release).
      - Needed only when the version is not installed intact.
    type: path
  version:
    description:
      - Release version, with or without a leading C(v).
      - Required for O(state=present). For O(state=rollback), the installed version to return to;
        defaults to the one C(previous) names.
    type: str
  source_url:
    description: URL the tarball came from, recorded in the manifest.
    type: str
  versions_dir:
    description: Directory holding one subdirectory per installed version and the C(current)/C(previous) links.
    type: path
    default: /opt/cni/versions
  bin_dir:
    description: The main plugin directory runtimes search.
    type: path
    default: /opt/cni/bin
  link_dirs:
    description: Further directories that must resolve to the same plugins (for example C(/var/lib/rancher/k3s/data/cni)).
    type: list
    elements: path
    default: []
  plugins:
    description:
      - Plugins to link. Defaults to every plugin of the release.
      - The version directory always holds the whole release; only links are limited.
    type: list
    elements: str
  keep:
    description: Versions kept on the node, counting C(current) and C(previous), which are never pruned.
    type: int
    default: 3
  adopt:
    description:
      - Whether a file that has a plugin's name but was not created by this module is moved aside
        (and restored by O(state=absent)). When V(false), such files make the module fail, naming them.
    type: bool
    default: true
  state:
    description:
      - V(present) installs O(version) and makes it current.
      - V(rollback) makes the previous (or the given installed) version current again.
      - V(absent) removes every version, pointer and link this module made and restores adopted files.
    type: str
    choices: [present, rollback, absent]
    default: present
  lock_timeout:
    description: Seconds to wait for another run holding the node lock.
    type: int
    default: 600
  probe_timeout:
    description: Seconds each plugin gets to answer C(CNI_COMMAND=VERSION).
    type: int
    default: 15
notes:
  - Supports C(check_mode) (nothing is written on the node) and C(diff).
  - A C(noexec) mount under O(versions_dir) makes the plugin probe fail; the error says so.
seealso:
  - module: nodeprep.cni.cni_release
  - module: nodeprep.cni.cni_info
"""

EXAMPLES = r"""
- name: Fetch and verify the release
  nodeprep.cni.cni_release:
    version: "1.9.1"
  register: cni_release

- name: Install it and link it into the standard and k3s directories
  nodeprep.cni.cni_install:
    src: "{{ cni_release.path }}"
    version: "{{ cni_release.version }}"
    source_url: "{{ cni_release.url }}"
    link_dirs:
      - /var/lib/rancher/k3s/data/cni

- name: Go back to the previous version
  nodeprep.cni.cni_install:
    state: rollback

- name: Remove everything and restore adopted files
  nodeprep.cni.cni_install:
    state: absent
"""

RETURN = r"""
version:
  description: Version that C(current) names after the run.
  returned: always
  type: str
  sample: "1.9.1"
previous:
  description: Version that C(previous) names after the run.
  returned: always
  type: str
  sample: "1.8.0"
installed:
  description: Whether version files were written (a fresh install or a repair).
  returned: always
  type: bool
plugins:
  description: Plugins linked.
  returned: always
  type: list
  elements: str
  sample: [bridge, host-local, loopback]
links:
  description: Every link path managed, with its target.
  returned: always
  type: dict
  sample: {"/opt/cni/bin/bridge": "/opt/cni/versions/current/bridge"}
adopted:
  description: Files adopted in this run (original path and where they are kept).
  returned: always
  type: list
  elements: dict
pruned:
  description: Versions removed to honour O(keep).
  returned: always
  type: list
  elements: str
actions:
  description: What was done (or, in check mode, would be done), in order.
  returned: always
  type: list
  elements: str
"""

import os
import shutil
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodeprep.cni.plugins.module_utils._atomic import (
    atomic_move,
    atomic_symlink,
    make_dirs,
    move_across,
    rmdir_quietly,
    unlink_quietly,
)
from ansible_collections.nodeprep.cni.plugins.module_utils._hashing import file_digest
from ansible_collections.nodeprep.cni.plugins.module_utils._layout import (
    LINK_FOREIGN,
    LINK_OK,
    STAGE_PREFIX,
    TRASH_PREFIX,
    Layout,
    version_key,
)
from ansible_collections.nodeprep.cni.plugins.module_utils._locking import FileLock, LockTimeout
from ansible_collections.nodeprep.cni.plugins.module_utils._manifest import (
    MANIFEST_NAME,
    build_manifest,
    is_plugin_name,
    plugin_names,
    read_manifest,
    verify_version_dir,
    write_manifest,
)
from ansible_collections.nodeprep.cni.plugins.module_utils._probe import ProbeFailed, probe_plugin
from ansible_collections.nodeprep.cni.plugins.module_utils._release import normalize_version
from ansible_collections.nodeprep.cni.plugins.module_utils._safe_tar import UnsafeArchive, list_members, safe_extract


class InstallError(Exception):
    pass


class Installer:
    """Plans and (unless in check mode) performs one run; every mutation goes through `_do`."""

    def __init__(self, module: AnsibleModule):
        self.module = module
        params = module.params
        self.check = module.check_mode
        self.layout = Layout(params["versions_dir"], params["bin_dir"], params["link_dirs"])
        self.actions = []
        self.adopted = []
        self.pruned = []
        self.installed = False
        self.link_changes = {}
        self.state = {}
        self.state_dirty = False
        # The pointers as they will be after the run, so check mode can plan the later steps.
        self.current = None
        self.previous = None

    def load(self, created_versions_dir):
        """Read the recorded state and pointers; called under the node lock, so never stale."""
        self.state = self.layout.read_state()
        if created_versions_dir:
            self.state["created_dirs"] = created_versions_dir
            self.state_dirty = True
        self.current = self.layout.pointer("current")
        self.previous = self.layout.pointer("previous")

    # plumbing ----------------------------------------------------------------------------------
    def _do(self, description: str, func=None, *args):
        self.actions.append(description)
        if not self.check and func is not None:
            func(*args)

    def _ensure_dir(self, directory: str):
        if os.path.isdir(directory):
            return
        self.actions.append("create directory %s" % directory)
        if not self.check:
            created = make_dirs(directory)
            self.state["created_dirs"] = self.state["created_dirs"] + [d for d in created if d not in self.state["created_dirs"]]
            self.state_dirty = True

    def snapshot(self) -> dict:
        links = {}
        for directory in self.layout.link_dirs:
            try:
                names = sorted(os.listdir(directory))
            except OSError:
                continue
            for name in names:
                path = os.path.join(directory, name)
                if self.layout.is_ours(path):
                    links[path] = os.readlink(path)
        return {
            "current": self.layout.pointer("current"),
            "previous": self.layout.pointer("previous"),
            "versions": self.layout.installed_versions(),
            "links": links,
        }

    # present -----------------------------------------------------------------------------------
    def release_plugins(self, version: str, verdict: dict, src):
        """Plugin names of the wanted release, from its manifest or the tarball's listing."""
        if verdict["intact"]:
            return plugin_names(verdict["manifest"])
        if src and os.path.isfile(src):
            return sorted(name for name in list_members(src) if is_plugin_name(name))
        return None

    def wanted_plugins(self, available):
        subset = self.module.params["plugins"]
        if subset is None:
            return available
        if available is not None:
            unknown = sorted(set(subset) - set(available))
            if unknown:
                raise InstallError(
                    "plugins names %s, which the release does not contain; choose from: %s"
                    % (", ".join(unknown), ", ".join(available))
                )
        return sorted(set(subset))

    def conflicts(self, wanted) -> list:
        manifest = None
        found = []
        for directory in self.layout.link_dirs:
            for plugin in wanted or []:
                if self.layout.classify_link(directory, plugin, manifest)["status"] == LINK_FOREIGN:
                    found.append(os.path.join(directory, plugin))
        return found

    def check_link_dirs_creatable(self):
        """Fail before any change when a link directory cannot exist (a file in its way, read-only parent)."""
        for directory in self.layout.link_dirs:
            ancestor = directory
            while not os.path.lexists(ancestor):
                ancestor = os.path.dirname(ancestor)
            if not os.path.isdir(ancestor):
                raise InstallError("link directory %s cannot be created: %s exists and is not a directory; "
                                   "fix bin_dir/link_dirs or move that file" % (directory, ancestor))
            if not self.check and not os.access(ancestor, os.W_OK):
                raise InstallError("link directory %s cannot be written: %s is not writable (read-only mount?); "
                                   "choose a writable bin_dir/link_dirs" % (directory, ancestor))

    def stage(self, version: str, src: str) -> str:
        """Extract, hash and probe the release in a private directory next to its final place."""
        stage_dir = tempfile.mkdtemp(prefix="%sv%s-" % (STAGE_PREFIX, version), dir=self.layout.versions_dir)
        try:
            os.chmod(stage_dir, 0o755)  # mkdtemp's 0700 would hide the plugins from non-root readers
            names = safe_extract(src, stage_dir)
            for name in names:
                if is_plugin_name(name):
                    probe_plugin(os.path.join(stage_dir, name), self.module.params["probe_timeout"])
            source_url = self.module.params["source_url"] or "file://" + os.path.abspath(src)
            write_manifest(stage_dir, build_manifest(stage_dir, version, names, source_url, file_digest(src)))
        except BaseException:
            shutil.rmtree(stage_dir, ignore_errors=True)
            raise
        return stage_dir

    def commit_stage(self, stage_dir: str, version_dir: str):
        if not os.path.lexists(version_dir):
            atomic_move(stage_dir, version_dir)
            return
        # Repair in place file by file: the directory `current` names never disappears.
        manifest = read_manifest(stage_dir)
        for name in sorted(manifest["files"]):
            atomic_move(os.path.join(stage_dir, name), os.path.join(version_dir, name))
        for name in os.listdir(version_dir):
            if name not in manifest["files"] and name != MANIFEST_NAME:
                path = os.path.join(version_dir, name)
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.unlink(path)
        atomic_move(os.path.join(stage_dir, MANIFEST_NAME), os.path.join(version_dir, MANIFEST_NAME))
        os.rmdir(stage_dir)

    def switch_to(self, version: str):
        if self.current == version:
            return
        if self.current is not None:
            old = self.current
            self._do("point previous at v%s" % old, atomic_symlink, "v" + old, self.layout.pointer_path("previous"))
            self.previous = old
        self._do("point current at v%s" % version, atomic_symlink, "v" + version, self.layout.pointer_path("current"))
        self.current = version

    def adopt_file(self, path: str, batch_dir: str):
        """Keep a copy of a same-name file we did not create, so `absent` can put it back."""
        relative = path.lstrip(os.sep)
        stored = os.path.join(batch_dir, relative)
        record = {"original": path, "stored": os.path.relpath(stored, self.layout.adopted_root),
                  "adopted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        if os.path.islink(path):
            record["kind"] = "symlink"
            record["link_target"] = os.readlink(path)
        else:
            record["kind"] = "file"
            record["sha256"] = file_digest(path)
        self.adopted.append(record)
        if self.check:
            return
        os.makedirs(os.path.dirname(stored), 0o700, exist_ok=True)
        if record["kind"] == "symlink":
            os.symlink(record["link_target"], stored)
        else:
            shutil.copy2(path, stored)
        records = self.layout.read_adopted()
        records.append(record)
        self.layout.write_adopted(records)

    def sync_links(self, wanted):
        manifest = None
        batch_dir = os.path.join(self.layout.adopted_root, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
        for directory in self.layout.link_dirs:
            self._ensure_dir(directory)
            if directory not in self.state["link_dirs"]:
                self.state["link_dirs"] = self.state["link_dirs"] + [directory]
                self.state_dirty = True
            for plugin in wanted:
                entry = self.layout.classify_link(directory, plugin, manifest, {})
                if entry["status"] == LINK_OK or (entry["status"] != LINK_FOREIGN and entry["target"] == self.layout.link_target(plugin)):
                    continue
                if entry["status"] == LINK_FOREIGN:
                    self.actions.append("adopt %s" % entry["path"])
                    self.adopt_file(entry["path"], batch_dir)
                self._do("link %s -> %s" % (entry["path"], self.layout.link_target(plugin)),
                         atomic_symlink, self.layout.link_target(plugin), entry["path"])
                self.link_changes[entry["path"]] = self.layout.link_target(plugin)
            self.unlink_unwanted(directory, wanted)

    def unlink_unwanted(self, directory: str, wanted):
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            return
        for name in names:
            path = os.path.join(directory, name)
            if name not in wanted and self.layout.is_ours(path):
                self._do("remove link %s" % path, os.unlink, path)
                self.link_changes[path] = None

    def prune(self):
        keep = self.module.params["keep"]
        protected = {self.current, self.previous}
        versions = self.layout.installed_versions()
        if self.check and self.current not in versions:
            versions.append(self.current)
        if len(versions) <= keep:
            return

        def installed_at(version):
            manifest = read_manifest(self.layout.version_dir(version)) or {}
            return (manifest.get("installed_at", ""), version_key(version))

        candidates = sorted((v for v in versions if v not in protected), key=installed_at)
        for version in candidates[: len(versions) - keep]:
            self._do("prune v%s" % version, self.remove_version_dir, version)
            self.pruned.append(version)

    def remove_version_dir(self, version: str):
        # Rename first so the version vanishes in one step, then delete at leisure.
        trash = tempfile.mkdtemp(prefix="%sv%s-" % (TRASH_PREFIX, version), dir=self.layout.versions_dir)
        os.rmdir(trash)
        os.rename(self.layout.version_dir(version), trash)
        shutil.rmtree(trash)

    def clean_leftovers(self):
        """Remove stage/trash directories a killed run may have left."""
        try:
            names = os.listdir(self.layout.versions_dir)
        except OSError:
            return
        for name in names:
            if name.startswith(STAGE_PREFIX) or name.startswith(TRASH_PREFIX):
                shutil.rmtree(os.path.join(self.layout.versions_dir, name), ignore_errors=True)

    def present(self):
        params = self.module.params
        version = normalize_version(params["version"])
        src = params["src"]
        version_dir = self.layout.version_dir(version)
        verdict = verify_version_dir(version_dir)
        if not verdict["intact"] and src and not os.path.isfile(src) and not self.check:
            raise InstallError("src %s does not exist or is not a file; pass the path returned by nodeprep.cni.cni_release" % src)
        if not verdict["intact"] and not src and not self.check:
            reason = "is not installed" if verdict["manifest"] is None else "has drifted files (%s)" % ", ".join(
                verdict["missing"] + verdict["drifted"])
            raise InstallError("version %s %s under %s; pass src (a tarball verified by nodeprep.cni.cni_release) to install it"
                               % (version, reason, self.layout.versions_dir))
        wanted = self.wanted_plugins(self.release_plugins(version, verdict, src))
        conflicts = self.conflicts(wanted)
        if conflicts and not params["adopt"]:
            raise InstallError("adopt is false and these files have plugin names but were not installed by nodeprep: %s; "
                               "move them away or set adopt: true" % ", ".join(conflicts))

        self.check_link_dirs_creatable()
        self._ensure_dir(self.layout.versions_dir)
        if not verdict["intact"]:
            if verdict["manifest"] is None:
                description = "install v%s from %s" % (version, src)
            else:
                description = "repair v%s (%s) from %s" % (version, ", ".join(verdict["missing"] + verdict["drifted"]), src)
            self.actions.append(description)
            self.installed = True
            if not self.check:
                stage_dir = self.stage(version, src)
                self.commit_stage(stage_dir, version_dir)
            if wanted is None:
                wanted = self.wanted_plugins(plugin_names(read_manifest(version_dir))) if not self.check else []
        self.switch_to(version)
        self.sync_links(wanted)
        self.prune()
        self.record_linked(wanted)
        return wanted

    def record_linked(self, wanted):
        """Remember which plugins are linked, so the report expects exactly those."""
        if self.state.get("plugins") != list(wanted or []):
            self.state["plugins"] = list(wanted or [])
            self.state_dirty = True

    # rollback ----------------------------------------------------------------------------------
    def rollback(self):
        params = self.module.params
        recorded = self.state.get("rollback") or {}
        if params["version"]:
            target = normalize_version(params["version"])
        elif recorded and recorded.get("to") == self.current and recorded.get("from") == self.previous:
            target = self.current  # this rollback already happened; a re-run must not swap back
        else:
            target = self.previous
        if target is None:
            raise InstallError("nothing to roll back to: %s has no previous version; install another version first"
                               % self.layout.versions_dir)
        verdict = verify_version_dir(self.layout.version_dir(target))
        if not verdict["intact"]:
            raise InstallError("cannot roll back to %s: it is not installed intact under %s (%s); reinstall it with state=present and src"
                               % (target, self.layout.versions_dir, ", ".join(verdict["missing"] + verdict["drifted"]) or "no manifest"))
        if target != self.current:
            self.state["rollback"] = {"from": self.current, "to": target}
            self.state_dirty = True
        self.switch_to(target)
        wanted = self.wanted_plugins(plugin_names(verdict["manifest"]))
        self.sync_links(wanted)
        self.record_linked(wanted)
        return wanted

    # absent ------------------------------------------------------------------------------------
    def absent(self):
        layout = self.layout
        dirs = list(layout.link_dirs) + [d for d in self.state["link_dirs"] if d not in layout.link_dirs]
        for directory in dirs:
            self.unlink_unwanted(directory, ())
        for record in layout.read_adopted():
            self.restore(record)
        if os.path.isdir(layout.adopted_root):
            self._do("remove %s" % layout.adopted_root, shutil.rmtree, layout.adopted_root)
        for version in layout.installed_versions():
            if read_manifest(layout.version_dir(version)) is not None:
                self._do("remove v%s" % version, self.remove_version_dir, version)
        for name in ("current", "previous"):
            if os.path.lexists(layout.pointer_path(name)):
                self._do("remove %s" % layout.pointer_path(name), os.unlink, layout.pointer_path(name))
        if os.path.exists(layout.state_path):
            self._do("remove %s" % layout.state_path, os.unlink, layout.state_path)
        self.current = self.previous = None
        return []

    def restore(self, record: dict):
        original = record["original"]
        stored = os.path.join(self.layout.adopted_root, record["stored"])
        if os.path.lexists(original) and not self.layout.is_ours(original):
            self.module.warn("not restoring %s: something else now has that name; the adopted copy stays at %s" % (original, stored))
            return
        if not os.path.isdir(os.path.dirname(original)) and not self.check:
            os.makedirs(os.path.dirname(original), 0o755)
        self._do("restore %s" % original, move_across, stored, original)

    def remove_created_dirs(self):
        """Remove directories an install created, if they are empty now, innermost first."""
        for directory in sorted(self.state["created_dirs"], key=len, reverse=True):
            if directory == self.layout.versions_dir:
                continue  # handled after the lock is released
            try:
                if os.path.isdir(directory) and not os.listdir(directory):
                    self._do("remove directory %s" % directory, os.rmdir, directory)
            except OSError:
                pass


def run(module: AnsibleModule) -> dict:
    installer = Installer(module)
    layout = installer.layout
    params = module.params
    state = params["state"]
    if params["keep"] < 2:
        raise InstallError("keep is %d; it counts current and previous, so it must be at least 2" % params["keep"])
    before = installer.snapshot()
    if state == "absent" and not os.path.isdir(layout.versions_dir):
        return {"changed": False, "actions": [], "version": None, "previous": None, "installed": False,
                "plugins": [], "links": {}, "adopted": [], "pruned": []}
    if state == "rollback" and not os.path.isdir(layout.versions_dir):
        raise InstallError("nothing to roll back to: %s does not exist" % layout.versions_dir)

    pointers_before = dict((name, _readlink(layout.pointer_path(name))) for name in ("current", "previous"))
    lock_existed = os.path.lexists(layout.lock_path)
    created_versions_dir = []
    lock = None
    if not module.check_mode:
        created_versions_dir = make_dirs(layout.versions_dir) if state == "present" else []
        lock = FileLock(layout.lock_path, timeout=params["lock_timeout"])
        lock.acquire()
    try:
        # Read the node only now that we hold the lock: a concurrent run may have just finished.
        installer.load(created_versions_dir)
        if not module.check_mode:
            installer.clean_leftovers()
        handler = {"present": installer.present, "rollback": installer.rollback, "absent": installer.absent}[state]
        wanted = handler()
        if state == "absent":
            installer.remove_created_dirs()
        elif installer.state_dirty and not module.check_mode:
            layout.write_state(installer.state)
    except BaseException:
        if not module.check_mode:
            _restore_pointers(layout, pointers_before)
        if lock is not None:
            lock.release()
            lock = None
            if not lock_existed and not created_versions_dir and pointers_before["current"] is None:
                unlink_quietly(layout.lock_path)
        # Leave the node exactly as it was: drop the directories this failed first install made.
        for directory in reversed(created_versions_dir):
            if directory == layout.versions_dir:
                shutil.rmtree(directory, ignore_errors=True)
            else:
                rmdir_quietly(directory)
        raise
    finally:
        if lock is not None:
            lock.release()
    if state == "absent" and not module.check_mode:
        _remove_versions_dir(layout, installer.state["created_dirs"])

    after = installer.snapshot() if not module.check_mode else _predicted(installer, before)
    changed = bool(installer.actions)
    result = {
        "changed": changed,
        "version": installer.current,
        "previous": installer.previous,
        "installed": installer.installed,
        "plugins": wanted or [],
        "links": after["links"],
        "adopted": installer.adopted,
        "pruned": installer.pruned,
        "actions": installer.actions,
    }
    if module._diff:
        result["diff"] = {"before": before, "after": after}
    return result


def _predicted(installer: Installer, before: dict) -> dict:
    """The diff's after-state in check mode, from what the plan would do."""
    links = dict(before["links"])
    for path, target in installer.link_changes.items():
        if target is None:
            links.pop(path, None)
        else:
            links[path] = target
    versions = set(before["versions"]) - set(installer.pruned)
    if installer.current:
        versions.add(installer.current)
    if installer.module.params["state"] == "absent":
        versions = set()
    return {"current": installer.current, "previous": installer.previous,
            "versions": sorted(versions, key=version_key), "links": links}


def _readlink(path: str):
    try:
        return os.readlink(path)
    except OSError:
        return None


def _restore_pointers(layout: Layout, pointers: dict):
    """A failed run puts current/previous back, so every link resolves where it did before."""
    for name, target in pointers.items():
        path = layout.pointer_path(name)
        if _readlink(path) == target:
            continue
        if target is None:
            unlink_quietly(path)
        else:
            atomic_symlink(target, path)


def _remove_versions_dir(layout: Layout, created_dirs):
    """After `absent`, drop the lock and versions_dir (and its created parents) if nothing else lives there."""
    if os.path.exists(layout.lock_path):
        os.unlink(layout.lock_path)
    if layout.versions_dir in created_dirs:
        rmdir_quietly(layout.versions_dir)
        for directory in sorted((d for d in created_dirs if d != layout.versions_dir), key=len, reverse=True):
            rmdir_quietly(directory)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="path"),
            version=dict(type="str"),
            source_url=dict(type="str"),
            versions_dir=dict(type="path", default="/opt/cni/versions"),
            bin_dir=dict(type="path", default="/opt/cni/bin"),
            link_dirs=dict(type="list", elements="path", default=[]),
            plugins=dict(type="list", elements="str"),
            keep=dict(type="int", default=3),
            adopt=dict(type="bool", default=True),
            state=dict(type="str", default="present", choices=["present", "rollback", "absent"]),
            lock_timeout=dict(type="int", default=600),
            probe_timeout=dict(type="int", default=15),
        ),
        required_if=[("state", "present", ("version",))],
        supports_check_mode=True,
    )
    try:
        result = run(module)
    except (InstallError, UnsafeArchive, ProbeFailed, LockTimeout, ValueError) as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg="%s: %s; check that the path is writable by the user Ansible runs as" % (getattr(exc, "filename", "") or "", exc.strerror or exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
