"""cni_plugin_dirs: the dirs the cni_plugins role hands on, from the install's result or the node's markers.

Both paths must agree: the markers are read where the install did not run (--tags containerd), and the
runtime then gets the same dirs as after a full play.
"""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.nodeprep.cni.plugins.filter.cni_plugin_dirs import cni_plugin_dirs
from ansible_collections.nodeprep.cni.plugins.module_utils import _distro_layout

K3S_AGENT = _distro_layout.K3S_AGENT
K3S_STATIC = _distro_layout.K3S_STATIC
K3S_LEGACY = _distro_layout.K3S_LEGACY
RKE2 = _distro_layout.RKE2_DIR


def markers(*present):
    """As an ansible.builtin.stat loop over the marker dirs registers them."""
    return {"results": [{"item": path, "stat": {"exists": path in present, "isdir": path in present}}
                        for path in _distro_layout.MARKERS]}


def on_disk(tmp_path, *present):
    for path in present:
        (tmp_path / path.lstrip("/")).mkdir(parents=True)
    return str(tmp_path)


@pytest.mark.parametrize("present, layout, own_dir", [
    ((), "standard", ""),
    ((K3S_AGENT, K3S_STATIC), "k3s", K3S_STATIC),
    ((K3S_AGENT, K3S_LEGACY), "k3s", K3S_LEGACY),
    ((K3S_STATIC,), "standard", ""),  # a link dir of ours alone is not k3s
    ((RKE2,), "rke2", ""),
])
def test_markers_give_what_the_install_decides_on_the_same_tree(tmp_path, present, layout, own_dir):
    root = on_disk(tmp_path, *present)
    # The install's own rule on a real tree, as cni_install applies it on the node.
    assert _distro_layout.effective_layout("auto", root=root) == layout
    assert _distro_layout.layout_dir(layout, "/bin", root=root) == own_dir
    dirs = cni_plugin_dirs(None, markers=markers(*present), link_dirs=["/usr/libexec/cni"])
    assert (dirs["layout"], dirs["layout_dir"]) == (layout, own_dir)
    expected = [own_dir] if layout == "k3s" else ["/opt/cni/bin", "/usr/libexec/cni"]
    assert dirs["runtime_dirs"] == expected


def test_the_installs_result_wins_over_markers():
    install = {"changed": False, "layout": {"name": "k3s", "dir": K3S_LEGACY, "linked": ["macvlan"]}}
    dirs = cni_plugin_dirs(install, markers=markers(), layout="auto")
    assert dirs["layout"] == "k3s" and dirs["runtime_dirs"] == [K3S_LEGACY]


def test_a_skipped_install_falls_back_to_the_markers():
    dirs = cni_plugin_dirs({"skipped": True, "changed": False}, markers=markers(K3S_AGENT, K3S_STATIC))
    assert dirs["runtime_dirs"] == [K3S_STATIC]


def test_the_image_layout_adds_its_dir_last_and_needs_no_markers():
    dirs = cni_plugin_dirs(None, layout="image", image_dir="/bin", bin_dir="/opt/cni/bin", link_dirs=["/x"])
    assert dirs["runtime_dirs"] == ["/opt/cni/bin", "/x", "/bin"] and dirs["layout_dir"] == "/bin"


def test_an_unknown_layout_names_the_variable():
    with pytest.raises(AnsibleFilterError, match="cni_plugins_layout"):
        cni_plugin_dirs(None, layout="k8s")
