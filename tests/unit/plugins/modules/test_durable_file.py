"""durable_file: the bytes reach the disk before the name, the name before the module returns.

Real files in a temporary tree; the module runs in process as a playbook would run it. The order of
fsyncs and renames is recorded at the edge (os.fsync, os.rename wrapped around the real ones); the
SELinux label is an inode's xattr, kept per inode at the edge so the test runs without SELinux.
"""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.nodeprep.cni.plugins.modules import durable_file
from testbed_lib.in_process import run_module_in_process as run_module

UNIT = "[Mount]\nWhat=/run/netns\nWhere=/run/netns\n"
LABEL = b"system_u:object_r:container_config_t:s0\0"


@pytest.fixture
def calls(monkeypatch):
    """Each fsync (of the file or directory the descriptor names) and rename, in order."""
    events = []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd):
        real_fsync(fd)
        events.append(("fsync", os.readlink("/proc/self/fd/%d" % fd)))

    def rename(src, dst, *args, **kwargs):
        real_rename(src, dst, *args, **kwargs)
        events.append(("rename", os.fspath(src), os.fspath(dst)))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", rename)
    return events


@pytest.fixture
def labels(monkeypatch):
    """security.selinux per inode, as a labelling filesystem keeps it."""
    store = {}

    def getxattr(path, name, follow_symlinks=True):
        key = os.stat(path, follow_symlinks=follow_symlinks).st_ino
        if name != durable_file.SELINUX_XATTR or key not in store:
            raise OSError(61, "No data available")
        return store[key]

    def setxattr(path, name, value, flags=0, follow_symlinks=True):
        assert name == durable_file.SELINUX_XATTR
        store[os.stat(path, follow_symlinks=follow_symlinks).st_ino] = value

    monkeypatch.setattr(os, "getxattr", getxattr)
    monkeypatch.setattr(os, "setxattr", setxattr)
    return store


def test_a_new_file_is_flushed_before_its_rename_and_its_directory_after(tmp_path, calls):
    path = tmp_path / "run-netns.mount"
    checked = run_module(durable_file, {"path": str(path), "content": UNIT}, check_mode=True, diff=True)
    assert checked["changed"] and not path.exists() and calls == []
    assert checked["diff"]["before_header"] == "%s (absent)" % path and checked["diff"]["after"] == UNIT

    written = run_module(durable_file, {"path": str(path), "content": UNIT})
    assert written["changed"] and written["content_changed"] and written["rc"] == 0
    assert path.read_text() == UNIT and stat.S_IMODE(path.stat().st_mode) == 0o644
    (fsync_file, temp), (rename, src, dst), (fsync_dir, directory) = calls
    assert (fsync_file, rename, fsync_dir) == ("fsync", "rename", "fsync")
    assert temp == src and os.path.dirname(src) == str(tmp_path) and dst == str(path)
    assert directory == str(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["run-netns.mount"], "no temp file is left"

    calls.clear()
    again = run_module(durable_file, {"path": str(path), "content": UNIT})
    assert not again["changed"] and calls == []


def test_a_replaced_file_keeps_its_mode_owner_and_label_and_is_backed_up(tmp_path, calls, labels):
    path = tmp_path / "config.toml"
    path.write_bytes(b"password = 'of the user'\n")
    path.chmod(0o600)
    os.setxattr(str(path), durable_file.SELINUX_XATTR, LABEL)
    owner = (path.stat().st_uid, path.stat().st_gid)
    pushed = tmp_path / "upload" / "candidate.toml"
    pushed.parent.mkdir()
    pushed.write_bytes(b"password = 'of the user'\n[cni]\nbin_dir = '/opt/cni/bin'\n")

    result = run_module(durable_file, {"path": str(path), "src": str(pushed), "backup": True})
    assert result["changed"] and result["rc"] == 0
    assert path.read_bytes() == pushed.read_bytes() and pushed.exists(), "the pushed file is read, not moved"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and (path.stat().st_uid, path.stat().st_gid) == owner
    assert os.getxattr(str(path), durable_file.SELINUX_XATTR) == LABEL
    backup = result["backup_file"]
    assert open(backup, "rb").read() == b"password = 'of the user'\n"
    assert stat.S_IMODE(os.stat(backup).st_mode) == 0o600
    assert [event[0] for event in calls] == ["fsync", "rename", "fsync"]


def test_the_same_bytes_with_another_mode_only_correct_the_mode(tmp_path, calls):
    path = tmp_path / "nodeprep-netns-propagation.service"
    path.write_text(UNIT)
    path.chmod(0o600)
    predicted = run_module(durable_file, {"path": str(path), "content": UNIT, "mode": "0644"}, check_mode=True)
    assert predicted["changed"] and not predicted["content_changed"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    fixed = run_module(durable_file, {"path": str(path), "content": UNIT, "mode": "0644"})
    assert fixed["changed"] and not fixed["content_changed"] and "backup_file" not in fixed
    assert stat.S_IMODE(path.stat().st_mode) == 0o644 and calls == [], "no rewrite for a mode"


def test_a_link_is_replaced_by_the_file_and_its_target_left_alone(tmp_path):
    target = tmp_path / "vendor.toml"
    target.write_text("vendor\n")
    path = tmp_path / "config.toml"
    path.symlink_to(target)
    result = run_module(durable_file, {"path": str(path), "content": "ours\n"})
    assert result["changed"] and not path.is_symlink() and path.read_text() == "ours\n"
    assert target.read_text() == "vendor\n"


def test_a_missing_directory_is_named_and_nothing_is_written(tmp_path):
    path = tmp_path / "missing" / "config.toml"
    result = run_module(durable_file, {"path": str(path), "content": "x\n"})
    assert result["failed"] and result["rc"] == 1
    assert result["msg"] == ("the directory of %s does not exist: create %s first, then run again; nothing was "
                             "changed." % (path, path.parent))
    assert not path.parent.exists()


def test_a_failed_write_leaves_the_file_as_it_was_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "config.toml"
    path.write_text("before\n")

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    result = run_module(durable_file, {"path": str(path), "content": "after\n"})
    assert result["failed"] and "No space left on device" in result["msg"]
    assert path.read_text() == "before\n" and os.listdir(tmp_path) == ["config.toml"]
