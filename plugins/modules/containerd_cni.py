#!/usr/bin/python
# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the containerd_cni action plugin (the work happens on the controller)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: containerd_cni
short_description: Point containerd's CRI plugin at the CNI plugin and config directories
version_added: 0.1.0
description:
  - Reads the node's containerd config, edits it on the controller with tomlkit (comments, key order, quote style and
    every unrelated key are kept byte-for-byte), parses the result back, has the node's own containerd check it as it
    will load it, and replaces the file atomically with a backup (with M(nodeprep.cni.durable_file) - temp file in the
    same directory, flushed to the disk before the rename and the directory after it, so a power cut leaves the old
    file or the new one, never an empty one). The replaced file and its backup keep their mode, owner, group and SELinux
    label.
  - The file's own C(version) decides the keys. C(version = 2) (containerd 1.6/1.7; 2.x migrates it on load) gets
    C(bin_dir) (the first of O(bin_dirs)) and C(conf_dir) under C([plugins."io.containerd.grpc.v1.cri".cni]).
    C(version = 3) (containerd 2.0 to 2.2) and C(version = 4) (2.3 and later, the same CRI tables) get C(conf_dir)
    and, under C([plugins."io.containerd.cri.v1.runtime".cni]), C(bin_dirs) (a list) where containerd reads it
    (2.1 and later) or C(bin_dir) (2.0). Which of the two a containerd reads is asked of the node's containerd
    itself (the keys its C(containerd config default) lists; 2.4 no longer reads C(bin_dir)), its version only where
    it cannot run. An existing C(bin_dir) is moved into C(bin_dirs), keeping its directory; a file never ends with
    both keys. The file is never converted between versions.
  - containerd's version comes from C(containerd --version) on the node, else from O(containerd_version), else from
    the existing file. A missing file is written as a minimal config of the newest version that containerd reads;
    with nothing to go on the task fails asking for O(containerd_version).
  - On containerd 2.x, when the main file imports C(<dir>/*.toml) (as the file C(containerd config default) writes
    from 2.3 on does), the settings go to a drop-in C(<dir>/90-nodeprep-cni.toml) instead of the main file, unless
    the main file itself still holds C(bin_dir), which is then migrated where it stands. containerd 1.x configs are
    always edited in place (an imported file replaces whole plugin tables there).
  - With O(validate), the node's C(containerd --config <main file> config dump) runs with the candidate in place
    (a private copy of the config's directory, bind-mounted over it in a private mount namespace, so the node's
    files are never touched) and must name exactly the wanted plugin and config directories. When it does not
    (a key this containerd ignores, a later import that overrides ours, an import replacing the whole CRI table on
    1.x, both C(bin_dir) and C(bin_dirs) set across files), the task fails naming the file that wins and the key,
    and nothing is written. This runs in check mode too, so C(--check) predicts the refusal, and also when nothing
    needs to change, so a later import that overrides settings already in place is reported on every run.
  - Every first change of a CNI key is recorded on the node, before the file changes, in C(nodeprep-cni-state.json)
    next to O(path) - the key's value as the file wrote it (or that it was unset), the tables and files that did
    not exist, and the value written - so that O(state=absent) can take it back.
  - O(state=absent) takes back what the record says this module did - keys we changed get their original value
    back (the same bytes), keys and tables we added are removed, drop-ins and files we created are deleted (and a
    directory we created for them, when empty), then the record itself. A key that someone changed since we set it
    is kept and reported in RV(left), as is a file we created that holds someone else's settings now. A drop-in of
    this module's name with no record (written by an earlier release) is removed; a main file with no record is
    kept and reported. A config edited by hand since, but not in our keys, keeps those edits.
  - A malformed file, a table of the wrong type, an unsupported C(version) or a symbolic link (replace it by a copy
    of its target) fails naming the file, key and fix, and nothing changes. A UTF-8 byte order mark is read and kept
    (containerd 1.x reads it; 2.x refuses it, and the validation says so).
author:
  - nodeprep.cni contributors (@nodeprep)
extends_documentation_fragment:
  - nodeprep.cni._attributes
  - nodeprep.cni._attributes.action
options:
  path:
    description:
      - The containerd config file.
      - The alias O(config_path) is M(nodeprep.cni.containerd_info)'s name for it, so C(module_defaults) of the
        C(nodeprep.cni.containerd) group set both.
    type: path
    default: /etc/containerd/config.toml
    aliases: [config_path]
  bin_dirs:
    description:
      - Every directory the CNI plugins are linked into, the main one first.
      - A C(bin_dir) key takes only the first; C(bin_dirs) takes them all, followed by any other directory the file
        already lists.
      - Required with O(state=present); with O(state=absent), a main file without a record that names one of them is
        reported in RV(left).
    type: list
    elements: path
  conf_dir:
    description: Directory of CNI network configs containerd loads.
    type: path
    default: /etc/cni/net.d
  containerd_version:
    description:
      - containerd's version (C(1.7), C(2.3.4)), used when C(containerd --version) cannot run on the node, e.g. while
        baking an image or for an embedded containerd.
    type: str
  containerd_binary:
    description:
      - The node's containerd binary, for C(--version) and the validation.
      - The alias O(binary) is M(nodeprep.cni.containerd_info)'s name for it.
    type: str
    default: containerd
    aliases: [binary]
  drop_in:
    description:
      - Write the settings to this drop-in file instead of O(path) (e.g. k3s's C(config-v3.toml.d/) directory). The
        drop-in speaks O(path)'s dialect.
    type: path
  drop_in_by_dialect:
    description:
      - Like O(drop_in), chosen by O(path)'s config version - a mapping of C(2), C(3) (and C(4)) to drop-in files, for k3s,
        whose drop-in directory (C(config.toml.d/) or C(config-v3.toml.d/)) depends on its containerd.
      - A new drop-in starts as a copy of O(path)'s CNI table.
    type: dict
  validate:
    description:
      - Check the candidate with the node's C(containerd config dump) of the main file plus its imports, with the
        candidate in place, before writing; needs root and util-linux's C(unshare) on the node when the config
        imports other files or the settings go to a drop-in.
      - Skipped when the node's containerd cannot run (an image bake); the edit is still parsed back before writing.
    type: bool
    default: true
  backup:
    description:
      - Keep a timestamped copy of the replaced file next to it (same mode, owner, group and label).
      - Not for a file this module created (a drop-in), which the record takes back whole.
    type: bool
    default: true
  state:
    description:
      - V(present) - point containerd at O(bin_dirs) and O(conf_dir).
      - V(absent) - take back what this module changed (see the description); O(bin_dirs) is optional then.
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    details: Reads the file and reports the change and its diff, writes nothing.
  diff_mode:
    details:
      - A diff of the file's CNI settings before and after (its version and CNI table), never of the rest of the
        file, which can hold registry credentials; with O(state=absent), one per file that changes.
  action:
    details: Runs on the controller; needs the C(tomlkit) Python library there.
requirements:
  - tomlkit (on the controller)
notes:
  - containerd reads its config at start; restart it for a change to take effect (the C(nodeprep.cni.containerd) role's
    handler does, only when the file changed and containerd is running).
  - containerd watches O(conf_dir) for writes, renames and removals, not for creations; a conflist that appears by
    rename alone may go unnoticed until a restart.
seealso:
  - module: nodeprep.cni.cni_install
"""

EXAMPLES = r"""
- name: Point containerd at the installed plugins
  nodeprep.cni.containerd_cni:
    bin_dirs:
      - /opt/cni/bin
    conf_dir: /etc/cni/net.d

- name: Take back what the collection changed in containerd's config
  nodeprep.cni.containerd_cni:
    state: absent
  register: containerd_undo

- name: Configure a containerd that is not installed yet (image bake)
  nodeprep.cni.containerd_cni:
    bin_dirs: [/opt/cni/bin]
    containerd_version: "2.3"
"""

RETURN = r"""
path:
  description: The file that holds the settings (O(path), or a drop-in); with O(state=absent), O(path).
  returned: always
  type: str
  sample: /etc/containerd/config.toml
main_config:
  description: O(path).
  returned: always
  type: str
dialect:
  description: The config C(version) of the file (2, 3 or 4).
  returned: with O(state=present)
  type: int
  sample: 2
table:
  description: The TOML table that holds the CNI settings.
  returned: with O(state=present)
  type: str
  sample: plugins."io.containerd.grpc.v1.cri".cni
bin_dir_key:
  description: C(bin_dir) or C(bin_dirs).
  returned: with O(state=present)
  type: str
bin_dirs:
  description: The plugin directories containerd searches after the change.
  returned: with O(state=present)
  type: list
  elements: str
conf_dir:
  description: The CNI config directory set.
  returned: with O(state=present)
  type: str
created:
  description: Whether the file did not exist before.
  returned: with O(state=present)
  type: bool
containerd_version:
  description: The containerd version used for the decision, if known.
  returned: with O(state=present)
  type: str
  sample: 1.7.24
version_source:
  description: Where that version came from (C(node), C(containerd_version), C(file)).
  returned: with O(state=present)
  type: str
validated:
  description:
    - Whether the node's containerd checked the result - its config dump of the main file plus imports (with the
      change in place, or as they are when nothing changes) named exactly the wanted dirs.
  returned: with O(state=present)
  type: bool
validation_skipped:
  description: Why the candidate was not validated.
  returned: when not validated by design
  type: str
backup_file:
  description: The backup of the replaced file.
  returned: when a file was replaced and O(backup) is true
  type: str
state_file:
  description: The record of what this module changed, next to O(path).
  returned: with O(state=absent)
  type: str
  sample: /etc/containerd/nodeprep-cni-state.json
files:
  description: The files the record (or, for an earlier release's drop-in, our file name) names.
  returned: with O(state=absent)
  type: list
  elements: str
restored:
  description: Keys given back their value before this collection (C(file), C(key), C(value)).
  returned: with O(state=absent)
  type: list
  elements: dict
  sample: [{file: /etc/containerd/config.toml, key: bin_dir, value: /usr/lib/cni}]
removed:
  description: What was ours and is removed - keys and tables (C(file) with C(key) or C(table)), whole files (C(file)), directories (C(dir)).
  returned: with O(state=absent)
  type: list
  elements: dict
  sample: [{file: /etc/containerd/conf.d/90-nodeprep-cni.toml}]
left:
  description: What is kept, and why (C(file), C(key), C(value), C(reason)) - e.g. a key someone changed since.
  returned: with O(state=absent)
  type: list
  elements: dict
backup_files:
  description: Backups of the files given back their values.
  returned: with O(state=absent), when a file was replaced and O(backup) is true
  type: list
  elements: str
"""
