# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release backend: fetch a CNI plugins release tarball into a cache and verify it.

Run by the cni_release module on a node and by the cni_plugins action on the controller, both
through a module object (``params``, ``check_mode``, ``_diff``, ``warn``, ``fail_json``,
``exit_json``, ``no_log_values``) built from ``argument_spec()``. A module object with a
``report_progress`` callable (the action's, which prints while the task runs) hears how a long
download goes and that the run waits on another run's download; a module on a node has none,
as nothing it prints reaches the user before it ends.
"""

from __future__ import annotations

import errno
import json
import os
import re
from urllib.parse import urlsplit

from ansible_collections.nodeprep.cni.plugins.module_utils._arch import arch_from_machine, node_arch
from ansible_collections.nodeprep.cni.plugins.module_utils._atomic import atomic_move, atomic_write, become_hint, make_dirs, unlink_quietly
from ansible_collections.nodeprep.cni.plugins.module_utils._checksums import (
    expected_digests,
    normalize_user_table,
    parse_checksum_file,
    parse_checksum_spec,
)
from ansible_collections.nodeprep.cni.plugins.module_utils._hashing import file_digest
from ansible_collections.nodeprep.cni.plugins.module_utils._http import (
    AUTH,
    FORBIDDEN,
    LOCAL_SCHEME,
    NOT_FOUND,
    REFUSED,
    UNREADABLE,
    UNRESOLVED,
    DownloadError,
    Progress,
    human_bytes,
    make_fetcher,
    try_mirrors,
)
from ansible_collections.nodeprep.cni.plugins.module_utils._locking import FileLock, LockTimeout
from ansible_collections.nodeprep.cni.plugins.module_utils._options import RELEASE, TRANSPORT, compose, transport_problem
from ansible_collections.nodeprep.cni.plugins.module_utils._release import (
    BROKEN_VERSIONS,
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

    def __init__(self, fetcher, cache_path, asset, version, os_name, arch, expectation, mirrors=()):
        self.fetcher = fetcher
        self.mirrors = list(mirrors)
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
        if self.fetcher.progress is not None:
            where = ("mirror %d of %d, " % (self.mirrors.index(base_url) + 1, len(self.mirrors))) if base_url in self.mirrors else ""
            self.fetcher.progress.label = "downloading %s (%s%s)" % (self.asset, where, url)
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


def source_url(value, option):
    """A base URL as fetched: http(s) and file:// URLs as given, an absolute directory path as its file:// URL."""
    text = value.rstrip("/") or value
    if text.startswith("/"):
        return "%s://%s" % (LOCAL_SCHEME, text)
    scheme = urlsplit(text).scheme.lower()
    if scheme in ("http", "https", LOCAL_SCHEME):
        return text
    raise ValueError("%s is neither an http:// or https:// URL, a file:// URL nor an absolute directory path; give one of "
                     "those in %s (a local directory, read on the machine that downloads, must hold v<version>/<tarball> "
                     "as a release mirror does)" % (value, option))


def base_urls(params):
    """base_url then the mirrors, each once, as fetched; ValueError names a value that cannot be fetched."""
    ordered = []
    named = [(params["base_url"], "base_url (role: cni_plugins_base_url)")]
    named += [(url, "mirrors (role: cni_plugins_mirrors)") for url in params["mirrors"] or []]
    for url, option in named:
        if url and source_url(url, option) not in ordered:
            ordered.append(source_url(url, option))
    return ordered


def resolve_checksum(params, version, arch):
    """The digest every node verifies its own download against, decided once on the controller.

    Returns (``algorithm:hex`` or None, checksum source, checksum file URL or None). A pinned or user-table
    version needs no request; one with several genuine digests gives None (the node's own tables, shipped
    with the module, decide alike). Otherwise the release checksum file is read once, from the first
    mirror that serves it. A DownloadError means the controller could not read it.
    """
    expectation = decide_expectation(dict(params, checksum=None), version, arch, params["checksums"] or {})
    if expectation.digests is not None:
        single = len(expectation.digests) == 1
        return ("%s:%s" % (expectation.algorithm, expectation.digests[0]) if single else None), expectation.source, None
    algorithm, asset = expectation.algorithm, asset_name(version, params["os"], arch)
    fetcher = make_fetcher(timeout=params["timeout"], validate_certs=params["validate_certs"], ca_path=params["ca_path"] or None,
                           headers=params["headers"], retries=params["retries"], deadline=params["deadline"])

    def attempt(base_url):
        url = "%s.%s" % (release_url(base_url, version, params["os"], arch), algorithm)
        try:
            return url, parse_checksum_file(fetcher.get_text(url), asset, algorithm)
        except ValueError as exc:
            raise DownloadError("checksum file %s is unusable: %s" % (url, exc))
    dummy, (url, digest) = try_mirrors(base_urls(params), attempt)
    return "%s:%s" % (algorithm, digest), "checksum_file", url


def download_advice(error, params, version, arch):
    """What to change for the kinds of failure behind *error*, in option and role variable names."""
    kinds = set(kind for kind in error.kinds if kind)
    sent = ", ".join(sorted(params["headers"] or {}))
    advice = []
    if REFUSED in kinds:
        advice.append("nothing answered there: check that the mirror's server runs and that base_url (role: cni_plugins_base_url) "
                      "and mirrors (role: cni_plugins_mirrors) name its host and port")
    if UNRESOLVED in kinds:
        advice.append("check the host name in base_url (role: cni_plugins_base_url) and mirrors (role: cni_plugins_mirrors), "
                      "and the DNS of the machine that downloads (download_on, role: cni_plugins_download_on)")
    if AUTH in kinds and sent:
        advice.append("the mirror did not accept the credentials sent in headers (role: cni_plugins_headers; header names: %s, "
                      "values not shown): check the token and the header name it expects; headers go to the host of the URL "
                      "asked for only, never after a redirect to another host" % sent)
    elif AUTH in kinds:
        advice.append("the mirror asks for credentials: give them in headers (role: cni_plugins_headers), for example "
                      "{Authorization: 'Bearer <token>'}, from a vault or a credential rather than in plain text")
    if FORBIDDEN in kinds:
        advice.append(("the credentials sent in headers (role: cni_plugins_headers; header names: %s, values not shown) have no "
                       "access to this file" % sent) if sent else
                      "the mirror refuses access without credentials: give them in headers (role: cni_plugins_headers)")
    if NOT_FOUND in kinds:
        advice.append("version %s for %s is not on that mirror (a mirror serves <base_url>/v%s/%s and its .sha256 file beside "
                      "it): check version (role: cni_plugins_version) and base_url / mirrors (role: cni_plugins_base_url, "
                      "cni_plugins_mirrors)" % (version, arch, version, asset_name(version, params["os"], arch)))
    if UNREADABLE in kinds:
        advice.append("make the release files readable by the user Ansible runs as on the machine that downloads (the "
                      "controller, or the node with download_on: node, where become applies)")
    return ("; " + "; ".join(advice)) if advice else ""


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
    emit = getattr(module, "report_progress", None)
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
    fetcher = make_fetcher(timeout=params["timeout"], validate_certs=params["validate_certs"], ca_path=params["ca_path"] or None,
                           headers=params["headers"], retries=params["retries"], deadline=params["deadline"])
    if emit is not None:
        fetcher.progress = Progress(emit)
    on_wait = _waiting_reporter(emit, cache_dir, asset, lock_path) if emit is not None else None
    # The lock file is never removed: a run waiting on it must lock the same file a newcomer finds.
    with FileLock(lock_path, timeout=lock_wait(params, len(mirrors)), on_wait=on_wait):
        result["removed_leftovers"] = sweep_leftovers(cache_dir)
        # Another run may have fetched it while this one waited for the lock.
        hit = verify_cached(cache_path, expectation)
        if hit:
            return _cache_hit(module, result, hit)
        downloader = Downloader(fetcher, cache_path, asset, version, os_name, arch, expectation, mirrors)
        try:
            dummy, outcome = try_mirrors(mirrors, downloader.attempt)
        except DownloadError as exc:
            raise DownloadError(str(exc) + download_advice(exc, params, version, arch), kinds=exc.kinds)
    result.update(outcome, changed=outcome["downloaded"])
    if module._diff:
        result["diff"] = make_diff(cache_path, before, outcome["sha256"])
    return result


def partial_bytes(cache_dir, asset):
    """Bytes a download of *asset* in progress has written so far (its temp file in *cache_dir*), or None."""
    prefix = "..%s.download." % asset
    sizes = []
    for name in find_leftovers(cache_dir):
        if name.startswith(prefix):
            try:
                sizes.append(os.path.getsize(os.path.join(cache_dir, name)))
            except OSError:
                pass
    return max(sizes) if sizes else None


def _waiting_reporter(emit, cache_dir, asset, lock_path):
    """What a run says while another run holds the cache's lock: whose download it waits for, and how far that got."""
    def report(waited):
        got = partial_bytes(cache_dir, asset)
        done = (", %s of it downloaded so far" % human_bytes(got)) if got is not None else ""
        since = ("; waited %d s so far" % waited) if waited >= 1 else ""
        emit("waiting for another run's download of %s into %s (it holds %s)%s%s" % (asset, cache_dir, lock_path, done, since))
    return report


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


_CACHE_HINTS = {
    errno.ENOSPC: "free space there, or set cache_dir to a filesystem with room for the release",
    errno.EDQUOT: "raise the quota or free space there, or set cache_dir elsewhere",
    errno.EROFS: "that filesystem is read-only; set cache_dir to a writable directory",
}


def cache_error(cache_dir, exc):
    hint = _CACHE_HINTS.get(exc.errno) or become_hint(exc, "set cache_dir elsewhere") or "check that cache_dir is a writable directory"
    where = " (%s)" % exc.filename if getattr(exc, "filename", None) else ""
    return "cannot use cache_dir %s: %s%s; %s" % (cache_dir, exc.strerror or exc, where, hint)


# The options only the fetch itself has (documented by the cni_release module).
FETCH = {
    "os": {"type": "str", "default": "linux", "choices": ["linux"]},
    "arch": {"type": "str"},
    "checksum": {"type": "str"},
    "cache_dir": {"type": "path", "default": "/var/cache/nodeprep/cni"},
    "checksum_files": {"type": "bool", "default": False},
}


def argument_spec():
    return compose(RELEASE, TRANSPORT, FETCH, version={"required": True})


def release_main(module):
    """The whole run on a module object: refusals, the fetch, the trust warning, exit or fail."""
    params = module.params
    # A password in a mirror URL is used for the request; it is masked wherever the arguments are echoed.
    for url in [params["base_url"]] + list(params["mirrors"] or []):
        password = urlsplit(url or "").password
        if password:
            module.no_log_values.add(password)
    problem = transport_problem(params)
    if problem:
        module.fail_json(msg=problem)
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
