"""A real HTTP server for unit tests of the download code, quiet about dropped connections."""

from __future__ import annotations

import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class QuietServer(ThreadingHTTPServer):
    """Clients that drop a kept-alive connection are normal here, not worth a traceback."""

    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Reply:
    """One scripted response; ``truncate_to`` sends a full Content-Length but fewer bytes.

    ``headers`` are extra response headers (a redirect's Location); ``trickle`` sends the body
    after the first ``trickle_after`` bytes one byte every ``trickle`` seconds (a stalling server).
    """

    def __init__(self, status=200, body=b"", truncate_to=None, headers=None, trickle=None, trickle_after=0):
        self.status = status
        self.body = body
        self.truncate_to = truncate_to
        self.headers = headers or {}
        self.trickle = trickle
        self.trickle_after = trickle_after


def redirect(location, status=302):
    return Reply(status, b"", headers={"Location": location})


class ScriptedServer:
    """Routes path -> list of replies (the last one repeats); records every hit with its headers.

    ``tls=(certfile, keyfile)`` serves HTTPS. As a forward proxy it sees absolute URLs as paths.
    """

    def __init__(self, tls=None):
        self.routes = {}
        self.hits = []
        self.lock = threading.Lock()
        # Set at shutdown so trickling replies end at once.
        self.stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 - name required by BaseHTTPRequestHandler
                with server.lock:
                    server.hits.append((self.path, dict(self.headers)))
                    replies = server.routes.get(self.path) or [Reply(404, b"not found")]
                    reply = replies.pop(0) if len(replies) > 1 else replies[0]
                body = reply.body
                self.send_response(reply.status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Type", "application/octet-stream")
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.truncate_to is not None or reply.trickle is not None:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                if reply.trickle is not None:
                    self._trickle(body, reply)
                    return
                self.wfile.write(body if reply.truncate_to is None else body[:reply.truncate_to])
                self.wfile.flush()

            def _trickle(self, body, reply):
                self.wfile.write(body[:reply.trickle_after])
                self.wfile.flush()
                for index in range(reply.trickle_after, len(body)):
                    if server.stopping.wait(reply.trickle):
                        return
                    try:
                        self.wfile.write(body[index:index + 1])
                        self.wfile.flush()
                    except OSError:
                        return  # the client gave up, as it should

            def log_message(self, *args):
                pass

        self.httpd = QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path=""):
        return "%s://127.0.0.1:%d%s" % (self.scheme, self.httpd.server_address[1], path)

    def paths(self):
        return [path for path, dummy in self.hits]

    def stop(self):
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()


PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY")


def clear_proxies(monkeypatch) -> None:
    """Both backends honour proxy variables: none from the caller's environment may reach a test."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
