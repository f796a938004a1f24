"""The test bed's HTTP(S) server on 127.0.0.1: a tree of files, scripted replies, failures on cue.

One class for every test that needs a web server: the release mirror of the integration and
reliability tests (files under ``root``), the download code's unit tests (scripted ``Reply``
queues per path, TLS, redirects, a forward proxy, stalled or truncated bodies) and a mirror that
asks for basic-auth credentials. Every request that gets past the credentials is recorded.
"""
from __future__ import annotations

import base64
import os
import ssl
import sys
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Reply:
    """One scripted answer to a request of a path.

    ``body``: the bytes sent; None answers with what the server has for the path (its file under
    ``root``, or the server's own error page for a status of 400 and above). ``truncate_to``
    announces the full Content-Length but sends fewer bytes; ``trickle`` sends the body after the
    first ``trickle_after`` bytes ``trickle_bytes`` at a time (one byte: a stalling server; more: a
    slow link), one piece every ``trickle`` seconds; ``delay``
    waits before answering. ``times``: how many requests the reply answers; None answers one
    request when more replies are queued behind it, and every request when it is the last.
    """

    status: int = 200
    body: bytes | None = b""
    truncate_to: int | None = None
    headers: dict = field(default_factory=dict)
    trickle: float | None = None
    trickle_after: int = 0
    trickle_bytes: int = 1
    delay: float = 0.0
    times: int | None = None


def redirect(location: str, status: int = 302, **extra) -> Reply:
    return Reply(status, b"", headers={"Location": location}, **extra)


def html_page(title: str = "Sign in") -> bytes:
    """What a captive portal or a login wall serves with a 200 instead of the file."""
    return ("<!DOCTYPE html>\n<html><head><title>%s</title></head><body><form action=\"/login\">"
            "</form></body></html>\n" % title).encode()


def html_reply(**extra) -> Reply:
    return Reply(200, html_page(), headers={"Content-Type": "text/html; charset=utf-8"}, **extra)


