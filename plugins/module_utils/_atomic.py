# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Atomic mutations: every write lands under a temporary name in the target's own directory and
is then renamed over the target, so a reader never sees a half-written file or a missing link."""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile


# The advice for a write refused by permissions: the directories a node install writes are root's.
BECOME_ADVICE = "run the play with become (ansible-playbook -b, or become: true) so the node's paths are written as root"


def become_hint(exc: BaseException, alternative: str = ""):
    """The advice for *exc* when it is a permission refusal (EACCES, EPERM), else None; the error's own
    text already says "Permission denied"."""
    if not isinstance(exc, OSError) or exc.errno not in (errno.EACCES, errno.EPERM):
        return None
    return "%s%s" % (BECOME_ADVICE, ", or %s" % alternative if alternative else "")


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


# A temp name is ".<final name>.<8 random characters>.tmp" beside the final name (mkstemp's
# random part is 8 characters of [a-z0-9_]); recovery recognises its own by this shape alone.
_TEMP_SUFFIX = ".tmp"


def temp_file(directory: str, base: str):
    """(fd, path) of a new private temp file for the final name *base* in *directory*."""
    return tempfile.mkstemp(prefix=".%s." % base, suffix=_TEMP_SUFFIX, dir=directory)


def temp_name(directory: str, base: str) -> str:
    # mkstemp reserves a unique name; a link needs only the name, so drop the file.
    fd, path = temp_file(directory, base)
    os.close(fd)
    os.unlink(path)
    return path


def remove_temps(directory: str, base: str) -> list:
    """Remove the temp names left for *base* in *directory* by a run cut off between a temp's
    creation and its rename (or a link's); a temp is never the only copy of anything."""
    pattern = re.compile(r"^\.%s\.[a-z0-9_]{8}%s$" % (re.escape(base), re.escape(_TEMP_SUFFIX)))
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    removed = []
    for name in names:
        if pattern.match(name):
            os.unlink(os.path.join(directory, name))
            removed.append(os.path.join(directory, name))
    if removed:
        fsync_dir(directory)
    return removed


def atomic_write(path: str, data: bytes, mode: int = 0o644) -> None:
    """Write *data* to *path* via a temp file in the same directory, fsync, then rename."""
    directory = os.path.dirname(path) or "."
    fd, tmp = temp_file(directory, os.path.basename(path))
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
    tmp = temp_name(directory, os.path.basename(path))
    os.symlink(target, tmp)
    try:
        os.rename(tmp, path)
    except BaseException:
        unlink_quietly(tmp)
        raise
    fsync_dir(directory)


def atomic_move(src: str, dst: str) -> None:
    """Rename within one filesystem; both names must share a mount (callers keep temps nearby).
    Both directories are persisted when they differ: the name must not survive in neither."""
    os.rename(src, dst)
    fsync_dir(os.path.dirname(dst) or ".")
    if os.path.dirname(src) != os.path.dirname(dst):
        fsync_dir(os.path.dirname(src) or ".")


def fsync_dir(directory: str) -> None:
    """Persist the entries of *directory* (a rename, a new file or subdirectory in it).

    An error is raised, not swallowed: the caller's next step relies on what came before being
    on the disk. EINVAL alone is tolerated: some filesystems (certain FUSE and network ones)
    cannot fsync a directory at all, and there is nothing more durable to ask of them.
    """
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
    finally:
        os.close(fd)


def make_dir(path: str, mode: int = 0o755) -> None:
    """Create one directory and persist its name in its parent before anything is put in it:
    on a filesystem that does not order metadata, a later fsync inside it would not bring the
    directory itself back after a power cut."""
    os.mkdir(path, mode)
    os.chmod(path, mode)
    fsync_dir(os.path.dirname(path) or ".")


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
            make_dir(directory, mode)
        except FileExistsError:
            if os.path.isdir(directory):
                continue  # a concurrent run made it; it is not ours to remove later
            raise
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
    tmp = temp_name(directory, os.path.basename(dst))
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
