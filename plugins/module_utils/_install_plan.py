# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""From the node's state and the user's wishes to a list of operations, without touching anything.

``NodeView.read`` takes one picture of the node (under the node lock); ``plan_present``,
``plan_rollback`` and ``plan_absent`` turn it into a ``Plan``. Check mode reports the plan, a real
run executes the very same plan (see ``_install_ops``), so ``--check --diff`` cannot promise
something else than the run does. Every refusal is raised here, before any change.
"""

from __future__ import annotations

import os
import stat

from ansible_collections.nodeprep.cni.plugins.module_utils._adoption import batch_name
from ansible_collections.nodeprep.cni.plugins.module_utils._atomic import missing_dirs
from ansible_collections.nodeprep.cni.plugins.module_utils._manifest import is_plugin_name, plugin_names, read_manifest, verify_version_dir
from ansible_collections.nodeprep.cni.plugins.module_utils._package_source import package_owned_refusal
from ansible_collections.nodeprep.cni.plugins.module_utils._paths import is_inside
from ansible_collections.nodeprep.cni.plugins.module_utils._versions import version_key

# What a name in a link directory is.
MISSING = "missing"
OURS = "ours"
FOREIGN_FILE = "file"
FOREIGN_SYMLINK = "symlink"
SPECIAL = "special"  # a directory, fifo, socket or device: never adopted, never replaced


class PlanError(ValueError):
    """The wishes cannot be met on this node; the message names the input and the fix."""


class SrcNeeded(PlanError):
    """The wanted version is not installed intact and no tarball was given to install it from.

    ``package_owned`` carries the package-owned files found in the link dirs, so a caller that
    fetches the release can refuse them before it copies anything to the node.
    """

    package_owned: dict = {}


class NodeView:
    """Everything the planner needs, read once."""

    def __init__(self, tree):
        self.tree = tree
        self.versions_dir_kind = MISSING
        self.current = None
        self.previous = None
        self.versions = []
        self.state = {"link_dirs": [], "created_dirs": [], "distro_dirs": []}
        # The distributions' plugin dirs: the layout's own, then those the install recorded.
        self.distro_dirs = []
        self.adopted = []
        self.dirs = {}
        # Foreign files in the link dirs that a package owns ({path: package}); the module asks the
        # package manager (one query) after reading, so the planner itself stays free of commands.
        self.package_owned = {}

    @classmethod
    def read(cls, tree, distro_dirs=()):
        """The node's picture; *distro_dirs* are read as well (the dirs an earlier picture showed)."""
        view = cls(tree)
        if os.path.isdir(tree.versions_dir):
            view.versions_dir_kind = "dir"
        elif os.path.lexists(tree.versions_dir):
            view.versions_dir_kind = "other"
        view.current = tree.pointer("current")
        view.previous = tree.pointer("previous")
        view.versions = tree.installed_versions()
        view.state = tree.read_state()
        view.adopted = tree.read_adopted()
        for directory in [tree.distro_dir] + list(view.state["distro_dirs"]) + list(distro_dirs):
            if directory and directory not in tree.link_dirs and directory not in view.distro_dirs:
                view.distro_dirs.append(directory)
        for directory in list(tree.link_dirs) + list(view.state["link_dirs"]) + view.distro_dirs:
            if directory and directory not in view.dirs:
                view.dirs[directory] = _read_dir(tree, directory)
        return view

    def distro_links(self, directory: str) -> list:
        """Names in a distribution's dir that hold our link through `current` (what we made there)."""
        return [name for name, entry in sorted(self.dirs[directory]["entries"].items())
                if entry["kind"] == OURS and entry["target"] == self.tree.link_target(name)]

    def entry(self, directory: str, name: str) -> dict:
        return self.dirs[directory]["entries"].get(name, {"kind": MISSING, "target": None})

    def foreign_paths(self) -> list:
        """Every file or symlink in a link dir that is not one of our links: what a package may own."""
        return sorted(os.path.join(directory, name) for directory in self.tree.link_dirs
                      for name, entry in self.dirs[directory]["entries"].items()
                      if entry["kind"] in (FOREIGN_FILE, FOREIGN_SYMLINK))

    def snapshot(self) -> dict:
        """The picture a diff shows: pointers, versions and every link of ours."""
        links = {}
        for directory in self.tree.link_dirs:
            for name, entry in sorted(self.dirs[directory]["entries"].items()):
                if entry["kind"] == OURS:
                    links[os.path.join(directory, name)] = entry["target"]
        picture = {"current": self.current, "previous": self.previous, "versions": list(self.versions), "links": links}
        if self.distro_dirs:
            picture["layout_links"] = sorted(os.path.join(directory, name) for directory in self.distro_dirs
                                             for name in self.distro_links(directory))
        return picture


