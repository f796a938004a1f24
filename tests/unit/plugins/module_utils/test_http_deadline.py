"""The deadline of one download on both backends: a server that trickles or stalls cannot keep it
alive, and the next mirror gets its turn. Real servers on 127.0.0.1 send the bytes slowly."""

from __future__ import annotations

import errno
import hashlib
import time

import pytest

from testbed_lib.http_server import Reply
from ansible_collections.nodeprep.cni.plugins.module_utils._http import DownloadError, make_fetcher, try_mirrors

BACKENDS = ["requests", "urls"]
BODY = b"0123456789" * 2000


def fetcher_for(backend, **kwargs):
    options = dict(timeout=30, retries=3, backoff=0.01)
    options.update(kwargs)
    return make_fetcher(backend=backend, **options)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_trickling_body_is_cut_at_the_deadline(server, tmp_path, backend):
    # One byte every 0.2 s after the first half: each read returns quickly, only the deadline stops it.
    server.routes["/a.tgz"] = [Reply(200, BODY, trickle=0.2, trickle_after=len(BODY) // 2)]
    started = time.monotonic()
    with pytest.raises(DownloadError) as info:
        fetcher_for(backend, deadline=1.5).download_to(server.url("/a.tgz"), str(tmp_path / "a.tgz"))
    elapsed = time.monotonic() - started
    assert 1.4 < elapsed < 3.0, elapsed
    message = str(info.value)
    assert message.startswith("download of %s failed: not finished within the 1.5 s deadline" % server.url("/a.tgz"))
    assert "of %d bytes" % len(BODY) in message and "raise the deadline" in message
    # Not retried: the deadline covers every attempt of this URL.
    assert len(server.request_log) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_silent_server_is_cut_at_the_deadline_not_the_longer_timeout(server, tmp_path, backend):
    server.routes["/a.tgz"] = [Reply(200, BODY, trickle=60, trickle_after=100)]
    started = time.monotonic()
    with pytest.raises(DownloadError, match="deadline"):
        fetcher_for(backend, timeout=30, deadline=1).download_to(server.url("/a.tgz"), str(tmp_path / "a.tgz"))
    assert time.monotonic() - started < 3.0
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_next_mirror_is_tried_after_a_stalled_one(server, tmp_path, backend):
    server.routes["/stalled/a.tgz"] = [Reply(200, BODY, trickle=0.5, trickle_after=10)]
    server.routes["/good/a.tgz"] = [Reply(200, BODY)]
    fetcher = fetcher_for(backend, deadline=1)
    served, digest = try_mirrors([server.url("/stalled"), server.url("/good")],
                                 lambda base: fetcher.download_to(base + "/a.tgz", str(tmp_path / "a.tgz")))
    assert served == server.url("/good") and digest == hashlib.sha256(BODY).hexdigest()
    assert server.requests == ["/stalled/a.tgz", "/good/a.tgz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tgz"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_retries_stop_when_the_deadline_leaves_no_time(server, tmp_path, backend):
    server.routes["/a.tgz"] = [Reply(503, b"busy")]
    delays = []
    fetcher = fetcher_for(backend, retries=5, backoff=10, deadline=5, sleep=delays.append)
    with pytest.raises(DownloadError) as info:
        fetcher.download_to(server.url("/a.tgz"), str(tmp_path / "a.tgz"))
    assert "HTTP 503" in str(info.value) and "leaves no time for another attempt" in str(info.value)
    assert delays == [] and len(server.request_log) == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_deadline_covers_checksum_file_and_tarball(server, tmp_path, backend):
    server.routes["/a.tgz.sha256"] = [Reply(200, b"x" * 64 + b"  a.tgz\n", trickle=0.3, trickle_after=60)]
    fetcher = fetcher_for(backend, deadline=60)
    until = fetcher.until(1)
    with pytest.raises(DownloadError, match="deadline"):
        fetcher.get_text(server.url("/a.tgz.sha256"), until=until)
    with pytest.raises(DownloadError, match="no response yet"):
        fetcher.download_to(server.url("/a.tgz"), str(tmp_path / "a.tgz"), until=until)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bodies_larger_than_allowed_are_refused(server, tmp_path, backend):
    server.routes["/a.tgz"] = [Reply(200, BODY)]
    with pytest.raises(DownloadError, match="larger than the 1000 allowed"):
        fetcher_for(backend).download_to(server.url("/a.tgz"), str(tmp_path / "a.tgz"), max_bytes=1000)
    assert len(server.request_log) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_local_write_error_is_not_a_network_error(server, tmp_path, backend, monkeypatch):
    """A full disk is the caller's problem: no retry, no next mirror, the OSError passes through."""
    server.routes["/a.tgz"] = [Reply(200, BODY)]
    fetcher = fetcher_for(backend)

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr("os.fsync", full_disk)
    with pytest.raises(OSError) as info:
        try_mirrors([server.url(""), server.url("/never")],
                    lambda base: fetcher.download_to(base + "/a.tgz", str(tmp_path / "a.tgz")))
    assert info.value.errno == errno.ENOSPC
    assert server.requests == ["/a.tgz"]
    assert list(tmp_path.iterdir()) == []
