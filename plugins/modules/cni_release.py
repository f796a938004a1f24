#!/usr/bin/python
# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fetch a containernetworking/plugins release tarball into a cache and verify it."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cni_release
short_description: Download and verify a CNI plugins release tarball into a cache
version_added: 0.1.0
author:
  - nodeprep.cni contributors (@nodeprep)
description:
  - Downloads C(cni-plugins-<os>-<arch>-v<version>.tgz) of U(https://github.com/containernetworking/plugins)
    into O(cache_dir), verifies it and returns its path and sha256.
  - The expected digest comes from, in order, O(checksum), the user table O(checksums), the table of official
    values shipped with the collection, and finally the release's own C(.sha256) or C(.sha512) file, fetched from the
    same mirror that serves the tarball. O(require_pinned=true) refuses that last fallback.
  - A release verified only against that checksum file (also when the cached file is verified against the record
    of such a check) is trusted on first use - the file comes from the server that serves the tarball, so it proves
    an intact download, not an authentic one - and the module warns each time, naming the version and how to pin it.
  - A cached tarball that still verifies is returned without any network request. For versions verified through a
    release checksum file a sidecar record C(<asset>.verified.json) lets a re-run verify the cache offline.
  - Known-broken upstream releases (O(broken_versions); 1.6.1 and 1.7.0 by default) are refused before any request,
    naming the release to use instead.
  - Parallel runs on one host download an asset once; the others wait on the cache's lock file C(<cache_dir>/.lock)
    and reuse the result. The lock file stays in place for good (removing it would let a waiting run and a newcomer
    both proceed).
  - A downloaded tarball enters the cache only when it verifies and is a well-formed release archive (flat regular
    files with plain names, within size limits); anything else is refused naming the URL, before it reaches the cache.
  - Leftovers of runs that were killed mid-download (C(.<asset>.download), C(..<asset>.download.*.part),
    C(.<asset>.verified.json.*.tmp)) are removed by the next run, under the cache's lock, so never while a
    download that owns them is still running.
  - Uses C(requests) when it is installed, otherwise C(ansible.module_utils.urls); proxy variables from the
    environment (C(https_proxy), C(no_proxy)...) are honoured either way.
  - Redirects are followed, but O(headers) are sent only to the origin (scheme, host and port) of the URL being
    fetched, on both HTTP backends. A redirect to another host, another port or another scheme gets none of them,
    so a token for a private mirror never reaches the storage host it redirects to.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Never downloads or writes; reports O(cache_dir) entries that would be downloaded as changed.
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  version:
    description:
      - Release version, with or without a leading C(v) (V(1.4.1) or V(v1.4.1)).
      - Versions before 0.7.0 used other asset names and are not supported.
    type: str
    required: true
  os:
    description: Operating system part of the asset name.
    type: str
    choices: [linux]
    default: linux
  arch:
    description:
      - Architecture part of the asset name, in Go's GOARCH spelling (V(amd64), V(arm), V(arm64),
        V(ppc64le), V(s390x), V(riscv64), V(mips64le)) or as the kernel reports it
        (C(ansible_facts.architecture), for example V(x86_64) or V(aarch64)), which is mapped.
      - Defaults to the architecture of the host the module runs on.
    type: str
  base_url:
    description:
      - Where releases are published; the tarball is fetched from C({base_url}/v{version}/{asset}).
      - Give a private mirror's credentials in O(headers) (an C(Authorization) header), not in the URL. A user and
        password in the URL (C(https://user:pass@host/...)) are used for the request, but the URL is stored and
        returned without them (RV(url), the cache's record, the node's manifest, the verify report).
    type: str
    default: https://github.com/containernetworking/plugins/releases/download
  mirrors:
    description:
      - Further base URLs with the same layout as O(base_url), tried in order when O(base_url) fails.
      - A checksum mismatch is not a reason to try the next mirror; it fails at once.
      - Credentials as for O(base_url) - in O(headers), not in the URL.
    type: list
    elements: str
    default: []
  checksum:
    description:
      - Expected digest of the tarball as V(sha256:<hex>) or V(sha512:<hex>). Overrides every table.
    type: str
  checksums:
    description:
      - User checksum table, a dictionary of architecture to a dictionary of version to checksum, that extends and
        overrides the one shipped with the collection. A value is a hex digest (sha256 or sha512, told apart by length), V(sha256:<hex>),
        V(sha512:<hex>) or a list of such values of one algorithm, any of which verifies.
      - Useful for locally built or repacked releases, such as a version label upstream never used.
    type: dict
    default: {}
  require_pinned:
    description:
      - Fail, before any request, when neither O(checksum), O(checksums) nor the shipped table has a digest for the
        version and architecture, instead of trusting the release's checksum file.
    type: bool
    default: false
  checksum_algorithm:
    description:
      - Which release checksum file (C(<asset>.sha256) or C(<asset>.sha512)) verifies a version that is not pinned.
    type: str
    choices: [sha256, sha512]
    default: sha256
  cache_dir:
    description: Directory holding verified tarballs, created when missing.
    type: path
    default: /var/cache/nodeprep/cni
  headers:
    description:
      - Extra HTTP headers for requests to O(base_url) and O(mirrors), for example an C(Authorization) header for
        a private mirror.
      - Sent only to the origin (scheme, host, port) of the mirror being fetched from, never to the host a redirect
        points to.
      - Values are treated as secrets and never appear in output or error messages.
    type: dict
    default: {}
  validate_certs:
    description: Verify TLS certificates. Set O(ca_path) instead of disabling this for a private CA.
    type: bool
    default: true
  ca_path:
    description: PEM file of CA certificates to trust for HTTPS.
    type: path
  timeout:
    description:
      - Seconds to wait for a connection or for the next data before an attempt fails (and is retried).
    type: int
    default: 30
  deadline:
    description:
      - Seconds one mirror gets for the whole download (checksum file and tarball, every retry and redirect
        included). A server that trickles bytes or stalls is abandoned at the deadline and the next mirror is tried.
      - Bounds how long the cache's lock is held, so parallel runs never wait forever.
    type: int
    default: 600
  broken_versions:
    description:
      - Releases refused before any request, each mapped to the release to use instead.
      - Replaces the shipped table, which maps 1.6.1 to 1.6.2 and 1.7.0 to 1.7.1. An empty dictionary refuses none.
    type: dict
  checksum_files:
    description:
      - Also write C(<asset>.sha256) and C(<asset>.sha512) next to the verified tarball, as C(<hex>  <asset>)
        lines computed from its verified bytes, so O(cache_dir) laid out as C(<mirror>/v<version>/) is an
        upstream-layout release mirror (see C(playbooks/mirror.yml)). A file already holding the right line
        is left alone.
    type: bool
    default: false
  retries:
    description:
      - Extra attempts per URL after connection errors, timeouts, truncated bodies, HTTP 5xx and 429, with
        exponential backoff. HTTP 403 and 404 are not retried (the next mirror is tried instead).
    type: int
    default: 3
notes:
  - A failure on a host whose O(cache_dir) did not exist leaves that directory with its lock file; nothing else.
  - The collection's own table holds the official sha256 values of upstream releases; version 1.4.1 has two
    genuine values (assets re-uploaded upstream in 2024) and both verify.
seealso:
  - module: nodeprep.cni.cni_install
"""

EXAMPLES = r"""
- name: Fetch the pinned release for the node's architecture
  nodeprep.cni.cni_release:
    version: 1.6.2
  register: cni_tarball

- name: Fetch on the controller for every architecture in the inventory, through a mirror first
  nodeprep.cni.cni_release:
    version: v1.9.1
    arch: "{{ item }}"
    base_url: https://mirror.example.com/containernetworking/plugins/releases/download
    mirrors:
      - https://github.com/containernetworking/plugins/releases/download
    cache_dir: "{{ playbook_dir }}/.cache/cni"
  loop: [amd64, arm64]
  delegate_to: localhost
  run_once: true

- name: Accept only versions whose digest is pinned
  nodeprep.cni.cni_release:
    version: 1.9.1
    require_pinned: true

- name: Use a locally built release from an internal server with a token
  nodeprep.cni.cni_release:
    version: 9.0.0
    base_url: https://artifacts.example.com/cni
    checksums:
      amd64:
        9.0.0: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
    headers:
      Authorization: "Bearer {{ artifacts_token }}"
    ca_path: /etc/pki/internal-ca.pem

- name: Verify a release that is not pinned through its sha512 file
  nodeprep.cni.cni_release:
    version: 1.9.0
    checksum_algorithm: sha512
"""

RETURN = r"""
path:
  description: Path of the verified tarball in O(cache_dir) (where it would be, in check mode).
  returned: always
  type: str
  sample: /var/cache/nodeprep/cni/cni-plugins-linux-amd64-v1.6.2.tgz
sha256:
  description:
    - sha256 of the verified tarball, computed even when it was verified with sha512.
    - In check mode without a cached file, the expected value when exactly one is known, else null.
  returned: always
  type: str
  sample: b8e811578fb66023f90d2e238d80cec3bdfca4b44049af74c374d4fae0f9c090
url:
  description:
    - URL the tarball was (or would be) downloaded from.
    - For a cache hit, the URL recorded when it was verified through a checksum file, else the URL it would be fetched
      from first.
    - Never with a user or password (userinfo), whatever the URL given.
  returned: always
  type: str
  sample: https://github.com/containernetworking/plugins/releases/download/v1.6.2/cni-plugins-linux-amd64-v1.6.2.tgz
version:
  description: Normalized version, without a leading V(v).
  returned: always
  type: str
  sample: 1.6.2
arch:
  description: Architecture of the asset.
  returned: always
  type: str
  sample: amd64
removed_leftovers:
  description: Names of partial files of killed runs that this run removed from O(cache_dir).
  returned: always
  type: list
  elements: str
  sample: [..cni-plugins-linux-amd64-v1.6.2.tgz.download.k2j4h1.part]
downloaded:
  description:
    - Whether the tarball was downloaded in this run. Equal to C(changed) unless O(checksum_files) wrote a
      checksum file.
  returned: always
  type: bool
  sample: true
checksum_files:
  description: Checksum files O(checksum_files) wrote (or would write, in check mode) in this run.
  returned: always
  type: list
  elements: str
  sample: [/srv/cni/v1.6.2/cni-plugins-linux-amd64-v1.6.2.tgz.sha512]
checksum_source:
  description:
    - What the tarball was (or will be) verified against.
    - V(checksum) (the O(checksum) option), V(user_table) (O(checksums)), V(pinned) (the shipped table),
      V(checksum_file) (the release's C(.sha256)/C(.sha512) file) or V(verified_record) (the sidecar record
      written when the cached file was verified through a checksum file).
  returned: always
  type: str
  sample: pinned
"""

import errno
import json
import os
import re
from urllib.parse import urlsplit

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodeprep.cni.plugins.module_utils._arch import arch_from_machine, node_arch
from ansible_collections.nodeprep.cni.plugins.module_utils._atomic import atomic_move, atomic_write, make_dirs, unlink_quietly
from ansible_collections.nodeprep.cni.plugins.module_utils._checksums import (
    expected_digests,
    normalize_user_table,
    parse_checksum_file,
    parse_checksum_spec,
)
from ansible_collections.nodeprep.cni.plugins.module_utils._hashing import file_digest
from ansible_collections.nodeprep.cni.plugins.module_utils._http import DownloadError, make_fetcher, try_mirrors
from ansible_collections.nodeprep.cni.plugins.module_utils._locking import FileLock, LockTimeout
from ansible_collections.nodeprep.cni.plugins.module_utils._release import (
    BROKEN_VERSIONS,
    DEFAULT_BASE_URL,
    asset_name,
    broken_table,
    normalize_version,
    public_url,
    refuse_broken,
    release_url,
)
from ansible_collections.nodeprep.cni.plugins.module_utils._safe_tar import MAX_TOTAL_BYTES, UnsafeArchive, list_members

LOCK_NAME = ".lock"
# What a run killed mid-download leaves: the staging file, the download's temp file, the
# verified record's temp file. Only these names are ever swept, and only under the lock.
_LEFTOVER = re.compile(r"^(\.cni-plugins-[A-Za-z0-9._-]+\.tgz\.download"
                       r"|\.\.cni-plugins-[A-Za-z0-9._-]+\.tgz\.download\.[A-Za-z0-9_]+\.part"
                       r"|\.cni-plugins-[A-Za-z0-9._-]+\.tgz\.verified\.json\.[A-Za-z0-9_]+\.tmp)$")


class ChecksumMismatch(Exception):
    """The bytes a mirror served do not match the expected digest; never retried on another mirror."""


class UnsafeRelease(Exception):
    """The bytes verified but are not a well-formed release archive; never retried on another mirror."""


class Expectation:
    """How the tarball is verified: ``digests`` is None when they must come from the release checksum file."""

    def __init__(self, algorithm, digests, source):
        self.algorithm = algorithm
        self.digests = digests
        self.source = source

    def matches(self, digest):
        return digest in self.digests


def decide_expectation(params, version, arch, checksums):
    """Explicit checksum > user table > pinned table > release checksum file."""
    user_table = normalize_user_table(checksums)
    if params["checksum"]:
        algorithm, digest = parse_checksum_spec(params["checksum"])
        return Expectation(algorithm, [digest], "checksum")
    known = expected_digests(version, arch, checksums)
    if known:
        source = "user_table" if version in user_table.get(arch, {}) else "pinned"
        return Expectation(known[0], known[1], source)
    if params["require_pinned"]:
        raise ValueError(
            "CNI plugins %s for %s has no pinned checksum and require_pinned is true; pin it with "
            "checksum: sha256:<hex> or checksums: {%s: {'%s': 'sha256:<hex>'}}" % (version, arch, arch, version)
        )
    return Expectation(params["checksum_algorithm"], None, "checksum_file")


def sidecar_path(cache_path):
    return cache_path + ".verified.json"


def read_sidecar(cache_path):
    try:
        with open(sidecar_path(cache_path), encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("sha256") else None


def write_sidecar(cache_path, sha256, url, algorithm, digest):
    record = {"sha256": sha256, "url": public_url(url), "algorithm": algorithm}
    if algorithm == "sha512":
        record["sha512"] = digest
    atomic_write(sidecar_path(cache_path), (json.dumps(record, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def verify_cached(cache_path, expectation):
    """``(sha256, url_or_None, source)`` when the cached file verifies without the network, else None."""
    if not os.path.isfile(cache_path):
        return None
    if expectation.digests is not None:
        digest = file_digest(cache_path, expectation.algorithm)
        if not expectation.matches(digest):
            return None
        sha256 = digest if expectation.algorithm == "sha256" else file_digest(cache_path, "sha256")
        return sha256, None, expectation.source
    record = read_sidecar(cache_path)
    if not record or expectation.algorithm not in record:
        return None
    sha256 = file_digest(cache_path, "sha256")
    if sha256 != record["sha256"]:
        return None
    if expectation.algorithm == "sha512" and file_digest(cache_path, "sha512") != record["sha512"]:
        return None
    return sha256, record.get("url"), "verified_record"


def _describe_expected(digests):
    return " or ".join(digests)


class Downloader:
    """Downloads and verifies one asset from the first mirror that serves it, under the asset lock."""

    def __init__(self, fetcher, cache_path, asset, version, os_name, arch, expectation):
        self.fetcher = fetcher
        self.cache_path = cache_path
        self.asset = asset
        self.version = version
        self.os_name = os_name
        self.arch = arch
        self.expectation = expectation
        self.staging_path = os.path.join(os.path.dirname(cache_path), ".%s.download" % asset)

    def _expected_for(self, url, until):
        if self.expectation.digests is not None:
            return self.expectation.digests
        algorithm = self.expectation.algorithm
        text = self.fetcher.get_text("%s.%s" % (url, algorithm), until=until)
        try:
            return [parse_checksum_file(text, self.asset, algorithm)]
        except ValueError as exc:
            raise DownloadError("checksum file %s.%s is unusable: %s" % (url, algorithm, exc))

    def attempt(self, base_url):
        """Fetch from one mirror; returns a result dict. DownloadError lets try_mirrors move on."""
        url = release_url(base_url, self.version, self.os_name, self.arch)
        # One deadline for everything this mirror serves, so a slow mirror cannot hold the lock long.
        until = self.fetcher.until()
        expected = self._expected_for(url, until)
        algorithm = self.expectation.algorithm
        if os.path.isfile(self.cache_path) and file_digest(self.cache_path, algorithm) in expected:
            # The cached file predates its record (or the record was lost): it verifies, keep it.
            return self._finish(url, algorithm, file_digest(self.cache_path, algorithm), downloaded=False)
        try:
            # No release is larger packed than the unpacked limit of the archive check.
            actual = self.fetcher.download_to(url, self.staging_path, algorithm, until=until, max_bytes=MAX_TOTAL_BYTES)
            if actual not in expected:
                raise ChecksumMismatch(
                    "checksum mismatch for %s: expected %s %s, got %s; the download was discarded.%s If this is a "
                    "release you built or repacked, give its digest with checksum or checksums"
                    % (url, algorithm, _describe_expected(expected), actual, _not_a_tarball(self.staging_path))
                )
            try:
                list_members(self.staging_path, label="%s (downloaded from %s)" % (self.asset, url))
            except UnsafeArchive as exc:
                raise UnsafeRelease("%s; it was discarded and the cache is unchanged" % exc)
            os.chmod(self.staging_path, 0o644)
            atomic_move(self.staging_path, self.cache_path)
        finally:
            unlink_quietly(self.staging_path)
        return self._finish(url, algorithm, actual, downloaded=True)

    def _finish(self, url, algorithm, digest, downloaded):
        sha256 = digest if algorithm == "sha256" else file_digest(self.cache_path, "sha256")
        if self.expectation.digests is None:
            write_sidecar(self.cache_path, sha256, url, algorithm, digest)
        return {"url": url, "sha256": sha256, "downloaded": downloaded}


def _not_a_tarball(path):
    """A hint when the body is plainly not a gzip archive (an HTML login or error page served with 200)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
    except OSError:
        return ""
    if head.startswith(b"\x1f\x8b"):
        return ""
    text = head.lstrip().lower()
    if text.startswith((b"<!doctype html", b"<html", b"<?xml", b"<")):
        return " The server sent an HTML or XML page, not a gzip tarball (a login, error or index page?): check the URL and any credentials."
    return " The body is not a gzip tarball (it begins with %r)." % head[:16]


def find_leftovers(cache_dir):
    """Names in *cache_dir* that only a killed download leaves behind."""
    try:
        names = os.listdir(cache_dir)
    except OSError:
        return []
    return sorted(name for name in names if _LEFTOVER.match(name) and os.path.isfile(os.path.join(cache_dir, name)))


def sweep_leftovers(cache_dir):
    """Remove leftovers of killed downloads. Call only while holding the cache's lock: a download
    in progress holds it, so nothing swept here can belong to a running download."""
    removed = []
    for name in find_leftovers(cache_dir):
        unlink_quietly(os.path.join(cache_dir, name))
        removed.append(name)
    return removed


def lock_wait(params, mirror_count):
    """How long a run waits for the cache's lock: what the holder may take at most (each mirror's
    deadline, plus one last read timeout), and a minute of slack."""
    return (params["deadline"] + params["timeout"]) * max(1, mirror_count) + 60


def base_urls(params):
    ordered = []
    for url in [params["base_url"]] + list(params["mirrors"] or []):
        if url and url.rstrip("/") not in ordered:
            ordered.append(url.rstrip("/"))
    return ordered


def make_diff(path, before, after):
    """Before/after snapshots of the cache entry; the file is always present afterwards."""
    return {"before": {"path": path, "present": before is not None, "sha256": before},
            "after": {"path": path, "present": True, "sha256": after}}


def cached_sha256(path):
    return file_digest(path, "sha256") if os.path.isfile(path) else None


def write_checksum_files(module, result):
    """``<asset>.sha256`` and ``.sha512`` beside the verified tarball; returns the paths (to be) written."""
    path = result["path"]
    written = []
    for algorithm in ("sha256", "sha512"):
        if os.path.isfile(path):
            digest = result["sha256"] if algorithm == "sha256" and result.get("sha256") else file_digest(path, algorithm)
        elif module.check_mode:
            written.append("%s.%s" % (path, algorithm))
            continue
        else:
            raise ValueError("no verified tarball at %s to write checksum files for" % path)
        line = ("%s  %s\n" % (digest, os.path.basename(path))).encode("ascii")
        target = "%s.%s" % (path, algorithm)
        try:
            with open(target, "rb") as handle:
                if handle.read() == line:
                    continue
        except OSError:
            pass
        if not module.check_mode:
            atomic_write(target, line)
        written.append(target)
    return written


def trust_on_first_use_warning(result):
    """The warning for a release whose only proof is the checksum file served beside it, else None."""
    if result.get("checksum_source") not in ("checksum_file", "verified_record"):
        return None
    return ("CNI plugins %s for %s was verified only against the checksum file served beside %s: trust on first use, "
            "the server's own word rather than a pinned digest; pin it with checksum or checksums "
            "({%s: {'%s': 'sha256:<hex>'}}; role: cni_plugins_checksums), or set require_pinned "
            "(cni_plugins_require_pinned) to refuse versions that are not pinned"
            % (result["version"], result["arch"], result["url"], result["arch"], result["version"]))


def run(module):
    result = fetch(module)
    result["url"] = public_url(result["url"])
    result["checksum_files"] = []
    if module.params["checksum_files"]:
        result["checksum_files"] = write_checksum_files(module, result)
        result["changed"] = bool(result["changed"] or result["checksum_files"])
    return result


def fetch(module):
    params = module.params
    version = normalize_version(params["version"])
    broken = BROKEN_VERSIONS if params["broken_versions"] is None else broken_table(params["broken_versions"])
    refuse_broken(version, broken)
    arch = arch_from_machine(params["arch"]) if params["arch"] else node_arch()
    os_name = params["os"]
    expectation = decide_expectation(params, version, arch, params["checksums"] or {})
    mirrors = base_urls(params)
    if not mirrors:
        raise ValueError("base_url is empty and no mirrors are given; set base_url")
    asset = asset_name(version, os_name, arch)
    cache_dir = params["cache_dir"]
    cache_path = os.path.join(cache_dir, asset)
    result = {"path": cache_path, "version": version, "arch": arch, "checksum_source": expectation.source,
              "url": release_url(mirrors[0], version, os_name, arch), "removed_leftovers": []}
    lock_path = os.path.join(cache_dir, LOCK_NAME)

    hit = verify_cached(cache_path, expectation)
    if hit:
        if not module.check_mode and find_leftovers(cache_dir):
            result["removed_leftovers"] = _sweep_if_idle(lock_path, cache_dir)
        return _cache_hit(module, result, hit)
    if module.check_mode:
        would_be = expectation.digests[0] if expectation.digests and expectation.algorithm == "sha256" and len(expectation.digests) == 1 else None
        result.update(changed=True, downloaded=False, sha256=would_be)
        if module._diff:
            result["diff"] = make_diff(cache_path, cached_sha256(cache_path), would_be)
        return result

    before = cached_sha256(cache_path)
    # make_dirs tolerates parallel forks creating the cache directory at the same moment.
    make_dirs(cache_dir)
    fetcher = make_fetcher(timeout=params["timeout"], validate_certs=params["validate_certs"], ca_path=params["ca_path"],
                           headers=params["headers"], retries=params["retries"], deadline=params["deadline"])
    # The lock file is never removed: a run waiting on it must lock the same file a newcomer finds.
    with FileLock(lock_path, timeout=lock_wait(params, len(mirrors))):
        result["removed_leftovers"] = sweep_leftovers(cache_dir)
        # Another run may have fetched it while this one waited for the lock.
        hit = verify_cached(cache_path, expectation)
        if hit:
            return _cache_hit(module, result, hit)
        downloader = Downloader(fetcher, cache_path, asset, version, os_name, arch, expectation)
        dummy, outcome = try_mirrors(mirrors, downloader.attempt)
    result.update(outcome, changed=outcome["downloaded"])
    if module._diff:
        result["diff"] = make_diff(cache_path, before, outcome["sha256"])
    return result


def _sweep_if_idle(lock_path, cache_dir):
    """Sweep leftovers when no download holds the lock; a busy cache is left for a later run."""
    if not os.path.exists(lock_path):
        return []
    try:
        with FileLock(lock_path, timeout=0):
            return sweep_leftovers(cache_dir)
    except LockTimeout:
        return []


def _cache_hit(module, result, hit):
    sha256, url, source = hit
    result.update(changed=False, downloaded=False, sha256=sha256, checksum_source=source)
    if url:
        result["url"] = url
    if module._diff:
        result["diff"] = make_diff(result["path"], sha256, sha256)
    return result


def argument_spec():
    return dict(
        version=dict(type="str", required=True),
        os=dict(type="str", default="linux", choices=["linux"]),
        arch=dict(type="str"),
        base_url=dict(type="str", default=DEFAULT_BASE_URL),
        mirrors=dict(type="list", elements="str", default=[]),
        checksum=dict(type="str"),
        checksums=dict(type="dict", default={}),
        require_pinned=dict(type="bool", default=False),
        checksum_algorithm=dict(type="str", default="sha256", choices=["sha256", "sha512"]),
        cache_dir=dict(type="path", default="/var/cache/nodeprep/cni"),
        headers=dict(type="dict", default={}, no_log=True),
        validate_certs=dict(type="bool", default=True),
        ca_path=dict(type="path"),
        timeout=dict(type="int", default=30),
        deadline=dict(type="int", default=600),
        retries=dict(type="int", default=3),
        broken_versions=dict(type="dict"),
        checksum_files=dict(type="bool", default=False),
    )


_CACHE_HINTS = {
    errno.ENOSPC: "free space there, or set cache_dir to a filesystem with room for the release",
    errno.EDQUOT: "raise the quota or free space there, or set cache_dir elsewhere",
    errno.EROFS: "that filesystem is read-only; set cache_dir to a writable directory",
    errno.EACCES: "make it writable by the user Ansible runs as, or set cache_dir elsewhere",
    errno.EPERM: "make it writable by the user Ansible runs as, or set cache_dir elsewhere",
}


def cache_error(cache_dir, exc):
    hint = _CACHE_HINTS.get(exc.errno, "check that cache_dir is a writable directory")
    where = " (%s)" % exc.filename if getattr(exc, "filename", None) else ""
    return "cannot use cache_dir %s: %s%s; %s" % (cache_dir, exc.strerror or exc, where, hint)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    # A password in a mirror URL is used for the request; Ansible masks it wherever it echoes the arguments.
    for url in base_urls(params):
        password = urlsplit(url).password
        if password:
            module.no_log_values.add(password)
    if params["retries"] < 0 or params["timeout"] <= 0 or params["deadline"] <= 0:
        module.fail_json(msg="retries must be 0 or more, timeout and deadline more than 0 (got retries=%s, timeout=%s, deadline=%s)"
                         % (params["retries"], params["timeout"], params["deadline"]))
    try:
        result = run(module)
    except (ValueError, DownloadError, ChecksumMismatch, UnsafeRelease, LockTimeout) as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg=cache_error(params["cache_dir"], exc))
    warning = trust_on_first_use_warning(result)
    if warning:
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