def _read_dir(tree, directory: str) -> dict:
    found = {"exists": os.path.isdir(directory), "blocker": None, "entries": {}, "writable": False}
    if not found["exists"]:
        ancestor = directory
        while not os.path.lexists(ancestor):
            ancestor = os.path.dirname(ancestor)
        if not os.path.isdir(ancestor):
            found["blocker"] = ancestor
        found["writable"] = os.access(ancestor, os.W_OK)
        found["nearest"] = ancestor
        return found
    found["writable"] = os.access(directory, os.W_OK)
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            target = os.readlink(path)
            kind = OURS if tree.is_ours(path) else FOREIGN_SYMLINK
            found["entries"][name] = {"kind": kind, "target": target}
        elif stat.S_ISREG(info.st_mode):
            found["entries"][name] = {"kind": FOREIGN_FILE, "target": None}
        else:
            found["entries"][name] = {"kind": SPECIAL, "target": None}
    return found


class Plan:
    def __init__(self):
        self.ops = []
        self.current = None
        self.previous = None
        self.plugins = []
        self.installed = False
        self.adopted = []
        self.pruned = []
        self.warnings = []
        self.link_changes = {}
        # Names linked into (or taken back from) the distribution's own plugin dir, distro_dir (the
        # layout's dir, or for an uninstall the recorded dir it took links back from); paths in
        # any distribution's dir: distro_link_changes (path -> target, None when removed).
        self.distro_dir = ""
        self.distro_linked = []
        self.distro_unlinked = []
        self.distro_link_changes = {}
        # What an uninstall leaves on the node, each {path, why}.
        self.kept = []

    def add(self, describe: str, **op):
        op["describe"] = describe
        self.ops.append(op)

    @property
    def actions(self) -> list:
        return [op["describe"] for op in self.ops]


class Wish:
    """The module's parameters, as the planner reads them."""

    def __init__(self, params: dict, version, src_plugins, check_mode: bool):
        self.version = version
        # A tarball (src) or a package's plugin directory (src_dir): installed the same way.
        self.src = params.get("src") or params.get("src_dir")
        self.src_kind = "dir" if params.get("src_dir") and not params.get("src") else "tarball"
        # Names in the tarball or directory when a source was given: a list, or a callable that
        # reads the tarball the first time the plan needs them (never when the version is intact).
        self._src_plugins = src_plugins
        self.subset = params.get("plugins")
        self.keep = params.get("keep", 3)
        self.adopt = params.get("adopt", True)
        self.adopt_package_files = bool(params.get("adopt_package_files", False))
        self.check_mode = check_mode
        # A caller that asks first (on_missing_src: report) learns of a missing tarball in check mode too.
        self.report_missing = params.get("on_missing_src") == "report"

    @property
    def src_plugins(self):
        if callable(self._src_plugins):
            self._src_plugins = self._src_plugins()
        return self._src_plugins


# present ------------------------------------------------------------------------------------

