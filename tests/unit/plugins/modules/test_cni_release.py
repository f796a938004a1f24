"""Tests for the cni_release module: real HTTP server on 127.0.0.1, real tarballs, real cache dir."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import sys
import subprocess
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest

from ansible_collections.nodeprep.cni.tests.unit.http_server import QuietServer, clear_proxies
from ansible_collections.nodeprep.cni.tests.unit.module_runner import module_args
from ansible_collections.nodeprep.cni.plugins.modules import cni_release

ASSET_9 = "cni-plugins-linux-amd64-v9.0.0.tgz"
ASSET_162 = "cni-plugins-linux-amd64-v1.6.2.tgz"
PINNED_162 = "b8e811578fb66023f90d2e238d80cec3bdfca4b44049af74c374d4fae0f9c090"


def make_tarball(label):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name in ("bridge", "host-local", "loopback", "macvlan", "LICENSE", "README.md"):
            data = b"#!/bin/sh\necho %s %s\n" % (name.encode(), label.encode())
            info = tarfile.TarInfo("./" + name)
            info.size = len(data)
            info.mode = 0o755
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


TARBALL = make_tarball("9.0.0")
SHA256 = hashlib.sha256(TARBALL).hexdigest()
SHA512 = hashlib.sha512(TARBALL).hexdigest()


class ReleaseServer:
    """Serves files from a dict path -> bytes (404 otherwise) and counts every request."""

    def __init__(self):
        self.files = {}
        self.hits = []
        self.delay = 0.0
        # path -> [(delay, status), ...]: the next requests of that path, in order, before the file.
        self.script = {}
        # "user:password" a request must present as basic auth (after a 401 challenge), or None.
        self.credentials = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 - name required by BaseHTTPRequestHandler
                if server.credentials is not None:
                    wanted = "Basic " + base64.b64encode(server.credentials.encode()).decode()
                    if self.headers.get("Authorization") != wanted:
                        self.send_response(401)
                        self.send_header("WWW-Authenticate", 'Basic realm="mirror"')
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                server.hits.append(self.path)
                scripted = server.script.get(self.path)
                delay, status = scripted.pop(0) if scripted else (server.delay, None)
                time.sleep(delay)
                body = server.files.get(self.path) if status in (None, 200) else b"scripted failure"
                status = status or (200 if body is not None else 404)
                body = body if body is not None else b"not found"
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def base(self, prefix="/releases"):
        return "http://127.0.0.1:%d%s" % (self.httpd.server_address[1], prefix)

    def publish(self, version, body=TARBALL, prefix="/releases", sha256_file=True, sha512_file=False, arch="amd64"):
        asset = "cni-plugins-linux-%s-v%s.tgz" % (arch, version)
        path = "%s/v%s/%s" % (prefix, version, asset)
        self.files[path] = body
        if sha256_file:
            self.files[path + ".sha256"] = ("%s  %s\n" % (hashlib.sha256(body).hexdigest(), asset)).encode()
        if sha512_file:
            self.files[path + ".sha512"] = ("%s  %s\n" % (hashlib.sha512(body).hexdigest(), asset)).encode()
        return self.base(prefix) + "/v%s/%s" % (version, asset)


@pytest.fixture
def server(monkeypatch):
    clear_proxies(monkeypatch)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    release_server = ReleaseServer()
    release_server.thread.start()
    yield release_server
    release_server.httpd.shutdown()
    release_server.httpd.server_close()


@pytest.fixture
def cache_dir(tmp_path):
    return tmp_path / "cache"


def run_module(args, capsys):
    """Run the module's main(); return (failed, result) from the JSON it prints."""
    with module_args(args):
        with pytest.raises(SystemExit) as info:
            cni_release.main()
    result = json.loads(capsys.readouterr().out)
    assert (info.value.code != 0) == bool(result.get("failed"))
    return bool(result.get("failed")), result


def args_for(server, cache_dir, version="9.0.0", **extra):
    args = {"version": version, "arch": "amd64", "base_url": server.base(), "cache_dir": str(cache_dir), "retries": 0}
    args.update(extra)
    return args


def cache_files(cache_dir):
    if not cache_dir.exists():
        return []
    return sorted(name for name in os.listdir(str(cache_dir)) if not name.endswith(".lock"))


