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
  - Holds an exclusive lock (C(<versions_dir>/.lock)) while it reads the node, plans and acts, so
    concurrent runs serialise and each proceeds on what the one before it left. The lock file is
    never removed, so C(versions_dir) outlives O(state=absent) holding only that file.
  - Reads the node, plans every operation, then acts; check mode and diff report that same plan.
    Before each change its undo is written durably to C(<versions_dir>/.journal); a failure undoes
    exactly what this run changed, and a run that finds the journal of a killed run undoes it first.
  - Directory options are canonicalised (symlinks resolved). A link directory inside O(versions_dir),
    two spellings of one directory, or a directory, fifo or device carrying a plugin's name are
    refused before any change. A version directory without a manifest is set aside under
    C(.adopted/), never emptied. A link directory with nothing to change needs no write access.
  - A directory can be the source instead of a tarball (O(src_dir)), typically the plugin directory of an OS
    package (O(package)). Its entries are held to a release member's rules - plain names, regular files,
    executable (C(LICENSE) and C(README.md) excepted), no setuid or setgid bit, size limits, no symlinks or
    subdirectories - and a single bad entry refuses the whole directory before anything is written.
  - With O(package), the version is the one the package manager reports (C(dpkg-query), else C(rpm)) unless
    O(version) is given, mapped to a safe directory name - C([epoch:]upstream[-revision]) keeps upstream and
    revision as they are, C(~) becomes C(-), a non-zero epoch becomes a C(+epoch<N>) suffix (C(:) separates
    C(CNI_PATH) entries) - so C(1.1.1+ds1-3+b5) is C(v1.1.1+ds1-3+b5) and C(1:1.4.0-1.1) is C(v1.4.0-1.1+epoch1).
    The upstream part must be C(X.Y.Z); otherwise pass O(version). The same package version is assumed to carry
    the same files, so an intact version directory is kept without reading the package's files again.
author:
  - nodeprep.cni contributors (@nodeprep)
extends_documentation_fragment:
  - nodeprep.cni._dirs
  - nodeprep.cni._install
  - nodeprep.cni._attributes
attributes:
  check_mode:
    details: Nothing is written on the node; the result, diff and refusals are those of the plan a real run would carry out.
