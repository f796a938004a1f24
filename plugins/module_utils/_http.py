# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTTP downloads with streaming hashes, bounded retries and mirror fallback.

One interface over two backends: ``requests`` when it is importable (controller), otherwise
``ansible.module_utils.urls`` (any managed node, stdlib only). Both honour proxy variables
from the environment, ``ca_path`` and ``validate_certs``. Header values may carry tokens, so
they never appear in error messages.
"""

from __future__ import annotations

import os
import socket
import ssl
import tempfile
import time

from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit, urlunsplit

from ansible.module_utils.urls import ConnectionError as UrlsConnectionError, Request, SSLValidationError

from ansible_collections.nodeprep.cni.plugins.module_utils._atomic import unlink_quietly
from ansible_collections.nodeprep.cni.plugins.module_utils._hashing import new_hash

try:
    import requests
    HAS_REQUESTS = True
except ImportError:  # a managed node without requests uses ansible.module_utils.urls
    requests = None
    HAS_REQUESTS = False

BACKENDS = ("auto", "requests", "urls")
CHUNK_SIZE = 256 * 1024
MAX_TEXT_BYTES = 1024 * 1024
MAX_BACKOFF = 30.0
USER_AGENT = "nodeprep.cni"
# Statuses worth another attempt: the server (or a proxy) is busy or broken right now.
RETRYABLE_STATUS = frozenset([408, 429, 500, 502, 503, 504])


class DownloadError(Exception):
    """A download failed; the message names the URL and the reason (never header values)."""

    def __init__(self, message, url=None, status=None, retryable=False):
        super(DownloadError, self).__init__(message)
        self.url = url
        self.status = status
        self.retryable = retryable


def display_url(url: str) -> str:
    """*url* without a password in its userinfo, safe for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = "%s:***@%s" % (parts.username or "", parts.netloc.rsplit("@", 1)[-1])
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class _Body:
    """An open response: status already checked, ``expected_length`` from Content-Length or None."""

    def __init__(self, chunks, expected_length, close):
        self.chunks = chunks
        self.expected_length = expected_length
        self.close = close


def _content_length(value):
    try:
        length = int(value)
    except (TypeError, ValueError):
        return None
    return length if length >= 0 else None