def test_pinned_checksum_mismatch_fails_and_leaves_no_file(server, cache_dir, capsys):
    url = server.publish("1.6.2")  # our own bytes, not upstream's: must not match the pinned value
    failed, result = run_module(args_for(server, cache_dir, version="v1.6.2"), capsys)
    assert failed
    assert url in result["msg"] and PINNED_162 in result["msg"] and SHA256 in result["msg"]
    assert "checksum mismatch" in result["msg"]
    assert cache_files(cache_dir) == []
    assert server.hits == ["/releases/v1.6.2/" + ASSET_162]  # the pinned value is used, no .sha256 fetched


def test_unpinned_version_verified_by_sha256_file_then_offline(server, cache_dir, capsys):
    url = server.publish("9.0.0")
    failed, result = run_module(args_for(server, cache_dir), capsys)
    assert not failed, result
    assert result["changed"] is True and result["downloaded"] is True
    assert result["sha256"] == SHA256 and result["url"] == url and result["checksum_source"] == "checksum_file"
    assert result["path"] == str(cache_dir / ASSET_9) and result["version"] == "9.0.0" and result["arch"] == "amd64"
    assert (cache_dir / ASSET_9).read_bytes() == TARBALL
    assert server.hits == ["/releases/v9.0.0/%s.sha256" % ASSET_9, "/releases/v9.0.0/" + ASSET_9]
    record = json.loads((cache_dir / (ASSET_9 + ".verified.json")).read_text())
    assert record == {"sha256": SHA256, "url": url, "algorithm": "sha256"}
    assert cache_files(cache_dir) == [ASSET_9, ASSET_9 + ".verified.json"]

    server.hits.clear()
    failed, again = run_module(args_for(server, cache_dir), capsys)
    assert not failed and again["changed"] is False and again["downloaded"] is False
    assert again["sha256"] == SHA256 and again["checksum_source"] == "verified_record"
    assert server.hits == []


def test_lost_record_reverifies_cached_file_without_downloading(server, cache_dir, capsys):
    server.publish("9.0.0")
    assert not run_module(args_for(server, cache_dir), capsys)[0]
    (cache_dir / (ASSET_9 + ".verified.json")).unlink()
    server.hits.clear()
    failed, result = run_module(args_for(server, cache_dir), capsys)
    assert not failed and result["downloaded"] is False and result["changed"] is False
    assert server.hits == ["/releases/v9.0.0/%s.sha256" % ASSET_9]
    assert (cache_dir / (ASSET_9 + ".verified.json")).exists()


def test_unpinned_version_verified_by_sha512_file(server, cache_dir, capsys):
    server.publish("9.0.0", sha256_file=False, sha512_file=True)
    failed, result = run_module(args_for(server, cache_dir, checksum_algorithm="sha512"), capsys)
    assert not failed, result
    assert result["sha256"] == SHA256 and result["downloaded"] is True
    assert server.hits[0].endswith(".sha512")
    record = json.loads((cache_dir / (ASSET_9 + ".verified.json")).read_text())
    assert record["sha512"] == SHA512 and record["sha256"] == SHA256 and record["algorithm"] == "sha512"


TRUST_WARNING = (
    "CNI plugins 9.0.0 for amd64 was verified only against the checksum file served beside %s: trust on first use, "
    "the server's own word rather than a pinned digest; pin it with checksum or checksums "
    "({amd64: {'9.0.0': 'sha256:<hex>'}}; role: cni_plugins_checksums), or set require_pinned "
    "(cni_plugins_require_pinned) to refuse versions that are not pinned")


