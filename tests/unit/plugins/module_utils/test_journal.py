"""The undo journal: durable entries, conditional undo of each kind, replay after a kill."""

from __future__ import annotations

import json
import os

from ansible_collections.nodeprep.cni.plugins.module_utils._adoption import keep_copy, put_back, same_content
from ansible_collections.nodeprep.cni.plugins.module_utils._atomic import atomic_symlink
from ansible_collections.nodeprep.cni.plugins.module_utils._journal import Journal, Transaction, recover


def journal(tmp_path):
    return Journal(str(tmp_path / ".journal"))


def test_entries_survive_and_a_torn_last_line_is_ignored(tmp_path):
    log = journal(tmp_path)
    log.record({"kind": "mkdir", "path": "/x"})
    log.close()
    with open(log.path, "a", encoding="utf-8") as handle:
        handle.write('{"kind": "mkd')  # killed mid-write
    assert log.entries() == [{"kind": "mkdir", "path": "/x"}]


def test_rollback_undoes_newest_first_and_only_what_this_run_did(tmp_path):
    link = str(tmp_path / "current")
    os.symlink("v1", link)
    other = tmp_path / "other"  # changed by someone else: never journalled, never touched
    tx = Transaction(journal(tmp_path))
    tx.step({"kind": "path", "path": link, "before": "v1"}, atomic_symlink, "v2", link)
    tx.step({"kind": "mkdir", "path": str(tmp_path / "d")}, os.mkdir, str(tmp_path / "d"))
    other.write_text("theirs")
    assert tx.rollback() == []
    assert os.readlink(link) == "v1"
    assert not (tmp_path / "d").exists()
    assert other.read_text() == "theirs"
    assert not os.path.exists(tx.journal.path)


def test_undo_never_replaces_a_real_file_that_took_a_links_place(tmp_path):
    path = tmp_path / "bridge"
    tx = Transaction(journal(tmp_path))
    tx.step({"kind": "path", "path": str(path), "before": None}, atomic_symlink, "/x/current/bridge", str(path))
    os.unlink(path)
    path.write_bytes(b"somebody's file")
    tx.rollback()
    assert path.read_bytes() == b"somebody's file"


def test_adopt_undo_puts_the_users_file_back_by_one_rename(tmp_path):
    original = tmp_path / "bin" / "bridge"
    original.parent.mkdir()
    original.write_bytes(b"user bridge")
    stored = str(tmp_path / ".adopted" / "b" / "bridge")
    tx = Transaction(journal(tmp_path))
    tx.step({"kind": "adopt", "path": str(original), "stored": stored, "sha256": "-"}, keep_copy, str(original), stored)
    atomic_symlink("/x/current/bridge", str(original))
    tx.rollback()
    assert not original.is_symlink() and original.read_bytes() == b"user bridge"
    assert not os.path.exists(stored)


def test_adopt_undo_after_a_kill_before_the_link_keeps_the_original(tmp_path):
    original = tmp_path / "bridge"
    original.write_bytes(b"user bridge")
    stored = str(tmp_path / "kept" / "bridge")
    log = journal(tmp_path)
    log.record({"kind": "adopt", "path": str(original), "stored": stored})
    keep_copy(str(original), stored)
    log.close()  # killed here: the copy exists, the link was never made
    assert recover(Journal(log.path)) == "rolled back"
    assert original.read_bytes() == b"user bridge"
    assert not os.path.exists(stored)


def test_replace_undo_returns_the_kept_original(tmp_path):
    target, backup, new = tmp_path / "bridge", tmp_path / "aside-bridge", tmp_path / "stage-bridge"
    target.write_bytes(b"old")
    new.write_bytes(b"new")
    tx = Transaction(journal(tmp_path))
    os.link(target, backup)
    tx.step({"kind": "replace", "path": str(target), "backup": str(backup)}, os.rename, str(new), str(target))
    assert target.read_bytes() == b"new"
    tx.rollback()
    assert target.read_bytes() == b"old"


