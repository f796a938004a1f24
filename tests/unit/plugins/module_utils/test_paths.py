"""One canonical spelling and one "inside a directory" test: symlinks, .., trailing slashes."""

from __future__ import annotations

import os

import pytest

from ansible_collections.nodeprep.cni.plugins.module_utils._paths import canonical, is_inside


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "versions" / "v1.9.1").mkdir(parents=True)
    (tmp_path / "versions-old").mkdir()
    (tmp_path / "bin").mkdir()
    os.symlink(str(tmp_path / "versions"), str(tmp_path / "alias"))
    os.symlink("v1.9.1", str(tmp_path / "versions" / "current"))
    os.symlink(str(tmp_path / "bin"), str(tmp_path / "versions" / "escape"))
    return tmp_path


def test_canonical_resolves_symlinks_dots_and_trailing_slashes(tree):
    real = str(tree / "versions")
    assert canonical(str(tree / "alias")) == real
    assert canonical(str(tree / "alias") + "/") == real
    assert canonical(str(tree / "bin" / ".." / "versions" / ".")) == real
    assert canonical(str(tree / "versions" / "current")) == str(tree / "versions" / "v1.9.1")
    # A missing tail keeps its names below its resolved parents.
    assert canonical(str(tree / "alias" / "v2.0.0" / "bridge")) == os.path.join(real, "v2.0.0", "bridge")


@pytest.mark.parametrize("path, inside", [
    ("versions", True),                      # the directory itself
    ("versions/", True),
    ("versions/v1.9.1", True),
    ("versions/current/bridge", True),        # through a symlink that stays inside
    ("alias/v1.9.1", True),                   # through a symlink to the directory
    ("versions/missing/deeper", True),        # not there yet
    ("versions-old", False),                  # a shared prefix is not inside
    ("versions/../bin", False),
    ("versions/v1.9.1/../../bin", False),
    ("versions/escape", False),               # a symlink out of the directory
    ("versions/escape/bridge", False),
    ("bin", False),
])
def test_is_inside(tree, path, inside):
    assert is_inside(str(tree / path), str(tree / "versions")) is inside
    assert is_inside(str(tree / path), str(tree / "alias") + "/") is inside


def test_every_path_is_inside_the_root(tree):
    assert is_inside(str(tree / "bin"), "/") and is_inside("/", "/")
    assert not is_inside("/", str(tree))


@pytest.mark.parametrize("path, directory, inside", [
    ("/etc/containerd/conf.d", "/etc/containerd", True),
    ("/etc/containerd", "/etc/containerd/", True),
    ("/etc/containerd-old", "/etc/containerd", False),
    ("/etc/containerd/../x", "/etc/containerd", False),
    ("/etc/k3s", "/", True),
])
def test_lexical_comparison_for_another_machines_paths(path, directory, inside):
    assert is_inside(path, directory, resolve=False) is inside