def play_warnings(tmp_path, args):
    """Runs cni_release as a playbook task, as users do; returns the warnings Ansible shows for it."""
    play = [{"name": "Fetch", "hosts": "localhost", "gather_facts": False,
             "tasks": [{"name": "Fetch the release", "nodeprep.cni.cni_release": args}]}]
    playbook = tmp_path / "fetch.yml"
    playbook.write_text(json.dumps(play))
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"),
               ANSIBLE_PYTHON_INTERPRETER=sys.executable, no_proxy="127.0.0.1,localhost")
    ansible_playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    done = subprocess.run([ansible_playbook, "-i", "localhost,", "-c", "local", str(playbook)], env=env,
                          capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    result = report["plays"][0]["tasks"][0]["hosts"]["localhost"]
    shown = [w if isinstance(w, str) else w.get("msg", "") for w in result.get("warnings", [])]
    shown += [w if isinstance(w, str) else w.get("msg", "") for w in report.get("global_custom_stats", {}).get("warnings", [])]
    return result, shown


def test_release_verified_only_by_its_servers_checksum_file_warns_trust_on_first_use(server, cache_dir, tmp_path):
    url = server.publish("9.0.0")
    args = args_for(server, cache_dir)
    result, shown = play_warnings(tmp_path, args)
    assert result["checksum_source"] == "checksum_file" and shown == [TRUST_WARNING % url], shown
    # The cached file proven by that same checksum file is no better: warned again, offline.
    server.hits.clear()
    result, shown = play_warnings(tmp_path, args)
    assert result["checksum_source"] == "verified_record" and shown == [TRUST_WARNING % url], shown
    assert server.hits == []


@pytest.mark.parametrize("pin", ["checksum", "checksums"])
def test_pinned_release_gives_no_trust_warning(server, cache_dir, tmp_path, pin):
    server.publish("9.0.0", sha256_file=False)
    given = {"checksum": "sha256:" + SHA256} if pin == "checksum" else {"checksums": {"amd64": {"9.0.0": "sha256:" + SHA256}}}
    result, shown = play_warnings(tmp_path, args_for(server, cache_dir, **given))
    assert result["checksum_source"] in ("checksum", "user_table") and result["downloaded"] and shown == [], (result, shown)


def test_tampered_tarball_fails_against_checksum_file(server, cache_dir, capsys):
    server.publish("9.0.0")
    server.files["/releases/v9.0.0/" + ASSET_9] = make_tarball("evil")
    failed, result = run_module(args_for(server, cache_dir), capsys)
    assert failed and SHA256 in result["msg"] and "checksum mismatch" in result["msg"]
    assert cache_files(cache_dir) == []


def test_require_pinned_refuses_before_any_request(server, cache_dir, capsys):
    server.publish("9.0.0")
    failed, result = run_module(args_for(server, cache_dir, require_pinned=True), capsys)
    assert failed
    assert "9.0.0" in result["msg"] and "require_pinned" in result["msg"] and "checksums" in result["msg"]
    assert server.hits == []
    assert not cache_dir.exists()


def test_require_pinned_passes_for_pinned_or_user_versions(server, cache_dir, capsys):
    server.publish("9.0.0", sha256_file=False)
    table = {"amd64": {"9.0.0": "sha256:" + SHA256}}
    failed, result = run_module(args_for(server, cache_dir, require_pinned=True, checksums=table), capsys)
    assert not failed and result["checksum_source"] == "user_table"


@pytest.mark.parametrize("version, replacement", [("1.6.1", "1.6.2"), ("v1.7.0", "1.7.1")])
def test_broken_version_refused_before_any_request(server, cache_dir, capsys, version, replacement):
    server.publish(version.lstrip("v"))
    failed, result = run_module(args_for(server, cache_dir, version=version, checksum="sha256:" + SHA256), capsys)
    assert failed and result["msg"] == "CNI plugins %s is a known-broken release; use %s" % (version.lstrip("v"), replacement)
    assert server.hits == []


def test_cache_hit_makes_no_request(server, cache_dir, capsys):
    server.publish("9.0.0")
    args = args_for(server, cache_dir, checksums={"amd64": {"9.0.0": SHA256}})
    assert not run_module(args, capsys)[0]
    assert len(server.hits) == 1
    server.hits.clear()
    failed, result = run_module(args, capsys)
    assert not failed and result["changed"] is False and result["downloaded"] is False and result["sha256"] == SHA256
    assert server.hits == []


def test_corrupt_cache_entry_is_replaced(server, cache_dir, capsys):
    server.publish("9.0.0")
    cache_dir.mkdir()
    (cache_dir / ASSET_9).write_bytes(b"partial junk")
    failed, result = run_module(args_for(server, cache_dir, checksum="sha256:" + SHA256, _ansible_diff=True), capsys)
    assert not failed and result["downloaded"] is True
    assert (cache_dir / ASSET_9).read_bytes() == TARBALL
    assert result["diff"]["before"]["present"] is True
    assert result["diff"]["before"]["sha256"] == hashlib.sha256(b"partial junk").hexdigest()
    assert result["diff"]["after"] == {"path": str(cache_dir / ASSET_9), "present": True, "sha256": SHA256}


def test_check_mode_never_downloads_or_writes(server, cache_dir, capsys):
    server.publish("9.0.0")
    args = args_for(server, cache_dir, checksum="sha256:" + SHA256, _ansible_check_mode=True, _ansible_diff=True)
    failed, result = run_module(args, capsys)
    assert not failed
    assert result["changed"] is True and result["downloaded"] is False
    assert result["path"] == str(cache_dir / ASSET_9) and result["sha256"] == SHA256
    assert result["diff"]["before"] == {"path": str(cache_dir / ASSET_9), "present": False, "sha256": None}
    assert server.hits == []
    assert not cache_dir.exists()


def test_check_mode_with_verified_cache_reports_no_change(server, cache_dir, capsys):
    server.publish("9.0.0")
    args = args_for(server, cache_dir, checksum="sha256:" + SHA256)
    assert not run_module(args, capsys)[0]
    server.hits.clear()
    failed, result = run_module(dict(args, _ansible_check_mode=True), capsys)
    assert not failed and result["changed"] is False and server.hits == []


def test_user_table_overrides_pinned_value(server, cache_dir, capsys):
    # A repack published as 1.6.2: the pinned upstream value would refuse it, the user entry accepts it.
    server.publish("1.6.2", sha256_file=False)
    table = {"amd64": {"v1.6.2": ["sha256:" + "0" * 64, "sha256:" + SHA256]}}
    failed, result = run_module(args_for(server, cache_dir, version="1.6.2", checksums=table), capsys)
    assert not failed, result
    assert result["checksum_source"] == "user_table" and result["sha256"] == SHA256


def test_explicit_checksum_wins_over_tables(server, cache_dir, capsys):
    server.publish("9.0.0", sha256_file=False)
    table = {"amd64": {"9.0.0": "sha256:" + "0" * 64}}
    failed, result = run_module(args_for(server, cache_dir, checksum="sha512:" + SHA512.upper(), checksums=table), capsys)
    assert not failed, result
    assert result["checksum_source"] == "checksum" and result["sha256"] == SHA256
    assert not (cache_dir / (ASSET_9 + ".verified.json")).exists()


def test_mirror_fallback_when_base_url_404s(server, cache_dir, capsys):
    mirror_url = server.publish("9.0.0", prefix="/mirror")
    args = args_for(server, cache_dir, base_url=server.base("/gone/"), mirrors=[server.base("/mirror"), server.base("/never")], retries=3)
    failed, result = run_module(args, capsys)
    assert not failed, result
    assert result["url"] == mirror_url
    # The checksum file comes from the mirror that serves the tarball; 404 is not retried.
    assert server.hits == [
        "/gone/v9.0.0/%s.sha256" % ASSET_9,
        "/mirror/v9.0.0/%s.sha256" % ASSET_9,
        "/mirror/v9.0.0/" + ASSET_9,
    ]


def test_all_mirrors_missing_fails_naming_urls(server, cache_dir, capsys):
    args = args_for(server, cache_dir, checksum="sha256:" + SHA256, mirrors=[server.base("/other")])
    failed, result = run_module(args, capsys)
    assert failed
    assert server.base() + "/v9.0.0/" + ASSET_9 in result["msg"] and server.base("/other") in result["msg"]
    assert "404" in result["msg"]
    assert cache_files(cache_dir) == []


def test_headers_are_secret(server, cache_dir, capsys):
    args = args_for(server, cache_dir, checksum="sha256:" + SHA256, headers={"Authorization": "Bearer hunter2-token"})
    failed, result = run_module(args, capsys)
    assert failed
    # ansible-core 2.22 and later hand the controller the values it must mask in the result's
    # internal _ansible_new_secrets key, which the controller removes before anyone sees the result.
    to_mask = result.pop("_ansible_new_secrets", None)
    assert "hunter2-token" not in json.dumps(result)
    assert to_mask is None or "Bearer hunter2-token" in to_mask


@pytest.mark.parametrize("version, fragment", [("1.4", "such as 1.4.1"), ("0.6.0", "before 0.7.0")])
def test_bad_version_is_one_clear_error(server, cache_dir, capsys, version, fragment):
    failed, result = run_module(args_for(server, cache_dir, version=version), capsys)
    assert failed and fragment in result["msg"] and server.hits == []


def test_bad_checksum_spec_is_clear(server, cache_dir, capsys):
    failed, result = run_module(args_for(server, cache_dir, checksum="md5:abc"), capsys)
    assert failed and "unknown algorithm" in result["msg"] and server.hits == []


def test_parallel_runs_download_once(server, cache_dir, tmp_path):
    """Two real module processes (as forks would run) share the cache: one downloads, one waits and reuses."""
    server.publish("9.0.0")
    server.delay = 0.5  # keep the first download in flight while the second run starts
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args_for(server, cache_dir)}))
    # .../<root>/ansible_collections/nodeprep/cni/plugins/modules/cni_release.py -> <root>
    collections_root = cni_release.__file__
    for dummy in range(6):
        collections_root = os.path.dirname(collections_root)
    env = dict(os.environ, PYTHONPATH=collections_root)
    command = [sys.executable, cni_release.__file__, str(args_file)]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) for dummy in range(2)]
    results = [json.loads(run.communicate(timeout=60)[0]) for run in runs]
    assert all(not result.get("failed") for result in results), [result.get("msg") for result in results]
    assert sorted(result["downloaded"] for result in results) == [False, True]
    assert server.hits.count("/releases/v9.0.0/" + ASSET_9) == 1
    assert all(result["sha256"] == SHA256 for result in results)


