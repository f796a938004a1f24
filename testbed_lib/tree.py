"""Byte-level pictures of a node's files, for tests that must prove nothing changed."""
from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path


def snapshot(root: str | os.PathLike, skip: tuple[str, ...] = (), owners: bool = False) -> dict:
    """Every entry under root (not root itself), by relative path: ("link", target), ("dir", mode),
    ("file", mode, sha256) or ("other", mode), plus (uid, gid) with ``owners``; the bytes a test
    compares. ``skip``: relative paths of dirs left out with everything below them."""
    root = Path(root)
    found = {}
    if not root.exists():
        return found
    for directory, dirnames, filenames in os.walk(root):
        relative_dir = os.path.relpath(directory, root)
        dirnames[:] = [d for d in dirnames if os.path.normpath(os.path.join(relative_dir, d)) not in skip]
        for name in sorted(dirnames + filenames):
            path = Path(directory) / name
            info = path.lstat()
            rel = str(path.relative_to(root))
            if stat.S_ISLNK(info.st_mode):
                entry = ("link", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                entry = ("dir", stat.S_IMODE(info.st_mode))
            elif stat.S_ISREG(info.st_mode):
                entry = ("file", stat.S_IMODE(info.st_mode), hashlib.sha256(path.read_bytes()).hexdigest())
            else:
                entry = ("other", stat.S_IMODE(info.st_mode))
            found[rel] = entry + (info.st_uid, info.st_gid) if owners else entry
    return found


def node_state(node) -> dict:
    return {"opt": snapshot(node.path("/opt")), "cache": snapshot(node.path("/var/cache/nodeprep"))}


def resolved_links(node, directory="/opt/cni/bin") -> dict:
    """name -> fully resolved path, as the node itself resolves it."""
    out = node.run("for f in %s/*; do printf '%%s %%s\\n' \"${f##*/}\" \"$(readlink -f \"$f\")\"; done" % directory).stdout
    return dict(line.split(" ", 1) for line in out.strip().splitlines())


def temp_leftovers(node) -> list:
    hits = []
    for top in ("/opt", "/var/cache/nodeprep"):
        for rel in snapshot(node.path(top)):
            base = os.path.basename(rel)
            if base.startswith((".stage-", ".trash-")) or base.endswith((".tmp", ".part")):
                hits.append(top + "/" + rel)
    return hits
