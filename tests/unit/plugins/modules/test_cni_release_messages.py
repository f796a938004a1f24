"""What a failed or slow release download tells the user: the option to change, in the role's own
variable names, and how far a long download got while it runs.

The release backend runs as the cni_plugins action runs it on the controller (a module object with
a progress callback); the servers are real ones on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from ansible_collections.nodeprep.cni.plugins.module_utils import _http
from ansible_collections.nodeprep.cni.plugins.module_utils._locking import FileLock
from ansible_collections.nodeprep.cni.plugins.module_utils._release_backend import LOCK_NAME, argument_spec, release_main
from ansible_collections.nodeprep.cni.plugins.modules import cni_install
from ansible_collections.nodeprep.cni.plugins.plugin_utils._module_object import ModuleObject
from testbed_lib.http_server import LocalServer, Reply, clear_proxies
from testbed_lib.in_process import release_files
from testbed_lib.releases import tarball, write_release

VERSION = "9.0.0"
ASSET = "cni-plugins-linux-amd64-v9.0.0.tgz"
TARBALL = tarball(release_files(VERSION))
SHA256 = hashlib.sha256(TARBALL).hexdigest()
URL_PATH = "/releases/v%s/%s" % (VERSION, ASSET)


@pytest.fixture
def server(monkeypatch, tmp_path):
    clear_proxies(monkeypatch)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    (tmp_path / "www").mkdir()
    write_release(tmp_path / "www" / "releases", VERSION, "amd64", TARBALL, checksum_files=("sha256",))
    with LocalServer(tmp_path / "www") as running:
        yield running


def fetch(tmp_path, lines=None, **params):
    """One run of the release backend as the action makes it; *lines* collects what it reports."""
    values = {"version": VERSION, "arch": "amd64", "cache_dir": str(tmp_path / "cache"), "retries": 0}
    values.update(params)
    module = ModuleObject(argument_spec(), values)
    if lines is not None:
        module.report_progress = lines.append
    return module.run(release_main)


def closed_port():
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- connection refused ------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["requests", "urls"])
def test_refused_connection_is_said_plainly_by_both_backends(backend, monkeypatch):
    clear_proxies(monkeypatch)
    url = "http://127.0.0.1:%d/a.tgz" % closed_port()
    with pytest.raises(_http.DownloadError) as info:
        _http.make_fetcher(backend=backend, retries=0).get_text(url)
    assert info.value.kind == _http.REFUSED
    assert str(info.value) == "download of %s failed: connection refused (nothing listens on that host and port) (gave up after 1 attempt)" % url


def test_refused_mirror_names_the_url_and_the_role_variables(tmp_path, monkeypatch):
    clear_proxies(monkeypatch)
    base_url = "http://127.0.0.1:%d/releases" % closed_port()
    result = fetch(tmp_path, base_url=base_url, checksum="sha256:" + SHA256)
    assert result["failed"]
    message = result["msg"]
    assert "%s/v%s/%s" % (base_url, VERSION, ASSET) in message
    assert "connection refused" in message
    assert "base_url (role: cni_plugins_base_url) and mirrors (role: cni_plugins_mirrors)" in message
    # The libraries' own wrappers stay out of it.
    assert "HTTPConnectionPool" not in message and "NewConnectionError" not in message and "Max retries" not in message


# --- credentials ---------------------------------------------------------------------------

def test_401_without_headers_asks_for_cni_plugins_headers(tmp_path, monkeypatch):
    clear_proxies(monkeypatch)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    with LocalServer(credentials="mirror:right") as locked:
        result = fetch(tmp_path, base_url=locked.url("/releases"))
    assert result["failed"]
    assert "HTTP 401" in result["msg"]
    assert "the mirror asks for credentials: give them in headers (role: cni_plugins_headers)" in result["msg"]


def test_401_with_wrong_headers_names_the_header_never_its_value(tmp_path, monkeypatch):
    clear_proxies(monkeypatch)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    with LocalServer(credentials="mirror:right") as locked:
        result = fetch(tmp_path, base_url=locked.url("/releases"), headers={"Authorization": "Basic d3Jvbmc6d3Jvbmc="})
    assert result["failed"]
    assert "did not accept the credentials sent in headers (role: cni_plugins_headers; header names: Authorization" in result["msg"]
    assert "d3Jvbmc6d3Jvbmc=" not in json.dumps(result)


def test_403_says_the_credentials_have_no_access(tmp_path, server):
    server.fault(URL_PATH + ".sha256", Reply(403, None))
    result = fetch(tmp_path, base_url=server.url("/releases"), headers={"X-Token": "tok-5551234"})
    assert result["failed"]
    assert "HTTP 403" in result["msg"]
    assert "header names: X-Token, values not shown) have no access" in result["msg"]
    assert "tok-5551234" not in json.dumps(result)


# --- a version the mirror lacks ------------------------------------------------------------

def test_404_says_the_version_is_not_on_that_mirror(tmp_path, server):
    result = fetch(tmp_path, version="9.5.0", base_url=server.url("/releases"))
    assert result["failed"]
    assert "HTTP 404" in result["msg"]
    assert ("version 9.5.0 for amd64 is not on that mirror (a mirror serves <base_url>/v9.5.0/cni-plugins-linux-amd64-v9.5.0.tgz "
            "and its .sha256 file beside it): check version (role: cni_plugins_version) and base_url / mirrors "
            "(role: cni_plugins_base_url, cni_plugins_mirrors)") in result["msg"]


def test_advice_is_given_once_however_many_mirrors_failed_alike(tmp_path, server):
    mirrors = [server.url("/one"), server.url("/two")]
    result = fetch(tmp_path, base_url=server.url("/releases"), mirrors=mirrors, version="9.5.0")
    assert result["msg"].startswith("every mirror failed: ")
    assert result["msg"].count("HTTP 404") == 3
    assert result["msg"].count("is not on that mirror") == 1


# --- local directories and file:// URLs ------------------------------------------------------

@pytest.mark.parametrize("spelling", ["directory", "file_url"])
def test_local_directory_is_a_release_source_verified_like_a_download(tmp_path, spelling):
    source = tmp_path / "air-gapped"
    write_release(source, VERSION, "amd64", TARBALL, checksum_files=("sha256",))
    base_url = str(source) + "/" if spelling == "directory" else "file://" + str(source)
    result = fetch(tmp_path, base_url=base_url)
    assert not result.get("failed"), result
    assert result["downloaded"] and result["changed"]
    assert result["checksum_source"] == "checksum_file"
    assert result["url"] == "file://%s/v%s/%s" % (source, VERSION, ASSET)
    cached = tmp_path / "cache" / ASSET
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == SHA256


def test_local_directory_with_a_wrong_checksum_file_is_refused(tmp_path):
    source = tmp_path / "air-gapped"
    write_release(source, VERSION, "amd64", TARBALL, checksum_files=("sha256",))
    (source / ("v%s/%s.sha256" % (VERSION, ASSET))).write_text("%s  %s\n" % ("0" * 64, ASSET))
    result = fetch(tmp_path, base_url=str(source))
    assert result["failed"]
    assert "checksum mismatch" in result["msg"]
    assert not (tmp_path / "cache" / ASSET).exists()


def test_local_directory_without_the_version_names_the_role_variables(tmp_path):
    source = tmp_path / "air-gapped"
    write_release(source, VERSION, "amd64", TARBALL, checksum_files=("sha256",))
    result = fetch(tmp_path, base_url=str(source), version="9.5.0")
    assert result["failed"]
    assert "no such file %s/v9.5.0/cni-plugins-linux-amd64-v9.5.0.tgz.sha256" % source in result["msg"]
    assert "version 9.5.0 for amd64 is not on that mirror" in result["msg"]


@pytest.mark.parametrize("value", ["releases/cni", "ftp://mirror.example/cni", "~/cni"])
def test_unusable_base_url_is_refused_naming_the_role_variable(tmp_path, value):
    result = fetch(tmp_path, base_url=value)
    assert result["failed"]
    assert result["msg"].startswith("%s is neither an http:// or https:// URL, a file:// URL nor an absolute directory path; "
                                    "give one of those in base_url (role: cni_plugins_base_url)" % value)
    assert not (tmp_path / "cache").exists()


# --- progress ------------------------------------------------------------------------------

@pytest.fixture
def short_interval(monkeypatch):
    monkeypatch.setattr(_http, "PROGRESS_INTERVAL", 0.25)
    return 0.25


def test_slow_download_reports_progress_at_a_steady_interval(tmp_path, server, short_interval):
    # The last 60 bytes arrive one every 25 ms: about 1.5 s in all.
    server.fault(URL_PATH, Reply(200, TARBALL, trickle=0.025, trickle_after=len(TARBALL) - 60))
    lines = []
    started = time.monotonic()
    result = fetch(tmp_path, lines, base_url=server.url("/releases"), checksum="sha256:" + SHA256)
    took = time.monotonic() - started
    assert not result.get("failed"), result
    assert len(lines) >= 3, lines
    # At most one line per interval: bounded by the time taken, never one per chunk.
    assert len(lines) <= took / short_interval + 1, lines
    prefix = "downloading %s (mirror 1 of 1, %s): " % (ASSET, server.url(URL_PATH))
    assert all(line.startswith(prefix) for line in lines), lines
    assert all(" of %s (" % _http.human_bytes(len(TARBALL)) in line and "/s, " in line and " s so far" in line for line in lines)


def test_fast_download_reports_nothing(tmp_path, server, short_interval):
    lines = []
    result = fetch(tmp_path, lines, base_url=server.url("/releases"), checksum="sha256:" + SHA256)
    assert not result.get("failed") and result["downloaded"]
    assert lines == []


def test_progress_names_which_mirror_serves(tmp_path, server, short_interval):
    server.fault(URL_PATH, Reply(200, TARBALL, trickle=0.025, trickle_after=len(TARBALL) - 30))
    lines = []
    dead = "http://127.0.0.1:%d/releases" % closed_port()
    result = fetch(tmp_path, lines, base_url=dead, mirrors=[server.url("/releases")], checksum="sha256:" + SHA256)
    assert not result.get("failed"), result
    assert lines and all(line.startswith("downloading %s (mirror 2 of 2, " % ASSET) for line in lines), lines


def test_a_run_waiting_on_another_runs_download_says_whose(tmp_path, server):
    cache = tmp_path / "cache"
    cache.mkdir()
    lines, results = [], []
    with FileLock(str(cache / LOCK_NAME)):
        # What the holder has written so far, under the temp name its download streams into.
        (cache / (".%s.download.x1y2z3.part" % ("." + ASSET))).write_bytes(b"\0" * (3 * 1024 * 1024))
        waiter = threading.Thread(target=lambda: results.append(
            fetch(tmp_path, lines, base_url=server.url("/releases"), checksum="sha256:" + SHA256)))
        waiter.start()
        for dummy in range(100):
            if lines:
                break
            time.sleep(0.05)
        # The holder finishes: the verified tarball is in the cache when the lock is let go.
        (cache / ASSET).write_bytes(TARBALL)
    waiter.join(30)
    assert results and not results[0].get("failed"), results
    assert results[0]["downloaded"] is False
    assert server.requests == []
    assert len(lines) == 1, lines
    assert lines[0] == ("waiting for another run's download of %s into %s (it holds %s), 3.0 MiB of it downloaded so far"
                        % (ASSET, cache, cache / LOCK_NAME)), lines


# --- permission denied on the node's paths ---------------------------------------------------

def test_permission_denied_on_node_paths_says_become(tmp_path):
    """cni_install run as an unprivileged user, as a play without become runs it."""
    place = tempfile.mkdtemp(prefix="nodeprep-nobody-")
    try:
        os.chmod(place, 0o755)
        root_only = os.path.join(place, "opt")
        os.mkdir(root_only, 0o755)
        args = os.path.join(place, "args.json")
        with open(args, "w", encoding="utf-8") as handle:
            json.dump({"ANSIBLE_MODULE_ARGS": {"version": VERSION, "src": os.path.join(place, ASSET),
                                               "versions_dir": os.path.join(root_only, "versions"),
                                               "bin_dir": os.path.join(root_only, "bin")}}, handle)
        with open(os.path.join(place, ASSET), "wb") as handle:
            handle.write(TARBALL)
        os.chmod(os.path.join(place, ASSET), 0o644)
        collections_root = cni_install.__file__
        for dummy in range(6):
            collections_root = os.path.dirname(collections_root)
        done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, cni_install.__file__, args],
                              capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=collections_root), cwd=place,
                              check=False)
        result = json.loads(done.stdout)
        assert result["failed"], result
        assert "Permission denied" in result["msg"]
        assert "Permission denied. Run the play with become (ansible-playbook -b, or become: true)" in result["msg"]
        assert os.listdir(root_only) == []
    finally:
        subprocess.run(["rm", "-rf", place], check=True)
