# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The attributes every module declares; a module adds its own details where it has any."""

from __future__ import annotations


class ModuleDocFragment:
    # A module that changes the node: check mode plans without writing, diff shows before and after.
    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Whether a run with C(--check) reports what a real run would change, without changing it.
    support: full
  diff_mode:
    description: Whether C(--diff) shows the state before and after the run.
    support: full
  platform:
    description: The systems the module runs on.
    support: full
    platforms: posix
"""

    # A module that only reads: check mode is a normal run, and there is never a diff.
    INFO = r"""
attributes:
  check_mode:
    description: Whether a run with C(--check) reports what a real run would change, without changing it.
    support: full
    details: It never changes anything, so a check-mode run reads and reports exactly as a normal one.
  diff_mode:
    description: Whether C(--diff) shows the state before and after the run.
    support: N/A
    details: It never changes anything, so there is never a diff.
  platform:
    description: The systems the module runs on.
    support: full
    platforms: posix
"""

    # An action plugin: the work is orchestrated from the controller.
    ACTION = r"""
attributes:
  action:
    description: Whether the task runs as an action plugin on the controller, which runs modules on the node.
    support: full
"""
