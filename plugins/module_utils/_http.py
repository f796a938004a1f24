# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTTP downloads with streaming hashes, bounded retries, a deadline and mirror fallback.

One interface over two backends: ``requests`` when it is importable (controller), otherwise
``ansible.module_utils.urls`` (any managed node, stdlib only). Both honour proxy variables
from the environment, ``ca_path`` and ``validate_certs``. Header values may carry tokens, so
they never appear in error messages.

A ``file://`` URL is read from the local filesystem (of the machine the download runs on) with
the same size limit, hashing and temp file: a directory of releases without a web server.

A long transfer reports its progress through an optional ``Progress`` at a steady interval, so
whoever runs the play sees that a slow mirror is still moving; a fast one says nothing.

Redirects are followed here, not by the backends, so that both behave alike: the caller's
headers (``Authorization``, ``X-Token``, any of them) are sent only to the origin of the URL the
caller asked for. An origin is scheme, host and port (default ports filled in): a redirect to
another host, to another port of the same host, or from https to http gets no caller header.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl
import tempfile
import time

from urllib.error import HTTPError, URLError
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

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
MAX_REDIRECTS = 10
DEFAULT_DEADLINE = 600.0
USER_AGENT = "nodeprep.cni"
# Statuses worth another attempt: the server (or a proxy) is busy or broken right now.
RETRYABLE_STATUS = frozenset([408, 429, 500, 502, 503, 504])
REDIRECT_STATUS = frozenset([301, 302, 303, 307, 308])
DEFAULT_PORTS = {"http": 80, "https": 443}
LOCAL_SCHEME = "file"
# A transfer still running after this long says how far it got, and again at each interval: a
# download that ends sooner prints nothing, and one that runs to the 600 s deadline prints 60 lines.
PROGRESS_INTERVAL = 10.0
# Suffix of the temp file a download streams into; a killed run leaves one behind.
PARTIAL_SUFFIX = ".part"


# What went wrong, as far as the fix differs (DownloadError.kind): the caller turns these into
# advice in its own option names.
REFUSED = "refused"          # nothing listens on that host and port
UNRESOLVED = "unresolved"    # the host name does not resolve
AUTH = "auth"                # HTTP 401: credentials missing or not accepted
FORBIDDEN = "forbidden"      # HTTP 403
NOT_FOUND = "not_found"      # HTTP 404/410, or no such local file
UNREADABLE = "unreadable"    # a local file the user cannot read


class DownloadError(Exception):
    """A download failed; the message names the URL and the reason (never header values).

    ``kinds`` lists the kind of each failure behind it (one per URL tried, None where no advice
    applies), so the caller can name the option to change once, however many mirrors failed alike.
    """

    def __init__(self, message, url=None, status=None, retryable=False, kind=None, kinds=None):
        super(DownloadError, self).__init__(message)
        self.url = url
        self.status = status
        self.retryable = retryable
        self.kind = kind
        self.kinds = list(kinds) if kinds is not None else [kind]


class _HopError(Exception):
    """A backend's failure on one request, before the fetcher names the URL the caller asked for."""

    def __init__(self, reason, status=None, retryable=False, kind=None):
        super(_HopError, self).__init__(reason)
        self.reason = reason
        self.status = status
        self.retryable = retryable
        self.kind = kind


def human_bytes(count):
    """*count* bytes as a person reads them: ``512 B``, ``3.5 KiB``, ``20.3 MiB``."""
    if count < 1024:
        return "%d B" % count
    if count < 1024 * 1024:
        return "%.1f KiB" % (count / 1024.0)
    return "%.1f MiB" % (count / (1024.0 * 1024.0))


