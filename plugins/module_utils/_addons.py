# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who a plugin file belongs to: our links, files we adopted, files an add-on dropped in, drift.

Network add-ons put plugins into the runtime's plugin dirs themselves: kube-router's init container
copies bridge, host-local, portmap and loopback into /opt/cni/bin when they are absent; calico's
install-cni copies its bundled plugins over whatever is there, which through our links overwrites
the files of the version dir. Each add-on leaves its mark (its own binary next to the plugins, or
its CNI config), which is how a finding is put to a name.
"""

from __future__ import annotations

import fnmatch
import os

OURS = "ours"
ADOPTED = "adopted"
DROPPED = "dropped"
DRIFTED = "drifted"

# Where add-ons write their CNI configs (what the kubelet and the runtimes read).
ADDON_CONF_DIRS = ("/etc/cni/net.d",)

# name: (binaries it installs under its own names, CNI config file patterns, upstream plugins it copies)
ADDONS = {
    "kube-router": ((), ("*kuberouter*", "*kube-router*"), ("bridge", "host-local", "loopback", "portmap")),
    "calico": (("calico", "calico-ipam"), ("*calico*",),
               ("bandwidth", "bridge", "dhcp", "flannel", "host-local", "ipvlan", "loopback", "macvlan", "portmap", "ptp",
                "tuning")),
    "flannel": (("flannel",), ("*flannel*",), ()),
    "cilium": (("cilium-cni",), ("*cilium*",), ()),
    "multus": (("multus", "multus-shim"), ("*multus*",), ()),
}


def _listing(directories) -> list:
    names = []
    for directory in directories:
        try:
            names.extend(os.listdir(directory))
        except OSError:
            continue
    return names


def addons_present(link_dirs, conf_dirs) -> list:
    """Add-ons whose own binary sits in a link dir or whose CNI config sits in a config dir."""
    binaries = set(_listing(link_dirs))
    configs = _listing(conf_dirs)
    present = []
    for name, (markers, patterns, dummy) in sorted(ADDONS.items()):
        if binaries.intersection(markers) or any(fnmatch.fnmatch(conf, pattern) for conf in configs for pattern in patterns):
            present.append(name)
    return present


def guess_addon(plugin: str, present, dropped_names=()) -> str:
    """The add-on that put *plugin* there: the one present that copies it, or kube-router when the
    files found together are two or more of the four its init container copies and nothing else;
    None when nothing points at one (one stray bridge alone says nothing)."""
    candidates = [name for name in present if plugin in ADDONS[name][2]]
    if len(candidates) == 1:
        return candidates[0]
    together = set(dropped_names)
    if not candidates and len(together) >= 2 and together <= set(ADDONS["kube-router"][2]) \
            and plugin in ADDONS["kube-router"][2]:
        return "kube-router"
    return None


def classify(links, adopted, link_dirs, conf_dirs) -> list:
    """One entry per plugin name in a link dir that is ours, adopted, dropped in or drifted.

    *links* are cni_info's link entries (status ok/missing/foreign/dangling/drifted/stale); a
    foreign entry is a file we did not make at a plugin's name: dropped in since the install.
    """
    present = addons_present(link_dirs, conf_dirs)
    dropped_names = sorted(set(link["name"] for link in links if link["status"] == "foreign"))
    adopted_names = sorted(set(os.path.basename(record.get("original") or "") for record in adopted))
    adopted_paths = {}
    for record in adopted:
        adopted_paths.setdefault(record.get("original"), record)
    found = []
    for link in links:
        entry = {"path": link["path"], "dir": link["dir"], "name": link["name"], "addon": None, "kept_at": None}
        if link["status"] == "foreign":
            entry.update(kind=DROPPED, addon=guess_addon(link["name"], present, dropped_names))
        elif link["status"] == "drifted":
            entry.update(kind=DRIFTED, addon=guess_addon(link["name"], present))
        elif link["status"] == "ok" and link["path"] in adopted_paths:
            record = adopted_paths[link["path"]]
            entry.update(kind=ADOPTED, addon=record.get("addon") or guess_addon(link["name"], present, adopted_names),
                         kept_at=record.get("stored"))
        elif link["status"] == "ok":
            entry.update(kind=OURS)
        else:
            continue
        found.append(entry)
    return found


def takeover_summary(adopted_ops, link_dirs, conf_dirs) -> str:
    """What an install took over, naming the add-on where it is recognisable; empty when nothing."""
    if not adopted_ops:
        return ""
    present = addons_present(link_dirs, conf_dirs)
    names = [os.path.basename(op["original"]) for op in adopted_ops]
    parts = []
    for op in adopted_ops:
        addon = guess_addon(os.path.basename(op["original"]), present, names)
        parts.append("%s%s" % (op["original"], " (from %s)" % addon if addon else ""))
    return ("took over %d plugin file(s) that something else had put in place, now linked to our verified "
            "release; the originals are kept under .adopted/ and come back with state=absent: %s"
            % (len(parts), ", ".join(parts)))
