# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Atomic mutations: every write lands under a temporary name in the target's own directory and
is then renamed over the target, so a reader never sees a half-written file or a missing link."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile


def unlink_quietly(path: str) -> None:
    """Remove a file or link if it is there; cleanup after a failure must not raise a second error."""
    try:
        os.unlink(path)
    except OSError:
        pass


def rmdir_quietly(path: str) -> None:
    """Remove a directory only if it is empty; otherwise leave it."""
    try:
        os.rmdir(path)
    except OSError:
        pass


def _temp_name(directory: str, base: str) -> str:
    # mkstemp reserves a unique name; we only need the name for a symlink, so drop the file.
    fd, path = tempfile.mkstemp(prefix=".%s." % base, suffix=".tmp", dir=directory)
    os.close(fd)
    os.unlink(path)
    return path


def atomic_write(path: str, data: bytes, mode: int = 0o644) -> None:
    """Write *data* to *path* via a temp file in the same directory, fsync, then rename."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        unlink_quietly(tmp)
        raise
    fsync_dir(directory)


def atomic_symlink(target: str, path: str) -> None:
    """Point the symlink *path* at *target*, replacing whatever name was there in one rename."""
    directory = os.path.dirname(path) or "."
    tmp = _temp_name(directory, os.path.basename(path))
    os.symlink(target, tmp)
    try:
        os.rename(tmp, path)
    except BaseException:
        unlink_quietly(tmp)
        raise
    fsync_dir(directory)


def atomic_move(src: str, dst: str) -> None:
    """Rename within one filesystem; both names must share a mount (callers keep temps nearby)."""
    os.rename(src, dst)
    fsync_dir(os.path.dirname(dst) or ".")


def fsync_dir(directory: str) -> None:
    """Persist a rename: the directory entry itself must reach the disk."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def missing_dirs(path: str) -> list:
    """*path* and those of its parents that do not exist yet, outermost first."""
    missing = []
    current = os.path.abspath(path)
    while not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return list(reversed(missing))


def make_dirs(path: str, mode: int = 0o755) -> list:
    """Create *path* and missing parents; return the directories created, outermost first,
    so an uninstall can remove exactly what the install added."""
    created = []
    for directory in missing_dirs(path):
        try:
            os.mkdir(directory, mode)
        except FileExistsError:
            if os.path.isdir(directory):
                continue  # a concurrent run made it; it is not ours to remove later
            raise
        os.chmod(directory, mode)
        created.append(directory)
    return created


def move_across(src: str, dst: str) -> None:
    """Move a file or symlink to *dst*, atomically at the destination even across filesystems."""
    try:
        atomic_move(src, dst)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    directory = os.path.dirname(dst) or "."
    tmp = _temp_name(directory, os.path.basename(dst))
    if os.path.islink(src):
        os.symlink(os.readlink(src), tmp)
    else:
        shutil.copy2(src, tmp)
    try:
        os.rename(tmp, dst)
    except BaseException:
        unlink_quietly(tmp)
        raise
    os.unlink(src)
    fsync_dir(directory)