class Progress:
    """Says how far a transfer got, at most once per *interval* and never before the first one ends.

    *emit* gets one line of text. ``begin()`` starts a transfer (each attempt anew, under
    ``label``, what is downloaded from where);
    ``update(received, expected)`` is called after every chunk and speaks only when an interval
    has passed: bytes so far (of the total when known), the rate over the last interval, and the
    time taken.
    """

    def __init__(self, emit, interval=None, clock=time.monotonic):
        self.emit = emit
        self.interval = float(PROGRESS_INTERVAL if interval is None else interval)
        self.clock = clock
        self.label = ""
        self.lines = 0
        self._started = self._last_at = self._next_at = 0.0
        self._last_bytes = 0

    def begin(self, label=None):
        if label is not None:
            self.label = label
        self._started = self._last_at = self.clock()
        self._next_at = self._started + self.interval
        self._last_bytes = 0

    def update(self, received, expected):
        now = self.clock()
        if now < self._next_at:
            return
        elapsed = max(now - self._last_at, 1e-6)
        rate = (received - self._last_bytes) / elapsed
        if expected:
            done = "%s of %s (%d%%)" % (human_bytes(received), human_bytes(expected), received * 100 // expected)
        else:
            done = human_bytes(received)
        self.emit("%s: %s, %s/s, %s s so far" % (self.label, done, human_bytes(rate), _seconds(round(now - self._started))))
        self.lines += 1
        self._last_at, self._last_bytes = now, received
        self._next_at = now + self.interval


def display_url(url: str) -> str:
    """*url* without a password in its userinfo, safe for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = "%s:***@%s" % (parts.username or "", parts.netloc.rsplit("@", 1)[-1])
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _redirect_display(url):
    # A redirect target may carry a signature in its query (object stores do): leave it out.
    parts = urlsplit(display_url(url))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def origin(url: str) -> tuple:
    """``(scheme, host, port)`` of *url*, default ports filled in: what "the same host" means here."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or DEFAULT_PORTS.get(scheme)


class _Redirect:
    def __init__(self, status, location):
        self.status = status
        self.location = location


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


def _partial_reads(response, read_kwargs=None):
    """Chunks as they arrive: ``read1`` returns after one socket read, so a server that trickles
    bytes cannot hold a single read (and the deadline check after it) for long."""
    kwargs = read_kwargs or {}
    reader = getattr(response, "read1", None) or response.read
    return iter(lambda: reader(CHUNK_SIZE, **kwargs), b"")


class Fetcher:
    """Shared redirect, retry, deadline, hashing and temp-file logic; backends only open responses.

    *deadline* bounds the whole of one operation (``download_to`` or ``get_text`` of one URL,
    every retry and redirect included) unless the caller passes its own ``until``. A body that
    trickles in is cut at the first read after the deadline; a server that goes silent is cut by
    the per-read *timeout*, which is never longer than the time left.
    """

    backend = None

    def __init__(self, timeout=30, validate_certs=True, ca_path=None, headers=None, retries=3, backoff=1.0, sleep=time.sleep,
                 deadline=DEFAULT_DEADLINE, clock=time.monotonic):
        self.timeout = float(timeout)
        self.validate_certs = bool(validate_certs)
        self.ca_path = ca_path
        self.headers = dict((str(k), str(v)) for k, v in (headers or {}).items())
        self.retries = max(0, int(retries))
        self.backoff = max(0.0, float(backoff))
        self.sleep = sleep
        self.deadline = float(deadline)
        self.clock = clock
        self.requests_made = 0
        # Set by the caller (a Progress) to hear how a long download goes; None stays silent.
        self.progress = None

    # -- backend hook -------------------------------------------------------------------------
    def _open(self, url, headers, timeout):  # pragma: no cover - overridden
        """One request, no redirect followed: a _Body, a _Redirect, or _HopError."""
        raise NotImplementedError

    # -- helpers ------------------------------------------------------------------------------
    def until(self, seconds=None):
        """The monotonic instant *seconds* (default: the deadline) from now."""
        return self.clock() + (self.deadline if seconds is None else float(seconds))

    def _request_headers(self, with_callers):
        # identity: a Content-Length must describe the bytes we hash, not a compressed form.
        merged = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        if with_callers:
            merged.update(self.headers)
        return merged

    def redact(self, text: str) -> str:
        """*text* with every header value replaced, so secrets cannot leak through messages."""
        for value in self.headers.values():
            if value and len(value) >= 3:
                text = text.replace(value, "<redacted>")
        return text

    def error(self, url, reason, status=None, retryable=False, kind=None):
        message = self.redact("download of %s failed: %s" % (display_url(url), reason))
        return DownloadError(message, url=display_url(url), status=status, retryable=retryable, kind=kind)

    def _past_deadline(self, url, until, detail):
        return self.error(url, "not finished within the %s s deadline (%s); the server is stalled or too slow, "
                          "raise the deadline for a slow link" % (_seconds(self.deadline), detail))

    def _delay(self, attempt):
        return min(MAX_BACKOFF, self.backoff * (2 ** attempt))

    def _open_following(self, url, until):
        """Open *url*, following redirects ourselves; caller headers go to *url*'s origin only."""
        if urlsplit(url).scheme.lower() == LOCAL_SCHEME:
            self.requests_made += 1
            try:
                return _open_local(url)
            except _HopError as exc:
                raise self.error(url, exc.reason, status=exc.status, kind=exc.kind)
        home = origin(url)
        current = url
        for dummy in range(MAX_REDIRECTS + 1):
            remaining = until - self.clock()
            if remaining <= 0:
                raise self._past_deadline(url, until, "no response yet")
            self.requests_made += 1
            try:
                reply = self._open(current, self._request_headers(origin(current) == home), min(self.timeout, remaining))
            except _HopError as exc:
                reason = exc.reason if current == url else "%s (after a redirect to %s)" % (exc.reason, _redirect_display(current))
                raise self.error(url, reason, status=exc.status, retryable=exc.retryable, kind=exc.kind)
            if isinstance(reply, _Body):
                return reply
            if not reply.location:
                raise self.error(url, "HTTP %d redirect without a Location header" % reply.status)
            target = urljoin(current, reply.location)
            if urlsplit(target).scheme.lower() not in DEFAULT_PORTS:
                raise self.error(url, "redirected to %s, which is not an http or https URL" % _redirect_display(target))
            current = target
        raise self.error(url, "more than %d redirects" % MAX_REDIRECTS)

    def _with_retries(self, url, until, action):
        """Run ``action(body)`` on a fresh response, retrying transient failures a bounded number of times."""
        last_error = None
        for attempt in range(self.retries + 1):
            if attempt:
                delay = self._delay(attempt - 1)
                if self.clock() + delay >= until:
                    raise self.error(url, "%s (the deadline of %s s leaves no time for another attempt)"
                                     % (_reason_of(last_error), _seconds(self.deadline)), status=last_error.status, kind=last_error.kind)
                self.sleep(delay)
            body = None
            try:
                body = self._open_following(url, until)
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
                         status=last_error.status, retryable=False, kind=last_error.kind)

    def _read_all(self, url, body, sink, until, max_bytes=None, progress=None):
        """Feed every chunk to ``sink``; a body shorter than its Content-Length is an error.

        Errors while reading mean "try again"; errors raised by ``sink`` (a full disk) are the
        caller's and pass through unchanged.
        """
        if max_bytes is not None and body.expected_length is not None and body.expected_length > max_bytes:
            raise self.error(url, "the response is %d bytes, larger than the %d allowed" % (body.expected_length, max_bytes))
        received = 0
        chunks = iter(body.chunks)
        while True:
            if self.clock() > until:
                raise self._past_deadline(url, until, _progress(received, body.expected_length))
            try:
                chunk = next(chunks)
            except StopIteration:
                break
            except Exception as exc:  # backends raise many kinds of read errors; all mean "try again"
                if self.clock() > until:
                    raise self._past_deadline(url, until, _progress(received, body.expected_length))
                raise self.error(url, "connection lost after %d bytes: %s" % (received, _describe(exc)), retryable=True)
            if not chunk:
                continue
            received += len(chunk)
            if max_bytes is not None and received > max_bytes:
                raise self.error(url, "the response is larger than the %d bytes allowed" % max_bytes)
            sink(chunk)
            if progress is not None:
                progress.update(received, body.expected_length)
        if body.expected_length is not None and received != body.expected_length:
            raise self.error(url, "truncated body: received %d of %d bytes" % (received, body.expected_length), retryable=True)
        return received

    # -- operations ---------------------------------------------------------------------------
    def download_to(self, url: str, dest_path: str, algorithm: str = "sha256", until=None, max_bytes=None) -> str:
        """Stream *url* into *dest_path*, hashing on the way; return the hex digest.

        Bytes go to a temp file ``.<dest name>.<random>.part`` in *dest_path*'s directory, which
        is fsynced and renamed to *dest_path* only when the whole body arrived. *dest_path* is
        meant to be a staging name: the caller verifies the digest and decides whether to rename
        it into its final place. On any failure nothing is left behind (a killed process leaves
        the .part file; the caller sweeps those under its lock). *until* is a monotonic instant
        (default: the deadline from now); *max_bytes* refuses larger bodies.
        """
        directory = os.path.dirname(os.path.abspath(dest_path))
        until = self.until() if until is None else until
        return self._with_retries(url, until, lambda body: self._stream_to_file(url, body, directory, dest_path, algorithm, until, max_bytes))

    def _stream_to_file(self, url, body, directory, dest_path, algorithm, until, max_bytes):
        digest = new_hash(algorithm)
        fd, temp_path = tempfile.mkstemp(dir=directory, prefix=".%s." % os.path.basename(dest_path), suffix=PARTIAL_SUFFIX)
        try:
            with os.fdopen(fd, "wb") as handle:
                def sink(chunk):
                    digest.update(chunk)
                    handle.write(chunk)
                if self.progress is not None:
                    self.progress.begin()
                self._read_all(url, body, sink, until, max_bytes, self.progress)
                handle.flush()
                os.fsync(handle.fileno())
            os.rename(temp_path, dest_path)
        except BaseException:
            unlink_quietly(temp_path)
            raise
        return digest.hexdigest()

    def get_text(self, url: str, max_bytes: int = MAX_TEXT_BYTES, until=None) -> str:
        """Body of a small text resource (a checksum file), refused when larger than *max_bytes*."""
        until = self.until() if until is None else until

        def read(body):
            parts = []
            self._read_all(url, body, parts.append, until, max_bytes)
            return b"".join(parts).decode("utf-8", "replace")
        return self._with_retries(url, until, read)


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

    def _open(self, url, headers, timeout):
        try:
            response = self.session.get(url, headers=headers, stream=True, timeout=(timeout, timeout),
                                        verify=self._verify(), allow_redirects=False)
        except requests.exceptions.SSLError as exc:
            raise _HopError("TLS verification failed: %s; set ca_path or validate_certs" % _describe(exc))
        except requests.exceptions.RequestException as exc:
            raise _connection_failure(exc)
        if response.status_code in REDIRECT_STATUS:
            location = response.headers.get("Location")
            response.close()
            return _Redirect(response.status_code, location)
        if response.status_code >= 400:
            response.close()
            raise _status_error(response.status_code, response.reason)
        # raw, undecoded bytes: the checksum is over what the server sent.
        chunks = _partial_reads(response.raw, {"decode_content": False})
        return _Body(chunks, _content_length(response.headers.get("Content-Length")), response.close)


