# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An exclusive advisory lock on a file, so concurrent runs on one node serialise.

The lock file is created once and never unlinked: a run waiting on it holds its inode, and a
newcomer must lock that same inode, or two runs would proceed at once. Should something else
remove or replace the file while a run waits, the run notices (the inode under the name is no
longer the one it locked) and locks the file now under that name instead.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time


class LockTimeout(Exception):
    pass


class FileLock:
    """``with FileLock(path):`` holds flock(LOCK_EX) on *path*, waiting at most *timeout* seconds.

    The second run waits rather than failing, then proceeds on whatever the first one left.
    With ``create=False`` (check mode: nothing may be written) a missing lock file means no run
    has ever held it, so there is nothing to wait for and nothing is locked.

    ``on_wait(waited_seconds)``, when given, is called as soon as the lock turns out to be held
    by another run and then every *wait_interval* seconds while this one waits: a run that waits
    silently for minutes looks hung.
    """

    def __init__(self, path: str, timeout: float = 600.0, poll: float = 0.1, create: bool = True, on_wait=None,
                 wait_interval: float = 30.0):
        self.path = path
        self.timeout = timeout
        self.poll = poll
        self.create = create
        self.on_wait = on_wait
        self.wait_interval = wait_interval
        self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def _open(self):
        if self.create:
            directory = os.path.dirname(self.path)
            if directory:
                os.makedirs(directory, 0o755, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            return os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None

    def _still_named(self, fd) -> bool:
        try:
            named = os.stat(self.path)
        except FileNotFoundError:
            return False
        held = os.fstat(fd)
        return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)

    def acquire(self) -> None:
        started = time.monotonic()
        deadline = started + self.timeout
        report_at = started
        while True:
            fd = self._open()
            if fd is None:
                return
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        os.close(fd)
                        raise
                now = time.monotonic()
                if now >= deadline:
                    os.close(fd)
                    raise LockTimeout("timed out after %ss waiting for the lock %s held by another run; "
                                      "let that run finish, or raise lock_timeout" % (self.timeout, self.path))
                if self.on_wait is not None and now >= report_at:
                    self.on_wait(now - started)
                    report_at = now + self.wait_interval
                time.sleep(self.poll)
            if self._still_named(fd):
                self._fd = fd
                return
            os.close(fd)  # the name now belongs to another inode: lock that one

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc_info):
        self.release()
        return False
