#!/usr/bin/python
# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Record the paths a role creates on a node, and take back exactly those."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: owned_paths
short_description: Record the files, links and directories a role creates, and remove exactly those again
version_added: 0.2.0
description:
  - With O(state=present), called before a role writes its files, notes which of O(paths) (and which of their parent
    directories) do not exist yet, in the record file O(record). Those are the ones the role creates; paths that exist
    already are recorded as found and are never removed. A file's C(sha256) and a link's C(target) are the content the
    role writes, so a later change by someone else can be told apart.
  - With O(state=absent), removes what the record names as created, then the record. A file whose content changed
    since (another C(sha256)), a link that points elsewhere, or a path that is now of another kind is left and
    reported; a directory is removed only when nothing but what this run removes was in it, otherwise it is left,
    naming what it holds. Directories go deepest first, after the files and links.
  - Reports every path it leaves, with the reason (RV(left)); the directory that holds the record is removed once it is
    empty (several records may share it).
author:
  - nodeprep.cni contributors (@nodeprep)
options:
  record:
    description: The record file on the node, one per role (e.g. C(/var/lib/nodeprep/multus.json)).
    type: path
    required: true
  state:
    description:
      - V(present) notes O(paths) before the role creates them.
      - V(absent) removes what the record names as created and the record itself.
    type: str
    choices: [present, absent]
    default: present
  dirs:
    description: With O(state=present), directories the role is about to make (as O(paths) entries of kind V(dir)).
    type: list
    elements: path
    default: []
  paths:
    description: With O(state=present), the paths the role is about to create or write.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path.
        type: path
        required: true
      kind:
        description: What the role makes there.
        type: str
        choices: [file, dir, link]
        required: true
      sha256:
        description: For a file, the sha256 of the content the role writes.
        type: str
      target:
        description: For a link, where it points.
        type: str
extends_documentation_fragment:
  - nodeprep.cni._attributes
attributes:
  check_mode:
    details: Nothing is written; RV(noted), RV(removed) and RV(left) are what a real run would note, remove and leave.
notes:
  - Used by the roles I(nodeprep.cni.netns) and I(nodeprep.cni.multus) for their O(state=absent) (C(netns_state),
    C(multus_state)).
"""

EXAMPLES = r"""
- name: Note the files about to be written
  nodeprep.cni.owned_paths:
    record: /var/lib/nodeprep/example.json
    paths:
      - {path: /etc/example.d, kind: dir}
      - {path: /etc/example.d/example.conf, kind: file, sha256: "{{ example_content | hash('sha256') }}"}

- name: Take them back
  nodeprep.cni.owned_paths:
    record: /var/lib/nodeprep/example.json
    state: absent
"""

RETURN = r"""
noted:
  description: With O(state=present), the paths newly recorded as created by this role (missing before this run).
  returned: always
  type: list
  elements: str
removed:
  description: With O(state=absent), the paths removed (or, in check mode, that would be), the record file last.
  returned: always
  type: list
  elements: str
left:
  description: With O(state=absent), the recorded paths left on the node, each with C(path) and C(why).
  returned: always
  type: list
  elements: dict
  sample: [{path: /etc/cni/net.d/multus.d, why: "not empty, it still holds: multus.kubeconfig"}]
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodeprep.cni.plugins.module_utils._atomic import rmdir_quietly, unlink_quietly
from ansible_collections.nodeprep.cni.plugins.module_utils._owned_paths import apply, note, plan_removal, read_record, write_record


def present(module: AnsibleModule) -> dict:
    record_path = module.params["record"]
    paths, record_dirs = read_record(record_path)
    try:
        new = note(paths, [{"path": path, "kind": "dir"} for path in module.params["dirs"]] + module.params["paths"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    noted = sorted(path for path in new if path not in paths and new[path].get("created"))
    changed = new != paths or not os.path.exists(record_path)
    if changed and not module.check_mode:
        write_record(record_path, new, record_dirs)
    result = {"changed": changed, "noted": noted, "removed": [], "left": []}
    if module._diff:
        result["diff"] = {"before": {"record": paths}, "after": {"record": new}}
    return result


def absent(module: AnsibleModule) -> dict:
    record_path = module.params["record"]
    paths, record_dirs = read_record(record_path)
    remove, left = plan_removal(paths)
    exists = os.path.lexists(record_path)
    removed = remove + ([record_path] if exists else [])
    if removed and not module.check_mode:
        apply(remove)
        unlink_quietly(record_path)
        for directory in reversed(record_dirs):
            rmdir_quietly(directory)  # kept while another role's record is in it
    result = {"changed": bool(removed), "noted": [], "removed": removed, "left": left}
    if module._diff:
        result["diff"] = {"before": {"present": sorted(removed)}, "after": {"present": []}}
    return result


def main():
    module = AnsibleModule(
        argument_spec={
            "record": {"type": "path", "required": True},
            "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
            "dirs": {"type": "list", "elements": "path", "default": []},
            "paths": {"type": "list", "elements": "dict", "default": [], "options": {
                "path": {"type": "path", "required": True},
                "kind": {"type": "str", "required": True, "choices": ["file", "dir", "link"]},
                "sha256": {"type": "str"},
                "target": {"type": "str"},
            }},
        },
        supports_check_mode=True,
    )
    try:
        result = present(module) if module.params["state"] == "present" else absent(module)
    except OSError as exc:
        module.fail_json(msg="%s: %s. Check that the path is writable by the user Ansible runs as (become)"
                             % (getattr(exc, "filename", "") or module.params["record"], exc.strerror or exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
