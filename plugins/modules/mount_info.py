#!/usr/bin/python
# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only: the mounts holding the given paths, from the kernel's mount table."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mount_info
short_description: Report the mounts holding paths (propagation, filesystem, options) from the kernel's mount table
version_added: 0.2.0
description:
  - Reads, never writes. For each path in O(paths) reports what it is (directory, link, file or missing), where it
    resolves to, the names in it (a directory that is not a link), the mount on exactly that path and the mount holding
    it (or its nearest existing parent), as the kernel's C(/proc/self/mountinfo) describes them - target, source,
    filesystem type, per-mount and superblock options, propagation (V(shared), V(private), with V(slave) and
    V(unbindable) as C(findmnt) shows them).
  - Paths with spaces, tabs, newlines or backslashes (escaped by the kernel as C(\040), C(\011), C(\012), C(\134)) are
    returned as the characters they are.
  - Where the table cannot describe the filesystem this module sees - no C(/proc) (an image build's chroot), a
    C(/proc) of another root, a chroot of a plain directory - RV(known) is false with RV(reason), and no mount is
    reported; the module never fails for that.
author:
  - nodeprep.cni contributors (@nodeprep)
options:
  paths:
    description: Absolute paths to report on, taken as they are (no C(~) or variable expansion).
    type: list
    elements: str
    required: true
  mountinfo:
    description: The mount table to read; the default is this process's own.
    type: path
    default: /proc/self/mountinfo
extends_documentation_fragment:
  - nodeprep.cni._attributes.info
notes:
  - Linux only - it reads the kernel's mount table.
  - Used by the role I(nodeprep.cni.netns) for the netns dir and the CNI bin dir's propagation.
seealso:
  - name: proc(5), /proc/pid/mountinfo
    description: The format of the mount table.
    link: https://man7.org/linux/man-pages/man5/proc_pid_mountinfo.5.html
"""

EXAMPLES = r"""
- name: Read the netns dir's and the CNI bin dir's mounts
  nodeprep.cni.mount_info:
    paths: [/run/netns, /opt/cni/bin]
  register: mounts

- name: Say whether the netns dir is a shared tmpfs
  ansible.builtin.debug:
    msg: >-
      {{ 'unknown: ' ~ mounts.reason if not mounts.known
         else (mounts.paths['/run/netns'].mountpoint | default({}, true)).propagation | default('not mounted') }}
"""

RETURN = r"""
known:
  description: Whether the mount table describes the filesystem this module sees.
  returned: always
  type: bool
  sample: true
reason:
  description: Why the mounts are unknown; empty when RV(known).
  returned: always
  type: str
  sample: "/proc/self/mountinfo does not exist: /proc is not mounted here (an image build's chroot?)"
paths:
  description: Per path given, keyed by the path as given.
  returned: always
  type: dict
  sample:
    /run/netns:
      path: /run/netns
      kind: directory
      resolves_to: /run/netns
      link_target: null
      entries: [pod1]
      mountpoint: {target: /run/netns, source: tmpfs, fstype: tmpfs, options: "rw,nosuid,nodev,noexec,relatime",
                   super_options: "rw,mode=755", propagation: shared, read_only: false, root: /, id: 812,
                   parent_id: 30, device: "0:61"}
      mount: {target: /run/netns, fstype: tmpfs, propagation: shared}
  contains:
    path:
      description: The path as given.
      type: str
    kind:
      description: V(directory), V(link), V(file) or V(missing) (the path itself, a link not followed).
      type: str
    resolves_to:
      description: The path with every link resolved (its missing tail kept as given).
      type: str
    link_target:
      description: What a link points to, as written in it; null for anything else.
      type: str
    entries:
      description: Names in a directory that is not a link, sorted; empty otherwise.
      type: list
      elements: str
    mountpoint:
      description: The mount on exactly RV(paths.resolves_to) (the topmost of a stack), null when there is none or
        when the mounts are unknown.
      type: dict
    mount:
      description: The mount holding the path (or its nearest existing parent); null when the mounts are unknown.
        Its keys are those of RV(paths.mountpoint).
      type: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.nodeprep.cni.plugins.module_utils import _mountinfo


def describe(path: str) -> dict:
    """What the path is on this filesystem, mounts aside."""
    if os.path.islink(path):
        kind = "link"
    elif os.path.isdir(path):
        kind = "directory"
    else:
        kind = "file" if os.path.lexists(path) else "missing"
    entries = []
    if kind == "directory":
        try:
            entries = sorted(os.listdir(path))
        except OSError:
            entries = []
    return {"path": path, "kind": kind, "resolves_to": os.path.realpath(path),
            "link_target": os.readlink(path) if kind == "link" else None, "entries": entries}


def read(paths: list, mountinfo: str) -> dict:
    found = {path: dict(describe(path), mountpoint=None, mount=None) for path in paths}
    try:
        table = _mountinfo.read_table(mountinfo)
        for path, entry in found.items():
            existing = _mountinfo.nearest_existing(path)
            entry["mount"] = _mountinfo.holding(table, existing)
            _mountinfo.check_device(entry["mount"], existing)
            entry["mountpoint"] = _mountinfo.on_target(table, entry["resolves_to"])
    except _mountinfo.MountTableUnknown as unknown:
        for entry in found.values():
            entry.update(mountpoint=None, mount=None)
        return {"known": False, "reason": str(unknown), "paths": found}
    return {"known": True, "reason": "", "paths": found}


def main():
    module = AnsibleModule(
        argument_spec={
            "paths": {"type": "list", "elements": "str", "required": True},
            "mountinfo": {"type": "path", "default": _mountinfo.MOUNTINFO},
        },
        supports_check_mode=True,
    )
    relative = [path for path in module.params["paths"] if not os.path.isabs(path)]
    if relative:
        module.fail_json(msg="paths must be absolute; got %s" % ", ".join(relative))
    module.exit_json(changed=False, **read(module.params["paths"], module.params["mountinfo"]))


if __name__ == "__main__":
    main()
