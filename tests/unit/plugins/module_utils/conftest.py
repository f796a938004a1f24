"""The scripted HTTP server of the download code's tests."""
from __future__ import annotations

import pytest

from testbed_lib.http_server import LocalServer, clear_proxies


@pytest.fixture
def server(monkeypatch):
    """A LocalServer on 127.0.0.1 with no proxy in between (proxies from the environment are honoured)."""
    clear_proxies(monkeypatch)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    with LocalServer() as scripted:
        yield scripted
