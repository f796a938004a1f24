# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Points containerd at the CNI plugin and config dirs: tomlkit edit on the controller.

The node's file is read with slurp, edited here with tomlkit (comments, order and unrelated keys
kept byte-for-byte), parsed back, checked by the node's own containerd as it will load it (main
file plus imports with the candidate in place, in a private mount namespace) and written with
our durable_file module (temp file in the same directory, flushed to the disk before the rename
and the directory after it, so a power cut leaves the file as it was or as written; the file's
mode, owner, group and SELinux label and a backup kept).
"""

from __future__ import annotations

import base64
import posixpath
import shlex

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.nodeprep.cni.plugins.plugin_utils import _containerd_config as config
from ansible_collections.nodeprep.cni.plugins.plugin_utils import _containerd_undo as undo
from ansible_collections.nodeprep.cni.plugins.module_utils._paths import is_inside
from ansible_collections.nodeprep.cni.plugins.module_utils._versions import containerd_version

ARGUMENT_SPEC = {
    # The aliases are containerd_info's names, so module_defaults of group/nodeprep.cni.containerd set both.
    "path": {"type": "path", "default": "/etc/containerd/config.toml", "aliases": ["config_path"]},
    "bin_dirs": {"type": "list", "elements": "path"},
    "conf_dir": {"type": "path", "default": "/etc/cni/net.d"},
    "containerd_version": {"type": "str"},
    "containerd_binary": {"type": "str", "default": "containerd", "aliases": ["binary"]},
    "drop_in": {"type": "path"},
    "drop_in_by_dialect": {"type": "dict"},
    "validate": {"type": "bool", "default": True},
    "backup": {"type": "bool", "default": True},
    "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
}
REQUIRED_IF = [("state", "present", ["bin_dirs"])]
DROP_IN_NAME = "90-nodeprep-cni.toml"
FILES_MARK = "#--nodeprep-loaded-files--"
FILE_MARK = "#--nodeprep-file "
NO_NAMESPACE = 97
# Runs containerd's own `config dump` on the config as it will be loaded. With a candidate, a
# private copy of the config's directory with the candidate in place is bind-mounted over the real
# one inside a private mount namespace, so containerd resolves every import exactly as at start and
# the node's files are never touched; without one, the node's files as they are. Then prints the
# imported files, for naming the one that wins.
VALIDATE_SCRIPT = r"""
set -eu
tree=$1 overlay=$2 rel=$3 candidate=$4
shift 4
load='
  if [ -n "$1" ]; then mount --bind "$1" "$2" || exit 97; fi
  binary=$3 main=$4
  shift 4
  "$binary" --config "$main" config dump || exit $?
  echo "#--nodeprep-loaded-files--"
  LC_ALL=C
  for pattern in "$@"; do
    for file in $pattern; do
      if [ -f "$file" ]; then echo "#--nodeprep-file $file"; base64 < "$file" | tr -d "\n"; echo; fi
    done
  done
