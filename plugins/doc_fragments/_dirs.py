# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options naming the directories of the install tree (module_utils._options.DIRS)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  versions_dir:
    description: Directory holding one subdirectory per installed version and the C(current)/C(previous) links.
    type: path
    default: /opt/cni/versions
  bin_dir:
    description: The main plugin directory runtimes search.
    type: path
    default: /opt/cni/bin
  link_dirs:
    description:
      - Further directories that must resolve to the same plugins (for example C(/var/lib/rancher/k3s/data/cni)).
    type: list
    elements: path
    default: []
"""
