# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Points containerd at the CNI plugin and config dirs: tomlkit edit on the controller.

The node's file is read with slurp, edited here with tomlkit (comments, order and unrelated keys
kept byte-for-byte), validated by the node's own ``containerd --config <candidate> config dump``
and written with the copy module (temp file in the same directory, then rename; backup).
"""

from __future__ import annotations

import base64
import shlex

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.nodeprep.cni.plugins.module_utils import _containerd_config as config

ARGUMENT_SPEC = {
    "path": {"type": "path", "default": "/etc/containerd/config.toml"},
    "bin_dirs": {"type": "list", "elements": "path", "required": True},
    "conf_dir": {"type": "path", "default": "/etc/cni/net.d"},
    "containerd_version": {"type": "str"},
    "containerd_binary": {"type": "str", "default": "containerd"},
    "drop_in": {"type": "path"},
    "drop_in_by_dialect": {"type": "dict"},
    "validate": {"type": "bool", "default": True},
    "backup": {"type": "bool", "default": True},
}
DROP_IN_NAME = "90-nodeprep-cni.toml"


class ActionModule(ActionBase):
    TRANSFERS_FILES = True
    _requires_connection = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars or {})
        validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        if not config.HAS_TOMLKIT:
            raise AnsibleActionFail(
                "nodeprep.cni.containerd_cni needs the Python library tomlkit on the controller (the host running "
                "ansible-playbook): pip install tomlkit (import error: %s)" % config.TOMLKIT_IMPORT_ERROR)
        self._task_vars = task_vars or {}
        try:
            result.update(self._configure(args))
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

    def _node_containerd_version(self, binary):
        """``(version tuple, raw output)`` from the node's binary, or ``(None, reason)``."""
        res = self._low_level_execute_command("%s --version" % shlex.quote(binary))
        if res["rc"] != 0:
            return None, (res.get("stderr") or res.get("stdout") or "").strip()
        return config.parse_containerd_version(res["stdout"]), res["stdout"].strip()

    def _read(self, path):
        """The file's text, or None when it does not exist."""
        stat = self._module("ansible.legacy.stat", {"path": path, "get_checksum": False}, check_mode=False)
        if stat.get("failed"):
            raise AnsibleActionFail("cannot stat %s: %s" % (path, stat.get("msg")))
        if not stat["stat"]["exists"]:
            return None
        if not stat["stat"].get("isreg"):
            raise AnsibleActionFail("%s exists but is not a regular file: move it away, then run again." % path)
        slurp = self._module("ansible.legacy.slurp", {"src": path}, check_mode=False)
        if slurp.get("failed"):
            raise AnsibleActionFail("cannot read %s: %s" % (path, slurp.get("msg")))
        try:
            return base64.b64decode(slurp["content"]).decode("utf-8")
        except UnicodeDecodeError:
            raise AnsibleActionFail("%s is not UTF-8 text, so it is not a containerd config: fix or move it away." % path) from None

    def _write(self, path, text, backup, validate_cmd):
        directory = path.rsplit("/", 1)[0] or "/"
        made = self._module("ansible.legacy.file", {"path": directory, "state": "directory", "mode": "0755"})
        if made.get("failed"):
            raise AnsibleActionFail("cannot create %s: %s" % (directory, made.get("msg")))
        remote_tmp = self._make_tmp_path()
        candidate = self._connection._shell.join_path(remote_tmp, "config.toml")
        self._transfer_data(candidate, text)
        self._fixup_perms2((remote_tmp, candidate))
        if validate_cmd:
            # Before the copy module runs: its own validate would leave a backup behind on failure.
            checked = self._low_level_execute_command(validate_cmd % shlex.quote(candidate))
            if checked["rc"] != 0:
                raise AnsibleActionFail(
                    "containerd refused the new %s, which was therefore not written: %s" % (
                        path, (checked.get("stderr") or checked.get("stdout") or "").strip()[-2000:]))
        copy_args = {"src": candidate, "dest": path, "backup": backup, "mode": "0644", "remote_src": True}
        written = self._module("ansible.legacy.copy", copy_args)
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

    # --- the edit ------------------------------------------------------------------------

    def _configure(self, args):
        path = args["path"]
        version, version_output = self._node_containerd_version(args["containerd_binary"])
        version_source = "node" if version else None
        if version is None and args["containerd_version"]:
            version = config.parse_containerd_version(args["containerd_version"])
            if version is None:
                raise config.ContainerdConfigError(
                    "containerd_version %r is not a version: give e.g. '1.7' or '2.1.4'." % args["containerd_version"])
            version_source = "containerd_version"
        main_text = self._read(path)
        target = path
        before = text = main_text
        if args["drop_in"]:
            target = args["drop_in"]
        elif args["drop_in_by_dialect"]:
            target = self._drop_in_for_dialect(args["drop_in_by_dialect"], path, main_text, version)
        elif version and version[0] >= 2:
            drop_in_dir = config.imports_drop_in_dir(main_text)
            if drop_in_dir:
                target = drop_in_dir + "/" + DROP_IN_NAME
        if target != path:
            before = text = self._read(target)
            if text is None and main_text:
                # A new drop-in speaks its main file's dialect and starts from its CNI table.
                text = config.drop_in_seed(main_text, path)
        if version_source is None and text:
            version_source = "file"
        new_text, facts = config.edit(text, target, args["bin_dirs"], args["conf_dir"], version)
        changed = new_text != (before or "")
        result = dict(facts, changed=changed, path=target, main_config=path,
                      containerd_version=config.format_version(version), version_source=version_source)
        if self._task.diff and changed:
            result["diff"] = {"before": before or "", "after": new_text,
                              "before_header": target if before is not None else "%s (absent)" % target,
                              "after_header": target}
        validate_cmd = None
        if args["validate"] and version_source == "node":
            validate_cmd = "%s --config %%s config dump" % shlex.quote(args["containerd_binary"])
        result["validated"] = bool(validate_cmd) and changed and not self._task.check_mode
        if not args["validate"] or version_source != "node":
            result["validation_skipped"] = "no containerd binary on the node" if args["validate"] else "validate=false"
        if changed and not self._task.check_mode:
            written = self._write(target, new_text, args["backup"], validate_cmd)
            if written.get("backup_file"):
                result["backup_file"] = written["backup_file"]
        return result
