# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Settles a node's CNI plugins in one task, asking the node before fetching anything.

1. One module run on the node (cni_install with on_missing_src=report) installs nothing new: it
   keeps an intact wanted version as it is (repairing links if needed) and otherwise reports that
   it needs the release, with the node's architecture. That is the whole run of a settled node:
   one round trip, no request, each file hashed once, no facts.
2. Only then is the release fetched and verified, once per architecture: on the controller into
   a cache shared by every fork and host (cni_release's lock and cache), or on the node. A
   controller download that takes a while prints its progress while the task runs, and a fork
   that waits for another fork's download of the same file says so (through Display, which a
   worker process hands to the main one at once; a module's output arrives only when it ends).
3. The verified tarball goes into the task's temporary directory on the node, made only now (a node
   that needs nothing never gets one), and cni_install runs again with it and its sha256: the node
   verifies it, moves it into its cache and removes the emptied directory in that same run. So a
   first install over SSH costs four commands per node: ask, make the directory, transfer, install.

With source package the same shape: cni_install reads the package's version from the node's package
manager and settles an intact install in that one run; only when the package is missing is it
installed (apt, dnf or zypper, as the OS family's os_packages entry says), then its plugin dir is
copied into the version named after the package's version.
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.nodeprep.cni.plugins.module_utils._http import LOCAL_SCHEME, PROGRESS_INTERVAL, DownloadError
from ansible_collections.nodeprep.cni.plugins.module_utils._install_plan import PlanError, wanted_plugins
from ansible_collections.nodeprep.cni.plugins.module_utils._manifest import is_plugin_name
from ansible_collections.nodeprep.cni.plugins.module_utils._options import (
    DIRS,
    INSTALL,
    RELEASE,
    TRANSPORT,
    compose,
    install_problem,
    pick,
    transport_problem,
)
from ansible_collections.nodeprep.cni.plugins.module_utils._os_release import os_family, read_command
from ansible_collections.nodeprep.cni.plugins.module_utils._package_source import package_owned_refusal
from ansible_collections.nodeprep.cni.plugins.module_utils._release import (
    BROKEN_VERSIONS,
    asset_name,
    broken_table,
    normalize_version,
    refuse_broken,
    release_url,
)
from ansible_collections.nodeprep.cni.plugins.module_utils._release_backend import argument_spec as release_spec
from ansible_collections.nodeprep.cni.plugins.module_utils._release_backend import (
    base_urls,
    release_main,
    resolve_checksum,
    trust_on_first_use_warning,
)
from ansible_collections.nodeprep.cni.plugins.module_utils._safe_tar import UnsafeArchive, list_members
from ansible_collections.nodeprep.cni.plugins.plugin_utils._module_object import ModuleObject
from ansible_collections.nodeprep.cni.plugins.plugin_utils._ticker import ticking

display = Display()

# The options only this action has; the release, transport, directory and install groups come
# from _options and are handed on to cni_release and cni_install by group.
OWN_OPTIONS = {
    "source": {"type": "str", "default": "release", "choices": ["release", "package"]},
    "package_name": {"type": "str", "default": ""},
    "package_dir": {"type": "str", "default": ""},
    "package_update_cache": {"type": "bool", "default": False},
    "os_packages": {"type": "dict", "default": {}},
    "download_on": {"type": "str", "default": "controller", "choices": ["controller", "node"]},
    "controller_cache_dir": {"type": "path", "default": "~/.cache/nodeprep/cni"},
    "node_cache_dir": {"type": "path", "default": "/var/cache/nodeprep/cni"},
    "state": {"type": "str", "default": "present", "choices": ["present", "rollback", "absent"]},
}
ARGUMENT_SPEC = compose(RELEASE, TRANSPORT, DIRS, INSTALL, OWN_OPTIONS)
RELEASE_KEYS = ("path", "sha256", "url", "version", "arch", "downloaded", "checksum_source")
# Options that only say how a release is downloaded; with source package the package manager fetches.
DOWNLOAD_OPTIONS = ("base_url", "mirrors", "checksums", "checksum_algorithm", "require_pinned", "download_on", "headers", "ca_path")


class ActionModule(ActionBase):
    # The temporary directory is made only when a tarball must be pushed (_push), not ahead of every run:
    # a settled node costs the one module run.
    TRANSFERS_FILES = False
    _requires_connection = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars or {})
        dummy, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        self._task_vars = task_vars or {}
        try:
            result.update(self._settle(args))
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    # --- the three steps -------------------------------------------------------------------

    def _settle(self, args):
        if args["state"] != "present":
            return self._undo(args)
        if args["source"] == "package":
            return self._settle_package(args)
        if not args["version"]:
            raise AnsibleActionFail("version is required with source release; set cni_plugins_version (for example 1.9.1)")
        version = self._refuse_early(args)
        asked = self._node("nodeprep.cni.cni_install", self._install_args(args, version, on_missing_src="report"))
        if asked.get("failed") or not asked.get("src_needed"):
            return dict(asked, release=None)
        if args["download_on"] == "node":
            return self._install_fetched_on_node(args, version, asked)
        release = self._fetch_on_controller(args, version, asked["arch"])
        self._refuse_package_owned(args, release["path"], asked.get("package_owned") or {})
        # Before the node's cache is written, and in check mode too, where cni_install has no tarball
        # and plans from what the node links now: the release's own member list decides.
        self._refuse_missing_plugins(args, release["path"])
        if self._task.check_mode:
            # The node is not written in check mode; cni_install plans from what the node links now.
            src = "%s/%s" % (args["node_cache_dir"].rstrip("/"), asset_name(version, "linux", asked["arch"]))
            installed = self._node("nodeprep.cni.cni_install", self._install_args(args, version, src=src, source_url=release["url"]))
            return dict(installed, release=release)
        remote = self._push(release["path"])
        installed = self._node("nodeprep.cni.cni_install",
                               self._install_args(args, version, src=remote, checksum="sha256:%s" % release["sha256"],
                                                  src_cache_dir=args["node_cache_dir"], source_url=release["url"]))
        if installed.get("src") and installed["src"] != remote and not self._is_become_unprivileged():
            # cni_install moved the tarball out and removed the emptied directory (it was its _ansible_tmpdir).
            self._connection._shell.tmpdir = None
        return dict(installed, release=release)

    def _undo(self, args):
        """Rollback and absent need no release: cni_install moves `current` back or takes its install away, in
        the dirs it is given and those the install recorded. version names the one to roll back to (empty: previous)."""
        problem = install_problem(args)
        if problem:
            raise AnsibleActionFail(problem)
        values = self._install_args(args, None, state=args["state"])
        if args["state"] == "rollback" and args["version"]:
            values["version"] = args["version"]
        return dict(self._node("nodeprep.cni.cni_install", values), release=None)

    @staticmethod
    def _release_plugins(tarball):
        try:
            return sorted(name for name in list_members(tarball) if is_plugin_name(name))
        except UnsafeArchive as exc:
            raise AnsibleActionFail(str(exc)) from None

    def _refuse_missing_plugins(self, args, tarball):
        """A plugins subset the release lacks, refused as cni_install refuses it in the real run."""
        if not args["plugins"]:
            return
        try:
            wanted_plugins(args["plugins"], self._release_plugins(tarball))
        except PlanError as exc:
            raise AnsibleActionFail(str(exc)) from None

    def _refuse_package_owned(self, args, tarball, package_owned):
        """A package's files at names of this release are refused before anything reaches the node."""
        if not package_owned or args["adopt_package_files"]:
            return
        names = set(self._release_plugins(tarball))
        if args["plugins"]:
            names &= set(args["plugins"])
        owned = dict((path, package) for path, package in package_owned.items() if os.path.basename(path) in names)
        if owned:
            raise AnsibleActionFail(package_owned_refusal(owned))

    def _refuse_early(self, args):
        """Refusals that need neither the node nor the network."""
        try:
            version = normalize_version(args["version"])
            refuse_broken(version, BROKEN_VERSIONS if args["broken_versions"] is None else broken_table(args["broken_versions"]))
        except ValueError as exc:
            raise AnsibleActionFail(str(exc)) from None
        problem = install_problem(args) or transport_problem(args)
        if problem:
            raise AnsibleActionFail(problem)
        return version

    # --- source package -----------------------------------------------------------------------

    def _settle_package(self, args):
        """Like a release: ask the node first; install the package only when it is missing, then link it."""
        self._refuse_download_options(args)
        problem = install_problem(args)
        if problem:
            raise AnsibleActionFail(problem)
        family, package = self._os_package(args, need_module=False)
        install = self._install_args(args, None, package=package["name"], src_dir=package["dir"])
        asked = self._node("nodeprep.cni.cni_install", dict(install, on_missing_src="report"))
        if asked.get("failed") or not asked.get("src_needed"):
            return dict(asked, package_install=None)
        if not package.get("module"):
            family, package = self._os_package(args, need_module=True)
        self._refuse_missing_module(package)
        module_args = {"name": package["name"], "state": "present"}
        if args["package_update_cache"]:
            module_args["update_cache"] = True
        added = self._node(package["module"], module_args)
        if added.get("failed"):
            raise AnsibleActionFail("cannot install package %s (package_name) with %s: %s; if the package is unknown, check the name "
                                    "and that a repository configured on the node provides it (package_update_cache refreshes the "
                                    "index first)"
                                    % (package["name"], package["module"], (added.get("msg") or "").strip()))
        summary = {"name": package["name"], "module": package["module"], "changed": bool(added.get("changed")), "os_family": family}
        if self._task.check_mode:
            # The package is not there to read its version from: report what a real run would do.
            return {"changed": True, "src_needed": False, "version": None, "package": {"name": package["name"], "version": None},
                    "actions": ["install package %s with %s" % (package["name"], package["module"]),
                                "install its plugins from %s as the package's version and make it current" % package["dir"]],
                    "package_install": summary}
        installed = self._node("nodeprep.cni.cni_install", install)
        return dict(installed, changed=bool(installed.get("changed") or added.get("changed")), package_install=summary)

    def _refuse_download_options(self, args):
        # An empty value is the default too (the role passes "" for an unset ca_path).
        given = [key for key in DOWNLOAD_OPTIONS if (args[key] or None) != (ARGUMENT_SPEC[key].get("default") or None)]
        if given:
            raise AnsibleActionFail("source is package, so %s would not be used (the package manager fetches the plugins); "
                                    "leave %s at the default or set source to release" % (", ".join(given), ", ".join(given)))

    def _refuse_missing_module(self, package):
        """The install module may come from an optional collection (SUSE's community.general.zypper)."""
        if self._shared_loader_obj.module_loader.find_plugin_with_context(package["module"]).resolved:
            return
        collection = ".".join(package["module"].split(".")[:2])
        raise AnsibleActionFail("installing package %s needs the module %s, which is not installed on the controller; install its "
                                "collection (ansible-galaxy collection install %s) or name another module in os_packages"
                                % (package["name"], package["module"], collection))

    def _os_package(self, args, need_module):
        """The package's name, plugin dir and install module: given ones first, else the node's OS family's."""
        given = {"name": args["package_name"], "dir": args["package_dir"]}
        if given["name"] and given["dir"] and not need_module:
            return None, given
        done = self._low_level_execute_command(read_command())
        family = os_family(done.get("stdout") or "")
        entry = (args["os_packages"] or {}).get(family) if family else None
        if not entry:
            raise AnsibleActionFail("no package known for this node's OS (family %s from /etc/os-release; os_packages has %s); "
                                    "set package_name and package_dir, or add the family to os_packages"
                                    % (family or "unknown", ", ".join(sorted(args["os_packages"] or {})) or "nothing"))
        chosen = {"name": given["name"] or entry.get("name"), "dir": given["dir"] or entry.get("dir"), "module": entry.get("module")}
        missing = [key for key in ("name", "dir", "module") if not chosen[key]]
        if missing:
            raise AnsibleActionFail("os_packages entry %s lacks %s; give name, dir and module" % (family, ", ".join(missing)))
        return family, chosen

    def _fetch_on_controller(self, args, version, arch):
        """The verified tarball in the controller's cache; its lock makes parallel forks fetch it once."""
        params = self._release_args(args, version, cache_dir=os.path.expanduser(args["controller_cache_dir"]))
        # The release backend runs here through a module object built from cni_release's own argument
        # spec: validated, coerced and masked as on a node. The controller's cache is not node state:
        # filled in check mode too, never a change of the node.
        release = ModuleObject(release_spec(), dict(params, arch=arch))
        release.report_progress = self._say
        fetched = release.run(release_main)
        if fetched.get("failed"):
            raise AnsibleActionFail(fetched["msg"])
        self._show_warnings(fetched)
        return dict(((key, fetched.get(key)) for key in RELEASE_KEYS), where="controller")

    def _say(self, line):
        """A progress line, shown while the task still runs, naming the host whose fork speaks."""
        display.display("%s [%s]: %s" % (self._task.action.split(".")[-1], self._task_vars.get("inventory_hostname", "?"), line))

    @staticmethod
    def _show_warnings(fetched):
        """The in-process release run's warnings (trust on first use), which the task's result does not carry."""
        for warning in fetched.get("warnings") or []:
            display.warning(warning)

    def _push(self, local):
        """The verified tarball into the task's temporary directory on the node (made here, with the
        permissions Ansible gives its own), for cni_install to verify and move into the node's cache."""
        tmpdir = self._connection._shell.tmpdir or self._make_tmp_path()
        remote = self._connection._shell.join_path(tmpdir, os.path.basename(local))
        self._transfer_file(local, remote)
        self._fixup_perms2((tmpdir, remote), execute=False)
        return remote

    def _install_fetched_on_node(self, args, version, asked):
        """Each node downloads from the mirror itself, verifying against the digest decided here once."""
        params = self._release_args(args, version, cache_dir=args["node_cache_dir"])
        checksum, source = self._resolve_checksum(args, version, asked["arch"])
        if checksum:
            params["checksum"] = checksum
        asset = asset_name(version, "linux", asked["arch"])
        if self._task.check_mode:
            return self._check_fetched_on_node(args, version, asked, params, source)
        mirrors = base_urls(dict(args)) or [""]  # none: the node's cni_release names the fix
        with ticking(self._say, "the node downloads %s (mirror 1 of %d, %s)"
                     % (asset, len(mirrors), release_url(mirrors[0], version, "linux", asked["arch"])), PROGRESS_INTERVAL):
            fetched = self._node("nodeprep.cni.cni_release", params)
        release = dict(((key, fetched.get(key)) for key in RELEASE_KEYS), where="node")
        if fetched.get("failed"):
            return dict(fetched, release=release)
        release["checksum_source"] = source or release["checksum_source"]
        self._say_trust(release)
        installed = self._node("nodeprep.cni.cni_install",
                               self._install_args(args, version, src=fetched["path"], source_url=fetched["url"]))
        return dict(installed, changed=bool(installed.get("changed") or fetched.get("changed")), release=release)

    def _check_fetched_on_node(self, args, version, asked, params, source):
        """Check mode: the node is not written, so a release its cache lacks is not there to plan from. Where the real run
        could refuse it (a plugins subset it lacks, package-owned names), the controller reads the release's member list."""
        fetched = self._node("nodeprep.cni.cni_release", params)
        release = dict(((key, fetched.get(key)) for key in RELEASE_KEYS), where="node")
        if fetched.get("failed"):
            return dict(fetched, release=release)
        release["checksum_source"] = source or release["checksum_source"]
        package_owned = asked.get("package_owned") or {}
        if fetched.get("changed") and (args["plugins"] or (package_owned and not args["adopt_package_files"])):
            try:
                listed = self._fetch_on_controller(args, version, asked["arch"])
            except AnsibleActionFail as exc:
                display.warning("check mode could not read release %s on the controller (%s), so whether the release has "
                                "plugins %s is left to the real run's download on the node" % (version, exc, ", ".join(args["plugins"])))
            else:
                self._refuse_package_owned(args, listed["path"], package_owned)
                self._refuse_missing_plugins(args, listed["path"])
        installed = self._node("nodeprep.cni.cni_install",
                               self._install_args(args, version, src=fetched["path"], source_url=fetched["url"]))
        return dict(installed, changed=bool(installed.get("changed") or fetched.get("changed")), release=release)

    def _resolve_checksum(self, args, version, arch):
        """(checksum for the nodes or None, its source or None): once here instead of a checksum file request per node.
        A local directory as the source is the node's own, and a controller that cannot reach the mirror leaves it to them."""
        params = dict(pick(args, RELEASE, TRANSPORT), os="linux")
        try:
            if any(url.startswith(LOCAL_SCHEME + "://") for url in base_urls(params)):
                return None, None
            checksum, source, url = resolve_checksum(params, version, arch)
        except DownloadError as exc:
            self._say("the controller cannot read the release checksum file (%s); each node reads it itself" % exc)
            return None, None
        except ValueError as exc:
            raise AnsibleActionFail(str(exc)) from None
        if url:
            self._say("nodes verify %s %s against %s, read once by the controller" % (version, arch, url))
        return checksum, source

    def _say_trust(self, release):
        # The node's warnings arrive as the core's own warning objects: say it in our words, once.
        warning = trust_on_first_use_warning(release)
        if warning:
            display.warning(warning)

    # --- arguments and node access -----------------------------------------------------------

    @staticmethod
    def _install_args(args, version, **extra):
        values = pick(args, DIRS, INSTALL)
        if version:
            values["version"] = version
        values.update(extra)
        return values

    @staticmethod
    def _release_args(args, version, cache_dir):
        return dict(pick(args, RELEASE, TRANSPORT), version=version, cache_dir=cache_dir)

    def _node(self, name, module_args):
        return self._execute_module(module_name=name, module_args=module_args, task_vars=self._task_vars)