class UrlsFetcher(Fetcher):
    """Backend on ``ansible.module_utils.urls``: stdlib only, so it runs on any managed node."""

    backend = "urls"

    def __init__(self, **kwargs):
        super(UrlsFetcher, self).__init__(**kwargs)
        self.request = Request(use_proxy=True, timeout=self.timeout, validate_certs=self.validate_certs, ca_path=self.ca_path,
                               decompress=False, http_agent=USER_AGENT, follow_redirects="none")

    def _open(self, url, headers, timeout):
        try:
            response = self.request.open("GET", url, headers=headers, timeout=timeout)
        except HTTPError as exc:
            status = exc.code
            location = exc.headers.get("Location") if exc.headers is not None else None
            exc.close()
            if status in REDIRECT_STATUS:
                return _Redirect(status, location)
            raise _status_error(status, exc.reason)
        except (SSLValidationError, ssl.SSLCertVerificationError) as exc:
            raise _HopError("TLS verification failed: %s; set ca_path or validate_certs" % _describe(exc))
        except (URLError, UrlsConnectionError, socket.timeout, OSError) as exc:
            raise _connection_failure(exc)
        except Exception as exc:  # http.client raises assorted errors for broken responses
            raise _HopError(_describe(exc), retryable=True)
        return _Body(_partial_reads(response), _content_length(response.headers.get("Content-Length")), response.close)


