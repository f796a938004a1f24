# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Names and URLs of containernetworking/plugins release assets, and the releases to refuse."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

DEFAULT_BASE_URL = "https://github.com/containernetworking/plugins/releases/download"
SUPPORTED_OS = ("linux",)

# Releases before 0.7.0 named their assets without the OS ("cni-plugins-amd64-v0.6.0.tgz").
MINIMUM_VERSION = (0, 7, 0)

# Upstream releases that were published incomplete; the value is the release to use instead.
BROKEN_VERSIONS = {"1.6.1": "1.6.2", "1.7.0": "1.7.1"}

_VERSION_RE = re.compile(r"^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")


def version_tuple(version: str) -> tuple:
    """(major, minor, patch) of a normalized version, for ordering."""
    return tuple(int(part) for part in version.split("."))


def normalize_version(version) -> str:
    """Return ``"1.4.1"`` for ``"1.4.1"`` or ``"v1.4.1"``; raise ValueError for anything else."""
    text = str(version if version is not None else "").strip()
    match = _VERSION_RE.match(text)
    if not match:
        raise ValueError(
            "invalid CNI plugins version %r; give a release version such as 1.4.1 or v1.4.1" % (version,)
        )
    normalized = ".".join(match.groups())
    if version_tuple(normalized) < MINIMUM_VERSION:
        raise ValueError(
            "CNI plugins %s is not supported: releases before 0.7.0 use other asset names; use 0.7.0 or newer"
            % normalized
        )
    return normalized


def refuse_broken(version: str, broken=None) -> None:
    """Raise ValueError naming the replacement when *version* is a known-broken upstream release."""
    table = BROKEN_VERSIONS if broken is None else broken
    replacement = table.get(version)
    if replacement:
        raise ValueError("CNI plugins %s is a known-broken release; use %s" % (version, replacement))


def broken_table(table) -> dict:
    """A user's broken-release table ``{version: replacement}`` with both sides normalized.

    Raises ValueError naming the bad entry, so a typo cannot silently let a broken release through.
    """
    normalized = {}
    for broken, replacement in (table or {}).items():
        try:
            normalized[normalize_version(broken)] = normalize_version(replacement)
        except ValueError as exc:
            raise ValueError("broken_versions entry %r: %r: %s" % (broken, replacement, exc))
    return normalized


def asset_name(version: str, os_name: str, arch: str) -> str:
    """File name of the release tarball, e.g. ``cni-plugins-linux-amd64-v1.4.1.tgz``."""
    return "cni-plugins-%s-%s-v%s.tgz" % (os_name, arch, version)


def release_url(base_url: str, version: str, os_name: str, arch: str) -> str:
    """``{base_url}/v{version}/{asset}``; a trailing slash on *base_url* is ignored."""
    return "%s/v%s/%s" % (base_url.rstrip("/"), version, asset_name(version, os_name, arch))


def public_url(url):
    """*url* without its userinfo (user and password): the only form a URL is stored or returned in.

    A URL travels into module results, the cache's verified record, the node's manifest (readable
    by every user) and the verify report; credentials belong in ``headers``, which are never stored.
    """
    if not url:
        return url
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path, parts.query, parts.fragment))
