# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A path's one spelling, and whether a path lies inside a directory, decided here and nowhere else.

Both resolve symlinks the same way (``realpath``, also through a missing tail's parents), so
``/opt`` -> ``/var/opt`` (Fedora CoreOS), a trailing slash or a ``..`` cannot make one directory
look like two, or a path outside look like one inside.
"""

from __future__ import annotations

import os
import posixpath


def canonical(path: str) -> str:
    """The one spelling of *path*: absolute, every symlink resolved, no ``.``, ``..`` or trailing slash."""
    return os.path.realpath(os.path.abspath(path))


def is_inside(path: str, directory: str, resolve: bool = True) -> bool:
    """True when *path* is *directory* itself or lies below it.

    Both are canonicalised first. ``resolve=False`` compares their normalised spelling alone, for
    paths of another machine (a node's, read on the controller), where no symlink can be resolved.
    """
    if resolve:
        path, directory = canonical(path), canonical(directory)
    else:
        path, directory = posixpath.normpath(path), posixpath.normpath(directory)
    return path == directory or path.startswith(directory.rstrip("/") + "/")
