# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Adopting a user's file that has a plugin's name, and giving it back.

Adoption keeps a complete copy under ``<versions_dir>/.adopted/<batch>/`` before our link
replaces the name; giving back is one rename of a complete copy over our link. At no moment is
the user's name missing, and the kept copy is removed only once the file is back in place.
"""

from __future__ import annotations

import errno
import os
import shutil
import time

from ansible_collections.nodeprep.cni.plugins.module_utils._atomic import fsync_dir, make_dirs, temp_name, unlink_quietly
from ansible_collections.nodeprep.cni.plugins.module_utils._hashing import file_digest


def batch_name() -> str:
    """One directory per run that adopts, named by the time it ran."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def describe(path: str) -> dict:
    """What is at *path*, enough to recognise it again: a symlink's target or a file's sha256."""
    if os.path.islink(path):
        return {"kind": "symlink", "link_target": os.readlink(path)}
    return {"kind": "file", "sha256": file_digest(path)}


def _copy_to_temp(src: str, directory: str, base: str) -> str:
    """A complete copy of *src* (a hard link where the filesystem allows) under a temp name."""
    tmp = temp_name(directory, base)
    try:
        if os.path.islink(src):
            os.symlink(os.readlink(src), tmp)
        else:
            try:
                os.link(src, tmp)
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                    raise
                shutil.copy2(src, tmp)
                with open(tmp, "rb") as handle:
                    os.fsync(handle.fileno())
    except BaseException:
        unlink_quietly(tmp)
        raise
    return tmp


def _place_copy(src: str, dst: str, dir_mode: int) -> None:
    """A complete copy of *src* appears at *dst* in one rename, replacing whatever was there."""
    directory = os.path.dirname(dst)
    make_dirs(directory, dir_mode)
    tmp = _copy_to_temp(src, directory, os.path.basename(dst))
    try:
        os.rename(tmp, dst)
    except BaseException:
        unlink_quietly(tmp)
        raise
    fsync_dir(directory)


def keep_copy(path: str, stored: str) -> None:
    """Copy the file or symlink at *path* to *stored* (under .adopted/, private to root)."""
    _place_copy(path, stored, 0o700)


def put_back(stored: str, path: str) -> None:
    """Replace whatever is at *path* (our link) with the kept copy, in one rename."""
    _place_copy(stored, path, 0o755)


def same_content(path: str, other: str) -> bool:
    """Both exist and are the same symlink target or the same bytes."""
    try:
        if os.path.islink(path) or os.path.islink(other):
            return os.path.islink(path) and os.path.islink(other) and os.readlink(path) == os.readlink(other)
        if not (os.path.isfile(path) and os.path.isfile(other)):
            return False
        if os.path.samefile(path, other):
            return True
        return file_digest(path) == file_digest(other)
    except OSError:
        return False
