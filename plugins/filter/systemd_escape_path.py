# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Paths as systemd units name and run them: unit names escaped as ``systemd-escape --path`` does,
and words of an ``ExecStart=`` line quoted so systemd reads each as one argument, unchanged."""

from __future__ import annotations

import posixpath
import re

from ansible.errors import AnsibleFilterError

# systemd keeps these bytes of a path in a unit name; every other byte becomes \xNN.
_UNIT_NAME_KEEPS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_.")
# A unit name, suffix included, is shorter than systemd's UNIT_NAME_MAX (256).
UNIT_NAME_MAX = 255
_PLAIN_WORD = re.compile(r"[A-Za-z0-9/_.:@+=,-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def path_problem(path) -> str:
    """Why ``path`` cannot name a mount point in a unit file, or an empty string."""
    if not isinstance(path, str) or not path:
        return "is not a path"
    if _CONTROL.search(path):
        return "holds a control character (a newline or tab), which a unit file cannot carry"
    if not path.startswith("/"):
        return "is not an absolute path"
    if path == "/":
        return "is the root directory"
    if path.startswith("//") or posixpath.normpath(path) != path:
        return "is not a normalised path (write it as %s)" % posixpath.normpath("/" + path.lstrip("/"))
    if path != path.rstrip():
        return "ends with white space, which a unit file drops"
    return ""


def systemd_escape_path(path, variable="path", suffix="mount"):
    """The unit name systemd gives ``path`` (``systemd-escape --path --suffix=SUFFIX``)."""
    problem = path_problem(path)
    if problem:
        raise AnsibleFilterError("%s %r %s; set %s to an absolute, normalised directory such as /run/netns"
                                 % (variable, path, problem, variable))
    escaped = []
    for index, byte in enumerate(path.strip("/").encode("utf-8")):
        if byte == ord("/"):
            escaped.append("-")
        elif byte in _UNIT_NAME_KEEPS and not (index == 0 and byte == ord(".")):
            escaped.append(chr(byte))
        else:
            escaped.append("\\x%02x" % byte)
    name = "".join(escaped) + ("." + suffix if suffix else "")
    if len(name) > UNIT_NAME_MAX:
        raise AnsibleFilterError("%s %r gives the unit name %s, longer than systemd's %d characters; set %s to a shorter path"
                                 % (variable, path, name, UNIT_NAME_MAX, variable))
    return name


def systemd_exec_arg(word) -> str:
    """``word`` as one argument of an ``ExecStart=`` line: quoted where needed, with ``%`` and ``$``
    doubled so neither specifiers nor environment variables are expanded in it."""
    word = str(word)
    if _CONTROL.search(word):
        raise AnsibleFilterError("%r holds a control character, which a unit file cannot carry" % word)
    if _PLAIN_WORD.fullmatch(word):
        return word
    quoted = word.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return '"%s"' % quoted


class FilterModule:
    """nodeprep.cni's systemd unit filters."""

    def filters(self):
        return {"systemd_escape_path": systemd_escape_path, "systemd_exec_arg": systemd_exec_arg}
