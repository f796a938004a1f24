#!/usr/bin/python
# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the playbook_vars action plugin (it runs on the controller only)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: playbook_vars
short_description: Refuse unknown or invalid nodeprep_* variables before a playbook of the collection runs
version_added: 0.1.0
description:
  - The first task of every playbook of the collection. Checks the C(nodeprep_*) variables of every host of the play
    (inventory, C(-e), facts) against the playbook's entry in the collection's C(playbooks/vars/argument_specs.yml),
    on the controller, without connecting to any node.
  - A name that no playbook of the collection reads and that none sets for itself (a typo such as
    C(nodeprep_upgrade_batchs)) fails the task, naming where it was set, the closest valid name and every variable
    the playbook reads.
  - A value of the wrong type or outside its choices fails the task, naming the variable, the hosts that have it
    (when not all do) and what it may be. A required variable that is missing fails it too.
  - A variable another playbook of the collection reads is left alone (one inventory, and one AWX workflow's
    variables, serve every playbook); given with C(-e), it is named in a warning.
  - Every host of the play is checked in one run, so use it with C(run_once) - under C(serial) a bad value in
    the last batch's inventory is refused before the first batch starts - and C(tags) C(always).
  - The variables and their docs are listed in the collection's docs, page "Playbook variables".
author:
  - nodeprep.cni contributors (@nodeprep)
extends_documentation_fragment:
  - nodeprep.cni._attributes.info
  - nodeprep.cni._attributes.action
options:
  playbook:
    description:
      - The playbook whose variables are checked - the name of its entry in the spec, its file name without C(.yml)
        (V(site), V(verify), V(upgrade), V(bake), V(mirror), V(render), ...).
    type: str
    required: true
attributes:
  action:
    details: Runs on the controller only; no node is contacted.
notes:
  - Variables the play sets for itself are not inputs and are not checked; a value that cannot be templated yet
    is left to the playbook.
  - The C(nodeprep_) prefix belongs to the collection; a variable of your own with that prefix is refused as unknown.
"""

EXAMPLES = r"""
# The first of a play's pre_tasks, so it runs before the play's roles and tasks.
- name: Refuse unknown or invalid nodeprep_* variables before any host is touched
  nodeprep.cni.playbook_vars:
    playbook: site
  # One run checks every host of the play, under serial too.
  run_once: true
  tags: [always]
"""

RETURN = r"""
playbook:
  description: The playbook whose variables were checked.
  returned: always
  type: str
  sample: upgrade
hosts:
  description: How many hosts' variables were checked.
  returned: always
  type: int
  sample: 3
variables:
  description: Every C(nodeprep_*) name the hosts have (inventory, C(-e), facts).
  returned: always
  type: list
  elements: str
  sample: [nodeprep_hosts, nodeprep_upgrade_batch]
errors:
  description: One line per refused variable, with the fix.
  returned: failed
  type: list
  elements: str
  sample:
    - "unknown variable nodeprep_upgrade_batchs (given with -e): did you mean nodeprep_upgrade_batch? upgrade.yml reads:
       nodeprep_hosts, nodeprep_report_dir, nodeprep_upgrade_batch, nodeprep_upgrade_cni_add,
       nodeprep_upgrade_max_fail_percentage."
"""