def plan_present(view: NodeView, wish: Wish) -> Plan:
    tree = view.tree
    plan = Plan()
    refuse_unusable_dirs(tree)
    version = wish.version
    version_dir = tree.version_dir(version)
    verdict = verify_version_dir(version_dir)
    if not verdict["intact"] and not wish.src and (wish.report_missing or not wish.check_mode):
        reason = "is not installed" if verdict["manifest"] is None else "has drifted files (%s)" % ", ".join(
            verdict["missing"] + verdict["drifted"])
        # Where the plugin set is known already (a subset, or what the node links now), a package's
        # names are refused before the release is even fetched.
        known = wish.subset or view.state.get("plugins")
        if known:
            refuse_package_owned(view, known, wish.adopt_package_files)
        needed = SrcNeeded("version %s %s under %s; pass src (a tarball verified by nodeprep.cni.cni_release) to install it"
                           % (version, reason, tree.versions_dir))
        needed.package_owned = dict(view.package_owned)
        raise needed

    available = _release_plugins(view, verdict, wish)
    wanted = wanted_plugins(wish.subset, available)

    if view.versions_dir_kind == MISSING:
        for directory in missing_dirs(tree.versions_dir):
            plan.add("create directory %s" % directory, op="mkdir", path=directory, record=True)
    if not verdict["intact"]:
        if verdict["manifest"] is None and os.path.lexists(version_dir):
            stored = os.path.join(tree.adopted_root, batch_name(), "versions", "v" + version)
            plan.add("set aside %s (no manifest: not installed by nodeprep) to %s" % (version_dir, stored),
                     op="set_aside", path=version_dir, stored=stored)
            plan.adopted.append(version_dir)
            verdict["manifest"] = None
            plan.add("install v%s from %s" % (version, wish.src), op="install", version=version, src=wish.src, src_kind=wish.src_kind)
        elif verdict["manifest"] is None:
            plan.add("install v%s from %s" % (version, wish.src), op="install", version=version, src=wish.src, src_kind=wish.src_kind)
        else:
            damaged = verdict["missing"] + verdict["drifted"]
            plan.add("repair v%s (%s) from %s" % (version, ", ".join(damaged), wish.src),
                     op="repair", version=version, src=wish.src, src_kind=wish.src_kind, files=damaged)
        plan.installed = True

    _plan_switch(view, plan, version)
    _plan_links(view, plan, wanted, wish.adopt, wish.adopt_package_files)
    _plan_distro_links(view, plan, available if available is not None else wanted)
    _plan_prune(view, plan, wish.keep)
    _plan_state(view, plan, wanted)
    _plan_adopted_index(view, plan)
    plan.plugins = list(wanted or [])
    return plan


def refuse_unusable_dirs(tree) -> None:
    """Directory options that cannot work, refused before the node lock or anything else."""
    problems = tree.problems()
    if os.path.lexists(tree.versions_dir) and not os.path.isdir(tree.versions_dir):
        problems.insert(0, "versions_dir %s exists and is not a directory; move that file away or choose another versions_dir"
                        % tree.versions_dir)
    if problems:
        raise PlanError("; ".join(problems))


def _release_plugins(view: NodeView, verdict: dict, wish: Wish):
    """Plugin names of the wanted release: its manifest, its tarball, or else what is recorded."""
    if verdict["intact"] or (verdict["manifest"] is not None and not wish.src_plugins):
        return plugin_names(verdict["manifest"])
    if wish.src_plugins is not None:
        return sorted(wish.src_plugins)
    # Check mode without a tarball (it is fetched only in a real run): the plugin set the node
    # links now is the best prediction; never an empty one, which would plan every link away.
    if view.state.get("plugins"):
        return list(view.state["plugins"])
    current = read_manifest(view.tree.version_dir(view.current)) if view.current else None
    return plugin_names(current) if current else None


