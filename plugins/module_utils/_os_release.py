# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The node's OS family from ``os-release``, read here and nowhere else in Python.

Roles take the OS family from facts where they gather them; code that runs without facts (the
cni_plugins action) reads ``os-release`` with ``read_command()`` and asks ``os_family``.
"""

from __future__ import annotations

import shlex

# os-release(5): /etc/os-release wins; /usr/lib/os-release is read only where /etc has none.
OS_RELEASE_PATHS = ("/etc/os-release", "/usr/lib/os-release")

FAMILIES = (
    ("Debian", ("debian", "ubuntu")),
    ("RedHat", ("rhel", "fedora", "centos", "rocky", "almalinux", "ol", "amzn")),
    ("Suse", ("suse", "opensuse", "sles", "sle-micro")),
)


def read_command(root: str = "") -> str:
    """A shell command printing the one os-release file that counts (of the tree at *root*)."""
    return " || ".join("cat %s 2>/dev/null" % shlex.quote(root + path) for path in OS_RELEASE_PATHS)


def os_release_fields(text: str) -> dict:
    """``KEY=value`` lines of an os-release file, quotes removed; comments and other lines skipped."""
    fields = {}
    for line in (text or "").splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            fields[key] = value.strip().strip("\"'")
    return fields


def os_family(text: str):
    """Debian, RedHat or Suse from an os-release file's ``ID``, then its ``ID_LIKE``; else None."""
    fields = os_release_fields(text)
    words = (fields.get("ID", "") + " " + fields.get("ID_LIKE", "")).lower().split()
    for word in words:
        for family, ids in FAMILIES:
            if word in ids or (family == "Suse" and word.startswith("opensuse")):
                return family
    return None
