"""Reading the versioned tree: pointers, version order and how each plugin link is classified."""

from __future__ import annotations

import os

import pytest

from ansible_collections.nodeprep.cni.plugins.module_utils._install_tree import (
    LINK_DANGLING,
    LINK_DRIFTED,
    LINK_FOREIGN,
    LINK_MISSING,
    LINK_OK,
    LINK_STALE,
    InstallTree,
)
from ansible_collections.nodeprep.cni.plugins.module_utils._manifest import build_manifest, read_manifest, write_manifest
from testbed_lib.in_process import script_plugin


@pytest.fixture
def tree(tmp_path):
    versions = tmp_path / "versions"
    versions.mkdir()
    (tmp_path / "bin").mkdir()
    return InstallTree(str(versions), str(tmp_path / "bin"), [str(tmp_path / "k3s"), str(tmp_path / "bin")])


def _install(tree, version, plugins=("bridge", "loopback")):
    version_dir = tree.version_dir(version)
    os.mkdir(version_dir)
    for name in plugins:
        with open(os.path.join(version_dir, name), "wb") as handle:
            handle.write(script_plugin("%s %s" % (name, version)))
        os.chmod(os.path.join(version_dir, name), 0o755)
    write_manifest(version_dir, build_manifest(version_dir, version, plugins, "file:///r.tgz", "00" * 32))
    return version_dir


def _point(tree, name, version):
    os.symlink("v" + version, tree.pointer_path(name))


def test_link_dirs_start_with_bin_dir_and_have_no_duplicates(tree, tmp_path):
    assert tree.link_dirs == [str(tmp_path / "bin"), str(tmp_path / "k3s")]
    assert tree.link_target("bridge") == os.path.join(str(tmp_path / "versions"), "current", "bridge")


def test_pointer_reads_current_and_previous(tree):
    _install(tree, "1.9.1")
    _install(tree, "1.10.0")
    assert tree.pointer("current") is None
    _point(tree, "current", "1.10.0")
    _point(tree, "previous", "1.9.1")
    assert tree.pointer("current") == "1.10.0"
    assert tree.pointer("previous") == "1.9.1"


def test_pointer_ignores_a_target_that_is_not_a_version(tree):
    os.symlink("somewhere-else", tree.pointer_path("current"))
    assert tree.pointer("current") is None


def test_installed_versions_in_version_order_not_text_order(tree):
    for version in ("1.9.1", "1.10.0", "0.9.1", "1.4.1"):
        _install(tree, version)
    os.mkdir(os.path.join(tree.versions_dir, ".stage-v2.0.0-abc"))  # leftovers and pointers are no versions
    os.mkdir(os.path.join(tree.versions_dir, ".adopted"))
    _point(tree, "current", "1.10.0")
    os.symlink("v1.9.1", os.path.join(tree.versions_dir, "v9.9.9"))  # a symlink is not a version dir
    assert tree.installed_versions() == ["0.9.1", "1.4.1", "1.9.1", "1.10.0"]


def test_installed_versions_of_missing_dir_is_empty(tmp_path):
    assert InstallTree(str(tmp_path / "nope"), str(tmp_path / "bin")).installed_versions() == []


def _classify(tree, plugin, directory=None):
    manifest = read_manifest(tree.version_dir(tree.pointer("current"))) if tree.pointer("current") else None
    return tree.classify_link(directory or tree.bin_dir, plugin, manifest)


def test_classify_ok(tree):
    _install(tree, "1.0.0")
    _point(tree, "current", "1.0.0")
    os.symlink(tree.link_target("bridge"), os.path.join(tree.bin_dir, "bridge"))
    entry = _classify(tree, "bridge")
    assert entry["status"] == LINK_OK
    assert entry["target"] == tree.link_target("bridge")
    assert entry["path"] == os.path.join(tree.bin_dir, "bridge")


def test_classify_missing(tree):
    _install(tree, "1.0.0")
    _point(tree, "current", "1.0.0")
    assert _classify(tree, "bridge")["status"] == LINK_MISSING
    # A link dir that does not exist yet: its links are missing too.
    assert _classify(tree, "bridge", tree.link_dirs[1])["status"] == LINK_MISSING


@pytest.mark.parametrize("kind", ["file", "symlink-elsewhere"])
def test_classify_foreign(tree, kind):
    _install(tree, "1.0.0")
    _point(tree, "current", "1.0.0")
    path = os.path.join(tree.bin_dir, "bridge")
    if kind == "file":
        with open(path, "wb") as handle:
            handle.write(b"kube-router's copy")
        expected_target = None
    else:
        os.symlink("/usr/lib/cni/bridge", path)
        expected_target = "/usr/lib/cni/bridge"
    entry = _classify(tree, "bridge")
    assert entry["status"] == LINK_FOREIGN
    assert entry["target"] == expected_target