def test_a_committed_journal_only_finishes_its_cleanup(tmp_path):
    trash = tmp_path / ".trash-v1"
    trash.mkdir()
    (trash / "bridge").write_bytes(b"x")
    link = str(tmp_path / "current")
    log = journal(tmp_path)
    log.record({"kind": "path", "path": link, "before": None})
    os.symlink("v2", link)
    log.record({"kind": "commit", "cleanup": [{"kind": "rmtree", "path": str(trash)}]})
    log.close()  # killed during cleanup
    assert recover(Journal(log.path)) == "completed"
    assert os.readlink(link) == "v2"
    assert not trash.exists()


def test_drop_copy_keeps_a_copy_whose_original_is_not_back(tmp_path):
    copy, original = tmp_path / "copy", tmp_path / "original"
    copy.write_bytes(b"user")
    original.write_bytes(b"different")
    tx = Transaction(journal(tmp_path))
    tx.commit([{"kind": "drop_copy", "path": str(copy), "original": str(original)}])
    assert copy.read_bytes() == b"user"


def test_file_undo_restores_previous_text(tmp_path):
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"a": 1}))
    tx = Transaction(journal(tmp_path))
    tx.step({"kind": "file", "path": str(state), "before": state.read_text()}, state.write_text, "{}")
    tx.rollback()
    assert json.loads(state.read_text()) == {"a": 1}


def test_put_back_and_same_content(tmp_path):
    stored = tmp_path / "kept"
    stored.write_bytes(b"bytes")
    target = tmp_path / "dir" / "bridge"
    target.parent.mkdir()
    os.symlink("/somewhere", target)
    put_back(str(stored), str(target))
    assert not target.is_symlink() and same_content(str(target), str(stored))


def test_recovery_cut_between_link_and_rename_leaves_the_users_file_with_one_name(tmp_path):
    """A killed run adopted bin/bridge; its recovery was killed while putting the file back, after
    the hidden hard link was made and before its rename. The next recovery ends with the file
    back at its name and no other name of it anywhere (no temp, no kept copy)."""
    bin_dir, stored = tmp_path / "bin", tmp_path / ".adopted" / "batch" / "bridge"
    bin_dir.mkdir()
    user = bin_dir / "bridge"
    user.write_bytes(b"#!/bin/sh\n# the user's bridge\n")
    stored.parent.mkdir(parents=True)
    log = journal(tmp_path)
    log.record({"kind": "adopt", "path": str(user), "stored": str(stored)})
    keep_copy(str(user), str(stored))
    atomic_symlink("/opt/cni/versions/current/bridge", str(user))
    log.close()
    # The cut recovery: a hidden hard link of the kept copy beside the name, never renamed; and a
    # temp of an interrupted keep_copy beside the kept copy.
    os.link(str(stored), str(bin_dir / ".bridge.k3x9_a2q.tmp"))
    os.link(str(stored), str(stored.parent / ".bridge.zz01ab_9.tmp"))
    assert recover(log) == "rolled back"
    assert user.read_bytes() == b"#!/bin/sh\n# the user's bridge\n" and not user.is_symlink()
    assert os.stat(str(user)).st_nlink == 1
    assert sorted(os.listdir(str(bin_dir))) == ["bridge"]
    assert not stored.parent.exists()  # the kept copy went once the file was back, then its empty batch dir


def test_recovery_removes_only_our_temp_names(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    link = bin_dir / "loopback"
    log = journal(tmp_path)
    log.record({"kind": "path", "path": str(link), "before": None})
    log.close()
    (bin_dir / ".loopback.abcd1234.tmp").write_bytes(b"")  # ours: killed between mkstemp and rename
    for theirs in (".loopback.tmp", ".calico.abcd1234.tmp", "loopback.abcd1234.tmp", ".loopback.abcd12345.tmp"):
        (bin_dir / theirs).write_bytes(b"not ours")
    recover(log)
    assert sorted(os.listdir(str(bin_dir))) == sorted([".loopback.tmp", ".calico.abcd1234.tmp", "loopback.abcd1234.tmp",
                                                      ".loopback.abcd12345.tmp"])