_STATUS_KINDS = {401: AUTH, 403: FORBIDDEN, 404: NOT_FOUND, 410: NOT_FOUND}


def _status_error(status, reason):
    return _HopError(("HTTP %s %s" % (status, reason or "")).strip(), status=status, retryable=status in RETRYABLE_STATUS,
                     kind=_STATUS_KINDS.get(status))


def _causes(exc):
    """*exc* and what it wraps (cause, context, ``reason``, exception arguments), breadth first, bounded."""
    seen, queue = [], [exc]
    while queue and len(seen) < 20:
        current = queue.pop(0)
        if not isinstance(current, BaseException) or any(current is known for known in seen):
            continue
        seen.append(current)
        queue.extend([current.__cause__, current.__context__, getattr(current, "reason", None)] + list(current.args))
    return seen


def _connection_failure(exc):
    """A retryable _HopError for a failed connection, in plain words where the cause is known.

    The libraries nest the cause deep (requests > urllib3 > socket): a refused connection or an
    unknown host name is found and said as such, instead of the whole chain of wrappers.
    """
    for cause in _causes(exc):
        if isinstance(cause, ConnectionRefusedError) or getattr(cause, "errno", None) == errno.ECONNREFUSED:
            return _HopError("connection refused (nothing listens on that host and port)", retryable=True, kind=REFUSED)
        if isinstance(cause, socket.gaierror):
            return _HopError("the host name does not resolve (%s)" % (cause.strerror or cause), retryable=True, kind=UNRESOLVED)
    return _HopError(_describe(exc), retryable=True)