def wanted_plugins(subset, available):
    """The plugins to link: *subset* of the release's *available* names, refused naming what it lacks.

    Empty (the option's default) and None alike mean every plugin of the release. Check mode on the
    controller asks this of the tarball's member list too, so a dry run refuses as the real run does.
    """
    if not subset:
        return available
    if available is not None:
        unknown = sorted(set(subset) - set(available))
        if unknown:
            raise PlanError("plugins (role: cni_plugins_list) names %s, which the release does not contain; choose from: %s"
                            % (", ".join(unknown), ", ".join(available)))
    return sorted(set(subset))


def _plan_switch(view: NodeView, plan: Plan, version: str) -> None:
    plan.current, plan.previous = view.current, view.previous
    if view.current == version:
        return
    if view.current is not None:
        plan.add("point previous at v%s" % view.current, op="point", name="previous", version=view.current, before=view.previous)
        plan.previous = view.current
    plan.add("point current at v%s" % version, op="point", name="current", version=version, before=view.current)
    plan.current = version


def package_owned_names(view: NodeView, wanted) -> dict:
    """``{path: package}`` of the package-owned files at the names we would link."""
    names = set(wanted or [])
    return dict((path, package) for path, package in view.package_owned.items() if os.path.basename(path) in names)


def refuse_package_owned(view: NodeView, wanted, adopt_package_files: bool) -> None:
    owned = package_owned_names(view, wanted)
    if owned and not adopt_package_files:
        raise PlanError(package_owned_refusal(owned))


def _plan_links(view: NodeView, plan: Plan, wanted, adopt: bool, adopt_package_files: bool = False) -> None:
    tree = view.tree
    refuse_package_owned(view, wanted, adopt_package_files)
    owned = package_owned_names(view, wanted)
    conflicts, blocked, special = [], [], []
    for directory in tree.link_dirs:
        for plugin in wanted or []:
            kind = view.entry(directory, plugin)["kind"]
            if kind in (FOREIGN_FILE, FOREIGN_SYMLINK):
                conflicts.append(os.path.join(directory, plugin))
            elif kind == SPECIAL:
                special.append(os.path.join(directory, plugin))
        if view.dirs[directory].get("blocker"):
            blocked.append("link directory %s cannot be created: %s exists and is not a directory; fix bin_dir/link_dirs "
                           "or move that file" % (directory, view.dirs[directory]["blocker"]))
    if special:
        raise PlanError("%s carry plugin names but are not regular files or symlinks (a directory, fifo, socket or device); "
                        "nodeprep never replaces those: move them away, or leave those plugins out with plugins"
                        % ", ".join(special))
    if blocked:
        raise PlanError("; ".join(blocked))
    if conflicts and not adopt:
        raise PlanError("adopt is false and these files have plugin names but were not installed by nodeprep: %s; "
                        "move them away or set adopt: true" % ", ".join(conflicts))
    batch = os.path.join(tree.adopted_root, batch_name())
    for directory in tree.link_dirs:
        before = len(plan.ops)
        if not view.dirs[directory]["exists"]:
            for missing in missing_dirs(directory):
                plan.add("create directory %s" % missing, op="mkdir", path=missing, record=True)
        for plugin in wanted or []:
            path = os.path.join(directory, plugin)
            entry = view.entry(directory, plugin)
            target = tree.link_target(plugin)
            if entry["kind"] == OURS and entry["target"] == target:
                continue
            if entry["kind"] in (FOREIGN_FILE, FOREIGN_SYMLINK):
                stored = os.path.join(batch, path.lstrip(os.sep))
                if path in owned:
                    plan.add("adopt %s (owned by package %s)" % (path, owned[path]), op="adopt", path=path, stored=stored,
                             target=target, package=owned[path])
                else:
                    plan.add("adopt %s" % path, op="adopt", path=path, stored=stored, target=target)
                plan.adopted.append(path)
            else:
                plan.add("link %s -> %s" % (path, target), op="link", path=path, target=target, before=entry["target"])
            plan.link_changes[path] = target
        for name, entry in sorted(view.dirs[directory]["entries"].items()):
            if entry["kind"] == OURS and name not in (wanted or []) and wanted is not None:
                path = os.path.join(directory, name)
                plan.add("remove link %s" % path, op="unlink", path=path, before=entry["target"])
                plan.link_changes[path] = None
        if len(plan.ops) > before:
            _require_writable(view, directory, "bin_dir/link_dirs entry")
    if owned:
        plan.warnings.append("took over %s, which package %s owns (adopt_package_files): the package's next upgrade "
                             "overwrites these links; verify.yml keeps warning about them"
                             % (", ".join(sorted(owned)), ", ".join(sorted(set(owned.values())))))


