# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An exclusive advisory lock on a file, so concurrent runs on one node serialise."""

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
    """

    def __init__(self, path: str, timeout: float = 600.0, poll: float = 0.2):
        self.path = path
        self.timeout = timeout
        self.poll = poll
        self._fd = None

    def acquire(self) -> None:
        directory = os.path.dirname(self.path)
        if directory and not os.path.isdir(directory):
            os.makedirs(directory, 0o755, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._fd = fd
                return
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
            if time.monotonic() >= deadline:
                os.close(fd)
                raise LockTimeout("timed out after %ss waiting for the lock %s held by another run" % (self.timeout, self.path))
            time.sleep(self.poll)

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
