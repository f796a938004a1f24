# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release tarball as cni_install reads it: unpacked at most once, and only when needed.

The planner needs the release's plugin names only when the wanted version is not installed
intact, and the installer then needs the same files on disk. A real run therefore unpacks the
tarball the first time the planner asks, into a private stage dir in versions_dir (on the same
filesystem as its final place), and the installer uses that stage: one decompression, each file
hashed while it is written. A run that may not write (check mode) only lists the archive.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from ansible_collections.nodeprep.cni.plugins.module_utils._atomic import fsync_dir
from ansible_collections.nodeprep.cni.plugins.module_utils._install_tree import STAGE_PREFIX
from ansible_collections.nodeprep.cni.plugins.module_utils._manifest import is_plugin_name
from ansible_collections.nodeprep.cni.plugins.module_utils._safe_tar import list_members, unpack


def make_stage(versions_dir: str, version: str) -> str:
    """A new private stage dir for *version* in versions_dir, where the finished version is renamed from."""
    stage_dir = tempfile.mkdtemp(prefix="%sv%s-" % (STAGE_PREFIX, version), dir=versions_dir)
    os.chmod(stage_dir, 0o755)  # mkdtemp's 0700 would hide the plugins from non-root readers
    fsync_dir(versions_dir)
    return stage_dir


class ReleaseTarball:
    """*src* for one run of cni_install; *versions_dir* is where a stage may be made."""

    def __init__(self, src: str, versions_dir: str, version: str, may_write: bool):
        self.src = src
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
        except BaseException:
            shutil.rmtree(stage_dir, ignore_errors=True)
            raise
        self._stage_dir = stage_dir
        self._names = self._unpacked.names
