# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Extract release tarballs without trusting them: flat regular files only, written by us.

A release tarball is a flat list of plugin binaries plus LICENSE and README.md. Anything else
(paths, links, devices, fifos, setuid bits, odd names, sizes no plugin has) means the archive was
tampered with or built wrongly: the whole archive is refused, no member that fails a check is
ever written, and whatever earlier members were written is removed again.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import os
import re
import stat
import tarfile
import zlib

from ansible_collections.nodeprep.cni.plugins.module_utils._atomic import become_hint, unlink_quietly
from ansible_collections.nodeprep.cni.plugins.module_utils._hashing import CHUNK_SIZE

MIB = 1024 * 1024
# A plugin binary is a few MB and a whole release unpacks to some tens of MB. The limits leave
# room for growth while keeping a few-MB tarball that expands to gigabytes from filling a disk.
MAX_MEMBER_BYTES = 128 * MIB
MAX_TOTAL_BYTES = 512 * MIB
# Upstream ships about 25 members; thousands of empty ones are a resource attack.
MAX_MEMBERS = 256
MAX_NAME_LENGTH = 128
# Plugin names are short ASCII words (bridge, host-local, README.md): no separators, no hidden
# files, nothing a terminal or a log line could interpret.
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
GZIP_MAGIC = b"\x1f\x8b"
# Read errors of a broken gzip stream come as any of these.
_READ_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error)

FIX = "use the official release, or rebuild the tarball with flat regular files named like plugins"


class UnsafeArchive(ValueError):
    """The archive is malformed or holds something we refuse to write."""


class ExtractionFailed(ValueError):
    """The archive is fine but writing its files failed (a full disk, a read-only filesystem...)."""


class Limits:
    """Size limits of one archive; the defaults fit every real release with a wide margin."""

    def __init__(self, member_bytes=MAX_MEMBER_BYTES, total_bytes=MAX_TOTAL_BYTES, members=MAX_MEMBERS):
        self.member_bytes = member_bytes
        self.total_bytes = total_bytes
        self.members = members


