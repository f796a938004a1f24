"""Which distribution layout a node has, and where its plugin dir is."""
from __future__ import annotations

import os

import pytest

from ansible_collections.nodeprep.cni.plugins.module_utils._distro_layout import effective_layout, layout_dir


def make(root, *paths):
    for path in paths:
        os.makedirs(os.path.join(str(root), path.lstrip("/")))


@pytest.mark.parametrize("present, expected, directory", [
    ([], "standard", ""),
    (["/var/lib/rancher/k3s/data/cni"], "standard", ""),  # a link dir of ours alone is not k3s
    (["/var/lib/rancher/k3s/agent", "/var/lib/rancher/k3s/data/cni"], "k3s", "/var/lib/rancher/k3s/data/cni"),
    (["/var/lib/rancher/k3s/agent", "/var/lib/rancher/k3s/data/current/bin"], "k3s", "/var/lib/rancher/k3s/data/current/bin"),
    (["/var/lib/rancher/k3s/agent", "/var/lib/rancher/k3s/data/cni", "/var/lib/rancher/k3s/data/current/bin"],
     "k3s", "/var/lib/rancher/k3s/data/cni"),
    (["/var/lib/rancher/rke2"], "rke2", ""),
])
def test_auto_detects_the_layout_from_the_nodes_dirs(tmp_path, present, expected, directory):
    make(tmp_path, *present)
    found = effective_layout("auto", root=str(tmp_path))
    assert found == expected
    assert layout_dir(found, "/bin", root=str(tmp_path)) == directory


def test_a_given_layout_is_taken_as_it_is(tmp_path):
    make(tmp_path, "/var/lib/rancher/rke2")
    assert effective_layout("image", root=str(tmp_path)) == "image"
    assert layout_dir("image", "/srv/image-bin", root=str(tmp_path)) == "/srv/image-bin"
