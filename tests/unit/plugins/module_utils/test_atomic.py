"""Atomic file, symlink and directory operations on real files in tmp_path."""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.nodeprep.cni.plugins.module_utils._atomic import (
    atomic_move,
    atomic_symlink,
    atomic_write,
    make_dirs,
    move_across,
)


def _temps(directory) -> list:
    return sorted(name for name in os.listdir(directory) if name.endswith(".tmp"))


def test_atomic_write_creates_file_with_content_and_mode(tmp_path):
    target = tmp_path / "conf"
    atomic_write(str(target), b"hello\n", 0o600)
    assert target.read_bytes() == b"hello\n"
    assert stat.S_IMODE(os.lstat(target).st_mode) == 0o600
    assert _temps(tmp_path) == []


def test_atomic_write_replaces_content_and_mode_with_a_new_inode(tmp_path):
    target = tmp_path / "conf"
    target.write_bytes(b"old contents that are longer\n")
    os.chmod(target, 0o600)
    old_inode = os.lstat(target).st_ino
    # Keep the old inode open as a reader would: it must keep seeing the old bytes.
    with open(target, "rb") as reader:
        atomic_write(str(target), b"new\n", 0o755)
        assert reader.read() == b"old contents that are longer\n"
    assert target.read_bytes() == b"new\n"
    assert stat.S_IMODE(os.lstat(target).st_mode) == 0o755
    assert os.lstat(target).st_ino != old_inode
    assert _temps(tmp_path) == []


def test_atomic_write_leaves_no_temp_when_the_rename_fails(tmp_path):
    target = tmp_path / "busy"
    target.mkdir()
    (target / "inside").write_bytes(b"x")  # rename(file, non-empty dir) fails
    with pytest.raises(OSError):
        atomic_write(str(target), b"data")
    assert sorted(os.listdir(tmp_path)) == ["busy"]
    assert os.listdir(target) == ["inside"]


def test_atomic_symlink_creates_a_link(tmp_path):
    link = tmp_path / "bridge"
    atomic_symlink("/nowhere/bridge", str(link))
    assert os.readlink(link) == "/nowhere/bridge"
    assert _temps(tmp_path) == []


@pytest.mark.parametrize("existing", ["file", "symlink"])
def test_atomic_symlink_replaces_an_existing_name_in_one_rename(tmp_path, existing):
    link = tmp_path / "current"
    if existing == "file":
        link.write_bytes(b"regular file")
    else:
        os.symlink("v1.0.0", str(link))
    old_inode = os.lstat(link).st_ino

    atomic_symlink("v2.0.0", str(link))

    assert os.path.islink(link)
    assert os.readlink(link) == "v2.0.0"
    assert os.lstat(link).st_ino != old_inode
    assert sorted(os.listdir(tmp_path)) == ["current"]


def test_atomic_symlink_over_a_non_empty_directory_fails_without_leftovers(tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_bytes(b"x")
    with pytest.raises(OSError):
        atomic_symlink("target", str(busy))
    assert sorted(os.listdir(tmp_path)) == ["busy"]
    assert os.path.isdir(busy) and not os.path.islink(busy)


def test_make_dirs_returns_created_dirs_outermost_first(tmp_path):
    deep = tmp_path / "a" / "b" / "c"
    created = make_dirs(str(deep), 0o750)
    assert created == [str(tmp_path / "a"), str(tmp_path / "a" / "b"), str(deep)]
    for directory in created:
        assert os.path.isdir(directory)
        assert stat.S_IMODE(os.lstat(directory).st_mode) == 0o750


def test_make_dirs_on_existing_path_creates_nothing(tmp_path):
    (tmp_path / "a").mkdir()
    assert make_dirs(str(tmp_path / "a")) == []
    assert make_dirs(str(tmp_path / "a" / "b")) == [str(tmp_path / "a" / "b")]


def test_move_across_moves_a_file_within_a_filesystem(tmp_path):
    src = tmp_path / "src"
    src.write_bytes(b"payload")
    os.chmod(src, 0o751)
    inode = os.lstat(src).st_ino
    dst = tmp_path / "sub" / "dst"
    dst.parent.mkdir()
    dst.write_bytes(b"to be replaced")

    move_across(str(src), str(dst))

    assert not os.path.lexists(src)
    assert dst.read_bytes() == b"payload"
    assert stat.S_IMODE(os.lstat(dst).st_mode) == 0o751
    assert os.lstat(dst).st_ino == inode  # a rename, not a copy
    assert _temps(dst.parent) == []


def test_move_across_moves_a_symlink_not_its_target(tmp_path):
    target = tmp_path / "target"
    target.write_bytes(b"target bytes")
    src = tmp_path / "link"
    os.symlink(str(target), str(src))
    dst = tmp_path / "moved"

    move_across(str(src), str(dst))

    assert not os.path.lexists(src)
    assert os.readlink(dst) == str(target)
    assert target.read_bytes() == b"target bytes"


def test_atomic_move_renames_a_directory(tmp_path):
    src = tmp_path / ".stage-x"
    src.mkdir()
    (src / "bridge").write_bytes(b"b")
    atomic_move(str(src), str(tmp_path / "v1.0.0"))
    assert (tmp_path / "v1.0.0" / "bridge").read_bytes() == b"b"
    assert not os.path.lexists(src)