_LEAVE_DISTRO_DIR = "set layout (cni_plugins_layout) to standard, which leaves the distribution's dir alone"


def _distro_dir(view: NodeView) -> str:
    """The distribution's plugin dir when it needs its own handling (a link dir is handled as one)."""
    directory = view.tree.distro_dir
    return directory if directory and directory not in view.tree.link_dirs else ""


def _plan_distro_links(view: NodeView, plan: Plan, plugins) -> None:
    """The release's plugins linked into the distribution's dir where their names are free.

    Whatever carries a name there (the distribution's own file or link, a dangling link) stays as
    it is: never adopted, never replaced. These links are journalled like every other, so a failed
    run takes them back, and a read-only dir that needs a link is refused here, before any change.
    """
    directory = _distro_dir(view)
    if not directory:
        return
    found = view.dirs[directory]
    names = [name for name in plugins or [] if is_plugin_name(name) and view.entry(directory, name)["kind"] == MISSING]
    if not names:
        return
    if not found["exists"]:
        raise PlanError("the layout's plugin dir %s does not exist, so the distribution does not look for plugins there; "
                        "choose the layout the node runs (cni_plugins_layout: auto finds k3s by its own dirs), or create "
                        "that directory first" % directory)
    _require_writable(view, directory, "the layout's plugin dir", _LEAVE_DISTRO_DIR)
    plan.distro_dir = directory
    for name in names:
        path = os.path.join(directory, name)
        plan.add("link %s -> %s" % (path, view.tree.link_target(name)), op="link", path=path,
                 target=view.tree.link_target(name), before=None)
        plan.distro_linked.append(name)
        plan.distro_link_changes[path] = view.tree.link_target(name)


def _plan_distro_unlinks(view: NodeView, plan: Plan) -> None:
    """Exactly the links made by _plan_distro_links (to ``<versions_dir>/current/<name>``) go.

    In the layout's dir and in every dir the install recorded, so an uninstall that names another
    layout (or the default, standard) leaves no link dangling in a distribution's dir.
    """
    for directory in view.distro_dirs:
        names = view.distro_links(directory) if directory not in view.state["link_dirs"] else []
        if not names:
            continue  # nothing of ours, or a former link dir whose links go with every other link dir's
        # Whatever layout is given, these links would dangle once the versions are gone.
        _require_writable(view, directory, "the distribution's plugin dir", "remove nodeprep's links there (those to %s) "
                          "first" % view.tree.link_target("<name>"))
        plan.distro_dir = plan.distro_dir or directory
        for name in names:
            path = os.path.join(directory, name)
            plan.add("remove link %s" % path, op="unlink", path=path, before=view.tree.link_target(name))
            plan.distro_link_changes[path] = None
            if directory == plan.distro_dir:
                plan.distro_unlinked.append(name)


def _require_writable(view: NodeView, directory: str, what: str, fix: str = "choose another directory") -> None:
    # A directory with nothing to change needs no write access (a read-only image dir is fine).
    found = view.dirs[directory]
    if not found["writable"]:
        where = directory if found["exists"] else found.get("nearest", directory)
        raise PlanError("%s %s needs changes but %s is not writable (read-only mount?); make it writable or %s"
                        % (what, directory, where, fix))


