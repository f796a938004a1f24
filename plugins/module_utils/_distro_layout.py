# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A distribution's own plugin dir (k3s's static dir, an image's /bin): which one the node has.

k3s re-creates its own links in its static dir at every start, and an image's /bin holds the
image's own binaries, so such a dir only gets the current version's plugins whose names are free
there; whatever already carries a name stays as it is (never adopted, never replaced). An
uninstall takes back exactly the links made here (those to ``<versions_dir>/current/<name>``).
The install plan (``_install_plan``) plans and journals those links like every other.
"""

from __future__ import annotations

import os

LAYOUTS = ("auto", "standard", "k3s", "rke2", "image")
K3S_AGENT = "/var/lib/rancher/k3s/agent"
# The static dir of k3s releases from October 2024 on; older ones use data/current/bin.
K3S_STATIC = "/var/lib/rancher/k3s/data/cni"
K3S_LEGACY = "/var/lib/rancher/k3s/data/current/bin"
RKE2_DIR = "/var/lib/rancher/rke2"


MARKERS = (K3S_AGENT, K3S_STATIC, K3S_LEGACY, RKE2_DIR)


def _isdir_under(root: str):
    return lambda path: os.path.isdir(os.path.join(root, path.lstrip("/")))


def effective_layout(layout: str, root: str = "/", isdir=None) -> str:
    """``auto`` resolved from what the node holds: k3s needs its agent dir (a link dir of ours
    alone is not k3s) and one of its plugin dirs; RKE2 uses the standard dirs. ``isdir`` answers
    for a node read elsewhere (the controller's view of a node's MARKERS)."""
    if layout != "auto":
        return layout
    isdir = isdir or _isdir_under(root)

    if isdir(K3S_AGENT) and (isdir(K3S_STATIC) or isdir(K3S_LEGACY)):
        return "k3s"
    if isdir(RKE2_DIR):
        return "rke2"
    return "standard"


def layout_dir(effective: str, image_dir: str, root: str = "/", isdir=None) -> str:
    """The layout's own plugin dir, or "" for the layouts that have none."""
    isdir = isdir or _isdir_under(root)
    if effective == "k3s":
        legacy_only = isdir(K3S_LEGACY) and not isdir(K3S_STATIC)
        return K3S_LEGACY if legacy_only else K3S_STATIC
    if effective == "image":
        return image_dir
    return ""
