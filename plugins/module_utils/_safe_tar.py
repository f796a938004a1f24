# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Extract release tarballs without trusting them: flat regular files only, written by us."""

from __future__ import annotations

import os
import stat
import tarfile

from ansible_collections.nodeprep.cni.plugins.module_utils._hashing import CHUNK_SIZE

# Upstream release tarballs are flat; anything larger than this per member is not a plugin.
MAX_MEMBER_BYTES = 512 * 1024 * 1024


class UnsafeArchive(ValueError):
    """The archive is malformed or holds something we refuse to write."""


def _member_name(tar_path: str, member) -> str:
    name = member.name
    while name.startswith("./"):
        name = name[2:]
    if name in ("", "."):
        return ""
    if name.startswith("/") or os.path.isabs(name):
        raise UnsafeArchive("%s: member %r has an absolute path; refusing to extract" % (tar_path, member.name))
    parts = name.rstrip("/").split("/")
    if ".." in parts:
        raise UnsafeArchive("%s: member %r escapes the target directory with '..'; refusing to extract" % (tar_path, member.name))
    if len(parts) != 1:
        raise UnsafeArchive("%s: member %r is in a subdirectory; release tarballs are flat" % (tar_path, member.name))
    return parts[0]


def _check_member(tar_path: str, member) -> str:
    name = _member_name(tar_path, member)
    if member.isdir():
        if name:
            raise UnsafeArchive("%s: member %r is a subdirectory; release tarballs are flat" % (tar_path, member.name))
        return ""
    if member.issym() or member.islnk():
        raise UnsafeArchive("%s: member %r is a link; refusing to extract links" % (tar_path, member.name))
    if not member.isfile():
        raise UnsafeArchive("%s: member %r is a device, fifo or other special file; refusing to extract" % (tar_path, member.name))
    if member.size > MAX_MEMBER_BYTES:
        raise UnsafeArchive("%s: member %r is %d bytes, larger than any plugin" % (tar_path, member.name, member.size))
    return name


def list_members(tar_path: str) -> list:
    """Names of the regular files in the archive, validating every member; raises UnsafeArchive."""
    names = []
    try:
        with tarfile.open(tar_path, "r:*") as archive:
            for member in archive:
                name = _check_member(tar_path, member)
                if name:
                    names.append(name)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise UnsafeArchive("%s: not a readable tar.gz archive (%s); the file is truncated or corrupt" % (tar_path, exc))
    seen = set()
    for name in names:
        if name in seen:
            raise UnsafeArchive("%s: member %r appears twice; refusing an ambiguous archive" % (tar_path, name))
        seen.add(name)
    if not names:
        raise UnsafeArchive("%s: the archive holds no files" % tar_path)
    return names


def safe_extract(tar_path: str, dest_dir: str) -> list:
    """Extract the flat regular files of *tar_path* into the existing *dest_dir*.

    Every member is validated before the first byte is written, so a hostile archive writes
    nothing. Files are created by us (owner = the running user, mode 0755 or 0644 from the
    archive's executable bit only); ownership, setuid bits and timestamps are never taken from it.
    """
    names = list_members(tar_path)
    written = []
    try:
        with tarfile.open(tar_path, "r:*") as archive:
            for member in archive:
                name = _check_member(tar_path, member)
                if not name:
                    continue
                source = archive.extractfile(member)
                if source is None:
                    raise UnsafeArchive("%s: member %r has no data" % (tar_path, member.name))
                mode = 0o755 if member.mode & stat.S_IXUSR else 0o644
                target = os.path.join(dest_dir, name)
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
                written.append(target)
                with os.fdopen(fd, "wb") as handle:
                    copied = 0
                    for chunk in iter(lambda: source.read(CHUNK_SIZE), b""):
                        copied += len(chunk)
                        handle.write(chunk)
                    if copied != member.size:
                        raise UnsafeArchive("%s: member %r is truncated" % (tar_path, member.name))
                    handle.flush()
                    os.fsync(handle.fileno())
                os.chmod(target, mode)
    except (tarfile.TarError, EOFError, OSError) as exc:
        for path in written:
            if os.path.lexists(path):
                os.unlink(path)
        raise UnsafeArchive("%s: extraction failed (%s); the file is truncated or corrupt" % (tar_path, exc))
    except UnsafeArchive:
        for path in written:
            if os.path.lexists(path):
                os.unlink(path)
        raise
    return names