def module_command(tmp_path, args, name="args.json"):
    """argv and environment that run the module file as Ansible would: a process of its own."""
    args_file = tmp_path / name
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    collections_root = cni_release.__file__
    for dummy in range(6):
        collections_root = os.path.dirname(collections_root)
    return [sys.executable, cni_release.__file__, str(args_file)], dict(os.environ, PYTHONPATH=collections_root)


def start_run(tmp_path, args, name):
    command, env = module_command(tmp_path, args, name)
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def finish(process):
    out, err = process.communicate(timeout=60)
    assert out, err
    return json.loads(out)


def test_lock_file_is_never_unlinked_so_waiters_and_newcomers_serialise(server, cache_dir, tmp_path):
    """A holds the lock and fails; B waited on that lock; C arrives after A is gone. B and C must
    lock one and the same file: exactly one of them downloads, the other reuses the result."""
    server.publish("9.0.0")
    tarball = "/releases/v9.0.0/" + ASSET_9
    # A's request: 1.5 s in flight, then 500. B's: 1.5 s in flight, then the file.
    server.script[tarball] = [(1.5, 500), (1.5, 200)]
    args = args_for(server, cache_dir, checksum="sha256:" + SHA256)
    run_a = start_run(tmp_path, args, "a.json")
    deadline = time.monotonic() + 10
    while not (cache_dir / ".lock").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    inode = (cache_dir / ".lock").stat().st_ino
    run_b = start_run(tmp_path, args, "b.json")
    result_a = finish(run_a)
    assert result_a["failed"] and "HTTP 500" in result_a["msg"]
    run_c = start_run(tmp_path, args, "c.json")
    results = [finish(run_b), finish(run_c)]
    assert all(not result.get("failed") for result in results), results
    assert sorted(result["downloaded"] for result in results) == [False, True]
    assert server.hits.count(tarball) == 2  # A's failed request and one download; never two at once
    assert (cache_dir / ".lock").stat().st_ino == inode
    assert (cache_dir / ASSET_9).read_bytes() == TARBALL