def _plan_prune(view: NodeView, plan: Plan, keep: int) -> None:
    versions = list(view.versions)
    if plan.current and plan.current not in versions:
        versions.append(plan.current)
    if len(versions) <= keep:
        return
    protected = {plan.current, plan.previous}

    def installed_at(version):
        manifest = read_manifest(view.tree.version_dir(version)) or {}
        return (manifest.get("installed_at", ""), version_key(version))

    candidates = sorted((v for v in versions if v not in protected), key=installed_at)
    for version in candidates[: len(versions) - keep]:
        plan.add("prune v%s" % version, op="remove_version", version=version)
        plan.pruned.append(version)


def _plan_state(view: NodeView, plan: Plan, wanted, **extra) -> None:
    state = dict(view.state)
    created = [op["path"] for op in plan.ops if op["op"] == "mkdir"]
    link_dirs = list(state["link_dirs"]) + [d for d in view.tree.link_dirs if d not in state["link_dirs"]]
    new = dict(state, link_dirs=link_dirs, created_dirs=list(state["created_dirs"]) + [d for d in created if d not in state["created_dirs"]])
    if plan.distro_linked and plan.distro_dir not in state["distro_dirs"]:
        new["distro_dirs"] = list(state["distro_dirs"]) + [plan.distro_dir]
    if wanted is not None:
        new["plugins"] = list(wanted)
    new.update(extra)
    if new != view.state:
        plan.add("record the install in %s" % view.tree.state_path, op="write_state", state=new)


def _plan_adopted_index(view: NodeView, plan: Plan) -> None:
    if plan.adopted:
        plan.add("record the adopted files in %s" % view.tree.adopted_root, op="write_adopted", records=list(view.adopted))


# rollback -----------------------------------------------------------------------------------

def plan_rollback(view: NodeView, wish_version, subset, adopt: bool, adopt_package_files: bool = False) -> Plan:
    tree = view.tree
    refuse_unusable_dirs(tree)
    if view.versions_dir_kind != "dir":
        raise PlanError("nothing to roll back to: %s does not exist" % tree.versions_dir)
    recorded = view.state.get("rollback") or {}
    if wish_version:
        target = wish_version
    elif recorded and recorded.get("to") == view.current and recorded.get("from") == view.previous:
        target = view.current  # this rollback already happened; a re-run must not swap back
    else:
        target = view.previous
    if target is None:
        raise PlanError("nothing to roll back to: %s has no previous version; install another version first" % tree.versions_dir)
    verdict = verify_version_dir(tree.version_dir(target))
    if not verdict["intact"]:
        raise PlanError("cannot roll back to %s: it is not installed intact under %s (%s); reinstall it with state=present and src"
                        % (target, tree.versions_dir, ", ".join(verdict["missing"] + verdict["drifted"]) or "no manifest"))
    plan = Plan()
    wanted = wanted_plugins(subset, plugin_names(verdict["manifest"]))
    _plan_switch(view, plan, target)
    _plan_links(view, plan, wanted, adopt, adopt_package_files)
    _plan_adopted_index(view, plan)
    extra = {"rollback": {"from": view.current, "to": target}} if target != view.current else {}
    _plan_state(view, plan, wanted, **extra)
    plan.plugins = wanted
    return plan


# absent -------------------------------------------------------------------------------------