def test_classify_dangling_when_current_lacks_the_plugin(tree):
    _install(tree, "1.0.0", plugins=("loopback",))
    _point(tree, "current", "1.0.0")
    os.symlink(tree.link_target("bridge"), os.path.join(tree.bin_dir, "bridge"))
    assert _classify(tree, "bridge")["status"] == LINK_DANGLING


def test_classify_dangling_when_current_is_missing(tree):
    _install(tree, "1.0.0")
    os.symlink(tree.link_target("bridge"), os.path.join(tree.bin_dir, "bridge"))
    assert _classify(tree, "bridge")["status"] == LINK_DANGLING


def test_classify_drifted_after_write_through_the_link(tree):
    version_dir = _install(tree, "1.0.0")
    _point(tree, "current", "1.0.0")
    link = os.path.join(tree.bin_dir, "bridge")
    os.symlink(tree.link_target("bridge"), link)
    with open(link, "wb") as handle:
        handle.write(b"overwritten by an add-on")
    with open(os.path.join(version_dir, "bridge"), "rb") as handle:
        assert handle.read() == b"overwritten by an add-on"  # the write went through both links
    entry = _classify(tree, "bridge")
    assert entry["status"] == LINK_DRIFTED


def test_classify_stale_when_link_points_into_a_version_dir_directly(tree):
    version_dir = _install(tree, "1.0.0")
    _point(tree, "current", "1.0.0")
    os.symlink(os.path.join(version_dir, "bridge"), os.path.join(tree.bin_dir, "bridge"))
    entry = _classify(tree, "bridge")
    assert entry["status"] == LINK_STALE
    assert entry["target"] == os.path.join(version_dir, "bridge")


def test_is_ours_only_for_links_into_versions_dir(tree, tmp_path):
    bin_dir = tree.bin_dir
    os.symlink(tree.link_target("bridge"), os.path.join(bin_dir, "bridge"))
    os.symlink(str(tmp_path / "versions-other" / "x"), os.path.join(bin_dir, "sneaky"))  # shares a prefix only
    with open(os.path.join(bin_dir, "calico"), "wb") as handle:
        handle.write(b"calico")
    assert tree.is_ours(os.path.join(bin_dir, "bridge"))
    assert not tree.is_ours(os.path.join(bin_dir, "sneaky"))
    assert not tree.is_ours(os.path.join(bin_dir, "calico"))


def test_a_link_leaving_versions_dir_through_dotdot_is_not_ours(tree, tmp_path):
    # Its text starts with versions_dir, but it names a file elsewhere: a user's link, to adopt
    # and restore, never to replace or delete as one of ours.
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "bridge").write_bytes(b"the user's bridge")
    path = os.path.join(tree.bin_dir, "bridge")
    os.symlink(os.path.join(tree.versions_dir, "..", "elsewhere", "bridge"), path)
    assert not tree.is_ours(path)
    assert _classify(tree, "bridge")["status"] == LINK_FOREIGN


def test_a_link_through_a_symlink_to_versions_dir_is_ours(tree, tmp_path):
    os.symlink(tree.versions_dir, str(tmp_path / "alias"))
    path = os.path.join(tree.bin_dir, "bridge")
    os.symlink(str(tmp_path / "alias" / "current" / "bridge"), path)
    assert tree.is_ours(path)


def test_an_entry_with_a_newline_is_no_version_dir(tree):
    _install(tree, "1.9.1")
    os.mkdir(os.path.join(tree.versions_dir, "v1.9.2\n"))
    os.symlink("v1.9.2\n", tree.pointer_path("current"))
    assert tree.installed_versions() == ["1.9.1"]
    assert tree.pointer("current") is None


def test_a_link_dir_given_with_a_trailing_slash_or_through_a_symlink_is_one_dir(tmp_path):
    (tmp_path / "bin").mkdir()
    os.symlink(str(tmp_path / "bin"), str(tmp_path / "bin-alias"))
    tree = InstallTree(str(tmp_path / "versions"), str(tmp_path / "bin") + "/", [str(tmp_path / "bin-alias")])
    assert tree.link_dirs == [str(tmp_path / "bin")]
    assert "are the same directory" in tree.problems()[0]
    inside = InstallTree(str(tmp_path / "versions") + "/", str(tmp_path / "versions" / "x" / ".." / "bin"))
    assert "inside versions_dir" in inside.problems()[0]
    beside = InstallTree(str(tmp_path / "versions"), str(tmp_path / "versions" / ".." / "bin"))
    assert beside.problems() == []


def test_state_round_trip_and_defaults(tree):
    assert tree.read_state() == {"link_dirs": [], "created_dirs": [], "distro_dirs": []}
    tree.write_state({"link_dirs": ["/x"], "created_dirs": ["/y"], "rollback": {"from": "2.0.0", "to": "1.0.0"}})
    assert tree.read_state()["rollback"] == {"from": "2.0.0", "to": "1.0.0"}
    with open(tree.state_path, "wb") as handle:
        handle.write(b"[1, 2]")
    assert tree.read_state() == {"link_dirs": [], "created_dirs": [], "distro_dirs": []}