def test_failed_download_keeps_the_lock_file_and_adds_nothing_else(server, cache_dir, capsys):
    server.publish("9.0.0")
    assert not run_module(args_for(server, cache_dir), capsys)[0]
    before = sorted(os.listdir(str(cache_dir)))
    inode = (cache_dir / ".lock").stat().st_ino
    failed, result = run_module(args_for(server, cache_dir, version="9.3.0", checksum="sha256:" + SHA256), capsys)
    assert failed and "404" in result["msg"]
    assert sorted(os.listdir(str(cache_dir))) == before
    assert (cache_dir / ".lock").stat().st_ino == inode


LEFTOVERS = [
    "." + ASSET_9 + ".download",
    ".." + ASSET_9 + ".download.k2j4_h1.part",
    "." + ASSET_9 + ".verified.json.x8y7z6.tmp",
    "..cni-plugins-linux-arm64-v1.6.2.tgz.download.abc123.part",
]
NOT_OURS = [".notes.part", "cni-plugins-linux-amd64-v9.0.0.tgz.download", ".cni-plugins-x.tgz.download.d/", "keep.tmp"]


def plant(cache_dir, names):
    cache_dir.mkdir(exist_ok=True)
    for name in names:
        if name.endswith("/"):
            (cache_dir / name).mkdir()
        else:
            (cache_dir / name).write_bytes(b"partial bytes of a killed run")


