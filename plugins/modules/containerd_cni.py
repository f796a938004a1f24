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
  - Reads the node's containerd config, edits it on the controller with tomlkit (comments, key order and every
    unrelated key are kept byte-for-byte), has the node's own C(containerd --config <candidate> config dump) validate
    the result, and replaces the file atomically (temp file in the same directory, then rename) with a backup.
  - The file's own C(version) decides the keys. C(version = 2) (containerd 1.6/1.7; 2.x migrates it on load) gets
    C(bin_dir) (the first of O(bin_dirs)) and C(conf_dir) under C([plugins."io.containerd.grpc.v1.cri".cni]).
    C(version = 3) gets C(conf_dir) and, under C([plugins."io.containerd.cri.v1.runtime".cni]), C(bin_dirs) (a list)
    on containerd 2.1 and later or C(bin_dir) on 2.0. An existing C(bin_dir) is moved into C(bin_dirs), never both.
    The file is never converted between versions.
  - containerd's version comes from C(containerd --version) on the node, else from O(containerd_version), else from
    the existing file. A missing file is written as a minimal config for the detected version; with nothing to go
    on the task fails asking for O(containerd_version).
  - On containerd 2.x, when the main file imports C(<dir>/*.toml), the settings go to a drop-in
    C(<dir>/90-nodeprep-cni.toml) instead of the main file.
  - A malformed file or an unsupported C(version) fails with the file, line and fix, and nothing changes.
author:
  - nodeprep.cni contributors (@nodeprep)
options:
  path:
    description: The containerd config file.
    type: path
    default: /etc/containerd/config.toml
  bin_dirs:
    description:
      - Every directory the CNI plugins are linked into, the main one first.
      - A C(bin_dir) key takes only the first; C(bin_dirs) takes them all, followed by any other directory the file
        already lists.
    type: list
    elements: path
    required: true
  conf_dir:
    description: Directory of CNI network configs containerd loads.
    type: path
    default: /etc/cni/net.d
  containerd_version:
    description:
      - containerd's version (C(1.7), C(2.1.4)), used when C(containerd --version) cannot run on the node, e.g. while
        baking an image or for an embedded containerd.
    type: str
  containerd_binary:
    description: The node's containerd binary, for C(--version) and the validation.
    type: str
    default: containerd
  drop_in:
    description:
      - Write the settings to this drop-in file instead of O(path) (e.g. k3s's C(config-v3.toml.d/) directory). The
        drop-in speaks O(path)'s dialect.
    type: path
  drop_in_by_dialect:
    description:
      - Like O(drop_in), chosen by O(path)'s config version - a mapping of C(2) and C(3) to drop-in files, for k3s,
        whose drop-in directory (C(config.toml.d/) or C(config-v3.toml.d/)) depends on its containerd.
      - A new drop-in starts as a copy of O(path)'s CNI table.
    type: dict
  validate:
    description: Validate the candidate with the node's C(containerd --config <candidate> config dump) before writing.
    type: bool
    default: true
  backup:
    description: Keep a timestamped copy of the replaced file next to it.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Reads the file and reports the change and its diff, writes nothing.
  diff_mode:
    support: full
    description: A unified diff of the file before and after.
  action:
    support: full
    description: Runs on the controller; needs the C(tomlkit) Python library there.
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

- name: Configure a containerd that is not installed yet (image bake)
  nodeprep.cni.containerd_cni:
    bin_dirs: [/opt/cni/bin]
    containerd_version: "2.1"
"""

RETURN = r"""
path:
  description: The file that holds the settings (O(path), or a drop-in).
  returned: always
  type: str
  sample: /etc/containerd/config.toml
main_config:
  description: O(path).
  returned: always
  type: str
dialect:
  description: The config C(version) of the file (2 or 3).
  returned: always
  type: int
  sample: 2
table:
  description: The TOML table that holds the CNI settings.
  returned: always
  type: str
  sample: plugins."io.containerd.grpc.v1.cri".cni
bin_dir_key:
  description: C(bin_dir) or C(bin_dirs).
  returned: always
  type: str
bin_dirs:
  description: The plugin directories containerd searches after the change.
  returned: always
  type: list
  elements: str
conf_dir:
  description: The CNI config directory set.
  returned: always
  type: str
created:
  description: Whether the file did not exist before.
  returned: always
  type: bool
containerd_version:
  description: The containerd version used for the decision, if known.
  returned: always
  type: str
  sample: 1.7.24
version_source:
  description: Where that version came from (C(node), C(containerd_version), C(file)).
  returned: always
  type: str
validated:
  description: Whether the node's containerd validated the written file.
  returned: always
  type: bool
validation_skipped:
  description: Why the candidate was not validated.
  returned: when not validated by design
  type: str
backup_file:
  description: The backup of the replaced file.
  returned: when a file was replaced and O(backup) is true
  type: str
"""