class Fetcher:
    """Shared retry, hashing and temp-file logic; backends only open responses."""

    backend = None

    def __init__(self, timeout=30, validate_certs=True, ca_path=None, headers=None, retries=3, backoff=1.0, sleep=time.sleep):
        self.timeout = float(timeout)
        self.validate_certs = bool(validate_certs)
        self.ca_path = ca_path
        self.headers = dict((str(k), str(v)) for k, v in (headers or {}).items())
        self.retries = max(0, int(retries))
        self.backoff = max(0.0, float(backoff))
        self.sleep = sleep
        self.requests_made = 0

    # -- backend hook -------------------------------------------------------------------------
    def _open(self, url):  # pragma: no cover - overridden
        raise NotImplementedError

    # -- helpers ------------------------------------------------------------------------------
    def _request_headers(self):
        # identity: a Content-Length must describe the bytes we hash, not a compressed form.
        merged = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        merged.update(self.headers)
        return merged

    def redact(self, text: str) -> str:
        """*text* with every header value replaced, so secrets cannot leak through messages."""
        for value in self.headers.values():
            if value and len(value) >= 3:
                text = text.replace(value, "<redacted>")
        return text

    def error(self, url, reason, status=None, retryable=False):
        message = self.redact("download of %s failed: %s" % (display_url(url), reason))
        return DownloadError(message, url=display_url(url), status=status, retryable=retryable)

    def _delay(self, attempt):
        return min(MAX_BACKOFF, self.backoff * (2 ** attempt))

    def _with_retries(self, url, action):
        """Run ``action(body)`` on a fresh response, retrying transient failures a bounded number of times."""
        last_error = None
        for attempt in range(self.retries + 1):
            if attempt:
                self.sleep(self._delay(attempt - 1))
            body = None
            try:
                self.requests_made += 1
                body = self._open(url)
                return action(body)
            except DownloadError as exc:
                last_error = exc
                if not exc.retryable:
                    raise
            finally:
                if body is not None:
                    body.close()
        attempts = self.retries + 1
        raise self.error(url, "%s (gave up after %d attempt%s)" % (_reason_of(last_error), attempts, "" if attempts == 1 else "s"),
                         status=last_error.status, retryable=False)

    def _read_all(self, url, body, sink):
        """Feed every chunk to ``sink``; a body shorter than its Content-Length is an error."""
        received = 0
        try:
            for chunk in body.chunks:
                if chunk:
                    received += len(chunk)
                    sink(chunk)
        except DownloadError:
            raise
        except Exception as exc:  # backends raise many kinds of read errors; all mean "try again"
            raise self.error(url, "connection lost after %d bytes: %s" % (received, _describe(exc)), retryable=True)
        if body.expected_length is not None and received != body.expected_length:
            raise self.error(url, "truncated body: received %d of %d bytes" % (received, body.expected_length), retryable=True)
        return received

    # -- operations ---------------------------------------------------------------------------
    def download_to(self, url: str, dest_path: str, algorithm: str = "sha256") -> str:
        """Stream *url* into *dest_path*, hashing on the way; return the hex digest.

        Bytes go to a temp file in *dest_path*'s directory, which is fsynced and renamed to
        *dest_path* only when the whole body arrived. *dest_path* is meant to be a staging name:
        the caller verifies the digest and decides whether to rename it into its final place.
        On any failure nothing is left behind.
        """
        directory = os.path.dirname(os.path.abspath(dest_path))
        return self._with_retries(url, lambda body: self._stream_to_file(url, body, directory, dest_path, algorithm))

    def _stream_to_file(self, url, body, directory, dest_path, algorithm):
        digest = new_hash(algorithm)
        fd, temp_path = tempfile.mkstemp(dir=directory, prefix=".%s." % os.path.basename(dest_path), suffix=".part")
        try:
            with os.fdopen(fd, "wb") as handle:
                def sink(chunk):
                    digest.update(chunk)
                    handle.write(chunk)
                self._read_all(url, body, sink)
                handle.flush()
                os.fsync(handle.fileno())
            os.rename(temp_path, dest_path)
        except BaseException:
            unlink_quietly(temp_path)
            raise
        return digest.hexdigest()

    def get_text(self, url: str, max_bytes: int = MAX_TEXT_BYTES) -> str:
        """Body of a small text resource (a checksum file), refused when larger than *max_bytes*."""
        def read(body):
            if body.expected_length is not None and body.expected_length > max_bytes:
                raise self.error(url, "response of %d bytes is larger than the %d allowed" % (body.expected_length, max_bytes))
            parts = []
            size = [0]

            def sink(chunk):
                size[0] += len(chunk)
                if size[0] > max_bytes:
                    raise self.error(url, "response is larger than the %d bytes allowed" % max_bytes)
                parts.append(chunk)
            self._read_all(url, body, sink)
            return b"".join(parts).decode("utf-8", "replace")
        return self._with_retries(url, read)


