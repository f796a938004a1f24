"""Tests for the HTTP fetcher against a real HTTP server on 127.0.0.1, on both backends."""

from __future__ import annotations

import hashlib
import os
import socket
import tarfile

import pytest

from testbed_lib.http_server import Reply
from testbed_lib.releases import tarball
from ansible_collections.nodeprep.cni.plugins.module_utils import _http
from ansible_collections.nodeprep.cni.plugins.module_utils._http import DownloadError, display_url, make_fetcher, try_mirrors

BACKENDS = ["requests", "urls"]
SECRET = "Bearer s3cr3t-t0ken-value"


def pseudo_binary(name, size):
    # Incompressible but deterministic, so the tarball spans several read chunks.
    blocks = []
    counter = 0
    while sum(len(block) for block in blocks) < size:
        blocks.append(hashlib.sha512(b"%s-%d" % (name.encode(), counter)).digest())
        counter += 1
    return b"".join(blocks)[:size]


TARBALL = tarball({name: b"#!/bin/sh\n" + pseudo_binary(name, 200 * 1024) for name in ("bridge", "host-local", "loopback", "LICENSE")})
assert len(TARBALL) > 2 * _http.CHUNK_SIZE


def fetcher_for(backend, **kwargs):
    options = dict(timeout=5, retries=3, backoff=0.01)
    options.update(kwargs)
    return make_fetcher(backend=backend, **options)


def leftovers(directory):
    return sorted(name for name in os.listdir(directory))


@pytest.mark.parametrize("backend", BACKENDS)
def test_download_returns_digest_and_writes_dest(server, tmp_path, backend):
    server.routes["/a.tgz"] = [Reply(200, TARBALL)]
    dest = tmp_path / "staged.tgz"
    fetcher = fetcher_for(backend)
    assert fetcher.backend == backend
    digest = fetcher.download_to(server.url("/a.tgz"), str(dest), "sha256")
    assert digest == hashlib.sha256(TARBALL).hexdigest()
    assert dest.read_bytes() == TARBALL
    assert leftovers(tmp_path) == ["staged.tgz"]
    assert fetcher.download_to(server.url("/a.tgz"), str(dest), "sha512") == hashlib.sha512(TARBALL).hexdigest()
    with tarfile.open(str(dest)) as archive:
        assert "./bridge" in archive.getnames()


