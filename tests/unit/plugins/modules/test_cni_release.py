"""Tests for the cni_release module: real HTTP server on 127.0.0.1, real tarballs, real cache dir."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import subprocess
import time

import pytest

from testbed_lib.http_server import LocalServer, Reply, clear_proxies
from testbed_lib.releases import member, tarball, write_release
from testbed_lib.in_process import release_files, run_module_in_process
from ansible_collections.nodeprep.cni.plugins.modules import cni_release

ASSET_9 = "cni-plugins-linux-amd64-v9.0.0.tgz"
ASSET_162 = "cni-plugins-linux-amd64-v1.6.2.tgz"
PINNED_162 = "b8e811578fb66023f90d2e238d80cec3bdfca4b44049af74c374d4fae0f9c090"


TARBALL = tarball(release_files("9.0.0"))
SHA256 = hashlib.sha256(TARBALL).hexdigest()
SHA512 = hashlib.sha512(TARBALL).hexdigest()


def publish(server, version, body=TARBALL, prefix="/releases", sha256_file=True, sha512_file=False, arch="amd64"):
    """A release on ``server`` under ``prefix``, with the checksum files asked for; returns its URL."""
    files = tuple(name for name, wanted in (("sha256", sha256_file), ("sha512", sha512_file)) if wanted)
    release = write_release(server.root / prefix.lstrip("/"), version, arch, body, checksum_files=files)
    return server.url(prefix) + release.url_path


def replace_file(server, path, body):
    """What the server holds at ``path`` from now on."""
    target = server.root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(body)


@pytest.fixture
def server(monkeypatch, tmp_path):
    """Serves what the test publishes under tmp_path/www; records every request."""
    clear_proxies(monkeypatch)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    (tmp_path / "www").mkdir()
    with LocalServer(tmp_path / "www") as release_server:
        yield release_server


@pytest.fixture
def cache_dir(tmp_path):
    return tmp_path / "cache"


def run_release(args):
    """Run the module in-process; return (failed, result) as a playbook would get the result.

    ``_ansible_check_mode`` and ``_ansible_diff`` in *args* are what the controller would pass.
    """
    args = dict(args)
    result = run_module_in_process(cni_release, args, check_mode=args.pop("_ansible_check_mode", False),
                                   diff=args.pop("_ansible_diff", False))
    code = result.pop("rc")
    assert (code != 0) == bool(result.get("failed"))
    return bool(result.get("failed")), result


def args_for(server, cache_dir, version="9.0.0", **extra):
    args = {"version": version, "arch": "amd64", "base_url": server.url("/releases"), "cache_dir": str(cache_dir), "retries": 0}
    args.update(extra)
    return args


def cache_files(cache_dir):
    if not cache_dir.exists():
        return []
    return sorted(name for name in os.listdir(str(cache_dir)) if not name.endswith(".lock"))


def test_pinned_checksum_mismatch_fails_and_leaves_no_file(server, cache_dir):
    url = publish(server, "1.6.2")  # our own bytes, not upstream's: must not match the pinned value
    failed, result = run_release(args_for(server, cache_dir, version="v1.6.2"))
    assert failed
    assert url in result["msg"] and PINNED_162 in result["msg"] and SHA256 in result["msg"]
    assert "checksum mismatch" in result["msg"]
    assert cache_files(cache_dir) == []
    assert server.requests == ["/releases/v1.6.2/" + ASSET_162]  # the pinned value is used, no .sha256 fetched


def test_unpinned_version_verified_by_sha256_file_then_offline(server, cache_dir):
    url = publish(server, "9.0.0")
    failed, result = run_release(args_for(server, cache_dir))
    assert not failed, result
    assert result["changed"] is True and result["downloaded"] is True
    assert result["sha256"] == SHA256 and result["url"] == url and result["checksum_source"] == "checksum_file"
    assert result["path"] == str(cache_dir / ASSET_9) and result["version"] == "9.0.0" and result["arch"] == "amd64"
    assert (cache_dir / ASSET_9).read_bytes() == TARBALL
    assert server.requests == ["/releases/v9.0.0/%s.sha256" % ASSET_9, "/releases/v9.0.0/" + ASSET_9]
    record = json.loads((cache_dir / (ASSET_9 + ".verified.json")).read_text())
    assert record == {"sha256": SHA256, "url": url, "algorithm": "sha256"}
    assert cache_files(cache_dir) == [ASSET_9, ASSET_9 + ".verified.json"]

    server.clear()
    failed, again = run_release(args_for(server, cache_dir))
    assert not failed and again["changed"] is False and again["downloaded"] is False
    assert again["sha256"] == SHA256 and again["checksum_source"] == "verified_record"
    assert server.requests == []


def test_lost_record_reverifies_cached_file_without_downloading(server, cache_dir):
    publish(server, "9.0.0")
    assert not run_release(args_for(server, cache_dir))[0]
    (cache_dir / (ASSET_9 + ".verified.json")).unlink()
    server.clear()
    failed, result = run_release(args_for(server, cache_dir))
    assert not failed and result["downloaded"] is False and result["changed"] is False
    assert server.requests == ["/releases/v9.0.0/%s.sha256" % ASSET_9]
    assert (cache_dir / (ASSET_9 + ".verified.json")).exists()


def test_unpinned_version_verified_by_sha512_file(server, cache_dir):
    publish(server, "9.0.0", sha256_file=False, sha512_file=True)
    failed, result = run_release(args_for(server, cache_dir, checksum_algorithm="sha512"))
    assert not failed, result
    assert result["sha256"] == SHA256 and result["downloaded"] is True
    assert server.requests[0].endswith(".sha512")
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
    url = publish(server, "9.0.0")
    args = args_for(server, cache_dir)
    result, shown = play_warnings(tmp_path, args)
    assert result["checksum_source"] == "checksum_file" and shown == [TRUST_WARNING % url], shown
    # The cached file proven by that same checksum file is no better: warned again, offline.
    server.clear()
    result, shown = play_warnings(tmp_path, args)
    assert result["checksum_source"] == "verified_record" and shown == [TRUST_WARNING % url], shown
    assert server.requests == []


@pytest.mark.parametrize("pin", ["checksum", "checksums"])
def test_pinned_release_gives_no_trust_warning(server, cache_dir, tmp_path, pin):
    publish(server, "9.0.0", sha256_file=False)
    given = {"checksum": "sha256:" + SHA256} if pin == "checksum" else {"checksums": {"amd64": {"9.0.0": "sha256:" + SHA256}}}
    result, shown = play_warnings(tmp_path, args_for(server, cache_dir, **given))
    assert result["checksum_source"] in ("checksum", "user_table") and result["downloaded"] and shown == [], (result, shown)


def test_tampered_tarball_fails_against_checksum_file(server, cache_dir):
    publish(server, "9.0.0")
    replace_file(server, "/releases/v9.0.0/" + ASSET_9, tarball(release_files("evil")))
    failed, result = run_release(args_for(server, cache_dir))
    assert failed and SHA256 in result["msg"] and "checksum mismatch" in result["msg"]
    assert cache_files(cache_dir) == []


def test_require_pinned_refuses_before_any_request(server, cache_dir):
    publish(server, "9.0.0")
    failed, result = run_release(args_for(server, cache_dir, require_pinned=True))
    assert failed
    assert "9.0.0" in result["msg"] and "require_pinned" in result["msg"] and "checksums" in result["msg"]
    assert server.requests == []
    assert not cache_dir.exists()


def test_require_pinned_passes_for_pinned_or_user_versions(server, cache_dir):
    publish(server, "9.0.0", sha256_file=False)
    table = {"amd64": {"9.0.0": "sha256:" + SHA256}}
    failed, result = run_release(args_for(server, cache_dir, require_pinned=True, checksums=table))
    assert not failed and result["checksum_source"] == "user_table"


@pytest.mark.parametrize("version, replacement", [("1.6.1", "1.6.2"), ("v1.7.0", "1.7.1")])
def test_broken_version_refused_before_any_request(server, cache_dir, version, replacement):
    publish(server, version.lstrip("v"))
    failed, result = run_release(args_for(server, cache_dir, version=version, checksum="sha256:" + SHA256))
    assert failed and result["msg"] == "CNI plugins %s is a known-broken release; use %s" % (version.lstrip("v"), replacement)
    assert server.requests == []


def test_cache_hit_makes_no_request(server, cache_dir):
    publish(server, "9.0.0")
    args = args_for(server, cache_dir, checksums={"amd64": {"9.0.0": SHA256}})
    assert not run_release(args)[0]
    assert len(server.requests) == 1
    server.clear()
    failed, result = run_release(args)
    assert not failed and result["changed"] is False and result["downloaded"] is False and result["sha256"] == SHA256
    assert server.requests == []


def test_corrupt_cache_entry_is_replaced(server, cache_dir):
    publish(server, "9.0.0")
    cache_dir.mkdir()
    (cache_dir / ASSET_9).write_bytes(b"partial junk")
    failed, result = run_release(args_for(server, cache_dir, checksum="sha256:" + SHA256, _ansible_diff=True))
    assert not failed and result["downloaded"] is True
    assert (cache_dir / ASSET_9).read_bytes() == TARBALL
    assert result["diff"]["before"]["present"] is True
    assert result["diff"]["before"]["sha256"] == hashlib.sha256(b"partial junk").hexdigest()
    assert result["diff"]["after"] == {"path": str(cache_dir / ASSET_9), "present": True, "sha256": SHA256}


def test_check_mode_never_downloads_or_writes(server, cache_dir):
    publish(server, "9.0.0")
    args = args_for(server, cache_dir, checksum="sha256:" + SHA256, _ansible_check_mode=True, _ansible_diff=True)
    failed, result = run_release(args)
    assert not failed
    assert result["changed"] is True and result["downloaded"] is False
    assert result["path"] == str(cache_dir / ASSET_9) and result["sha256"] == SHA256
    assert result["diff"]["before"] == {"path": str(cache_dir / ASSET_9), "present": False, "sha256": None}
    assert server.requests == []
    assert not cache_dir.exists()


def test_check_mode_with_verified_cache_reports_no_change(server, cache_dir):
    publish(server, "9.0.0")
    args = args_for(server, cache_dir, checksum="sha256:" + SHA256)
    assert not run_release(args)[0]
    server.clear()
    failed, result = run_release(dict(args, _ansible_check_mode=True))
    assert not failed and result["changed"] is False and server.requests == []


def test_user_table_overrides_pinned_value(server, cache_dir):
    # A repack published as 1.6.2: the pinned upstream value would refuse it, the user entry accepts it.
    publish(server, "1.6.2", sha256_file=False)
    table = {"amd64": {"v1.6.2": ["sha256:" + "0" * 64, "sha256:" + SHA256]}}
    failed, result = run_release(args_for(server, cache_dir, version="1.6.2", checksums=table))
    assert not failed, result
    assert result["checksum_source"] == "user_table" and result["sha256"] == SHA256


def test_explicit_checksum_wins_over_tables(server, cache_dir):
    publish(server, "9.0.0", sha256_file=False)
    table = {"amd64": {"9.0.0": "sha256:" + "0" * 64}}
    failed, result = run_release(args_for(server, cache_dir, checksum="sha512:" + SHA512.upper(), checksums=table))
    assert not failed, result
    assert result["checksum_source"] == "checksum" and result["sha256"] == SHA256
    assert not (cache_dir / (ASSET_9 + ".verified.json")).exists()


def test_mirror_fallback_when_base_url_404s(server, cache_dir):
    mirror_url = publish(server, "9.0.0", prefix="/mirror")
    args = args_for(server, cache_dir, base_url=server.url("/gone/"), mirrors=[server.url("/mirror"), server.url("/never")], retries=3)
    failed, result = run_release(args)
    assert not failed, result
    assert result["url"] == mirror_url
    # The checksum file comes from the mirror that serves the tarball; 404 is not retried.
    assert server.requests == [
        "/gone/v9.0.0/%s.sha256" % ASSET_9,
        "/mirror/v9.0.0/%s.sha256" % ASSET_9,
        "/mirror/v9.0.0/" + ASSET_9,
    ]


def test_all_mirrors_missing_fails_naming_urls(server, cache_dir):
    args = args_for(server, cache_dir, checksum="sha256:" + SHA256, mirrors=[server.url("/other")])
    failed, result = run_release(args)
    assert failed
    assert server.url("/releases") + "/v9.0.0/" + ASSET_9 in result["msg"] and server.url("/other") in result["msg"]
    assert "404" in result["msg"]
    assert cache_files(cache_dir) == []


def test_headers_are_secret(server, cache_dir):
    args = args_for(server, cache_dir, checksum="sha256:" + SHA256, headers={"Authorization": "Bearer hunter2-token"})
    failed, result = run_release(args)
    assert failed
    # ansible-core 2.22 and later hand the controller the values it must mask in the result's
    # internal _ansible_new_secrets key, which the controller removes before anyone sees the result.
    to_mask = result.pop("_ansible_new_secrets", None)
    assert "hunter2-token" not in json.dumps(result)
    assert to_mask is None or "Bearer hunter2-token" in to_mask


@pytest.mark.parametrize("version, fragment", [("1.4", "such as 1.4.1"), ("0.6.0", "before 0.7.0")])
def test_bad_version_is_one_clear_error(server, cache_dir, version, fragment):
    failed, result = run_release(args_for(server, cache_dir, version=version))
    assert failed and fragment in result["msg"] and server.requests == []


def test_bad_checksum_spec_is_clear(server, cache_dir):
    failed, result = run_release(args_for(server, cache_dir, checksum="md5:abc"))
    assert failed and "unknown algorithm" in result["msg"] and server.requests == []


def test_parallel_runs_download_once(server, cache_dir, tmp_path):
    """Two real module processes (as forks would run) share the cache: one downloads, one waits and reuses."""
    publish(server, "9.0.0")
    # Keep the first download in flight while the second run starts.
    for path in ("/releases/v9.0.0/" + ASSET_9, "/releases/v9.0.0/" + ASSET_9 + ".sha256"):
        server.fault(path, Reply(200, None, delay=0.5))
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
    assert server.requests.count("/releases/v9.0.0/" + ASSET_9) == 1
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
    publish(server, "9.0.0")
    tarball = "/releases/v9.0.0/" + ASSET_9
    # A's request: 1.5 s in flight, then 500. B's: 1.5 s in flight, then the file.
    server.fault(tarball, Reply(500, b"scripted failure", delay=1.5, times=1), Reply(200, None, delay=1.5, times=1))
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
    assert server.requests.count(tarball) == 2  # A's failed request and one download; never two at once
    assert (cache_dir / ".lock").stat().st_ino == inode
    assert (cache_dir / ASSET_9).read_bytes() == TARBALL


def test_failed_download_keeps_the_lock_file_and_adds_nothing_else(server, cache_dir):
    publish(server, "9.0.0")
    assert not run_release(args_for(server, cache_dir))[0]
    before = sorted(os.listdir(str(cache_dir)))
    inode = (cache_dir / ".lock").stat().st_ino
    failed, result = run_release(args_for(server, cache_dir, version="9.3.0", checksum="sha256:" + SHA256))
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


def test_next_download_sweeps_leftovers_of_killed_runs_only(server, cache_dir):
    publish(server, "9.0.0")
    plant(cache_dir, LEFTOVERS + NOT_OURS)
    failed, result = run_release(args_for(server, cache_dir))
    assert not failed, result
    assert result["removed_leftovers"] == sorted(LEFTOVERS)
    left = set(os.listdir(str(cache_dir)))
    assert not left & set(LEFTOVERS)
    assert set(name.rstrip("/") for name in NOT_OURS) <= left


def test_cache_hit_sweeps_leftovers_when_no_download_runs(server, cache_dir):
    publish(server, "9.0.0")
    args = args_for(server, cache_dir, checksum="sha256:" + SHA256)
    assert not run_release(args)[0]
    plant(cache_dir, LEFTOVERS)
    failed, result = run_release(args)
    assert not failed and result["changed"] is False and result["removed_leftovers"] == sorted(LEFTOVERS)


def test_leftovers_of_a_running_download_are_left_alone(server, cache_dir):
    from ansible_collections.nodeprep.cni.plugins.module_utils._locking import FileLock
    publish(server, "9.0.0")
    args = args_for(server, cache_dir, checksum="sha256:" + SHA256)
    assert not run_release(args)[0]
    plant(cache_dir, LEFTOVERS)
    with FileLock(str(cache_dir / ".lock")):  # another run is downloading right now
        failed, result = run_release(args)
    assert not failed and result["removed_leftovers"] == []
    assert set(LEFTOVERS) <= set(os.listdir(str(cache_dir)))


def test_check_mode_never_sweeps(server, cache_dir):
    publish(server, "9.0.0")
    args = args_for(server, cache_dir, checksum="sha256:" + SHA256)
    assert not run_release(args)[0]
    plant(cache_dir, LEFTOVERS)
    failed, result = run_release(dict(args, _ansible_check_mode=True))
    assert not failed and result["removed_leftovers"] == []
    assert set(LEFTOVERS) <= set(os.listdir(str(cache_dir)))


def test_custom_broken_table_reaches_the_refusal_before_any_request(server, cache_dir):
    publish(server, "9.0.0")
    failed, result = run_release(args_for(server, cache_dir, broken_versions={"v9.0.0": "9.0.1"}))
    assert failed and result["msg"] == "CNI plugins 9.0.0 is a known-broken release; use 9.0.1"
    assert server.requests == [] and not cache_dir.exists()
    # An empty table refuses nothing: 1.6.1 is fetched like any other version.
    publish(server, "1.6.1")
    failed, result = run_release(args_for(server, cache_dir, version="1.6.1", broken_versions={}, checksum="sha256:" + SHA256))
    assert not failed, result


def test_bad_broken_table_is_one_clear_error(server, cache_dir):
    failed, result = run_release(args_for(server, cache_dir, broken_versions={"1.6.1": "newest"}))
    assert failed and "broken_versions entry '1.6.1': 'newest'" in result["msg"] and server.requests == []


def test_html_page_served_with_200_is_refused_naming_the_url(server, cache_dir):
    url = publish(server, "9.0.0")
    replace_file(server, "/releases/v9.0.0/" + ASSET_9, b"<!DOCTYPE html>\n<html><body>Sign in to continue</body></html>\n")
    failed, result = run_release(args_for(server, cache_dir, checksum="sha256:" + SHA256))
    assert failed
    assert "checksum mismatch for %s" % url in result["msg"] and "HTML" in result["msg"]
    assert cache_files(cache_dir) == []


def test_verified_but_hostile_archive_never_enters_the_cache(server, cache_dir):
    body = tarball({"bridge": b"#!/bin/sh\n"}, extra_members=[member("/etc/cron.d/evil", b"* * * * * root id\n")])
    url = publish(server, "9.0.0", body=body)
    failed, result = run_release(args_for(server, cache_dir, checksum="sha256:" + hashlib.sha256(body).hexdigest(), mirrors=[server.url("/other")]))
    assert failed
    assert "%s (downloaded from %s): member '/etc/cron.d/evil' has an absolute path" % (ASSET_9, url) in result["msg"]
    assert "the cache is unchanged" in result["msg"]
    assert cache_files(cache_dir) == []
    assert not any(hit.startswith("/other") for hit in server.requests)  # not retried elsewhere


def test_deadline_is_an_option_and_the_next_mirror_serves(server, cache_dir):
    url = publish(server, "9.0.0", prefix="/fast")
    slow = "/slow/v9.0.0/" + ASSET_9
    server.fault(slow, Reply(200, None, delay=3, times=1))  # headers come after 3 s: past a 1 s deadline
    args = args_for(server, cache_dir, base_url=server.url("/slow"), mirrors=[server.url("/fast")], checksum="sha256:" + SHA256, deadline=1)
    started = time.monotonic()
    failed, result = run_release(args)
    assert not failed, result
    assert result["url"] == url and time.monotonic() - started < 3
    assert server.requests == [slow, "/fast/v9.0.0/" + ASSET_9]


def test_zero_deadline_is_refused(server, cache_dir):
    failed, result = run_release(args_for(server, cache_dir, deadline=0))
    assert failed and "deadline" in result["msg"] and server.requests == []


def test_a_full_cache_filesystem_fails_clearly_and_leaves_no_partial_file(server, tmp_path):
    """A real 64 KiB tmpfs as cache_dir, in a private mount namespace."""
    big = tarball(release_files("big")) + os.urandom(512 * 1024)
    publish(server, "9.0.0", body=big)
    cache = tmp_path / "tiny"
    cache.mkdir()
    args = args_for(server, cache, checksum="sha256:" + hashlib.sha256(big).hexdigest(), mirrors=[server.url("/other")])
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
    assert not any(hit.startswith("/other") for hit in server.requests)  # a local problem: no other mirror


def test_checksum_files_written_from_verified_bytes_once(server, cache_dir):
    publish(server, "9.0.0")
    pinned = {"checksums": {"amd64": {"9.0.0": "sha256:" + SHA256}}, "checksum_files": True}
    failed, result = run_release(args_for(server, cache_dir, **pinned))
    assert not failed, result
    sha512 = hashlib.sha512(TARBALL).hexdigest()
    assert (cache_dir / (ASSET_9 + ".sha256")).read_text() == "%s  %s\n" % (SHA256, ASSET_9)
    assert (cache_dir / (ASSET_9 + ".sha512")).read_text() == "%s  %s\n" % (sha512, ASSET_9)
    assert sorted(result["checksum_files"]) == [str(cache_dir / (ASSET_9 + ext)) for ext in (".sha256", ".sha512")]

    # A complete entry: nothing to write, no request.
    server.clear()
    failed, again = run_release(args_for(server, cache_dir, **pinned))
    assert not failed and again["changed"] is False and again["checksum_files"] == [] and server.requests == []

    # A checksum file that lost its content is rewritten; the tarball is not fetched again.
    (cache_dir / (ASSET_9 + ".sha512")).write_text("garbage\n")
    failed, repaired = run_release(args_for(server, cache_dir, **pinned))
    assert not failed and repaired["changed"] is True and repaired["downloaded"] is False
    assert repaired["checksum_files"] == [str(cache_dir / (ASSET_9 + ".sha512"))]
    assert (cache_dir / (ASSET_9 + ".sha512")).read_text() == "%s  %s\n" % (sha512, ASSET_9)
    assert server.requests == []


# credentials in a mirror URL ------------------------------------------------------------------------

SECRET = "s3cr3t-Pa55"


def _leaks(text: str) -> bool:
    return SECRET in text or "mirror-user@" in text


def test_a_password_in_the_mirror_url_is_used_but_never_returned_or_stored(server, cache_dir, tmp_path):
    from ansible_collections.nodeprep.cni.plugins.modules import cni_info, cni_install
    from testbed_lib.in_process import FakeRoot

    server.credentials = "mirror-user:" + SECRET
    # Plugins that answer CNI_COMMAND=VERSION, so cni_install accepts the release.
    publish(server, "9.0.0", body=tarball(release_files("9.0.0")))
    with_password = server.url("/releases").replace("http://", "http://mirror-user:%s@" % SECRET)
    failed, result = run_release(args_for(server, cache_dir, base_url=with_password))
    assert not failed, result
    assert result["downloaded"] is True and server.requests  # the server let the credentials in
    assert result["url"] == server.url("/releases") + "/v9.0.0/" + ASSET_9
    assert not _leaks(json.dumps(result))  # nor in the arguments the result echoes
    sidecar = cache_dir / (ASSET_9 + ".verified.json")
    assert json.loads(sidecar.read_text())["url"] == result["url"] and not _leaks(sidecar.read_text())
    # A cache hit returns the recorded URL: clean too.
    failed, again = run_release(args_for(server, cache_dir, base_url=with_password))
    assert not failed and again["downloaded"] is False and again["url"] == result["url"]

    # The role hands cni_install the URL it got; the node's manifest (0644) and cni_info's report
    # (what verify.yml writes) stay clean even when the URL given still carries a password.
    node = FakeRoot(tmp_path / "root")
    (tmp_path / "root").mkdir()
    for given in (result["url"], with_password + "/v9.0.0/" + ASSET_9):
        installed = run_module_in_process(cni_install, node.args(src=result["path"], version="9.0.0", source_url=given, state="present"))
        assert installed["rc"] == 0, installed.get("msg")
        manifest = (tmp_path / "root/opt/cni/versions/v9.0.0/.nodeprep-manifest.json").read_text()
        assert json.loads(manifest)["source_url"] == result["url"] and not _leaks(manifest)
        assert not _leaks(json.dumps(installed))
        info = run_module_in_process(cni_info, node.info_args())
        assert info["rc"] == 0 and not _leaks(json.dumps(info))
        assert run_module_in_process(cni_install, node.args(state="absent"))["rc"] == 0


def test_a_manifest_written_with_a_password_is_reported_without_it(tmp_path):
    from ansible_collections.nodeprep.cni.plugins.modules import cni_info
    from testbed_lib.in_process import FakeRoot

    node = FakeRoot(tmp_path)
    version_dir = tmp_path / "opt/cni/versions/v9.0.0"
    version_dir.mkdir(parents=True)
    old = "https://mirror-user:%s@mirror.example/v9.0.0/%s" % (SECRET, ASSET_9)
    (version_dir / ".nodeprep-manifest.json").write_text(json.dumps(
        {"schema_version": 1, "version": "9.0.0", "source_url": old, "source": {"type": "release", "url": old}, "files": {}}))
    os.symlink("v9.0.0", str(tmp_path / "opt/cni/versions/current"))
    info = run_module_in_process(cni_info, node.info_args())
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


# the digest a node verifies its own download against, decided once on the controller --------------

def resolve_params(server, **extra):
    from ansible_collections.nodeprep.cni.plugins.module_utils import _options
    params = {name: option.get("default") for name, option in dict(_options.RELEASE, **_options.TRANSPORT).items()}
    params.update(base_url=server.url("/releases"), retries=0, os="linux")
    params.update(extra)
    return params


def test_resolve_checksum_reads_the_checksum_file_once_and_pinned_versions_not_at_all(server):
    from ansible_collections.nodeprep.cni.plugins.module_utils._release_backend import resolve_checksum
    publish(server, "9.0.0", sha512_file=True)
    server.clear()
    dead = "http://127.0.0.1:%d/gone" % closed_port()
    checksum, source, url = resolve_checksum(resolve_params(server, base_url=dead, mirrors=[server.url("/releases")]),
                                             "9.0.0", "amd64")
    assert (checksum, source) == ("sha256:" + SHA256, "checksum_file")
    assert url == server.url("/releases") + "/v9.0.0/%s.sha256" % ASSET_9
    assert server.requests == ["/releases/v9.0.0/%s.sha256" % ASSET_9], "one request, the checksum file, from the mirror that serves it"
    server.clear()
    assert resolve_checksum(resolve_params(server, checksum_algorithm="sha512"), "9.0.0", "amd64")[0] == "sha512:" + SHA512
    server.clear()
    assert resolve_checksum(resolve_params(server), "1.6.2", "amd64") == ("sha256:" + PINNED_162, "pinned", None)
    user = resolve_params(server, checksums={"amd64": {"9.0.0": "sha256:" + "ab" * 32}})
    assert resolve_checksum(user, "9.0.0", "amd64") == ("sha256:" + "ab" * 32, "user_table", None)
    assert server.requests == []
    with pytest.raises(ValueError, match="require_pinned"):
        resolve_checksum(resolve_params(server, require_pinned=True), "9.0.0", "amd64")


def closed_port():
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
