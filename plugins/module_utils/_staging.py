# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release tarball as cni_install reads it: unpacked at most once, and only when needed.

The planner needs the release's plugin names only when the wanted version is not installed
intact, and the installer then needs the same files on disk. A real run therefore unpacks the
tarball the first time the planner asks, into a private stage dir in versions_dir (on the same
filesystem as its final place), and the installer uses that stage: one decompression, each file
hashed while it is written. A run that may not write (check mode) only lists the archive.

A tarball handed over with its digest (the controller's verified copy, pushed into the task's
temporary directory) is verified on the node before anything reads it as an archive, and moved
into the node's release cache in the same step: renamed where both share a filesystem, else copied
and hashed in one pass. The unpack hashes the archive again and must find the same digest, so a
file swapped between the check and the unpack is refused too.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile

from ansible_collections.nodeprep.cni.plugins.module_utils._atomic import fsync_dir, make_dirs, temp_file, unlink_quietly
from ansible_collections.nodeprep.cni.plugins.module_utils._checksums import parse_checksum_spec
from ansible_collections.nodeprep.cni.plugins.module_utils._hashing import CHUNK_SIZE, file_digest, new_hash
from ansible_collections.nodeprep.cni.plugins.module_utils._install_tree import STAGE_PREFIX
from ansible_collections.nodeprep.cni.plugins.module_utils._manifest import is_plugin_name
from ansible_collections.nodeprep.cni.plugins.module_utils._safe_tar import list_members, unpack


class SrcMismatch(ValueError):
    """src is not the file its checksum names: nothing read it as an archive, nothing was cached."""


def expected_digest(checksum):
    """(algorithm, hex) of a ``sha256:<hex>`` / ``sha512:<hex>`` checksum option, or None when none is given."""
    if not checksum:
        return None
    return parse_checksum_spec(checksum, "checksum")


def _mismatch(src, algorithm, wanted, actual):
    return SrcMismatch("src %s has %s %s, not the %s the checksum option names; it was not used and the cache is unchanged "
                       "(a transfer cut short or a file replaced on the node): run again" % (src, algorithm, actual, wanted))


def verify_src(src: str, expected) -> None:
    """Refuse *src* unless it has the *expected* (algorithm, hex) digest."""
    algorithm, wanted = expected
    actual = file_digest(src, algorithm)
    if actual != wanted:
        raise _mismatch(src, algorithm, wanted, actual)


def cache_src(src: str, expected, cache_dir: str) -> str:
    """*src* verified and moved into *cache_dir* under its own name (one rename, or a copy hashed while
    it is written where the two are on different filesystems); returns its path there."""
    algorithm, wanted = expected
    make_dirs(cache_dir)
    final = os.path.join(cache_dir, os.path.basename(src))
    if os.path.realpath(src) == os.path.realpath(final):
        verify_src(src, expected)
        return final
    if os.stat(src).st_dev == os.stat(cache_dir).st_dev:
        verify_src(src, expected)
        try:
            os.chmod(src, 0o644)
            os.rename(src, final)
        except OSError as exc:
            # Another user's file in a sticky temporary directory (become to another user): copied below.
            if exc.errno not in (errno.EPERM, errno.EACCES):
                raise
        else:
            fsync_dir(cache_dir)
            return final
    fd, partial = temp_file(cache_dir, os.path.basename(src))
    try:
        digest = new_hash(algorithm)
        with open(src, "rb") as source, os.fdopen(fd, "wb") as copy:
            for chunk in iter(lambda: source.read(CHUNK_SIZE), b""):
                digest.update(chunk)
                copy.write(chunk)
        if digest.hexdigest() != wanted:
            raise _mismatch(src, algorithm, wanted, digest.hexdigest())
        # No fsync: every use of the cache verifies the file first, so a copy a power cut tore costs a fetch, not a bad install.
        os.chmod(partial, 0o644)
        os.rename(partial, final)
    except BaseException:
        unlink_quietly(partial)
        raise
    unlink_quietly(src)
    return final


def forget_upload_dir(src_dir: str, task_tmpdir) -> bool:
    """Remove *src_dir* when it is the task's temporary directory (which Ansible would remove with a
    command of its own) and the move left it empty; True when it is gone."""
    if not task_tmpdir or os.path.realpath(src_dir) != os.path.realpath(task_tmpdir):
        return False
    try:
        os.rmdir(src_dir)
    except OSError as exc:
        return exc.errno == errno.ENOENT
    return True


def make_stage(versions_dir: str, version: str) -> str:
    """A new private stage dir for *version* in versions_dir, where the finished version is renamed from."""
    stage_dir = tempfile.mkdtemp(prefix="%sv%s-" % (STAGE_PREFIX, version), dir=versions_dir)
    os.chmod(stage_dir, 0o755)  # mkdtemp's 0700 would hide the plugins from non-root readers
    fsync_dir(versions_dir)
    return stage_dir


class ReleaseTarball:
    """*src* for one run of cni_install; *versions_dir* is where a stage may be made."""

    def __init__(self, src: str, versions_dir: str, version: str, may_write: bool, expected=None):
        self.src = src
        # (algorithm, hex) src was verified against; the unpack's own sha256 of the archive must match it.
        self.expected = expected
        self.versions_dir = versions_dir
        self.version = version
        self.may_write = may_write
        self._names = None
        self._stage_dir = None
        self._unpacked = None

    def plugin_names(self) -> list:
        """The plugin names in the tarball, every member validated (unpacking it when the run may write)."""
        if self._names is None:
            if self.may_write:
                self._unpack()
            else:
                self._names = list_members(self.src)
        return [name for name in self._names if is_plugin_name(name)]

    def staged(self):
        """(stage dir, Unpacked) with the release's files; the stage is the caller's from now on."""
        if self._stage_dir is None:
            self._unpack()
        stage_dir, self._stage_dir = self._stage_dir, None
        return stage_dir, self._unpacked

    def discard(self) -> None:
        """Remove a stage nobody took (the plan was refused or needed no install)."""
        if self._stage_dir is not None:
            shutil.rmtree(self._stage_dir, ignore_errors=True)
            self._stage_dir = None

    def _unpack(self) -> None:
        stage_dir = make_stage(self.versions_dir, self.version)
        try:
            self._unpacked = unpack(self.src, stage_dir)
            if self.expected and self.expected[0] == "sha256" and self._unpacked.archive_sha256 != self.expected[1]:
                raise _mismatch(self.src, "sha256", self.expected[1], self._unpacked.archive_sha256)
        except BaseException:
            shutil.rmtree(stage_dir, ignore_errors=True)
            raise
        self._stage_dir = stage_dir
        self._names = self._unpacked.names