def plan_absent(view: NodeView) -> Plan:
    tree = view.tree
    plan = Plan()
    if view.versions_dir_kind != "dir":
        return plan
    restorable, kept = [], []
    for record in view.adopted:
        original = record.get("original", "")
        stored = os.path.join(tree.adopted_root, record.get("stored", ""))
        if not os.path.lexists(stored):
            plan.warnings.append("cannot restore %s: its adopted copy %s is missing" % (original, stored))
            plan.kept.append({"path": original, "why": "not restored: its adopted copy %s is missing" % stored})
            kept.append(record)
        elif os.path.lexists(original) and not _ours_to_replace(tree, original, record):
            plan.warnings.append("not restoring %s: something else now has that name; the adopted copy stays at %s" % (original, stored))
            plan.kept.append({"path": stored, "why": "adopted copy of %s, not restored: something else now has that name" % original})
            kept.append(record)
        else:
            restorable.append((record, original, stored))
    restoring = {original for _record, original, _stored in restorable}
    dirs = list(tree.link_dirs) + [d for d in view.state["link_dirs"] if d not in tree.link_dirs]
    for directory in dirs:
        for name, entry in sorted(view.dirs.get(directory, {"entries": {}})["entries"].items()):
            path = os.path.join(directory, name)
            if entry["kind"] == OURS:
                plan.link_changes[path] = None
                if path not in restoring:  # an adopted file replaces our link in one rename instead
                    plan.add("remove link %s" % path, op="unlink", path=path, before=entry["target"])
    _plan_distro_unlinks(view, plan)
    # Order keeps every remaining link resolvable at each step: links go before the pointers,
    # pointers before the versions they name.
    for record, original, stored in restorable:
        if record.get("kind") != "dir":
            plan.add("restore %s" % original, op="restore", record=record, path=original, stored=stored)
    for name in ("current", "previous"):
        if os.path.lexists(tree.pointer_path(name)):
            plan.add("remove %s" % tree.pointer_path(name), op="point", name=name, version=None,
                     before=view.current if name == "current" else view.previous)
    for version in view.versions:
        if read_manifest(tree.version_dir(version)) is not None:
            plan.add("remove v%s" % version, op="remove_version", version=version)
        else:
            plan.kept.append({"path": tree.version_dir(version), "why": "no manifest: not installed by nodeprep"})
    for record, original, stored in restorable:
        if record.get("kind") == "dir":
            plan.add("restore %s" % original, op="restore", record=record, path=original, stored=stored)
    if view.adopted:
        plan.add("record the adopted files kept in %s" % tree.adopted_root, op="write_adopted", records=kept)
    if os.path.exists(tree.state_path):
        plan.add("remove %s" % tree.state_path, op="remove_state")
    for directory in sorted(view.state["created_dirs"], key=len, reverse=True):
        if not _holds(directory, tree.versions_dir):
            plan.add("remove directory %s if empty" % directory, op="rmdir", path=directory)
    plan.kept.append({"path": tree.lock_path, "why": "the node lock is never removed (a waiting run holds it open), so %s "
                      "stays too" % tree.versions_dir})
    plan.current = plan.previous = None
    return plan


def _holds(directory: str, versions_dir: str) -> bool:
    """versions_dir keeps the node lock, which is never removed; so do the directories above it."""
    return is_inside(versions_dir, directory) or is_inside(directory, versions_dir)


def _ours_to_replace(tree, original: str, record: dict) -> bool:
    """The name holds our link (or, for a set-aside version dir, our own version)."""
    if record.get("kind") == "dir":
        return read_manifest(original) is not None
    return tree.is_ours(original)


def predict(before: dict, plan: Plan, state: str) -> dict:
    """The diff's after-picture in check mode, from the plan alone."""
    links = dict(before["links"])
    for path, target in plan.link_changes.items():
        if target is None:
            links.pop(path, None)
        else:
            links[path] = target
    versions = set(before["versions"]) - set(plan.pruned)
    if plan.current:
        versions.add(plan.current)
    if state == "absent":
        versions = set()
    picture = {"current": plan.current, "previous": plan.previous, "versions": sorted(versions, key=version_key), "links": links}
    if "layout_links" in before:
        distro = set(before["layout_links"])
        for path, target in plan.distro_link_changes.items():
            if target is None:
                distro.discard(path)
            else:
                distro.add(path)
        picture["layout_links"] = sorted(distro)
    return picture