def test_next_download_sweeps_leftovers_of_killed_runs_only(server, cache_dir, capsys):
    server.publish("9.0.0")
    plant(cache_dir, LEFTOVERS + NOT_OURS)
    failed, result = run_module(args_for(server, cache_dir), capsys)
    assert not failed, result
    assert result["removed_leftovers"] == sorted(LEFTOVERS)
    left = set(os.listdir(str(cache_dir)))
    assert not left & set(LEFTOVERS)
    assert set(name.rstrip("/") for name in NOT_OURS) <= left


def test_cache_hit_sweeps_leftovers_when_no_download_runs(server, cache_dir, capsys):
    server.publish("9.0.0")
    args = args_for(server, cache_dir, checksum="sha256:" + SHA256)
    assert not run_module(args, capsys)[0]
    plant(cache_dir, LEFTOVERS)
    failed, result = run_module(args, capsys)
    assert not failed and result["changed"] is False and result["removed_leftovers"] == sorted(LEFTOVERS)


def test_leftovers_of_a_running_download_are_left_alone(server, cache_dir, capsys):
    from ansible_collections.nodeprep.cni.plugins.module_utils._locking import FileLock
    server.publish("9.0.0")
    args = args_for(server, cache_dir, checksum="sha256:" + SHA256)
    assert not run_module(args, capsys)[0]
    plant(cache_dir, LEFTOVERS)
    with FileLock(str(cache_dir / ".lock")):  # another run is downloading right now
        failed, result = run_module(args, capsys)
    assert not failed and result["removed_leftovers"] == []
    assert set(LEFTOVERS) <= set(os.listdir(str(cache_dir)))


def test_check_mode_never_sweeps(server, cache_dir, capsys):
    server.publish("9.0.0")
    args = args_for(server, cache_dir, checksum="sha256:" + SHA256)
    assert not run_module(args, capsys)[0]
    plant(cache_dir, LEFTOVERS)
    failed, result = run_module(dict(args, _ansible_check_mode=True), capsys)
    assert not failed and result["removed_leftovers"] == []
    assert set(LEFTOVERS) <= set(os.listdir(str(cache_dir)))


def test_custom_broken_table_reaches_the_refusal_before_any_request(server, cache_dir, capsys):
    server.publish("9.0.0")
    failed, result = run_module(args_for(server, cache_dir, broken_versions={"v9.0.0": "9.0.1"}), capsys)
    assert failed and result["msg"] == "CNI plugins 9.0.0 is a known-broken release; use 9.0.1"
    assert server.hits == [] and not cache_dir.exists()
    # An empty table refuses nothing: 1.6.1 is fetched like any other version.
    server.publish("1.6.1")
    failed, result = run_module(args_for(server, cache_dir, version="1.6.1", broken_versions={}, checksum="sha256:" + SHA256), capsys)
    assert not failed, result


def test_bad_broken_table_is_one_clear_error(server, cache_dir, capsys):
    failed, result = run_module(args_for(server, cache_dir, broken_versions={"1.6.1": "newest"}), capsys)
    assert failed and "broken_versions entry '1.6.1': 'newest'" in result["msg"] and server.hits == []


def test_html_page_served_with_200_is_refused_naming_the_url(server, cache_dir, capsys):
    url = server.publish("9.0.0")
    server.files["/releases/v9.0.0/" + ASSET_9] = b"<!DOCTYPE html>\n<html><body>Sign in to continue</body></html>\n"
    failed, result = run_module(args_for(server, cache_dir, checksum="sha256:" + SHA256), capsys)
    assert failed
    assert "checksum mismatch for %s" % url in result["msg"] and "HTML" in result["msg"]
    assert cache_files(cache_dir) == []


