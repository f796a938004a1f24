# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plugin dirs the cni_plugins role hands to the runtime roles (the cni_plugins_provided fact)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.nodeprep.cni.plugins.module_utils import _distro_layout


def _existing_dirs(markers) -> set:
    """The marker dirs an ansible.builtin.stat loop found, from its registered result."""
    results = (markers or {}).get("results") or [] if isinstance(markers, dict) else []
    return {str(entry.get("item")) for entry in results
            if isinstance(entry, dict) and (entry.get("stat") or {}).get("isdir")}


def cni_plugin_dirs(install, markers=None, layout="auto", image_dir="/bin", bin_dir="/opt/cni/bin", link_dirs=None):
    """The layout in effect and every dir a runtime must search, the main one first.

    From the install's own result where the install ran; otherwise from the distribution's marker
    dirs as the node has them, by the same rule the install applies."""
    if layout not in _distro_layout.LAYOUTS:
        raise AnsibleFilterError("cni_plugins_layout must be one of %s; got %r" % (", ".join(_distro_layout.LAYOUTS), layout))
    link_dirs = list(link_dirs or [])
    done = (install or {}).get("layout") if isinstance(install, dict) else None
    if isinstance(done, dict) and done.get("name"):
        name, own_dir = done["name"], done.get("dir") or ""
    else:
        found = _existing_dirs(markers)
        name = _distro_layout.effective_layout(layout, isdir=found.__contains__)
        own_dir = _distro_layout.layout_dir(name, image_dir, isdir=found.__contains__)
    if name == "k3s":
        # k3s's containerd searches its own dir only; the plugins k3s lacks are linked there.
        runtime_dirs = [own_dir]
    else:
        runtime_dirs = [bin_dir] + [d for d in link_dirs if d != bin_dir] + ([own_dir] if own_dir else [])
    return {"layout": name, "layout_dir": own_dir, "bin_dir": bin_dir, "link_dirs": link_dirs,
            "runtime_dirs": list(dict.fromkeys(runtime_dirs))}


class FilterModule:
    """nodeprep.cni's role contract filter."""

    def filters(self):
        return {"cni_plugin_dirs": cni_plugin_dirs}
