#!/usr/bin/python
# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write a file so that a power cut leaves it whole: as it was, or as written."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: durable_file
short_description: Write a file that survives a power cut whole, as it was or as written
version_added: 0.2.0
description:
  - Writes O(content), or the bytes of the file O(src) on the node, to O(path) through a temporary file in the same
    directory. The temporary file's data is flushed to the disk (fsync) before it is renamed over O(path), and the
    directory is flushed after the rename, so a power cut at any moment leaves O(path) as it was or as written, never
    empty or torn; the copy and template modules rename without that flush, which some filesystems (ext4 with
    C(data=writeback), XFS) can lose.
  - An existing file keeps its mode, owner, group and SELinux label unless O(mode), O(owner) or O(group) say
    otherwise; a new file gets O(mode) (default C(0644)). No SELinux Python binding is needed.
  - A file already holding these bytes is left alone; only its mode, owner or group are corrected where they differ.
author:
  - nodeprep.cni contributors (@nodeprep)
options:
  path:
    description: The file to write. Its directory must exist. A symbolic link there is replaced by the file, not
      written through.
    type: path
    required: true
    aliases: [dest]
  content:
    description: The text to write. It is an option like any other (shown with C(-vvv) and in C(--diff) output), so
      put secrets in a file on the node and give O(src) instead.
    type: str
  src:
    description: A file on the node whose bytes are written to O(path) (e.g. one pushed to the remote temporary
      directory); it is read, not moved.
    type: path
  mode:
    description: The file's mode, in octal (e.g. C('0600')). Default - an existing file's mode, else C(0644).
    type: raw
  owner:
    description: The file's owner, a name or a uid. Default - an existing file's owner, else the user the module runs as.
    type: str
  group:
    description: The file's group, a name or a gid. Default - an existing file's group, else the user's group.
    type: str
  backup:
    description: Before replacing a file, keep a copy of it beside it (C(<path>.<pid>.<time>~)), with its mode,
      owner and timestamps.
    type: bool
    default: false
extends_documentation_fragment:
  - nodeprep.cni._attributes
attributes:
  check_mode:
    details: Nothing is written; RV(ignore:changed) says whether a real run would write or correct the file.
  diff_mode:
    details: The whole text before and after, so do not use it for files holding secrets where diffs are logged.
notes:
  - Used by the action I(nodeprep.cni.containerd_cni) for containerd's config and its undo record, and by the role
    I(nodeprep.cni.netns) for its units.
seealso:
  - name: The ansible.builtin.copy module
    description: Writes files without flushing them to the disk before the rename into place.
    link: https://docs.ansible.com/ansible/latest/collections/ansible/builtin/copy_module.html
"""

EXAMPLES = r"""
- name: Write a unit rendered from a template, durably
  nodeprep.cni.durable_file:
    path: /etc/systemd/system/example.service
    content: "{{ lookup('ansible.builtin.template', 'example.service.j2') }}"
    owner: root
    group: root
    mode: "0644"

- name: Replace a config with a file pushed to the node, keeping a backup
  nodeprep.cni.durable_file:
    path: /etc/example/config.toml
    src: /tmp/example-candidate.toml
    backup: true
"""

RETURN = r"""
path:
  description: The file written.
  returned: always
  type: str
  sample: /etc/containerd/config.toml
content_changed:
  description: Whether the file's bytes were (or, in check mode, would be) replaced; V(false) when only its mode,
    owner or group were corrected.
  returned: always
  type: bool
backup_file:
  description: The copy of the replaced file, with O(backup) when the file existed and its bytes changed.
  returned: changed and a backup was made
  type: str
  sample: /etc/containerd/config.toml.2048.2026-12-06@07:45:01~
