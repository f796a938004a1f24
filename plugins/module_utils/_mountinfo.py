# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kernel's mount table (``/proc/self/mountinfo``) read as data, and the mount holding a path.

Where the table cannot describe the filesystem this process sees (no ``/proc`` in an image build's
chroot, a ``/proc`` of another pid namespace, a chroot whose root is no mount of its own), every
answer is "unknown" with the reason, never a guess: a tmpfs or a private mount seen from outside
the image says nothing about the node the image boots.
"""

from __future__ import annotations

import os
import re

from ansible_collections.nodeprep.cni.plugins.module_utils._paths import is_inside

MOUNTINFO = "/proc/self/mountinfo"
_OCTAL = re.compile(r"\\([0-7]{3})")


class MountTableUnknown(Exception):
    """The mount table does not describe this process's filesystem; the message says why."""


def unescape(field: str) -> str:
    r"""The kernel writes space, tab, newline and backslash in paths as ``\040``, ``\011``, ``\012``, ``\134``."""
    if "\\" not in field:
        return field
    raw = _OCTAL.sub(lambda match: chr(int(match.group(1), 8)), field)
    # Paths are bytes to the kernel: octal escapes of a UTF-8 name decode back to its characters.
    try:
        return raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return raw


def propagation(optional_fields: list) -> str:
    """In findmnt's words: shared or private, then slave (a master:N peer) and unbindable."""
    tags = {field.split(":", 1)[0] for field in optional_fields}
    words = ["shared" if "shared" in tags else "private"]
    if "master" in tags:
        words.append("slave")
    if "unbindable" in tags:
        words.append("unbindable")
    return ",".join(words)


def parse_line(line: str) -> dict:
    """One mountinfo line (proc(5)): ``id parent major:minor root target options [optional…] - fstype source super``."""
    fields = line.rstrip("\n").split(" ")
    try:
        separator = fields.index("-", 6)
        mount_id, parent_id, device, root, target, options = fields[:6]
        fstype, source, super_options = (fields[separator + 1:] + ["", "", ""])[:3]
        return {
            "id": int(mount_id),
            "parent_id": int(parent_id),
            "device": device,
            "root": unescape(root),
            "target": unescape(target),
            "options": options,
            "super_options": super_options,
            "fstype": fstype,
            "source": unescape(source),
            "propagation": propagation(fields[6:separator]),
            "read_only": "ro" in options.split(","),
        }
    except (ValueError, IndexError):
        raise MountTableUnknown("%s has a line this reader does not understand: %r" % (MOUNTINFO, line[:200]))


def parse(text: str) -> list:
    """Every mount, in the kernel's order (a later mount on the same target covers an earlier one)."""
    return [parse_line(line) for line in text.splitlines() if line.strip()]


def read_table(path: str = MOUNTINFO) -> list:
    """The mounts this process sees; raises MountTableUnknown where the table cannot say."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise MountTableUnknown("%s does not exist: /proc is not mounted here (an image build's chroot?)" % path)
    except OSError as error:
        raise MountTableUnknown("%s cannot be read: %s" % (path, error.strerror or error))
    mounts = parse(text)
    if not any(mount["target"] == "/" for mount in mounts):
        # The kernel leaves out mounts outside this process's root: a chroot into a plain directory
        # of the build host's filesystem has none at "/", and what holds its files is the host's.
        raise MountTableUnknown("%s has no mount at / for this process: running in a chroot of a directory, "
                                "so the mounts are the build host's, not the node's" % path)
    return mounts


def _device(stat_result) -> str:
    return "%d:%d" % (os.major(stat_result.st_dev), os.minor(stat_result.st_dev))


def nearest_existing(path: str) -> str:
    """The path's first existing ancestor (itself if it exists), resolved like findmnt --target."""
    current = os.path.normpath(path)
    while not os.path.lexists(current) and current != "/":
        current = os.path.dirname(current)
    return os.path.realpath(current)


def on_target(mounts: list, target: str):
    """The mount seen at target (the last of a stack), or None when nothing is mounted exactly there."""
    found = [mount for mount in mounts if mount["target"] == target]
    return found[-1] if found else None


def holding(mounts: list, path: str):
    """The mount holding path: the deepest target that is path or one of its parents, topmost of its stack."""
    best = None
    for mount in mounts:
        target = mount["target"]
        # Both are the kernel's spellings already, and the table may be another root's: compare them as they are.
        if is_inside(path, target, resolve=False) and (best is None or len(target) >= len(best["target"])):
            best = mount
    return best


def check_device(mount: dict, path: str, stat_func=os.stat):
    """The table and the filesystem must agree on the device under path, or the table is another root's.

    btrfs subvolumes report another device number to stat than to mountinfo: not checked there."""
    if mount is None or mount["fstype"] == "btrfs":
        return
    try:
        seen = _device(stat_func(path))
    except OSError:
        return
    if seen != mount["device"]:
        raise MountTableUnknown("%s says %s is on device %s (%s at %s) but the filesystem says %s: the table describes "
                                "another root than this process's" % (MOUNTINFO, path, mount["device"], mount["fstype"],
                                                                      mount["target"], seen))
