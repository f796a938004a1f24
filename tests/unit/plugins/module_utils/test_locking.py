"""The node lock serialises runs: a real flock held by another process or thread."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from ansible_collections.nodeprep.cni.plugins.module_utils._locking import FileLock, LockTimeout

HOLDER = r"""
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
fcntl.flock(fd, fcntl.LOCK_UN)
"""


def _hold_in_subprocess(path, seconds):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(seconds)], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"locked"
    return proc


def test_second_lock_waits_for_a_process_holding_it(tmp_path):
    path = tmp_path / ".lock"
    proc = _hold_in_subprocess(path, 0.5)
    try:
        started = time.monotonic()
        with FileLock(str(path), timeout=10, poll=0.05):
            waited = time.monotonic() - started
            # The holder has released (it exits right after), so we now own the lock.
            assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert waited >= 0.3


def test_lock_times_out_naming_the_lock_file(tmp_path):
    path = tmp_path / ".lock"
    proc = _hold_in_subprocess(path, 3)
    try:
        started = time.monotonic()
        with pytest.raises(LockTimeout) as info:
            FileLock(str(path), timeout=0.3, poll=0.05).acquire()
        assert time.monotonic() - started < 2.5
        assert str(path) in str(info.value)
    finally:
        proc.kill()
        proc.wait()


def test_threads_serialise_on_the_lock(tmp_path):
    path = str(tmp_path / "sub" / ".lock")
    events = []
    first_has_it = threading.Event()

    def first():
        with FileLock(path, timeout=5, poll=0.02):
            events.append("first in")
            first_has_it.set()
            time.sleep(0.4)
            events.append("first out")

    def second():
        first_has_it.wait(5)
        with FileLock(path, timeout=5, poll=0.02):
            events.append("second in")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert events == ["first in", "first out", "second in"]
    assert os.path.isfile(path)


def test_lock_is_free_again_after_the_block(tmp_path):
    path = str(tmp_path / ".lock")
    with FileLock(path, timeout=1):
        pass
    # Another process can take it at once.
    proc = _hold_in_subprocess(path, 0)
    assert proc.wait(timeout=10) == 0


def test_lock_file_outlives_release_so_waiters_and_newcomers_share_one_inode(tmp_path):
    path = str(tmp_path / ".lock")
    with FileLock(path, timeout=1):
        inode = os.stat(path).st_ino
    assert os.stat(path).st_ino == inode


def test_a_lock_file_replaced_while_waiting_is_locked_under_its_new_inode(tmp_path):
    path = tmp_path / ".lock"
    proc = _hold_in_subprocess(path, 0.6)
    try:
        result = {}

        def wait_for_it():
            with FileLock(str(path), timeout=10, poll=0.02) as lock:
                result["inode"] = os.fstat(lock._fd).st_ino

        waiter = threading.Thread(target=wait_for_it)
        waiter.start()
        time.sleep(0.2)
        os.unlink(path)  # someone removes the lock file while a run waits on the old inode
        path.write_text("")
        fresh = os.stat(path).st_ino
        waiter.join(10)
    finally:
        proc.kill()
        proc.wait()
    assert result["inode"] == fresh


def test_check_mode_lock_creates_nothing(tmp_path):
    path = tmp_path / "missing" / ".lock"
    with FileLock(str(path), timeout=1, create=False) as lock:
        assert not lock.held
    assert not (tmp_path / "missing").exists()


def test_a_waiting_run_says_so_at_once_then_at_each_interval(tmp_path):
    lock_path = tmp_path / ".lock"
    holder = _hold_in_subprocess(lock_path, 1.0)
    waits = []
    try:
        with FileLock(str(lock_path), timeout=10, poll=0.02, on_wait=waits.append, wait_interval=0.3):
            pass
    finally:
        holder.wait(10)
    # At once (nothing waited yet), then every 0.3 s until the holder let go after about 1 s.
    assert waits[0] < 0.1
    assert 3 <= len(waits) <= 5, waits
    assert all(later - earlier >= 0.29 for earlier, later in zip(waits, waits[1:])), waits


def test_a_free_lock_says_nothing(tmp_path):
    waits = []
    with FileLock(str(tmp_path / ".lock"), on_wait=waits.append):
        pass
    assert waits == []