@pytest.mark.parametrize("backend", BACKENDS)
def test_retries_after_two_503_then_succeeds(server, tmp_path, backend):
    server.routes["/a.tgz"] = [Reply(503, b"busy"), Reply(503, b"busy"), Reply(200, TARBALL)]
    delays = []
    fetcher = fetcher_for(backend, backoff=0.5, sleep=delays.append)
    digest = fetcher.download_to(server.url("/a.tgz"), str(tmp_path / "a.tgz"))
    assert digest == hashlib.sha256(TARBALL).hexdigest()
    assert server.requests == ["/a.tgz"] * 3
    assert delays == [0.5, 1.0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_retries_are_bounded(server, tmp_path, backend):
    server.routes["/a.tgz"] = [Reply(503, b"busy"), Reply(503, b"busy"), Reply(200, TARBALL)]
    fetcher = fetcher_for(backend, retries=1)
    with pytest.raises(DownloadError) as info:
        fetcher.download_to(server.url("/a.tgz"), str(tmp_path / "a.tgz"))
    assert len(server.request_log) == 2
    assert "503" in str(info.value) and "gave up after 2 attempts" in str(info.value)
    assert server.url("/a.tgz") in str(info.value)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_429_is_retried(server, tmp_path, backend):
    server.routes["/a.tgz"] = [Reply(429, b"slow down"), Reply(200, TARBALL)]
    fetcher_for(backend).download_to(server.url("/a.tgz"), str(tmp_path / "a.tgz"))
    assert len(server.request_log) == 2


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("status", [404, 403])
def test_client_errors_are_not_retried(server, tmp_path, backend, status):
    server.routes["/a.tgz"] = [Reply(status, b"no")]
    with pytest.raises(DownloadError) as info:
        fetcher_for(backend).download_to(server.url("/a.tgz"), str(tmp_path / "a.tgz"))
    assert len(server.request_log) == 1
    assert info.value.status == status
    assert str(info.value).startswith("download of %s failed: HTTP %d" % (server.url("/a.tgz"), status))
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_truncated_body_fails_and_leaves_no_temp_file(server, tmp_path, backend):
    server.routes["/a.tgz"] = [Reply(200, TARBALL, truncate_to=len(TARBALL) // 2)]
    dest = tmp_path / "a.tgz"
    with pytest.raises(DownloadError) as info:
        fetcher_for(backend, retries=2).download_to(server.url("/a.tgz"), str(dest))
    assert len(server.request_log) == 3
    assert server.url("/a.tgz") in str(info.value)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_truncated_then_complete_succeeds(server, tmp_path, backend):
    server.routes["/a.tgz"] = [Reply(200, TARBALL, truncate_to=100), Reply(200, TARBALL)]
    digest = fetcher_for(backend).download_to(server.url("/a.tgz"), str(tmp_path / "a.tgz"))
    assert digest == hashlib.sha256(TARBALL).hexdigest()
    assert leftovers(tmp_path) == ["a.tgz"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_headers_are_sent_but_never_in_errors(server, tmp_path, backend):
    server.routes["/ok.sha256"] = [Reply(200, b"abc  ok\n")]
    server.routes["/fail.tgz"] = [Reply(500, b"oops")]
    fetcher = fetcher_for(backend, retries=1, headers={"Authorization": SECRET, "X-Extra": "mirror-key-123"})
    assert fetcher.get_text(server.url("/ok.sha256")) == "abc  ok\n"
    sent = server.request_log[0][1]
    assert sent.get("Authorization") == SECRET and sent.get("X-Extra") == "mirror-key-123"
    with pytest.raises(DownloadError) as info:
        fetcher.download_to(server.url("/fail.tgz"), str(tmp_path / "a.tgz"))
    message = str(info.value) + repr(info.value) + str(info.value.url)
    assert "s3cr3t" not in message and "mirror-key-123" not in message
    assert "500" in message


@pytest.mark.parametrize("backend", BACKENDS)
def test_secrets_redacted_from_connection_errors(tmp_path, backend):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The header value also appears in the URL here: it must still be hidden.
    url = "http://127.0.0.1:%d/%s.tgz" % (port, "tok-987654")
    fetcher = fetcher_for(backend, retries=1, headers={"X-Token": "tok-987654"})
    with pytest.raises(DownloadError) as info:
        fetcher.download_to(url, str(tmp_path / "a.tgz"))
    assert "tok-987654" not in str(info.value)
    assert "gave up after 2 attempts" in str(info.value)
    assert fetcher.requests_made == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_get_text_limits_size(server, backend):
    server.routes["/big"] = [Reply(200, b"a" * 2048)]
    with pytest.raises(DownloadError, match="larger than"):
        fetcher_for(backend).get_text(server.url("/big"), max_bytes=1024)
    assert fetcher_for(backend).get_text(server.url("/big"), max_bytes=4096) == "a" * 2048


@pytest.mark.parametrize("backend", BACKENDS)
def test_mirrors_tried_in_order_until_one_serves(server, tmp_path, backend):
    server.routes["/good/a.tgz"] = [Reply(200, TARBALL)]
    server.routes["/busy/a.tgz"] = [Reply(502, b"bad gateway")]
    fetcher = fetcher_for(backend, retries=1)
    bases = [server.url("/missing"), server.url("/busy"), server.url("/good"), server.url("/never")]
    served, digest = try_mirrors(bases, lambda base: fetcher.download_to(base + "/a.tgz", str(tmp_path / "a.tgz")))
    assert served == server.url("/good")
    assert digest == hashlib.sha256(TARBALL).hexdigest()
    assert server.requests == ["/missing/a.tgz", "/busy/a.tgz", "/busy/a.tgz", "/good/a.tgz"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_all_mirrors_failing_names_each_url(server, tmp_path, backend):
    fetcher = fetcher_for(backend)
    bases = [server.url("/one"), server.url("/two")]
    with pytest.raises(DownloadError) as info:
        try_mirrors(bases, lambda base: fetcher.download_to(base + "/a.tgz", str(tmp_path / "a.tgz")))
    assert server.url("/one/a.tgz") in str(info.value) and server.url("/two/a.tgz") in str(info.value)


def test_mirror_helper_stops_on_non_download_errors():
    calls = []

    def attempt(base):
        calls.append(base)
        raise ValueError("checksum mismatch")
    with pytest.raises(ValueError):
        try_mirrors(["a", "b"], attempt)
    assert calls == ["a"]


def test_backend_selection():
    assert make_fetcher(backend="auto").backend == ("requests" if _http.HAS_REQUESTS else "urls")
    assert make_fetcher(backend="urls").backend == "urls"
    with pytest.raises(ValueError, match="unknown HTTP backend"):
        make_fetcher(backend="curl")


def test_display_url_hides_password():
    assert display_url("https://user:pw@example.com/x") == "https://user:***@example.com/x"
    assert display_url("https://example.com/x") == "https://example.com/x"
