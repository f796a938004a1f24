"""Proxies from the environment, CA bundles and validate_certs, on both download backends.

A real forward proxy and a real HTTPS server with a self-signed certificate run on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import subprocess

import pytest

from testbed_lib.http_server import Reply, LocalServer, clear_proxies
from ansible_collections.nodeprep.cni.plugins.module_utils._http import DownloadError, make_fetcher

BACKENDS = ["requests", "urls"]
BODY = b"release bytes " * 4096


def fetcher_for(backend, **kwargs):
    options = dict(timeout=5, retries=1, backoff=0.01)
    options.update(kwargs)
    return make_fetcher(backend=backend, **options)


@pytest.fixture
def no_proxy_env(monkeypatch):
    clear_proxies(monkeypatch)
    return monkeypatch


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, made by openssl for this test run."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return str(cert), str(key)


@pytest.fixture
def tls_server(certificate, no_proxy_env):
    server = LocalServer(tls=certificate).start()
    server.routes["/a.tgz"] = [Reply(200, BODY)]
    yield server
    server.stop()


@pytest.mark.parametrize("backend", BACKENDS)
def test_http_proxy_from_the_environment_carries_the_download(no_proxy_env, tmp_path, backend):
    proxy = LocalServer().start()
    try:
        # The mirror's name does not resolve: only a request through the proxy can succeed.
        target = "http://mirror.nodeprep.invalid/v9.0.0/a.tgz"
        proxy.routes[target] = [Reply(200, BODY)]
        no_proxy_env.setenv("http_proxy", proxy.url())
        no_proxy_env.setenv("HTTP_PROXY", proxy.url())
        digest = fetcher_for(backend).download_to(target, str(tmp_path / "a.tgz"), "sha256")
    finally:
        proxy.stop()
    assert digest == hashlib.sha256(BODY).hexdigest()
    assert proxy.requests == [target]


@pytest.mark.parametrize("backend", BACKENDS)
def test_untrusted_certificate_is_refused_by_default(tls_server, tmp_path, backend):
    with pytest.raises(DownloadError) as caught:
        fetcher_for(backend).download_to(tls_server.url("/a.tgz"), str(tmp_path / "a.tgz"), "sha256")
    assert "certificate" in str(caught.value).lower() or "ssl" in str(caught.value).lower()
    assert tls_server.url("/a.tgz") in str(caught.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_ca_path_trusts_the_private_certificate(tls_server, certificate, tmp_path, backend):
    dest = tmp_path / "a.tgz"
    digest = fetcher_for(backend, ca_path=certificate[0]).download_to(tls_server.url("/a.tgz"), str(dest), "sha256")
    assert digest == hashlib.sha256(BODY).hexdigest()
    assert dest.read_bytes() == BODY


@pytest.mark.parametrize("backend", BACKENDS)
def test_validate_certs_false_accepts_the_untrusted_certificate(tls_server, tmp_path, backend):
    dest = tmp_path / "a.tgz"
    digest = fetcher_for(backend, validate_certs=False).download_to(tls_server.url("/a.tgz"), str(dest), "sha256")
    assert digest == hashlib.sha256(BODY).hexdigest()