class RequestsFetcher(Fetcher):
    """Backend on ``requests``; a Session trusts proxy variables from the environment."""

    backend = "requests"

    def __init__(self, **kwargs):
        if not HAS_REQUESTS:
            raise DownloadError("the requests backend was asked for but the requests library is not installed")
        super(RequestsFetcher, self).__init__(**kwargs)
        self.session = requests.Session()

    def _verify(self):
        if not self.validate_certs:
            return False
        return self.ca_path or True

    def _open(self, url):
        try:
            response = self.session.get(url, headers=self._request_headers(), stream=True, timeout=(self.timeout, self.timeout),
                                        verify=self._verify(), allow_redirects=True)
        except requests.exceptions.SSLError as exc:
            raise self.error(url, "TLS verification failed: %s; set ca_path or validate_certs" % _describe(exc))
        except requests.exceptions.RequestException as exc:
            raise self.error(url, _describe(exc), retryable=True)
        if response.status_code >= 400:
            response.close()
            raise self._status_error(url, response.status_code, response.reason)
        # raw, undecoded bytes: the checksum is over what the server sent.
        chunks = response.raw.stream(CHUNK_SIZE, decode_content=False)
        return _Body(chunks, _content_length(response.headers.get("Content-Length")), response.close)

    def _status_error(self, url, status, reason):
        return self.error(url, "HTTP %s %s" % (status, reason or ""), status=status, retryable=status in RETRYABLE_STATUS)


class UrlsFetcher(Fetcher):
    """Backend on ``ansible.module_utils.urls``: stdlib only, so it runs on any managed node."""

    backend = "urls"

    def __init__(self, **kwargs):
        super(UrlsFetcher, self).__init__(**kwargs)
        self.request = Request(use_proxy=True, timeout=self.timeout, validate_certs=self.validate_certs, ca_path=self.ca_path,
                               decompress=False, http_agent=USER_AGENT, follow_redirects="urllib2")

    def _open(self, url):
        try:
            response = self.request.open("GET", url, headers=self._request_headers())
        except HTTPError as exc:
            status = exc.code
            exc.close()
            raise self.error(url, "HTTP %s %s" % (status, exc.reason or ""), status=status, retryable=status in RETRYABLE_STATUS)
        except (SSLValidationError, ssl.SSLCertVerificationError) as exc:
            raise self.error(url, "TLS verification failed: %s; set ca_path or validate_certs" % _describe(exc))
        except (URLError, UrlsConnectionError, socket.timeout, OSError) as exc:
            raise self.error(url, _describe(exc), retryable=True)
        except Exception as exc:  # http.client raises assorted errors for broken responses
            raise self.error(url, _describe(exc), retryable=True)
        chunks = iter(lambda: response.read(CHUNK_SIZE), b"")
        return _Body(chunks, _content_length(response.headers.get("Content-Length")), response.close)


def make_fetcher(backend="auto", timeout=30, validate_certs=True, ca_path=None, headers=None, retries=3, backoff=1.0, sleep=time.sleep):
    """A Fetcher on the chosen backend; ``auto`` prefers requests and falls back to ansible's urls."""
    if backend not in BACKENDS:
        raise ValueError("unknown HTTP backend %r; use one of %s" % (backend, ", ".join(BACKENDS)))
    kwargs = dict(timeout=timeout, validate_certs=validate_certs, ca_path=ca_path, headers=headers, retries=retries, backoff=backoff, sleep=sleep)
    if backend == "requests" or (backend == "auto" and HAS_REQUESTS):
        return RequestsFetcher(**kwargs)
    return UrlsFetcher(**kwargs)


def try_mirrors(base_urls, attempt):
    """Call ``attempt(base_url)`` for each base URL in order until one succeeds.

    Returns ``(base_url, result)`` of the first that served. A DownloadError moves on to the next
    mirror; any other error (a checksum mismatch) stops at once. When all fail, the DownloadError
    lists every URL with its reason.
    """
    failures = []
    for base_url in base_urls:
        try:
            return base_url, attempt(base_url)
        except DownloadError as exc:
            failures.append(str(exc))
    if not failures:
        raise DownloadError("no base_url or mirror to download from")
    if len(failures) == 1:
        raise DownloadError(failures[0])
    raise DownloadError("every mirror failed: " + "; ".join(failures))


def _reason_of(error):
    text = str(error)
    marker = " failed: "
    return text.split(marker, 1)[1] if marker in text else text


def _describe(exc):
    text = str(exc) or exc.__class__.__name__
    return "%s: %s" % (exc.__class__.__name__, text) if exc.__class__.__name__ not in text else text