options:
  src:
    description:
      - Path on the node of a verified release tarball, as returned by M(nodeprep.cni.cni_release).
      - Needed only when the version is not installed intact.
    type: path
  checksum:
    description:
      - The digest O(src) must have, C(sha256:<hex>) or C(sha512:<hex>) (RV(nodeprep.cni.cni_release#module:sha256) of the
        download). O(src) is hashed on the node before anything reads it as an archive, and the unpack must find the same
        sha256; a file that differs is refused, naming both digests, and nothing is installed or cached.
    type: str
  src_cache_dir:
    description:
      - Move O(src), once verified against O(checksum) (then required), into this directory (created when missing) under
        its own name, and install from there - one rename, or where the two are on different filesystems a copy hashed
        while it is written. A later run of M(nodeprep.cni.cni_release) with this as its O(nodeprep.cni.cni_release#module:cache_dir) finds it there.
      - When O(src) was in the task's own temporary directory (where the C(cni_plugins) action pushes the controller's
        copy), that directory is removed once empty, sparing the controller the command that would remove it.
      - Not in check mode, which reads O(src) where it is.
    type: path
  src_dir:
    description:
      - A directory on the node whose files are the plugins to install, instead of O(src) - the plugin directory of
        the package O(package) (Debian's C(containernetworking-plugins) - C(/usr/lib/cni); C(kubernetes-cni) -
        C(/opt/cni/bin)).
      - It must not be O(bin_dir), one of O(link_dirs) or inside O(versions_dir) - links there would replace the
        package's own files and its next upgrade would overwrite them - so that is refused, naming the fix (choose
        another O(bin_dir)).
    type: path
  package:
    description:
      - The installed OS package O(src_dir) belongs to. Its version (from C(dpkg-query) or C(rpm)) names the install
        when O(version) is not given, and the manifest records the package and its version.
      - A package that is not installed fails, or with O(on_missing_src=report) is reported as RV(src_needed) so a
        caller can install it and run again.
    type: str
  version:
    description:
      - Release version, with or without a leading C(v); with O(src_dir), any version directory name
        (C(X.Y.Z) with an optional suffix of letters, digits, C(.), C(+) and C(-)).
      - Required for O(state=present) unless O(package) is given. For O(state=rollback), the installed version to
        return to (a release or a package's version directory name); defaults to the one C(previous) names.
    type: str
  source_url:
    description: URL the tarball came from, recorded in the manifest.
    type: str
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
  on_missing_src:
    description:
      - What O(state=present) does when the wanted version is not installed intact and O(src) is not given.
      - V(fail) fails naming the fix.
      - V(report) changes nothing and returns RV(src_needed=true) with the node's RV(arch), so a caller can ask
        a node in one run whether it needs the release at all, and fetch it only then. In check mode as well.
    type: str
    choices: [fail, report]
    default: fail
notes:
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

- name: Install Debian's containernetworking-plugins package (already installed) as a version of its own
  nodeprep.cni.cni_install:
    package: containernetworking-plugins
    src_dir: /usr/lib/cni

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
package_owned:
  description:
    - With RV(src_needed), the files in the link directories that an OS package owns (path to package), so
      a caller can refuse them once it knows the release's plugin names, before copying anything.
    - Otherwise the package-owned files this run took over (O(adopt_package_files)), path to package.
  returned: always
  type: dict
  sample: {"/opt/cni/bin/bridge": kubernetes-cni}
took_over:
  description:
    - What this run took over from other installers (add-ons such as kube-router that copy plugins into the
      plugin dirs), naming the add-on where it is recognisable; also shown as a warning. Empty when nothing.
  returned: always
  type: str
  sample: "took over 4 plugin file(s) ...: /opt/cni/bin/bridge (from kube-router), /opt/cni/bin/portmap (from kube-router)"
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
arch:
  description: The node's architecture in the release assets' spelling (Go's GOARCH).
  returned: always
  type: str
  sample: amd64
src:
  description:
    - Where the release tarball is after the run - in O(src_cache_dir) when it was moved there; null without O(src).
  returned: always
  type: str
  sample: /var/cache/nodeprep/cni/cni-plugins-linux-amd64-v1.9.1.tgz
src_needed:
  description:
    - True when O(on_missing_src=report) and the wanted version needs O(src); nothing was changed then.
  returned: always
  type: bool
layout:
  description:
    - The layout in effect (O(layout) with V(auto) resolved) and its plugin dir (empty for none); for
      O(state=absent), the dir the links were taken back from (the one the install recorded, whatever O(layout) says).
    - C(linked) names the links made there by this run, C(unlinked) those an O(state=absent) run took back.
    - In diff mode (C(--diff)), C(layout_links) in the diff lists every link of nodeprep's in a distribution's dir.
  returned: always
  type: dict
  sample: {name: k3s, dir: /var/lib/rancher/k3s/data/cni, linked: [macvlan, tuning], unlinked: []}
package:
  description: With O(package), the package C(name), its C(version) as the package manager reports it, and the C(manager).
  returned: always
  type: dict
  sample: {name: containernetworking-plugins, version: "1.1.1+ds1-3+b5", manager: dpkg}
removed:
  description:
    - With O(state=absent), every path taken away (or, in check mode, that would be) - links, the C(current) and
      C(previous) pointers, version dirs, the install's record, directories it created; empty otherwise.
  returned: always
  type: list
  elements: str
restored:
  description: With O(state=absent), the adopted files put back where they were found; empty otherwise.
  returned: always
  type: list
  elements: str
  sample: [/opt/cni/bin/bridge]
left:
  description:
    - With O(state=absent), what stays on the node, each with C(path) and C(why) - the node lock (and so
      O(versions_dir)), version dirs without a manifest, adopted copies that could not be restored.
  returned: always
  type: list
  elements: dict
  sample: [{path: /opt/cni/versions/.lock, why: "the node lock is never removed ..."}]
recovered:
  description:
    - What happened to the journal of an interrupted run found at the start, V(rolled back) or
      V(completed); empty when there was none.
  returned: always
  type: str
  sample: rolled back
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodeprep.cni.plugins.module_utils._addons import ADDON_CONF_DIRS, takeover_summary
from ansible_collections.nodeprep.cni.plugins.module_utils._arch import node_arch
from ansible_collections.nodeprep.cni.plugins.module_utils._atomic import become_hint, make_dirs, unlink_quietly
from ansible_collections.nodeprep.cni.plugins.module_utils._distro_layout import effective_layout, layout_dir
from ansible_collections.nodeprep.cni.plugins.module_utils._install_ops import Executor, clean_leftovers
from ansible_collections.nodeprep.cni.plugins.module_utils._install_plan import (
    NodeView,
    PlanError,
    SrcNeeded,
    Wish,
    plan_absent,
    plan_present,
    plan_rollback,
    predict,
    refuse_unusable_dirs,
)
from ansible_collections.nodeprep.cni.plugins.module_utils._journal import JOURNAL_NAME, Journal, Transaction, recover
from ansible_collections.nodeprep.cni.plugins.module_utils._install_tree import InstallTree
from ansible_collections.nodeprep.cni.plugins.module_utils._locking import FileLock, LockTimeout
from ansible_collections.nodeprep.cni.plugins.module_utils._manifest import is_plugin_name
from ansible_collections.nodeprep.cni.plugins.module_utils._options import DIRS, INSTALL, compose, install_problem
from ansible_collections.nodeprep.cni.plugins.module_utils._package_source import (
    PackageMissing,
    UnsafeSource,
    list_plugin_dir,
    package_owners,
    query_package,
    refuse_overlap,
)
from ansible_collections.nodeprep.cni.plugins.module_utils._probe import ProbeFailed
from ansible_collections.nodeprep.cni.plugins.module_utils._release import normalize_version, public_url
from ansible_collections.nodeprep.cni.plugins.module_utils._safe_tar import UnsafeArchive
from ansible_collections.nodeprep.cni.plugins.module_utils._staging import (
    ReleaseTarball,
    cache_src,
    expected_digest,
    forget_upload_dir,
    verify_src,
)
from ansible_collections.nodeprep.cni.plugins.module_utils._versions import installed_version, package_version


def release_tarball(module: AnsibleModule, versions_dir: str):
    """The ReleaseTarball of src (verified, and moved into cache_dir when given), read only if the plan needs it;
    None when there is no tarball."""
    params, check_mode = module.params, module.check_mode
    src = params["src"]
    if not src or params["state"] != "present":
        return None
    if not os.path.isfile(src):
        if check_mode:
            return None  # the role copies the release only in a real run
        raise PlanError("src %s does not exist or is not a file; pass the path returned by nodeprep.cni.cni_release" % src)
    expected = expected_digest(params["checksum"])
    if params["src_cache_dir"] and not check_mode:
        try:
            params["src"] = cache_src(src, expected, params["src_cache_dir"])
        except OSError as exc:
            raise PlanError("cannot move the release into src_cache_dir %s (role: cni_plugins_node_cache_dir): %s. %s"
                            % (params["src_cache_dir"], _describe(exc), _os_advice(exc)))
        # The task's temporary directory arrives as _ansible_tmpdir: ours to empty, as the controller would.
        if not module._keep_remote_files:
            forget_upload_dir(os.path.dirname(src), module._tmpdir)
    elif expected:
        verify_src(src, expected)
    return ReleaseTarball(params["src"], versions_dir, normalize_version(params["version"]), may_write=not check_mode, expected=expected)


def source_plugins(params: dict, tarball):
    """Plugin names of the package's directory (every entry validated), or the tarball's, read lazily."""
    if params["src_dir"]:
        return [name for name in list_plugin_dir(params["src_dir"]) if is_plugin_name(name)]
    return tarball.plugin_names if tarball else None


def make_plan(view: NodeView, params: dict, check_mode: bool, tarball=None):
    state = params["state"]
    if state == "present":
        # A release is X.Y.Z; a directory source is named by its package's version label.
        version = installed_version(params["version"]).text if params["src_dir"] else normalize_version(params["version"])
        wish = Wish(params, version, source_plugins(params, tarball), check_mode)
        return plan_present(view, wish)
    if state == "rollback":
        version = installed_version(params["version"]).text if params["version"] else None
        return plan_rollback(view, version, params["plugins"], params["adopt"], params["adopt_package_files"])
    return plan_absent(view)


def read_node(module: AnsibleModule, tree: InstallTree) -> NodeView:
    """The node's picture, with the package owners of the files we might adopt (one query, none on a settled node)."""
    view = NodeView.read(tree)
    if module.params["state"] != "absent":
        view.package_owned = package_owners(module.run_command, view.foreign_paths())
    return view


def resolve_package(params: dict, tree: InstallTree, run_command) -> dict:
    """With package given: the installed package's version, and params["version"] set to its label.

    Raises SrcNeeded when the package is not installed (the caller installs it and runs again).
    """
    if not params["src_dir"]:
        raise PlanError("package %s needs src_dir, the directory the package puts its plugins in (Debian's "
                        "containernetworking-plugins: /usr/lib/cni)" % params["package"])
    refuse_overlap(params["src_dir"], tree)
    try:
        found = query_package(run_command, params["package"])
    except PackageMissing as exc:
        raise SrcNeeded("%s; install it first (the role's source package does)" % exc)
    if not params["version"]:
        params["version"] = package_version(found["version"]).text
    return {"name": params["package"], "version": found["version"], "manager": found["manager"]}


def discard_stage(tarball) -> None:
    if tarball is not None:
        tarball.discard()


def forget_fresh_dirs(tree: InstallTree, created: list) -> None:
    """Undo what a refused run made on a fresh node: the lock file and the directories it created.

    Called under the lock: a run waiting on it finds the name gone and makes its own.
    """
    if not created:
        return
    unlink_quietly(tree.lock_path)
    for directory in reversed(created):
        try:
            os.rmdir(directory)
        except OSError:
            return  # something else is in it now: not ours to remove


def run(module: AnsibleModule) -> dict:
    params = module.params
    check_mode = module.check_mode
    # Only the URL without its userinfo is ever recorded or echoed back (the manifest is world-readable).
    params["source_url"] = public_url(params["source_url"])
    # A rollback only moves `current`; the distribution's dir links through it and needs nothing.
    distro_name = effective_layout(params["layout"]) if params["state"] != "rollback" else "standard"
    distro_dir = layout_dir(distro_name, params["image_dir"])
    tree = InstallTree(params["versions_dir"], params["bin_dir"], params["link_dirs"], distro_dir)
    problem = install_problem(params)
    if problem:
        raise PlanError(problem)
    refuse_unusable_dirs(tree)
    package = None
    if params["state"] == "present" and params["package"]:
        package = resolve_package(params, tree, module.run_command)
    elif params["state"] == "present" and params["src_dir"]:
        refuse_overlap(params["src_dir"], tree)
    if params["state"] == "present" and not params["version"]:
        raise PlanError("version is required with state present unless package names the installed package to take it from")
    exists = os.path.isdir(tree.versions_dir)
    if params["state"] == "rollback" and not exists:
        raise PlanError("nothing to roll back to: %s does not exist" % tree.versions_dir)
    tarball = release_tarball(module, tree.versions_dir)
    created = []
    if params["state"] == "present" and not exists and not check_mode:
        if tarball is None:
            # Plan once before creating anything, so a refusal on a fresh node leaves it untouched.
            make_plan(read_node(module, tree), params, check_mode)
        # With a tarball the plan reads it into a stage inside versions_dir, so the dir comes
        # first; a refusal then removes what this run created (forget_fresh_dirs).
        created = make_dirs(tree.versions_dir)
        exists = True

    journal = Journal(os.path.join(tree.versions_dir, JOURNAL_NAME))
    recovered = ""
    with FileLock(tree.lock_path, timeout=params["lock_timeout"], create=exists and not check_mode):
        # Everything below reads the node under the lock: a concurrent run may have just finished.
        if exists and not check_mode:
            recovered = recover(journal)
            clean_leftovers(tree.versions_dir)
        elif journal.exists():
            module.warn("%s holds the journal of an interrupted run; a real run undoes it first" % journal.path)
        if recovered:
            module.warn("an interrupted run left %s; it was %s before this run" % (journal.path, recovered))
        view = read_node(module, tree)
        try:
            plan = make_plan(view, params, check_mode, tarball)
            before = view.snapshot()
            if plan.ops and not check_mode:
                execute(module, tree, plan, journal, tarball, package)
        except BaseException:
            # A refusal, a bad archive or a failure undone in full leaves a fresh node as it was.
            discard_stage(tarball)
            if not journal.exists():
                forget_fresh_dirs(tree, created)
            raise
        discard_stage(tarball)
        after = predict(before, plan, params["state"]) if check_mode else NodeView.read(tree, view.distro_dirs).snapshot()
    # The layout's dir as the layout names it (k3s's data/current/bin, not where that resolves today), unless an
    # uninstall took the links back from another dir the install recorded.
    elsewhere = plan.distro_dir and plan.distro_dir != tree.distro_dir
    distro = {"name": distro_name, "dir": plan.distro_dir if elsewhere else distro_dir,
              "linked": plan.distro_linked, "unlinked": plan.distro_unlinked}
    for warning in plan.warnings:
        module.warn(warning)
    took_over = takeover_summary([{"original": op["path"]} for op in plan.ops if op["op"] == "adopt"],
                                 tree.link_dirs, ADDON_CONF_DIRS)
    if took_over and not check_mode:
        module.warn(took_over)
    result = {
        "changed": bool(plan.ops) or bool(recovered),
        "arch": node_arch(),
        "src_needed": False,
        "layout": distro,
        "version": plan.current,
        "previous": plan.previous,
        "installed": plan.installed,
        "plugins": plan.plugins or [],
        "links": after["links"],
        "adopted": [{"original": op["path"], "stored": op["stored"]} for op in plan.ops if op["op"] in ("adopt", "set_aside")],
        "pruned": plan.pruned,
        "actions": ([("undo the interrupted run in %s" % journal.path)] if recovered == "rolled back" else []) + plan.actions,
        "recovered": recovered,
        "took_over": took_over,
        "package": package,
        "src": params["src"] if params["state"] == "present" else None,
        "package_owned": dict((op["path"], op["package"]) for op in plan.ops if op["op"] == "adopt" and op.get("package")),
    }
    result.update(uninstall_summary(tree, plan) if params["state"] == "absent" else {"removed": [], "restored": [], "left": []})
    if module._diff:
        result["diff"] = {"before": before, "after": after}
    return result


def uninstall_summary(tree: InstallTree, plan) -> dict:
    """What state=absent takes away, puts back and leaves (with why), by path."""
    removed = []
    for op in plan.ops:
        if op["op"] in ("unlink", "rmdir"):
            removed.append(op["path"])
        elif op["op"] == "point":
            removed.append(tree.pointer_path(op["name"]))
        elif op["op"] == "remove_version":
            removed.append(tree.version_dir(op["version"]))
        elif op["op"] == "remove_state":
            removed.append(tree.state_path)
    restored = [op["path"] for op in plan.ops if op["op"] == "restore"]
    return {"removed": removed, "restored": restored, "left": plan.kept}


def report_src_needed(exc: SrcNeeded) -> dict:
    """Nothing changed: the caller fetches the release and runs again with src."""
    return {"changed": False, "src_needed": True, "arch": node_arch(), "reason": str(exc), "version": None,
            "package_owned": dict(exc.package_owned),
            "previous": None, "installed": False, "plugins": [], "links": {}, "adopted": [], "pruned": [],
            "actions": [], "recovered": "", "took_over": "", "src": None, "removed": [], "restored": [], "left": [],
            "layout": {"name": None, "dir": "", "linked": [], "unlinked": []}, "package": None}


def execute(module: AnsibleModule, tree: InstallTree, plan, journal: Journal, tarball=None, package=None) -> None:
    """Run the plan; on any failure undo exactly what this run changed, then report why."""
    transaction = Transaction(journal)
    source = {"package": package["name"], "package_version": package["version"], "manager": package["manager"]} if package else None
    executor = Executor(tree, transaction, module.run_command, module.params["probe_timeout"], module.params["source_url"],
                        tarball, source)
    try:
        executor.run(plan)
    except BaseException as exc:
        if transaction.committed:
            # Every change is made and recorded as complete: nothing to undo, only cleanup left.
            raise PlanError("%s after every change was made; the next run finishes the cleanup recorded in %s"
                            % (_describe(exc), journal.path))
        problems = transaction.rollback()
        clean_leftovers(tree.versions_dir)
        if problems:
            raise PlanError("%s; undoing this run left these paths as they are: %s; adopted files stay under %s"
                            % (_describe(exc), "; ".join(problems), tree.adopted_root))
        if isinstance(exc, OSError):
            raise PlanError("%s; every change of this run was undone. %s" % (_describe(exc), _os_advice(exc)))
        raise


def _os_advice(exc: OSError) -> str:
    hint = become_hint(exc, "make the path writable by the user Ansible runs as")
    if hint:
        return hint[0].upper() + hint[1:]
    return "Check that the path is writable by the user Ansible runs as and that its filesystem has room"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return "%s: %s" % (getattr(exc, "filename", "") or "", exc.strerror or exc)
    return str(exc)


# The options only cni_install has; the directory and install groups come from _options.
OWN_OPTIONS = {
    "src": {"type": "path"},
    "checksum": {"type": "str"},
    "src_cache_dir": {"type": "path"},
    "src_dir": {"type": "path"},
    "package": {"type": "str"},
    "version": {"type": "str"},
    "source_url": {"type": "str"},
    "state": {"type": "str", "default": "present", "choices": ["present", "rollback", "absent"]},
    "lock_timeout": {"type": "int", "default": 600},
    "probe_timeout": {"type": "int", "default": 15},
    "on_missing_src": {"type": "str", "default": "fail", "choices": ["fail", "report"]},
}


def argument_spec():
    return compose(DIRS, INSTALL, OWN_OPTIONS)


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_if=[("state", "present", ("version", "package"), True)],
        mutually_exclusive=[("src", "src_dir"), ("src", "package")],
        required_by={"src_cache_dir": ("src", "checksum"), "checksum": ("src",)},
        supports_check_mode=True,
    )
    try:
        result = run(module)
    except SrcNeeded as exc:
        if module.params["on_missing_src"] != "report":
            module.fail_json(msg=str(exc))
        result = report_src_needed(exc)
    except (PlanError, UnsafeArchive, UnsafeSource, ProbeFailed, LockTimeout, ValueError) as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        # Not from the journalled changes (execute reports those): nothing was undone, so say only what failed.
        module.fail_json(msg="%s. %s" % (_describe(exc), _os_advice(exc)))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