'
if [ -z "$candidate" ]; then exec sh -c "$load" sh "" "" "$@"; fi
mkdir -p "$tree"
cp -a "$overlay/." "$tree/"
mkdir -p "$(dirname "$tree/$rel")"
cp "$candidate" "$tree/$rel"
command -v unshare >/dev/null 2>&1 || { echo "unshare (util-linux) is not installed" >&2; exit 97; }
exec unshare -m --propagation private sh -c "$load" sh "$tree" "$overlay" "$@"
"""


class ActionModule(ActionBase):
    TRANSFERS_FILES = True
    _requires_connection = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars or {})
        validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC, required_if=REQUIRED_IF)
        if not config.HAS_TOMLKIT:
            raise AnsibleActionFail(
                "nodeprep.cni.containerd_cni needs the Python library tomlkit on the controller (the host running "
                "ansible-playbook): pip install tomlkit (import error: %s)" % config.TOMLKIT_IMPORT_ERROR)
        self._task_vars = task_vars or {}
        self._uploads = 0
        try:
            result.update(self._configure(args) if args["state"] == "present" else self._unconfigure(args))
        except config.ContainerdConfigError as exc:
            raise AnsibleActionFail(str(exc)) from None
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    # --- node access ---------------------------------------------------------------------

    def _module(self, name, module_args, check_mode=None):
        saved = self._task.check_mode
        if check_mode is not None:
            self._task.check_mode = check_mode
        try:
            return self._execute_module(module_name=name, module_args=module_args, task_vars=self._task_vars)
        finally:
            self._task.check_mode = saved

    def _node_containerd(self, binary):
        """``(version tuple, (known bin keys, default bin_dirs))`` from the node's binary.

        The keys come from its own ``config default``: which of ``bin_dir``/``bin_dirs`` a
        containerd reads is its answer, not a version table's.
        """
        res = self._low_level_execute_command("%s --version" % shlex.quote(binary))
        if res["rc"] != 0:
            return None, (None, None)
        found = containerd_version(res["stdout"])
        version = found.release if found else None
        default = self._low_level_execute_command("%s config default" % shlex.quote(binary))
        return version, config.node_cni_defaults(default["stdout"]) if default["rc"] == 0 else (None, None)

    def _stat(self, path):
        stat = self._module("ansible.legacy.stat", {"path": path, "get_checksum": False, "follow": False},
                            check_mode=False)
        if stat.get("failed"):
            raise AnsibleActionFail("cannot stat %s: %s" % (path, stat.get("msg")))
        return stat["stat"]

    def _read(self, path, stat=None):
        """The file's text (None when it does not exist); a symlink is followed."""
        stat = stat or self._stat(path)
        if not stat["exists"]:
            return None
        if stat.get("isdir"):
            raise AnsibleActionFail(
                "%s is a directory, so containerd cannot read it as its config either: put the config file there "
                "(or point the path at it), then run again; nothing was changed." % path)
        slurp = self._module("ansible.legacy.slurp", {"src": path}, check_mode=False)
        if slurp.get("failed"):
            raise AnsibleActionFail("cannot read %s: %s" % (path, slurp.get("msg")))
        try:
            return base64.b64decode(slurp["content"]).decode("utf-8")
        except UnicodeDecodeError:
            raise AnsibleActionFail(
                "%s is not UTF-8 text, which containerd cannot load either: fix its encoding (keep its settings), "
                "then run again; nothing was changed." % path) from None

    @staticmethod
    def _refuse_link(path, stat):
        """We replace files by rename: through a link that would cut the tie to the vendor's file."""
        if stat.get("exists") and stat.get("islnk"):
            source = stat.get("lnk_source") or stat.get("lnk_target") or "its target"
            raise config.ContainerdConfigError(
                "%s is a symbolic link to %s (e.g. Flatcar's vendor default), which this collection does not write "
                "through. Replace the link by a copy of its target, which keeps every vendor setting: cp "
                "--remove-destination %s %s; then run again. Nothing was changed." % (
                    path, source, shlex.quote(source), shlex.quote(path)))

    def _upload(self, remote_tmp, name, text):
        candidate = self._connection._shell.join_path(remote_tmp, name)
        self._transfer_data(candidate, text)
        self._fixup_perms2((remote_tmp, candidate))
        return candidate

    def _write(self, path, candidate, backup, stat):
        directory = posixpath.dirname(path) or "/"
        made = self._module("ansible.legacy.file", {"path": directory, "state": "directory", "mode": "0755"})
        if made.get("failed"):
            raise AnsibleActionFail("cannot create %s: %s" % (directory, made.get("msg")))
        # The config holds the user's registry logins and the state file is the only way back: the
        # copy module's rename without a flush of the data can leave either empty after a power cut.
        # durable_file keeps the replaced file's mode, owner, group and SELinux label (a 0600 file
        # holding a registry password stays 0600); its backup is a preserving copy.
        write_args = {"src": candidate, "path": path, "backup": backup}
        if stat.get("exists"):
            write_args.update(mode="%04o" % int(stat["mode"], 8), owner=str(stat["uid"]), group=str(stat["gid"]))
        else:
            write_args["mode"] = "0644"
        written = self._module("nodeprep.cni.durable_file", write_args)
        if written.get("failed"):
            raise AnsibleActionFail("cannot write %s: %s" % (path, written.get("msg", "")))
        return written

    @staticmethod
    def _drop_in_for_dialect(by_dialect, path, main_text, version):
        if main_text:
            dialect = config.file_dialect(config.parse(main_text, path), path)
        else:
            dialect = config.new_file_dialect(version, path)
        for key, value in by_dialect.items():
            if str(key) == str(dialect):
                return value
        raise config.ContainerdConfigError(
            "drop_in_by_dialect has no entry for version %d (%s): add one, or set drop_in." % (dialect, path))

    # --- validation by containerd itself -------------------------------------------------

    def _dump(self, binary, path, target, candidate, remote_tmp, main_text):
        """containerd's ``config dump`` of the config as it will load, and the imported files.

        *candidate* None: the node's files as they are (nothing to change, still to be checked).
        """
        if target == path and not config.imports_of(main_text):
            res = self._low_level_execute_command("%s --config %s config dump" % (
                shlex.quote(binary), shlex.quote(candidate or path)))
            return res, []
        main_dir = posixpath.dirname(path) or "/"
        target_dir = posixpath.dirname(target) or "/"
        overlay = rel = ""
        if candidate:
            overlay = main_dir if is_inside(target_dir, main_dir, resolve=False) else target_dir
            while overlay not in ("/", "") and not self._stat(overlay)["exists"]:
                overlay = posixpath.dirname(overlay)
            if overlay in ("/", ""):
                raise config.ContainerdConfigError(
                    "cannot check %s with containerd: no directory of it exists yet; create %s first, then run "
                    "again; nothing was changed." % (target, target_dir))
            rel = posixpath.relpath(target, overlay)
        patterns = [entry if entry.startswith("/") else posixpath.join(main_dir, entry)
                    for entry in config.imports_of(main_text)]
        argv = ["sh", "-c", VALIDATE_SCRIPT, "sh", self._connection._shell.join_path(remote_tmp, "tree"),
                overlay, rel, candidate or "", binary, path] + patterns
        res = self._low_level_execute_command(" ".join(shlex.quote(arg) for arg in argv))
        files = []
        out = res.get("stdout", "")
        if FILES_MARK in out:
            out, _sep, listing = out.partition(FILES_MARK)
            for line in listing.splitlines():
                if line.startswith(FILE_MARK):
                    files.append([line[len(FILE_MARK):], ""])
                elif files and line:
                    files[-1][1] = base64.b64decode(line).decode("utf-8", "replace")
            res = dict(res, stdout=out)
        return res, [tuple(entry) for entry in files]

    def _validate(self, binary, version, path, target, texts, candidate, remote_tmp, facts):
        """Fails unless containerd, loading main file plus imports with the candidate in place
        (or as they are, when nothing changes), searches exactly the dirs we want; nothing has
        been written at this point."""
        res, imported = self._dump(binary, path, target, candidate, remote_tmp, texts[path])
        if res["rc"] == NO_NAMESPACE:
            raise config.ContainerdConfigError(
                "cannot check %s with containerd as it will load it (main file plus imports): a private mount "
                "namespace needs root and util-linux's unshare on the node (%s). Run with become, or set validate: "
                "false (the role's containerd_validate); nothing was changed." % (
                    target, (res.get("stderr") or "").strip()[-500:]))
        if res["rc"] != 0:
            said = (res.get("stderr") or res.get("stdout") or "").strip()[-2000:]
            hint = ""
            if "U+FEFF" in said or "U+00EF" in said:
                hint = (" This containerd does not read a file that starts with a UTF-8 byte order mark: save %s "
                        "without it." % target)
            raise config.ContainerdConfigError(
                "containerd refused the new %s, which was therefore not written: %s%s" % (target, said, hint))
        try:
            dirs, conf_dir, problem = config.effective_cni(res["stdout"], facts["default_bin_dirs"])
        except Exception as exc:  # pylint: disable=broad-exception-caught
            raise config.ContainerdConfigError(
                "containerd's config dump of the new %s could not be read (%s); nothing was written." % (target, exc))
        if not problem and dirs == facts["bin_dirs"] and conf_dir == (facts["conf_dir"] or conf_dir):
            return
        files = [(path, texts[path])] + [(name, text) for name, text in imported if name != path]
        legacy = version[0] < 2
        if legacy:
            keys = [None]
        elif problem:
            keys = ["bin_dir"]
        else:
            keys = list(config.BIN_KEYS) if dirs != facts["bin_dirs"] else ["conf_dir"]
        sets = {key: config.cni_setters(files, key) for key in keys}
        winners = [name for name, _text in files if name != target and any(name in found for found in sets.values())]
        if target != path and target not in [name for name, _text in imported]:
            why = "%s is not among the files %s imports (%s)" % (
                target, path, ", ".join(config.imports_of(texts[path])) or "it imports none")
            fix = "import it from %s, or leave drop_in unset, then run again" % path
        elif winners:
            why = "%s sets %s later in containerd's load order" % (
                winners[-1], "the whole CRI plugin table, which replaces ours on containerd 1.x" if legacy
                else " and ".join("cni." + key for key in keys if winners[-1] in sets[key]))
            fix = "remove that from %s (or set the same value there), then run again" % winners[-1]
        else:
            why = "containerd %s does not read cni.%s as written in %s" % (
                config.format_version(version), facts["bin_dir_key"], target)
            fix = "set the key this containerd reads (its 'containerd config default' shows it), then run again"
        raise config.ContainerdConfigError(
            "containerd %s: its config dump of the main file plus imports "
            "%s, wanted bin dirs %s and conf_dir %s; %s. Fix: %s. Nothing was written." % (
                ("would not use what this run writes to %s" if candidate else "does not use the CNI settings in %s")
                % target, problem or "searches %s for plugins with conf_dir %s" % (dirs, conf_dir), facts["bin_dirs"],
                facts["conf_dir"], why, fix))

    # --- the edit ------------------------------------------------------------------------

    def _configure(self, args):
        path = args["path"]
        binary = args["containerd_binary"]
        version, (known_keys, default_bin_dirs) = self._node_containerd(binary)
        version_source = "node" if version else None
        if version is None and args["containerd_version"]:
            found = containerd_version(args["containerd_version"])
            version = found.release if found else None
            if version is None:
                raise config.ContainerdConfigError(
                    "containerd_version %r is not a version: give e.g. '1.7' or '2.3.4'." % args["containerd_version"])
            version_source = "containerd_version"
        main_stat = self._stat(path)
        main_text = self._read(path, main_stat)
        target, target_stat = path, main_stat
        if args["drop_in"]:
            target = args["drop_in"]
        elif args["drop_in_by_dialect"]:
            target = self._drop_in_for_dialect(args["drop_in_by_dialect"], path, main_text, version)
        elif version and version[0] >= 2 and main_text:
            drop_in_dir = config.imports_drop_in_dir(main_text)
            # A main file that still holds bin_dir is migrated where it stands: a drop-in's bin_dirs
            # beside it would be "both set", which stops containerd's CRI plugin.
            if drop_in_dir and not config.sets_bin_dir(main_text, path):
                target = drop_in_dir + "/" + DROP_IN_NAME
        before = text = main_text
        if target != path:
            target_stat = self._stat(target)
            before = text = self._read(target, target_stat)
            if text is None and main_text:
                # A new drop-in speaks its main file's dialect and starts from its CNI table.
                text = config.drop_in_seed(main_text, path)
        self._refuse_link(target, target_stat)
        if version_source is None and text:
            version_source = "file"
        new_text, facts = config.edit(text, target, args["bin_dirs"], args["conf_dir"], version,
                                      known_keys if version_source == "node" else None)
        if target != path and facts["bin_dir_key"] == "bin_dirs" and main_text and config.sets_bin_dir(main_text, path):
            # containerd 2.x merges imports key by key: bin_dirs here and bin_dir there is "both set".
            raise config.ContainerdConfigError(
                "%s sets cni.bin_dir, which this containerd reads only as a deprecated key; bin_dirs in the drop-in %s "
                "beside it would make containerd's CRI plugin refuse to start (both set). Leave drop_in unset so that "
                "%s itself is migrated to bin_dirs, or remove bin_dir there, then run again; nothing was changed." % (
                    path, target, path))
        changed = new_text != (before or "")
        result = dict(facts, changed=changed, path=target, main_config=path,
                      containerd_version=config.format_version(version), version_source=version_source)
        if self._task.diff and changed:
            # The CNI keys only: the rest of a containerd config can hold registry credentials.
            header = "%s (CNI settings)" % target
            result["diff"] = {"before": config.cni_keys_text(before, target),
                              "after": config.cni_keys_text(new_text, target),
                              "before_header": header if before is not None else "%s (absent)" % target,
                              "after_header": header}
        validate = args["validate"] and version_source == "node"
        result["validated"] = bool(validate)
        if not validate:
            result["validation_skipped"] = "no containerd binary on the node" if args["validate"] else "validate=false"
        if changed or validate:
            remote_tmp = self._make_tmp_path()
            # Unchanged settings are checked too: a later import can override what is already there.
            candidate = self._upload(remote_tmp, "candidate.toml", new_text) if changed else None
            if validate:
                texts = {path: new_text if target == path else main_text, target: new_text}
                self._validate(binary, version, path, target, texts, candidate, remote_tmp,
                               dict(facts, default_bin_dirs=default_bin_dirs))
            if changed and not self._task.check_mode:
                # The original values are on record before the file changes (see _unconfigure).
                entry = self._record(path, target, before, new_text)
                # A file that holds only our settings needs no backup: the record restores it.
                written = self._write(target, candidate, args["backup"] and not entry["created"], target_stat)
                if written.get("backup_file"):
                    result["backup_file"] = written["backup_file"]
        return result

    # --- taking it back --------------------------------------------------------------------

    def _missing_dirs(self, *paths):
        """The directories of *paths* that do not exist yet (ours to remove again when empty)."""
        missing = []
        for path in paths:
            directory = posixpath.dirname(path)
            while directory not in ("/", "") and directory not in missing and not self._stat(directory)["exists"]:
                missing.append(directory)
                directory = posixpath.dirname(directory)
        return missing

    def _put(self, path, text, backup=False, stat=None):
        # One remote temp dir per task: the run removes it at the end (another would be left behind).
        remote_tmp = self._connection._shell.tmpdir or self._make_tmp_path()
        self._uploads += 1
        candidate = self._upload(remote_tmp, "%d-%s" % (self._uploads, posixpath.basename(path)), text)
        return self._write(path, candidate, backup, stat or self._stat(path))

    def _record(self, main_path, target, before, after):
        """Notes in the node's state file what this edit of *target* changes, first."""
        state_file = undo.state_path(main_path)
        state_stat = self._stat(state_file)
        state = undo.load_state(self._read(state_file, state_stat), state_file)
        entry = undo.record_edit(state["files"].get(target), before, after, target,
                                 self._missing_dirs(target, state_file))
        state["files"][target] = entry
        state["schema_version"] = undo.SCHEMA_VERSION
        self._put(state_file, undo.dump_state(state), stat=state_stat)
        return entry

    @staticmethod
    def _our_drop_ins(args, main_text):
        """Where this module puts a drop-in for these options, by our file name (for nodes set up
        before the state file existed)."""
        names = [args["drop_in"]] if args["drop_in"] else []
        names += [str(value) for value in (args["drop_in_by_dialect"] or {}).values()]
        drop_in_dir = config.imports_drop_in_dir(main_text) if main_text else None
        if drop_in_dir:
            names.append(drop_in_dir + "/" + DROP_IN_NAME)
        return [name for name in names if posixpath.basename(name) == DROP_IN_NAME]

    @staticmethod
    def _named_bin_dirs(text, path):
        try:
            document = config.parse(text, path)
            table_path = config.cni_table_path(config.file_dialect(document, path))
            table = config.lookup(document, table_path, path)
            return [d for key in config.BIN_KEYS if table is not None and key in table
                    for d in config.string_list(table, key, path, table_path)]
        except config.ContainerdConfigError:
            return []

    def _dir_is_empty(self, directory, going):
        res = self._low_level_execute_command("ls -A %s" % shlex.quote(directory))
        if res["rc"] != 0:
            return False
        return all(posixpath.join(directory, name) in going for name in res["stdout"].split("\n") if name)

    def _unconfigure(self, args):
        path = args["path"]
        state_file = undo.state_path(path)
        state_stat = self._stat(state_file)
        state = undo.load_state(self._read(state_file, state_stat), state_file)
        files = dict(state["files"])
        main_text = self._read(path)
        report = {"restored": [], "removed": [], "left": []}
        for name in self._our_drop_ins(args, main_text):
            if name not in files and self._stat(name)["exists"]:
                files[name] = {"unrecorded": True}
        if not state_stat["exists"] and main_text and args["bin_dirs"]:
            named = [name for name in self._named_bin_dirs(main_text, path) if name]
            if set(named) & set(args["bin_dirs"]):
                report["left"].append({"file": path, "reason": (
                    "names %s, but there is no record (%s) of its values before this collection, so it is kept; "
                    "its backups next to it (%s.*~) hold earlier versions" % (", ".join(named), state_file, path))})
        plans, remaining, dirs = [], {}, []
        for name, entry in sorted(files.items()):
            stat = self._stat(name)
            if stat.get("islnk"):
                report["left"].append({"file": name, "reason": "is a symbolic link now, which this collection does not "
                                       "write through; kept"})
                remaining[name] = entry
                continue
            text = self._read(name, stat)
            if entry.get("unrecorded"):
                new_text, found, left = None, {"restored": [], "removed": [{"file": name}], "left": []}, None
            else:
                new_text, found, left = undo.restore(text, name, entry)
            for kind, items in found.items():
                report[kind].extend(items)
            if left:
                remaining[name] = left
            if new_text != text:
                plans.append((name, text, new_text, stat, entry))
            dirs.extend(entry.get("created_dirs") or [])
        going = {name for name, _text, new_text, _stat, _entry in plans if new_text is None}
        new_state = dict(state, files=remaining) if remaining else None
        if new_state is None and state_stat["exists"]:
            going.add(state_file)
            report["removed"].append({"file": state_file})
        emptied = []
        for directory in sorted(set(dirs), key=len, reverse=True):
            if self._stat(directory).get("isdir") and self._dir_is_empty(directory, going | set(emptied)):
                emptied.append(directory)
                report["removed"].append({"dir": directory})
        state_changes = new_state is not None and new_state != state or state_file in going
        changed = bool(plans or emptied or state_changes)
        result = dict(report, changed=changed, path=path, main_config=path, state_file=state_file,
                      files=sorted(files))
        if self._task.diff and plans:
            result["diff"] = [{
                "before": config.cni_keys_text(text, name), "after": config.cni_keys_text(new_text, name),
                "before_header": "%s (CNI settings)" % name,
                "after_header": "%s (%s)" % (name, "absent" if new_text is None else "CNI settings")}
                for name, text, new_text, _stat, _entry in plans]
        if self._task.check_mode or not changed:
            return result
        for name, _text, new_text, stat, entry in plans:
            if new_text is None:
                gone = self._module("ansible.legacy.file", {"path": name, "state": "absent"})
                if gone.get("failed"):
                    raise AnsibleActionFail("cannot remove %s: %s" % (name, gone.get("msg")))
            else:
                written = self._put(name, new_text, args["backup"] and not entry.get("created"), stat)
                if written.get("backup_file"):
                    result.setdefault("backup_files", []).append(written["backup_file"])
        if new_state is not None:
            self._put(state_file, undo.dump_state(new_state), stat=state_stat)
        elif state_file in going:
            self._module("ansible.legacy.file", {"path": state_file, "state": "absent"})
        for directory in emptied:
            res = self._low_level_execute_command("rmdir %s" % shlex.quote(directory))
            if res["rc"] != 0:
                raise AnsibleActionFail("cannot remove the empty directory %s: %s" % (directory, res.get("stderr")))
        return result