"""

import os
import stat

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native, to_text

from ansible_collections.nodeprep.cni.plugins.module_utils._atomic import become_hint, fsync_dir, temp_file, unlink_quietly

SELINUX_XATTR = "security.selinux"


def _current(path: str):
    """(lstat, bytes) of *path*; bytes None unless it is a regular file (a link is replaced, not read)."""
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        return None, None
    if not stat.S_ISREG(found.st_mode):
        return found, None
    with open(path, "rb") as handle:
        return found, handle.read()


def _label(path: str):
    try:
        return os.getxattr(path, SELINUX_XATTR, follow_symlinks=False)
    except OSError:
        return None  # no SELinux, or a filesystem without labels


def _file_args(module: AnsibleModule, path: str, existing) -> dict:
    """The owner, group and mode wanted on *path*: the options, else the replaced file's, else a new file's."""
    params = module.params
    args = {"path": path, "mode": params["mode"], "owner": params["owner"], "group": params["group"]}
    if existing is not None and stat.S_ISREG(existing.st_mode):
        args["mode"] = args["mode"] if args["mode"] is not None else "%04o" % stat.S_IMODE(existing.st_mode)
        args["owner"] = args["owner"] if args["owner"] is not None else str(existing.st_uid)
        args["group"] = args["group"] if args["group"] is not None else str(existing.st_gid)
    elif args["mode"] is None:
        args["mode"] = "0644"
    return args


def set_attributes(module: AnsibleModule, args: dict) -> bool:
    """Owner, group and mode set where they differ (in check mode only reported). Not the module's
    set_fs_attributes_if_different: that asks for the SELinux Python binding, which nodes need not have."""
    changed = module.set_owner_if_different(args["path"], args["owner"], False)
    changed = module.set_group_if_different(args["path"], args["group"], changed)
    return module.set_mode_if_different(args["path"], args["mode"], changed)


def write(module: AnsibleModule, path: str, data: bytes, existing) -> None:
    """*data* into a temp file beside *path*, flushed, given the wanted attributes and the replaced
    file's label, renamed over *path*, and the directory flushed: whole before or after a power cut."""
    directory = os.path.dirname(path) or "."
    fd, tmp = temp_file(directory, os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        set_attributes(module, _file_args(module, tmp, existing))
        # The temp file got the label of a new file in this directory; the replaced file's label
        # (e.g. one set by the administrator) is what the name had, so it is what it keeps.
        label = _label(path) if existing is not None and stat.S_ISREG(existing.st_mode) else None
        if label is not None and _label(tmp) != label:
            os.setxattr(tmp, SELINUX_XATTR, label, follow_symlinks=False)
        # The attributes are inode metadata: the flush of the directory below commits them with the name.
        os.rename(tmp, path)
    except BaseException:
        unlink_quietly(tmp)
        raise
    fsync_dir(directory)


def run(module: AnsibleModule) -> dict:
    params = module.params
    path = params["path"]
    if params["src"] is not None:
        with open(params["src"], "rb") as handle:
            data = handle.read()
    else:
        data = params["content"].encode("utf-8")
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        module.fail_json(msg="the directory of %s does not exist: create %s first, then run again; nothing was "
                             "changed." % (path, directory), path=path)
    existing, before = _current(path)
    content_changed = before != data
    result = {"path": path, "content_changed": content_changed, "changed": content_changed}
    if module._diff:
        result["diff"] = {"before": to_text(before or b"", errors="surrogate_or_strict"),
                          "after": to_text(data, errors="surrogate_or_strict"),
                          "before_header": path if existing is not None else "%s (absent)" % path,
                          "after_header": path}
    if content_changed:
        if not module.check_mode:
            if params["backup"] and before is not None:
                result["backup_file"] = module.backup_local(path)
            write(module, path, data, existing)
    else:
        # The same bytes: only the attributes named by the options, corrected in place.
        result["changed"] = set_attributes(module, _file_args(module, path, existing))
    return result


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True, "aliases": ["dest"]},
            "content": {"type": "str"},
            "src": {"type": "path"},
            "mode": {"type": "raw"},
            "owner": {"type": "str"},
            "group": {"type": "str"},
            "backup": {"type": "bool", "default": False},
        },
        mutually_exclusive=[("content", "src")],
        required_one_of=[("content", "src")],
        supports_check_mode=True,
    )
    try:
        result = run(module)
    except OSError as exc:
        hint = become_hint(exc)
        module.fail_json(msg="%s: %s%s" % (getattr(exc, "filename", None) or module.params["path"],
                                           to_native(exc.strerror or exc), "; %s" % hint if hint else ""),
                         path=module.params["path"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
