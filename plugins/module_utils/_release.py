# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Names and URLs of containernetworking/plugins release assets, and the releases to refuse."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from ansible_collections.nodeprep.cni.plugins.module_utils._versions import release_version

DEFAULT_BASE_URL = "https://github.com/containernetworking/plugins/releases/download"
SUPPORTED_OS = ("linux",)

# Releases before 0.7.0 named their assets without the OS ("cni-plugins-amd64-v0.6.0.tgz").
MINIMUM_VERSION = (0, 7, 0)

# Upstream releases that were published incomplete; the value is the release to use instead.
BROKEN_VERSIONS = {"1.6.1": "1.6.2", "1.7.0": "1.7.1"}


def normalize_version(version) -> str:
    """Return ``"1.4.1"`` for ``"1.4.1"`` or ``"v1.4.1"``; raise ValueError for anything else."""
    release = release_version(version)
    if release.release < MINIMUM_VERSION:
        raise ValueError(
            "CNI plugins %s is not supported: releases before 0.7.0 use other asset names; use 0.7.0 or newer"
            % release
        )
    return release.text


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
