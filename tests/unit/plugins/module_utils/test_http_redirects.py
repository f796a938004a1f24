"""Redirects on both backends: the caller's headers reach the configured origin and nothing else.

Two real HTTP servers on 127.0.0.1 on different ports are two origins; each records the headers
it received, so the test reads what actually arrived, not what the client meant to send.
"""

from __future__ import annotations

import hashlib

import pytest

from testbed_lib.http_server import Reply, LocalServer, clear_proxies, redirect
from ansible_collections.nodeprep.cni.plugins.module_utils._http import MAX_REDIRECTS, DownloadError, make_fetcher, origin

BACKENDS = ["requests", "urls"]
BODY = b"release bytes " * 1000
SECRETS = {"Authorization": "Bearer r3direct-secret", "X-Token": "x-t0ken-value", "PRIVATE-TOKEN": "gl-pat-123456"}


@pytest.fixture
def servers(monkeypatch):
    clear_proxies(monkeypatch)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    pair = [LocalServer(), LocalServer()]
    for one in pair:
        one.start()
    yield pair
    for one in pair:
        one.stop()


def fetcher_for(backend, **kwargs):
    options = dict(timeout=5, retries=0, backoff=0.01, headers=SECRETS)
    options.update(kwargs)
    return make_fetcher(backend=backend, **options)


def received(server):
    """Header names (lower case) -> values, per request, as the server saw them."""
    return [dict((k.lower(), v) for k, v in headers.items()) for dummy, headers in server.request_log]


def assert_no_secret(headers):
    for name, value in SECRETS.items():
        assert name.lower() not in headers
        assert value not in " ".join(headers.values())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_cross_origin_redirect_drops_every_caller_header(servers, tmp_path, backend, status):
    configured, other = servers
    configured.routes["/v1/a.tgz"] = [redirect(other.url("/blob/a.tgz?signature=abc"), status)]
    other.routes["/blob/a.tgz?signature=abc"] = [Reply(200, BODY)]

    digest = fetcher_for(backend).download_to(configured.url("/v1/a.tgz"), str(tmp_path / "a.tgz"))

    assert digest == hashlib.sha256(BODY).hexdigest()
    first = received(configured)[0]
    assert first["authorization"] == SECRETS["Authorization"] and first["x-token"] == SECRETS["X-Token"]
    assert other.requests == ["/blob/a.tgz?signature=abc"]
    assert_no_secret(received(other)[0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_origin_redirect_keeps_the_headers(servers, tmp_path, backend):
    configured = servers[0]
    configured.routes["/v1/a.tgz"] = [redirect("/storage/a.tgz")]  # relative Location
    configured.routes["/storage/a.tgz"] = [Reply(200, BODY)]
    fetcher_for(backend).download_to(configured.url("/v1/a.tgz"), str(tmp_path / "a.tgz"))
    assert configured.requests == ["/v1/a.tgz", "/storage/a.tgz"]
    for headers in received(configured):
        assert headers["authorization"] == SECRETS["Authorization"] and headers["private-token"] == SECRETS["PRIVATE-TOKEN"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_another_name_for_the_same_address_is_another_host(servers, tmp_path, backend):
    # "localhost" and "127.0.0.1" reach the same socket, but a URL's host is what the user trusted.
    configured = servers[0]
    port = configured.port
    configured.routes["/v1/a.tgz"] = [redirect("http://localhost:%d/storage/a.tgz" % port)]
    configured.routes["/storage/a.tgz"] = [Reply(200, BODY)]
    fetcher_for(backend).download_to(configured.url("/v1/a.tgz"), str(tmp_path / "a.tgz"))
    first, second = received(configured)
    assert first["authorization"] == SECRETS["Authorization"]
    assert_no_secret(second)


@pytest.mark.parametrize("backend", BACKENDS)
def test_headers_come_back_when_a_redirect_returns_to_the_configured_origin(servers, tmp_path, backend):
    configured, other = servers
    configured.routes["/v1/a.tgz"] = [redirect(other.url("/bounce"))]
    other.routes["/bounce"] = [redirect(configured.url("/final.tgz"))]
    configured.routes["/final.tgz"] = [Reply(200, BODY)]
    fetcher_for(backend).download_to(configured.url("/v1/a.tgz"), str(tmp_path / "a.tgz"))
    assert_no_secret(received(other)[0])
    assert [h["authorization"] for h in received(configured)] == [SECRETS["Authorization"]] * 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_checksum_file_redirect_is_handled_alike(servers, backend):
    configured, other = servers
    configured.routes["/a.tgz.sha256"] = [redirect(other.url("/a.tgz.sha256"))]
    other.routes["/a.tgz.sha256"] = [Reply(200, b"abc  a.tgz\n")]
    assert fetcher_for(backend).get_text(configured.url("/a.tgz.sha256")) == "abc  a.tgz\n"
    assert_no_secret(received(other)[0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_failure_after_a_redirect_names_both_urls_without_the_query(servers, tmp_path, backend):
    configured, other = servers
    configured.routes["/v1/a.tgz"] = [redirect(other.url("/blob/a.tgz?X-Signature=s3cret-sig"))]
    with pytest.raises(DownloadError) as info:
        fetcher_for(backend).download_to(configured.url("/v1/a.tgz"), str(tmp_path / "a.tgz"))
    message = str(info.value)
    assert message.startswith("download of %s failed: HTTP 404" % configured.url("/v1/a.tgz"))
    assert "after a redirect to %s" % other.url("/blob/a.tgz") in message
    assert "s3cret-sig" not in message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_redirect_loops_are_bounded(servers, tmp_path, backend):
    configured = servers[0]
    configured.routes["/loop"] = [redirect("/loop")]
    with pytest.raises(DownloadError, match="more than %d redirects" % MAX_REDIRECTS):
        fetcher_for(backend).download_to(configured.url("/loop"), str(tmp_path / "a.tgz"))
    assert len(configured.request_log) == MAX_REDIRECTS + 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_redirect_to_a_local_file_is_refused(servers, tmp_path, backend):
    configured = servers[0]
    configured.routes["/v1/a.tgz"] = [redirect("file:///etc/passwd")]
    with pytest.raises(DownloadError, match="not an http or https URL"):
        fetcher_for(backend).download_to(configured.url("/v1/a.tgz"), str(tmp_path / "a.tgz"))
    assert list(tmp_path.iterdir()) == []


def test_origin_is_scheme_host_and_port_with_default_ports():
    assert origin("https://GitHub.com/x") == ("https", "github.com", 443)
    assert origin("https://github.com:443/y") == origin("https://github.com/x")
    assert origin("http://github.com/x") != origin("https://github.com/x")
    assert origin("https://github.com:8443/x") != origin("https://github.com/x")
    assert origin("https://user:pw@github.com/x") == origin("https://github.com/x")
    assert origin("https://objects.githubusercontent.com/x") != origin("https://github.com/x")