class _Handler(SimpleHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - name required by BaseHTTPRequestHandler
        owner = self.server.owner
        if not self._authorized(owner):
            return
        owner.record(self.command, self.path, dict(self.headers.items()))
        reply = owner.next_reply(self.path)
        if reply is None:
            self._serve_file(owner)
            return
        if reply.delay and owner.stopping.wait(reply.delay):
            return
        body = reply.body
        if body is None:
            if reply.status >= 400:
                self.send_error(reply.status, "injected failure")
                return
            if reply.trickle is None and reply.truncate_to is None:
                self._serve_file(owner, reply.status)
                return
            body = owner.file_bytes(self.path)
        self._send(reply, body)

    def do_HEAD(self):  # noqa: N802 - name required by BaseHTTPRequestHandler
        owner = self.server.owner
        if self._authorized(owner):
            owner.record(self.command, self.path, dict(self.headers.items()))
            handle = self.send_head() if owner.root is not None else None
            if handle is not None:
                handle.close()

    def _authorized(self, owner) -> bool:
        if owner.credentials is None:
            return True
        wanted = "Basic " + base64.b64encode(owner.credentials.encode()).decode()
        if self.headers.get("Authorization") == wanted:
            return True
        self.send_response(HTTPStatus.UNAUTHORIZED)
        self.send_header("WWW-Authenticate", 'Basic realm="mirror"')
        self.send_header("Content-Length", "0")
        self.end_headers()
        return False

    def _serve_file(self, owner, status: int = HTTPStatus.OK) -> None:
        if owner.root is None:
            self._send(Reply(404, b"not found"), b"not found")
            return
        if status != HTTPStatus.OK:
            self._send(Reply(status), owner.file_bytes(self.path))
            return
        handle = self.send_head()
        if handle is not None:
            try:
                self.copyfile(handle, self.wfile)
            finally:
                handle.close()

    def _send(self, reply: Reply, body: bytes) -> None:
        self.send_response(reply.status)
        headers = {"Content-Length": str(len(body)), "Content-Type": "application/octet-stream"}
        headers.update(reply.headers)
        for name, value in headers.items():
            self.send_header(name, value)
        if reply.truncate_to is not None or reply.trickle is not None:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        try:
            if reply.trickle is not None:
                self._trickle(body, reply)
                return
            self.wfile.write(body if reply.truncate_to is None else body[:reply.truncate_to])
            self.wfile.flush()
        except OSError:
            return  # the client gave up, as it should

    def _trickle(self, body: bytes, reply: Reply) -> None:
        self.wfile.write(body[:reply.trickle_after])
        self.wfile.flush()
        step = max(1, reply.trickle_bytes)
        for index in range(reply.trickle_after, len(body), step):
            if self.server.owner.stopping.wait(reply.trickle):
                return
            self.wfile.write(body[index:index + step])
            self.wfile.flush()

    def log_message(self, format, *args):  # noqa: A002  (signature from the base class)
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: "LocalServer"

    def handle_error(self, request, client_address):
        # Clients that drop a kept-alive connection are normal here, not worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class LocalServer:
    """Serves ``root`` (optional) and scripted replies on 127.0.0.1 (a free port) from a daemon thread.

    ``tls=(certfile, keyfile)`` serves HTTPS; ``credentials="user:password"`` asks every request
    for basic auth; ``access_log`` gets a line per request. As a forward proxy it sees absolute
    URLs as paths. Use as a context manager, or call start() and stop().
    """

    def __init__(self, root: str | os.PathLike | None = None, tls: tuple[str, str] | None = None,
                 access_log: str | os.PathLike | None = None, credentials: str | None = None):
        self.root = Path(root) if root is not None else None
        self.tls = tls
        self.access_log = Path(access_log) if access_log else None
        self.credentials = credentials
        # path -> queued replies (see Reply.times); a path without any serves its file.
        self.routes: dict[str, list[Reply]] = {}
        # Filled by whoever built the releases under root (the integration fixture does), by version.
        self.releases: dict = {}
        self._lock = threading.Lock()
        self._answered: dict[str, int] = {}
        self._request_log: list[tuple[str, dict]] = []
        self._failures: list[int] = []
        # Set at stop so delayed and trickling replies end at once.
        self.stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> "LocalServer":
        directory = str(self.root) if self.root is not None else os.devnull

        def handler(*args, **kwargs):
            return _Handler(*args, directory=directory, **kwargs)

        self._server = _Server(("127.0.0.1", 0), handler)
        self._server.owner = self
        self._port = self._server.server_address[1]
        if self.tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="testbed-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    @property
    def port(self) -> int:
        """The port it listens on; still known after stop(), for URLs a test compares later."""
        return self._port

    @property
    def base_url(self) -> str:
        return "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.port)

    def url(self, path: str = "") -> str:
        return self.base_url + ("/" + path.lstrip("/") if path else "")

    def file_bytes(self, path: str) -> bytes:
        """The bytes of the file under root that ``path`` names (empty when there is none)."""
        if self.root is None:
            return b""
        target = self.root / path.split("?", 1)[0].lstrip("/")
        return target.read_bytes() if target.is_file() else b""

    # --- request log and scripted replies ---

    @property
    def requests(self) -> list[str]:
        """Paths requested so far (a copy), in order."""
        with self._lock:
            return [path for path, dummy in self._request_log]

    @property
    def request_log(self) -> list[tuple[str, dict]]:
        """(path, headers as received) of every request so far, in order: what really arrived."""
        with self._lock:
            return [(path, dict(headers)) for path, headers in self._request_log]

    def clear(self) -> None:
        """Forget the requests so far and every queued reply or failure."""
        with self._lock:
            self._request_log.clear()
            self.routes.clear()
            self._answered.clear()
            self._failures.clear()

    def record(self, method: str, path: str, headers: dict | None = None) -> None:
        with self._lock:
            self._request_log.append((path, dict(headers or {})))
            if self.access_log is not None:
                with open(self.access_log, "a", encoding="utf-8") as log:
                    log.write("%s %s %s\n" % (method, path, ",".join(sorted(headers or {}))))

    def fault(self, path: str, *replies: Reply) -> None:
        """Answer requests of ``path`` (exact, e.g. a Release's url_path) with ``replies`` in order."""
        with self._lock:
            self.routes[path] = list(replies)
            self._answered.pop(path, None)

    def fail_next(self, count: int, status: int = HTTPStatus.SERVICE_UNAVAILABLE) -> None:
        """The next ``count`` requests, whatever their path, get ``status`` (retry tests)."""
        with self._lock:
            self._failures.extend([int(status)] * count)

    def next_reply(self, path: str) -> Reply | None:
        with self._lock:
            if self._failures:
                return Reply(self._failures.pop(0), None)
            queue = self.routes.get(path.split("?", 1)[0]) or self.routes.get(path)
            if not queue:
                return None
            reply = queue[0]
            if reply.times is None:
                if len(queue) > 1:
                    queue.pop(0)
                return reply
            answered = self._answered.get(path, 0) + 1
            if answered >= reply.times:
                queue.pop(0)
                self._answered.pop(path, None)
            else:
                self._answered[path] = answered
            return reply


PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY")


def clear_proxies(monkeypatch) -> None:
    """Both backends honour proxy variables: none from the caller's environment may reach a test."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