def local_path(url):
    """The filesystem path a ``file://`` URL names (``file:///srv/cni`` or ``file://localhost/srv/cni``)."""
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ValueError("%s names another host (%s); a file:// URL reads this machine's files: use file:///path"
                         % (url, parts.netloc))
    return unquote(parts.path)


def _open_local(url):
    """A _Body over a local file, with its size as the expected length."""
    try:
        path = local_path(url)
    except ValueError as exc:
        raise _HopError(str(exc))
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        raise _HopError("no such file %s" % path, kind=NOT_FOUND)
    except PermissionError:
        raise _HopError("permission denied reading %s" % path, kind=UNREADABLE)
    except OSError as exc:
        raise _HopError("cannot read %s: %s" % (path, exc.strerror or exc))
    if not os.path.isfile(path):
        handle.close()
        raise _HopError("%s is not a regular file" % path)
    size = os.fstat(handle.fileno()).st_size
    return _Body(iter(lambda: handle.read(CHUNK_SIZE), b""), size, handle.close)


def _seconds(value):
    return ("%d" % value) if float(value).is_integer() else ("%.1f" % value)


def _progress(received, expected):
    if expected is None:
        return "received %d bytes" % received
    return "received %d of %d bytes" % (received, expected)


def make_fetcher(backend="auto", timeout=30, validate_certs=True, ca_path=None, headers=None, retries=3, backoff=1.0, sleep=time.sleep,
                 deadline=DEFAULT_DEADLINE):
    """A Fetcher on the chosen backend; ``auto`` prefers requests and falls back to ansible's urls."""
    if backend not in BACKENDS:
        raise ValueError("unknown HTTP backend %r; use one of %s" % (backend, ", ".join(BACKENDS)))
    kwargs = dict(timeout=timeout, validate_certs=validate_certs, ca_path=ca_path, headers=headers, retries=retries, backoff=backoff, sleep=sleep,
                  deadline=deadline)
    if backend == "requests" or (backend == "auto" and HAS_REQUESTS):
        return RequestsFetcher(**kwargs)
    return UrlsFetcher(**kwargs)


def try_mirrors(base_urls, attempt):
    """Call ``attempt(base_url)`` for each base URL in order until one succeeds.

    Returns ``(base_url, result)`` of the first that served. A DownloadError moves on to the next
    mirror; any other error (a checksum mismatch) stops at once. When all fail, the DownloadError
    lists every URL with its reason.
    """
    failures, kinds = [], []
    for base_url in base_urls:
        try:
            return base_url, attempt(base_url)
        except DownloadError as exc:
            failures.append(str(exc))
            kinds.extend(exc.kinds)
    if not failures:
        raise DownloadError("no base_url or mirror to download from")
    if len(failures) == 1:
        raise DownloadError(failures[0], kinds=kinds)
    raise DownloadError("every mirror failed: " + "; ".join(failures), kinds=kinds)


def _reason_of(error):
    text = str(error)
    marker = " failed: "
    return text.split(marker, 1)[1] if marker in text else text


def _describe(exc):
    text = str(exc) or exc.__class__.__name__
    return "%s: %s" % (exc.__class__.__name__, text) if exc.__class__.__name__ not in text else text
