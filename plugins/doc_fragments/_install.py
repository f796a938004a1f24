# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options of what an install links, keeps and takes over (module_utils._options.INSTALL)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  plugins:
    description:
      - Plugins to link. Empty (the default) links every plugin of the release.
      - The version directory always holds the whole release; only links are limited.
    type: list
    elements: str
    default: []
  keep:
    description: Versions kept on the node, counting C(current) and C(previous), which are never pruned. At least 2.
    type: int
    default: 3
  adopt:
    description:
      - Whether a file that has a plugin's name but was not created by nodeprep is moved aside (kept under
        C(<versions_dir>/.adopted/) and restored by C(state=absent)). When V(false), such files fail the run, naming them.
    type: bool
    default: true
  adopt_package_files:
    description:
      - Whether such a file may be adopted when an OS package owns it (kubelet's C(kubernetes-cni) owns the
        names in C(/opt/cni/bin)). The node's package manager is asked once for all candidates
        (C(dpkg-query -S), else C(rpm -qf)).
      - When V(false), a package-owned file at a name to link fails the run before any change, naming the
        package and the fixes - a O(bin_dir) of nodeprep's own that the runtime is pointed at, or the package's
        plugins as the source - because the package's next upgrade would overwrite the link.
      - When V(true), the names are taken over like any other file, the adoption records the package, the run
        warns, and M(nodeprep.cni.cni_info) keeps reporting the names as package-owned.
    type: bool
    default: false
  layout:
    description:
      - The distribution's own plugin directory, filled with the installed version's plugins whose names are free
        there; whatever already carries a name there is left alone. The install records the directory, so
        C(state=absent) removes the links made there (those to C(<versions_dir>/current/<name>)) and nothing else,
        whatever layout it is given.
      - These links are part of the plan and the journal like every other link, so a failed or killed run takes them
        back. A directory there that does not exist, or is read-only while links must be made or removed, is refused
        before any change (and by check mode); V(standard) links nothing there.
      - V(standard) and V(rke2) - none (RKE2 uses O(bin_dir)).
      - V(k3s) - C(/var/lib/rancher/k3s/data/cni), or C(data/current/bin) of k3s releases before October 2024.
        k3s re-creates its own links there at every start, so those stay k3s's.
      - V(image) - O(image_dir), the plugin dir of a container image.
      - V(auto) - V(k3s) when C(/var/lib/rancher/k3s/agent) and one of k3s's plugin dirs exist, V(rke2) when
        C(/var/lib/rancher/rke2) does, else V(standard).
    type: str
    choices: [auto, standard, k3s, rke2, image]
    default: auto
  image_dir:
    description: The V(image) layout's plugin directory.
    type: path
    default: /bin
"""
