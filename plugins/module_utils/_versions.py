# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Version strings, each kind parsed here and nowhere else, into one comparable type.

Four kinds of text carry a version, each with its own grammar:

* a CNI plugins release as users write it (``release_version``): ``1.9.1`` or ``v1.9.1``, exactly
  ``X.Y.Z`` without leading zeros, since it names an upstream asset;
* the name of an installed version, a directory ``v<name>`` under versions_dir
  (``dir_version``, or ``installed_version`` for a name a user gives, ``v`` optional): a release or
  a package's label, ``X.Y.Z`` with an optional suffix (``1.1.1+ds1-3+b5``);
* an OS package's version (``package_version``): ``[epoch:]upstream[-revision]`` as dpkg or rpm
  report it, mapped to the name of the version directory it is installed as;
* containerd's version (``containerd_version``): the output of ``containerd --version`` or what a
  user gives for it (``1.7``, ``2.3.4``, ``v2.3.0-rc.1``, Debian's ``1.7.24~ds1``).

The CNI spec version a config asks for (``cniVersion``) is a fifth, read by ``spec_version``.
"""

from __future__ import annotations

import functools
import re

# Longest version-directory name accepted: a package's label can grow with its revision.
MAX_NAME_LENGTH = 100

_RELEASE = re.compile(r"^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\Z")
_NAME = re.compile(r"^(\d+)\.(\d+)\.(\d+)([-+][0-9A-Za-z.+-]+)?\Z")
_PACKAGE = re.compile(r"^(?:([0-9]+):)?([0-9][0-9A-Za-z.+~-]*)\Z")
# containerd: X.Y or X.Y.Z, then what its builds append (Debian's ~ds1, +unknown, -rc.1).
_CONTAINERD = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?([-+~][0-9A-Za-z.+~-]*)?\Z")
# libcni reads one to three numeric parts (``1.0`` is 1.0.0).
_SPEC = re.compile(r"^(\d+)(?:\.(\d+))?(?:\.(\d+))?\Z")


@functools.total_ordering
class Version:
    """A version: ``release`` (major, minor, patch), an optional ``suffix`` and its ``text``.

    Ordered by release numerically; a version with a suffix sorts before the same release without
    one (a pre-release before its release, and so a package's build label too), suffixes among
    themselves by text. ``text`` is the spelling the version is known by: a release's ``X.Y.Z``,
    an installed version's directory name without its ``v``, containerd's version as printed.
    Equal versions have equal text.
    """

    __slots__ = ("release", "suffix", "text")

    def __init__(self, release, suffix: str = "", text: str = ""):
        self.release = tuple(int(part) for part in release)
        self.suffix = suffix or ""
        self.text = text or "%d.%d.%d%s" % (self.release + (self.suffix,))

    @property
    def major(self) -> int:
        return self.release[0]

    @property
    def minor(self) -> int:
        return self.release[1]

    def _key(self):
        return (self.release, 0 if self.suffix else 1, self.suffix, self.text)

    def __eq__(self, other):
        return isinstance(other, Version) and self._key() == other._key()

    def __lt__(self, other):
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    def __hash__(self):
        return hash(self._key())

    def __str__(self):
        return self.text

    def __repr__(self):
        return "Version(%r)" % self.text


def _text(value) -> str:
    return str(value if value is not None else "").strip()


def release_version(value) -> Version:
    """A CNI plugins release, ``1.4.1`` or ``v1.4.1``; ValueError naming the value otherwise."""
    match = _RELEASE.match(_text(value))
    if not match:
        raise ValueError("invalid CNI plugins version %r; give a release version such as 1.4.1 or v1.4.1" % (value,))
    return Version(match.groups())


def release_key(value) -> str:
    """How a release is looked up in a checksum table: its text, without a ``v`` (or ``V``)."""
    text = _text(value)
    return text[1:] if text[:1] in ("v", "V") else text


def dir_version(entry: str):
    """The installed version a versions_dir entry ``v<name>`` names, or None for any other entry."""
    match = _NAME.match(entry[1:]) if entry.startswith("v") else None
    if not match:
        return None
    return Version(match.groups()[:3], match.group(4) or "", entry[1:])


def installed_version(value) -> Version:
    """An installed version's name as a user gives it (``v`` optional); ValueError if it names none."""
    text = _text(value)
    found = dir_version(text if text.startswith("v") else "v" + text)
    if found is None or len(found.text) > MAX_NAME_LENGTH:
        raise ValueError("version %r is not an installed version's name; use the name under versions_dir without the "
                         "leading v, such as 1.9.1 or 1.1.1+ds1-3+b5" % (value,))
    return found


def version_key(name: str) -> Version:
    """Sort key of an installed version's name; a name that is none sorts first, by its text."""
    return dir_version("v" + name) or Version((0, 0, 0), "\0" + name, name)


def package_version(value) -> Version:
    """The installed version an OS package's version is named as; ValueError when no name is safe.

    ``[epoch:]upstream[-revision]`` keeps upstream and revision as they are (the names allow ``+``,
    ``-`` and ``.`` after ``X.Y.Z``); ``~`` (Debian's "sorts before") becomes ``-``; a non-zero
    epoch is appended as ``+epoch<N>``, since ``:`` separates the entries of ``CNI_PATH`` and
    ``PATH``. So ``1.1.1+ds1-3+b5`` -> ``1.1.1+ds1-3+b5`` and ``1:1.4.0-1.1`` -> ``1.4.0-1.1+epoch1``.
    """
    match = _PACKAGE.match(_text(value))
    found = None
    if match:
        epoch, rest = match.groups()
        label = rest.replace("~", "-")
        if epoch and int(epoch) != 0:
            label += "+epoch%d" % int(epoch)
        found = dir_version("v" + label)
    if found is None or len(found.text) > MAX_NAME_LENGTH:
        raise ValueError("package version %r does not map to a version directory name (it must start with X.Y.Z and use "
                         "only letters, digits, '.', '+', '-', '~' and an epoch); pass version to name it yourself"
                         % (value,))
    return found


def _containerd_field(field: str):
    match = _CONTAINERD.match(field)
    if not match:
        return None
    major, minor, patch, suffix = match.groups()
    return Version((major, minor, patch or 0), suffix or "", field)


def containerd_version(value):
    """containerd's version from ``containerd --version`` output or a user's string, else None.

    The output reads ``containerd <module path> <version> [<commit>]``; Debian prints e.g.
    ``containerd github.com/containerd/containerd/v2 2.1.9+unknown``, where the ``/v2`` of the
    module path is not a version. The third field of such a line is taken first, then any field
    that is wholly a version. ``release`` is what decides containerd's features (a pre-release of
    2.3.0 reads what 2.3.0 reads); ``text`` is the version as printed (``v1.7.24``, ``2.1.9+unknown``).
    """
    for line in _text(value).splitlines():
        fields = line.split()
        candidates = fields[2:3] + fields if len(fields) >= 3 and fields[0] == "containerd" else fields
        for field in candidates:
            found = _containerd_field(field)
            if found is not None:
                return found
    return None


def spec_version(value):
    """The CNI spec version a config asks for (``cniVersion``, ``1.1.0``), or None when it is none."""
    match = _SPEC.match(value) if isinstance(value, str) else None
    return Version(tuple(int(part or 0) for part in match.groups()), "", value) if match else None