def _human(size):
    return "%d MiB" % (size // MIB) if size >= MIB and size % MIB == 0 else "%d bytes" % size


def _refuse(label, member, reason):
    return UnsafeArchive("%s: member %r %s; refusing the whole archive (%s)" % (label, member.name, reason, FIX))


def _member_name(label, member):
    """The plain file name of *member* ("./bridge" -> "bridge"); "" for the archive's own "./"."""
    name = member.name
    while name.startswith("./"):
        name = name[2:]
    if name in ("", "."):
        return ""
    if name.startswith("/") or os.path.isabs(name):
        raise _refuse(label, member, "has an absolute path")
    parts = name.rstrip("/").split("/")
    if ".." in parts:
        raise _refuse(label, member, "escapes the target directory with '..'")
    if len(parts) != 1:
        raise _refuse(label, member, "is in a subdirectory; release tarballs are flat")
    name = parts[0]
    problem = plain_name_problem(name)
    if problem:
        raise _refuse(label, member, problem)
    return name


def plain_name_problem(name):
    """Why *name* is not a plain plugin file name, or "" when it is (tarball members and package dirs alike)."""
    if _CONTROL.search(name):
        return "has control characters or terminal escapes in its name"
    if name.startswith("."):
        return "has a hidden name starting with '.'"
    if len(name) > MAX_NAME_LENGTH or not _PLAIN_NAME.match(name):
        return "is not a plain plugin file name (letters, digits, '.', '_', '+', '-'; at most %d)" % MAX_NAME_LENGTH
    return ""


def _check_member(label, member, limits):
    name = _member_name(label, member)
    if member.isdir():
        if name:
            raise _refuse(label, member, "is a subdirectory; release tarballs are flat")
        return ""
    if member.issym() or member.islnk():
        raise _refuse(label, member, "is a %s to %r; release tarballs hold no links"
                      % ("symlink" if member.issym() else "hardlink", member.linkname))
    if member.issparse():
        raise _refuse(label, member, "is a sparse file; plugins never are")
    if not member.isfile():
        raise _refuse(label, member, "is a device, fifo or other special file")
    if member.mode & (stat.S_ISUID | stat.S_ISGID):
        raise _refuse(label, member, "has the setuid or setgid bit (mode %04o); no plugin release sets them"
                      % stat.S_IMODE(member.mode))
    if member.size > limits.member_bytes:
        raise _refuse(label, member, "is %d bytes, over the %s limit for one file, far more than any plugin"
                      % (member.size, _human(limits.member_bytes)))
    return name


class _Checker:
    """Checks members one by one, in archive order, and the archive as a whole at the end."""

    def __init__(self, label, limits):
        self.label = label
        self.limits = limits
        self.count = 0
        self.seen = set()
        self.total = 0

    def check(self, member):
        """The member's plain name ("" for "./"); raises UnsafeArchive."""
        if self.count >= self.limits.members:
            raise UnsafeArchive("%s: more than %d members, where a release has about 25; refusing the whole archive (%s)"
                                % (self.label, self.limits.members, FIX))
        self.count += 1
        name = _check_member(self.label, member, self.limits)
        if not name:
            return name
        if name in self.seen:
            raise _refuse(self.label, member, "appears twice; which copy wins would depend on the order")
        self.seen.add(name)
        self.total += member.size
        if self.total > self.limits.total_bytes:
            raise _refuse(self.label, member, "brings the unpacked size over the %s limit for a whole archive, far more "
                          "than any release unpacks to" % _human(self.limits.total_bytes))
        return name

    def finish(self):
        if not self.seen:
            raise UnsafeArchive("%s: the archive holds no files (%s)" % (self.label, FIX))


def _validated(label, archive, limits):
    """Every member checked, in archive order: a list of (member, name); name "" for "./"."""
    checker = _Checker(label, limits)
    members = [(member, checker.check(member)) for member in archive]
    checker.finish()
    return members


def list_members(tar_path, label=None, limits=None):
    """Names of the regular files in the archive, after validating every member; raises UnsafeArchive.

    *label* names the archive in messages (default: *tar_path*), e.g. the URL it came from.
    Nothing is written: this is for callers that may not write (check mode, a cache).
    """
    label = label or tar_path
    try:
        with tarfile.open(tar_path, "r:*") as archive:
            return [name for dummy, name in _validated(label, archive, limits or Limits()) if name]
    except UnsafeArchive:
        raise
    except _READ_ERRORS as exc:
        raise UnsafeArchive("%s: not a readable tar.gz archive (%s); the file is truncated or corrupt" % (label, exc))


def _write_error(label, target, exc):
    hints = {
        errno.ENOSPC: "free space on that filesystem",
        errno.EDQUOT: "raise the quota or free space",
        errno.EROFS: "the filesystem is read-only; choose a writable directory",
        errno.EEXIST: "a file of that name is already there",
        errno.ELOOP: "a symlink of that name is already there and is never followed",
    }
    hint = hints.get(exc.errno) or become_hint(exc, "make the directory writable by the user Ansible runs as") or "check the target directory"
    return ExtractionFailed("cannot write %s while extracting %s: %s; %s" % (target, label, exc.strerror or exc, hint))


def _extract_member(label, archive, member, name, dest_dir, written):
    """Write one member as a new file of ours; return the sha256 of the bytes written."""
    source = archive.extractfile(member)
    if source is None:
        raise UnsafeArchive("%s: member %r has no data; the file is truncated or corrupt" % (label, member.name))
    target = os.path.join(dest_dir, name)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except OSError as exc:
        raise _write_error(label, target, exc)
    # Only a file this run created is removed on failure; O_EXCL made sure it is ours.
    written.append(target)
    digest = hashlib.sha256()
    with os.fdopen(fd, "wb") as handle:
        copied = 0
        while True:
            try:
                chunk = source.read(CHUNK_SIZE)
            except _READ_ERRORS as exc:
                raise UnsafeArchive("%s: member %r cannot be read (%s); the file is truncated or corrupt" % (label, member.name, exc))
            if not chunk:
                break
            copied += len(chunk)
            digest.update(chunk)
            try:
                handle.write(chunk)
            except OSError as exc:
                raise _write_error(label, target, exc)
        if copied != member.size:
            raise UnsafeArchive("%s: member %r is truncated" % (label, member.name))
        try:
            handle.flush()
            os.fsync(handle.fileno())
        except OSError as exc:
            raise _write_error(label, target, exc)
    # Owner and mode are ours, whatever the archive says: 0755 for executables, else 0644.
    os.chmod(target, 0o755 if member.mode & stat.S_IXUSR else 0o644)
    return digest.hexdigest()


class _HashingReader:
    """The archive file read front to back, hashed on the way through."""

    def __init__(self, handle):
        self.handle = handle
        self.digest = hashlib.sha256()
        self._pushed_back = b""

    def peek(self, size):
        """The next *size* bytes, read again by the next read()."""
        if len(self._pushed_back) < size:
            self._pushed_back += self.read(size - len(self._pushed_back))
        return self._pushed_back[:size]

    def read(self, size=-1):
        if self._pushed_back:
            chunk = self._pushed_back if size < 0 else self._pushed_back[:size]
            self._pushed_back = self._pushed_back[len(chunk):]
            return chunk
        chunk = self.handle.read(size)
        self.digest.update(chunk)
        return chunk

    def drain(self):
        """Hash whatever follows the end of the tar stream (padding), so the digest covers the file."""
        for chunk in iter(lambda: self.read(CHUNK_SIZE), b""):
            pass
        return self.digest.hexdigest()


class Unpacked:
    """What one pass over an archive produced: file names, their sha256, the archive's sha256."""

    def __init__(self, names, digests, archive_sha256):
        self.names = names
        self.digests = digests
        self.archive_sha256 = archive_sha256


def unpack(tar_path, dest_dir, label=None, limits=None):
    """Extract the flat regular files of *tar_path* into the existing *dest_dir* in one pass.

    The archive is decompressed once: each member is validated before any of its bytes are
    written, and hashed while it is written, as is the archive itself while it is read. Files
    are created by us (owner = the running user, mode 0755 or 0644 from the archive's executable
    bit only); ownership and timestamps are never taken from it. On any failure every file
    written so far is removed again, so a hostile or broken archive leaves nothing behind.
    Raises UnsafeArchive for a bad archive and ExtractionFailed when writing fails (full disk,
    read-only filesystem). Returns an Unpacked.
    """
    label = label or tar_path
    limits = limits or Limits()
    written, digests = [], {}
    try:
        with open(tar_path, "rb") as raw:
            reader = _HashingReader(raw)
            # gzip's own reader, not tarfile's stream mode: that one stops at the end of the first
            # gzip member and would never see (or refuse) members hidden in a second one.
            stream = gzip.GzipFile(fileobj=reader, mode="rb") if reader.peek(2) == GZIP_MAGIC else reader
            with tarfile.open(fileobj=stream, mode="r|", bufsize=CHUNK_SIZE) as archive:
                checker = _Checker(label, limits)
                for member in archive:
                    name = checker.check(member)
                    if name:
                        digests[name] = _extract_member(label, archive, member, name, dest_dir, written)
                checker.finish()
            archive_sha256 = reader.drain()
    except _READ_ERRORS as exc:
        remove_written(written)
        raise UnsafeArchive("%s: not a readable tar.gz archive (%s); the file is truncated or corrupt" % (label, exc))
    except BaseException:
        remove_written(written)
        raise
    return Unpacked([os.path.basename(path) for path in written], digests, archive_sha256)


def safe_extract(tar_path, dest_dir, label=None, limits=None):
    """unpack() for callers that need only the names of the files written."""
    return unpack(tar_path, dest_dir, label, limits).names


def remove_written(paths):
    """Remove the files a failed extraction or copy created (each one created by us with O_EXCL)."""
    for path in paths:
        unlink_quietly(path)
