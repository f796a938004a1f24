"""Directory entries reach the disk in order: every directory cni_install creates is persisted in
its parent (an fsync of the parent) before anything is put inside it.

The filesystem calls are recorded at the edge (os.mkdir, os.open, os.fsync, os.rename, os.link,
os.symlink wrapped around the real ones); the files the run leaves are real.
"""

from __future__ import annotations

import os

import pytest

from ansible_collections.nodeprep.cni.plugins.modules import cni_install
from testbed_lib.in_process import VERSION_A as A, run_module_in_process

STRAY_BRIDGE = b"#!/bin/sh\n# bridge copied here by an add-on\n"


class Calls:
    """The order of directory creations, fsyncs of directories, and the names they make."""

    def __init__(self, monkeypatch):
        self.events = []
        self._fds = {}
        real = {name: getattr(os, name) for name in ("mkdir", "open", "fsync", "close", "rename", "link", "symlink")}

        def mkdir(path, mode=0o777, *args, **kwargs):
            real["mkdir"](path, mode, *args, **kwargs)
            self.events.append(("mkdir", os.path.abspath(path)))

        def opener(path, flags, *args, **kwargs):
            fd = real["open"](path, flags, *args, **kwargs)
            if isinstance(path, (str, bytes, os.PathLike)) and os.path.isdir(path):
                self._fds[fd] = os.path.abspath(os.fsdecode(path))
            return fd

        def fsync(fd):
            real["fsync"](fd)
            if fd in self._fds:
                self.events.append(("fsync", self._fds[fd]))

        def close(fd):
            self._fds.pop(fd, None)
            real["close"](fd)

        def naming(name):
            def call(src, dst, *args, **kwargs):
                real[name](src, dst, *args, **kwargs)
                self.events.append((name, os.path.abspath(os.fsdecode(dst))))
            return call

        monkeypatch.setattr(os, "mkdir", mkdir)
        monkeypatch.setattr(os, "open", opener)
        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "close", close)
        for name in ("rename", "link", "symlink"):
            monkeypatch.setattr(os, name, naming(name))

    def unpersisted(self) -> list:
        """Directories used (a name made inside them) before their parent was fsynced after their mkdir."""
        problems = []
        for index, (kind, directory) in enumerate(self.events):
            if kind != "mkdir":
                continue
            parent = os.path.dirname(directory)
            for later_kind, path in self.events[index + 1:]:
                if later_kind == "fsync" and path == parent:
                    break
                if later_kind != "fsync" and path.startswith(directory + os.sep):
                    problems.append("%s used (%s %s) before %s was fsynced" % (directory, later_kind, path, parent))
                    break
            else:
                problems.append("%s never persisted in %s" % (directory, parent))
        return problems


def _fresh_node_with_strays(node):
    """No versions dir, no link dir yet except bin_dir, which holds a same-name file to adopt."""
    node.put("opt/cni/bin/bridge", STRAY_BRIDGE, 0o750)


def test_every_new_directory_is_fsynced_into_its_parent_before_it_is_used(node, releases, monkeypatch):
    _fresh_node_with_strays(node)
    calls = Calls(monkeypatch)
    result = run_module_in_process(cni_install, node.args(src=releases[A].path, version=A))
    monkeypatch.undo()
    assert result["rc"] == 0, result.get("msg")
    made = [path for kind, path in calls.events if kind == "mkdir"]
    # The versions dir chain, the k3s link dir chain and the .adopted/<batch>/... chain are all new.
    assert node.versions_dir in made and node.k3s_dir in made
    assert any("/.adopted/" in path for path in made), made
    assert calls.unpersisted() == []
    # Our link holds the adopted file's name.
    assert os.readlink(os.path.join(node.bin_dir, "bridge")) == os.path.join(node.versions_dir, "current", "bridge")


def test_absent_and_a_reinstall_persist_their_new_directories_too(node, releases, monkeypatch):
    _fresh_node_with_strays(node)
    assert run_module_in_process(cni_install, node.args(src=releases[A].path, version=A))["rc"] == 0
    assert run_module_in_process(cni_install, node.args(state="absent"))["rc"] == 0
    calls = Calls(monkeypatch)
    result = run_module_in_process(cni_install, node.args(src=releases[A].path, version=A))
    monkeypatch.undo()
    assert result["rc"] == 0, result.get("msg")
    assert [path for kind, path in calls.events if kind == "mkdir"]
    assert calls.unpersisted() == []


@pytest.mark.parametrize("code, raised", [(5, True), (22, False)])  # EIO raised; EINVAL (cannot fsync a dir) tolerated
def test_fsync_dir_raises_a_real_error_and_tolerates_only_einval(tmp_path, monkeypatch, code, raised):
    from ansible_collections.nodeprep.cni.plugins.module_utils import _atomic

    def failing(fd):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", failing)
    if raised:
        with pytest.raises(OSError) as caught:
            _atomic.fsync_dir(str(tmp_path))
        assert caught.value.errno == code
    else:
        _atomic.fsync_dir(str(tmp_path))
    # A directory that cannot be opened is an error as well, not a silent success.
    monkeypatch.undo()
    with pytest.raises(OSError):
        _atomic.fsync_dir(str(tmp_path / "missing"))
