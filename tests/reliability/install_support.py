"""Releases, node set-ups and the pictures the install reliability tests compare."""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
from pathlib import Path

from ansible_collections.nodeprep.cni.plugins.module_utils._manifest import verify_version_dir
from testbed_lib.releases import DEBIAN_PLUGINS_DIR, available_plugins, file_member, pack, release_members, write_release

VERSIONS_DIR = "/opt/cni/versions"
BIN_DIR = "/opt/cni/bin"
K3S_DIR = "/var/lib/rancher/k3s/data/cni"
NODE_CACHE = "/var/cache/nodeprep/cni"
LEFTOVER_PREFIXES = (".stage-", ".trash-", ".journal")

STRAY_BRIDGE = b"#!/bin/sh\n# bridge dropped here by an add-on's init container\necho '{}'\n"
CALICO = b"\x7fELF calico plugin, not ours\n"


def script(text: str) -> bytes:
    return ("#!/bin/sh\n%s\n" % text).encode()


VERSION_ANSWER = 'echo \'{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}\''


def build(root: Path, version: str, extra: dict | None = None, replace: dict | None = None):
    """A release of Debian's real plugins, plus or instead of some script plugins."""
    names = available_plugins()
    members = release_members(version, "amd64", DEBIAN_PLUGINS_DIR, names)
    if replace:
        members = [m for m in members if m[0].name.lstrip("./") not in replace]
    for name, data in sorted(dict(extra or {}, **(replace or {})).items()):
        members.append(file_member("./" + name, data, 0o755))
    return write_release(root, version, "amd64", pack(members), plugins=sorted(set(names) | set(extra or {})))


def place(node, release) -> str:
    """Copy a release tarball into the node's cache; return its path inside the node."""
    inside = "%s/%s" % (NODE_CACHE, release.filename)
    target = node.path(inside)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        shutil.copy2(release.path, target)
    return inside


def args(**extra) -> dict:
    values = {"versions_dir": VERSIONS_DIR, "bin_dir": BIN_DIR, "link_dirs": [K3S_DIR], "lock_timeout": 60, "probe_timeout": 20}
    values.update(extra)
    return values


def put_strays(node) -> None:
    """What a node has before us: an add-on's bridge, calico's plugin, a distro's link in k3s's dir."""
    write(node, BIN_DIR + "/bridge", STRAY_BRIDGE, 0o750)
    write(node, BIN_DIR + "/calico", CALICO, 0o755)
    k3s = node.path(K3S_DIR)
    k3s.mkdir(parents=True, exist_ok=True)
    os.symlink("/usr/lib/cni/host-local", k3s / "host-local")


def protect_strays(node, user_files) -> None:
    user_files.protect(node, BIN_DIR + "/bridge")
    user_files.protect(node, BIN_DIR + "/calico")


def write(node, inside: str, data: bytes, mode: int = 0o644) -> None:
    path = node.path(inside)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)


LINK_DIRS = (BIN_DIR, K3S_DIR)
# Our temp names: ".<final name>.<8 random characters>.tmp", beside the final name.
TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
TREES = ("/opt", "/var/lib/rancher")


def picture(node, dirs=LINK_DIRS) -> dict:
    """What a run promises, without timestamps: pointers, versions, links, user files, leftovers."""
    versions = node.path(VERSIONS_DIR)
    found = {"current": _link(versions / "current"), "previous": _link(versions / "previous"),
             "versions": sorted(p.name for p in versions.glob("v*") if p.is_dir()) if versions.is_dir() else [],
             "leftovers": sorted(p.name for p in versions.iterdir() if p.name.startswith(LEFTOVER_PREFIXES)) if versions.is_dir() else [],
             "entries": {}}
    for directory in dirs:
        host = node.path(directory)
        if not host.is_dir():
            continue
        for entry in sorted(host.iterdir()):
            found["entries"][directory + "/" + entry.name] = picture_entry(entry)
    return found


def _link(path: Path):
    try:
        return os.readlink(path)
    except OSError:
        return None


def invariant_problems(node, *before: dict, dirs=LINK_DIRS) -> list:
    """Broken promises right after a run was cut off: `current` complete, every link runnable
    or as it was in one of the *before* pictures (before the run, or the user's own originals)."""
    problems = []
    versions = node.path(VERSIONS_DIR)
    current = _link(versions / "current")
    if current is not None:
        verdict = verify_version_dir(str(versions / current))
        if not verdict["intact"]:
            problems.append("current -> %s is not complete: %s" % (current, verdict))
    for directory in dirs:
        host = node.path(directory)
        if not host.is_dir():
            continue
        for entry in sorted(host.iterdir()):
            key = directory + "/" + entry.name
            if TEMP_NAME.match(entry.name):
                continue  # a hidden temp of a cut-off step: no runtime looks it up; the next run removes it
            if entry.is_symlink() and os.readlink(entry).startswith(VERSIONS_DIR + "/"):
                resolved = Path(os.path.realpath(node.path(os.readlink(entry))))
                if not (resolved.is_file() and os.access(resolved, os.X_OK)):
                    problems.append("%s -> %s does not resolve to a runnable plugin" % (key, os.readlink(entry)))
            elif all(picture["entries"].get(key) != picture_entry(entry) for picture in before):
                problems.append("%s is neither our link nor what was there before" % key)
    return problems


def picture_entry(entry: Path):
    info = entry.lstat()
    if stat.S_ISLNK(info.st_mode):
        return ("link", os.readlink(entry))
    if stat.S_ISREG(info.st_mode):
        return ("file", hashlib.sha256(entry.read_bytes()).hexdigest())
    return ("other", stat.S_IFMT(info.st_mode))


def save_tree(node, dest: Path, trees=TREES) -> None:
    """Keep the node's install-related trees (through the overlay) to put back between rounds."""
    for inside in trees:
        if node.path(inside).exists():
            shutil.copytree(node.path(inside), dest / inside.lstrip("/"), symlinks=True)


def restore_tree(node, saved: Path, trees=TREES) -> None:
    for inside in trees:
        if node.path(inside).exists():
            shutil.rmtree(node.path(inside))
        if (saved / inside.lstrip("/")).exists():
            shutil.copytree(saved / inside.lstrip("/"), node.path(inside), symlinks=True)