def hostile_tarball():
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in (("./bridge", b"#!/bin/sh\n"), ("/etc/cron.d/evil", b"* * * * * root id\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_verified_but_hostile_archive_never_enters_the_cache(server, cache_dir, capsys):
    body = hostile_tarball()
    url = server.publish("9.0.0", body=body)
    failed, result = run_module(args_for(server, cache_dir, checksum="sha256:" + hashlib.sha256(body).hexdigest(), mirrors=[server.base("/other")]), capsys)
    assert failed
    assert "%s (downloaded from %s): member '/etc/cron.d/evil' has an absolute path" % (ASSET_9, url) in result["msg"]
    assert "the cache is unchanged" in result["msg"]
    assert cache_files(cache_dir) == []
    assert not any(hit.startswith("/other") for hit in server.hits)  # not retried elsewhere


def test_deadline_is_an_option_and_the_next_mirror_serves(server, cache_dir, capsys):
    url = server.publish("9.0.0", prefix="/fast")
    slow = "/slow/v9.0.0/" + ASSET_9
    server.script[slow] = [(3, 200)]  # headers come after 3 s: past a 1 s deadline
    args = args_for(server, cache_dir, base_url=server.base("/slow"), mirrors=[server.base("/fast")], checksum="sha256:" + SHA256, deadline=1)
    started = time.monotonic()
    failed, result = run_module(args, capsys)
    assert not failed, result
    assert result["url"] == url and time.monotonic() - started < 3
    assert server.hits == [slow, "/fast/v9.0.0/" + ASSET_9]


def test_zero_deadline_is_refused(server, cache_dir, capsys):
    failed, result = run_module(args_for(server, cache_dir, deadline=0), capsys)
    assert failed and "deadline" in result["msg"] and server.hits == []


def test_a_full_cache_filesystem_fails_clearly_and_leaves_no_partial_file(server, tmp_path):
    """A real 64 KiB tmpfs as cache_dir, in a private mount namespace."""
    big = make_tarball("big") + os.urandom(512 * 1024)
    server.publish("9.0.0", body=big)
    cache = tmp_path / "tiny"
    cache.mkdir()
    args = args_for(server, cache, checksum="sha256:" + hashlib.sha256(big).hexdigest(), mirrors=[server.base("/other")])
    command, env = module_command(tmp_path, args)
    # sh -c SCRIPT <cache> <module command...>: run the module, then list what it left in the tmpfs.
    script = 'cache="$1"; shift; mount -t tmpfs -o size=64k tmpfs "$cache" && "$@"; status=$?; ls -A "$cache"; exit $status'
    wrapped = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", str(cache)] + command
    done = subprocess.run(wrapped, capture_output=True, text=True, env=env, timeout=60, check=False)
    lines = done.stdout.strip().splitlines()
    result = json.loads(lines[0])
    assert result["failed"]
    assert result["msg"].startswith("cannot use cache_dir %s: No space left on device" % cache)
    assert "free space there, or set cache_dir to a filesystem with room" in result["msg"]
    assert lines[1:] == [".lock"]  # no partial file on the full filesystem
    assert not any(hit.startswith("/other") for hit in server.hits)  # a local problem: no other mirror


def test_checksum_files_written_from_verified_bytes_once(server, cache_dir, capsys):
    server.publish("9.0.0")
    pinned = {"checksums": {"amd64": {"9.0.0": "sha256:" + SHA256}}, "checksum_files": True}
    failed, result = run_module(args_for(server, cache_dir, **pinned), capsys)
    assert not failed, result
    sha512 = hashlib.sha512(TARBALL).hexdigest()
    assert (cache_dir / (ASSET_9 + ".sha256")).read_text() == "%s  %s\n" % (SHA256, ASSET_9)
    assert (cache_dir / (ASSET_9 + ".sha512")).read_text() == "%s  %s\n" % (sha512, ASSET_9)
    assert sorted(result["checksum_files"]) == [str(cache_dir / (ASSET_9 + ext)) for ext in (".sha256", ".sha512")]

    # A complete entry: nothing to write, no request.
    server.hits.clear()
    failed, again = run_module(args_for(server, cache_dir, **pinned), capsys)
    assert not failed and again["changed"] is False and again["checksum_files"] == [] and server.hits == []

    # A checksum file that lost its content is rewritten; the tarball is not fetched again.
    (cache_dir / (ASSET_9 + ".sha512")).write_text("garbage\n")
    failed, repaired = run_module(args_for(server, cache_dir, **pinned), capsys)
    assert not failed and repaired["changed"] is True and repaired["downloaded"] is False
    assert repaired["checksum_files"] == [str(cache_dir / (ASSET_9 + ".sha512"))]
    assert (cache_dir / (ASSET_9 + ".sha512")).read_text() == "%s  %s\n" % (sha512, ASSET_9)
    assert server.hits == []


# credentials in a mirror URL ------------------------------------------------------------------------

SECRET = "s3cr3t-Pa55"


def _leaks(text: str) -> bool:
    return SECRET in text or "mirror-user@" in text


def test_a_password_in_the_mirror_url_is_used_but_never_returned_or_stored(server, cache_dir, capsys, tmp_path):
    from ansible_collections.nodeprep.cni.plugins.modules import cni_info, cni_install
    from ansible_collections.nodeprep.cni.tests.unit.module_runner import Node, build_tarball, release_files, run_module as run_any

    server.credentials = "mirror-user:" + SECRET
    # Plugins that answer CNI_COMMAND=VERSION, so cni_install accepts the release.
    server.publish("9.0.0", body=open(build_tarball(tmp_path / "release.tgz", release_files("9.0.0")), "rb").read())
    with_password = server.base().replace("http://", "http://mirror-user:%s@" % SECRET)
    failed, result = run_module(args_for(server, cache_dir, base_url=with_password), capsys)
    assert not failed, result
    assert result["downloaded"] is True and server.hits  # the server let the credentials in
    assert result["url"] == server.base() + "/v9.0.0/" + ASSET_9
    assert not _leaks(json.dumps(result))  # nor in the arguments the result echoes
    sidecar = cache_dir / (ASSET_9 + ".verified.json")
    assert json.loads(sidecar.read_text())["url"] == result["url"] and not _leaks(sidecar.read_text())
    # A cache hit returns the recorded URL: clean too.
    failed, again = run_module(args_for(server, cache_dir, base_url=with_password), capsys)
    assert not failed and again["downloaded"] is False and again["url"] == result["url"]

    # The role hands cni_install the URL it got; the node's manifest (0644) and cni_info's report
    # (what verify.yml writes) stay clean even when the URL given still carries a password.
    node = Node(tmp_path / "root")
    (tmp_path / "root").mkdir()
    for given in (result["url"], with_password + "/v9.0.0/" + ASSET_9):
        installed = run_any(cni_install, node.args(src=result["path"], version="9.0.0", source_url=given, state="present"))
        assert installed["rc"] == 0, installed.get("msg")
        manifest = (tmp_path / "root/opt/cni/versions/v9.0.0/.nodeprep-manifest.json").read_text()
        assert json.loads(manifest)["source_url"] == result["url"] and not _leaks(manifest)
        assert not _leaks(json.dumps(installed))
        info = run_any(cni_info, node.info_args())
        assert info["rc"] == 0 and not _leaks(json.dumps(info))
        assert run_any(cni_install, node.args(state="absent"))["rc"] == 0


def test_a_manifest_written_with_a_password_is_reported_without_it(tmp_path):
    from ansible_collections.nodeprep.cni.plugins.modules import cni_info
    from ansible_collections.nodeprep.cni.tests.unit.module_runner import Node, run_module as run_any

    node = Node(tmp_path)
    version_dir = tmp_path / "opt/cni/versions/v9.0.0"
    version_dir.mkdir(parents=True)
    old = "https://mirror-user:%s@mirror.example/v9.0.0/%s" % (SECRET, ASSET_9)
    (version_dir / ".nodeprep-manifest.json").write_text(json.dumps(
        {"schema_version": 1, "version": "9.0.0", "source_url": old, "source": {"type": "release", "url": old}, "files": {}}))
    os.symlink("v9.0.0", str(tmp_path / "opt/cni/versions/current"))
    info = run_any(cni_info, node.info_args())
    assert info["rc"] == 0, info.get("msg")
    assert not _leaks(json.dumps(info))
    assert "https://mirror.example/v9.0.0/" + ASSET_9 in json.dumps(info)


@pytest.mark.parametrize("url, public", [
    ("https://user:pw@host:8443/a/b?x=1", "https://host:8443/a/b?x=1"),
    ("https://user@host/a", "https://host/a"),
    ("https://a@b:c@host/a", "https://host/a"),
    ("https://host/a@b", "https://host/a@b"),
    ("file:///srv/x.tgz", "file:///srv/x.tgz"),
    ("", ""),
    (None, None),
])
def test_public_url_drops_the_userinfo_and_nothing_else(url, public):
    from ansible_collections.nodeprep.cni.plugins.module_utils._release import public_url
    assert public_url(url) == public
