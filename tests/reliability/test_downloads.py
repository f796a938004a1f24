"""Server faults, credentials on redirects, deadlines, killed downloads, the cache lock and a full
disk: cni_release on a real node against real HTTP servers on 127.0.0.1.

One node serves the whole module: it has BASE installed (so /opt and the node's cache exist), and
every failing case must leave both byte-identical, with no temp file and no lock holder.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.reliability.downloads_support import (
    LOCK,
    NODE_CACHE,
    assert_untouched,
    booted_runner,
    checksums_for,
    lock_is_free,
)
from testbed_lib import ansible_runner
from testbed_lib.http_server import LocalServer, Reply, html_reply, redirect
from testbed_lib.releases import build_release
from testbed_lib.tree import node_state, temp_leftovers

SECRETS = {"Authorization": "Bearer n0de-prep-secret", "X-Token": "x-token-4711"}


@pytest.fixture(scope="module")
def releases(mirror):
    """Versions only this module downloads, in the session mirror's root."""
    root = mirror.root
    return dict((version, build_release(root, version, plugins=["bridge", "host-local", "loopback"]))
                for version in ("9.3.1", "9.3.2", "9.3.3", "9.3.4", "9.3.5", "9.3.6", "9.3.7", "9.3.8"))


@pytest.fixture(scope="module")
def runner(rootfs, tmp_path_factory, mirror):
    with booted_runner(rootfs, tmp_path_factory, mirror, "downloads") as runner:
        yield runner


@pytest.fixture
def other_server(mirror):
    """A second origin (another port) serving the same files as the session mirror."""
    with LocalServer(mirror.root) as server:
        yield server


@pytest.fixture
def empty_server(tmp_path):
    """A server with nothing to serve: every request is a 404."""
    (tmp_path / "empty").mkdir()
    with LocalServer(tmp_path / "empty") as server:
        yield server


def options(release, base_url, **extra):
    values = {"version": release.version, "base_url": base_url, "checksums": checksums_for(release),
              "cache_dir": NODE_CACHE, "retries": 1}
    values.update(extra)
    return values


def drop_from_cache(runner, release):
    """Successful cases download into the node's cache; later cases start from the base state."""
    for name in (release.filename, release.filename + ".verified.json"):
        path = runner.node.path(NODE_CACHE + "/" + name)
        if path.exists():
            path.unlink()


def test_404_then_the_next_mirror_serves(runner, mirror, releases, empty_server):
    release = releases["9.3.1"]
    played, outcome = runner.module("nodeprep.cni.cni_release", options(release, empty_server.base_url, mirrors=[mirror.base_url]))
    assert played.rc == 0, played.describe()
    assert outcome["url"] == release.url(mirror.base_url) and outcome["downloaded"] is True
    assert empty_server.requests == [release.url_path]  # 404 is not retried
    assert mirror.requests == [release.url_path]
    assert temp_leftovers(runner.node) == [] and lock_is_free(runner.node)
    drop_from_cache(runner, release)


@pytest.mark.parametrize("status, failures", [(500, 1), (503, 1)])
def test_server_errors_are_retried(runner, mirror, releases, status, failures):
    release = releases["9.3.2"]
    mirror.fault(release.url_path, Reply(status, None, times=failures))
    played, outcome = runner.module("nodeprep.cni.cni_release", options(release, mirror.base_url, retries=failures))
    assert played.rc == 0, played.describe()
    assert outcome["sha256"] == release.sha256
    assert mirror.requests == [release.url_path] * (failures + 1)
    drop_from_cache(runner, release)


def test_server_errors_beyond_the_retries_fail_clearly_and_change_nothing(runner, mirror, releases):
    release = releases["9.3.2"]
    mirror.fault(release.url_path, Reply(503, None))
    before = node_state(runner.node)
    played, outcome = runner.module("nodeprep.cni.cni_release", options(release, mirror.base_url, retries=1))
    assert played.rc != 0
    assert outcome["msg"] == "download of %s failed: HTTP 503 injected failure (gave up after 2 attempts)" % release.url(mirror.base_url)
    assert_untouched(runner.node, before)


def test_a_stalled_mirror_is_abandoned_at_the_deadline_then_the_next_serves(runner, mirror, releases, other_server):
    release = releases["9.3.3"]
    # Half the tarball at once, then one byte a second: each read succeeds, only a deadline ends it.
    other_server.fault(release.url_path, Reply(200, None, trickle=1.0, trickle_after=release.path.stat().st_size // 2))
    started = time.monotonic()
    played, outcome = runner.module("nodeprep.cni.cni_release", options(release, other_server.base_url, mirrors=[mirror.base_url],
                                                                        deadline=3, timeout=30))
    elapsed = time.monotonic() - started
    assert played.rc == 0, played.describe()
    assert outcome["url"] == release.url(mirror.base_url)
    assert other_server.requests == [release.url_path] and mirror.requests == [release.url_path]
    assert elapsed < 20, elapsed  # the deadline (3 s), not the stalled body (hours) or the timeout
    assert temp_leftovers(runner.node) == [] and lock_is_free(runner.node)
    drop_from_cache(runner, release)


def test_a_stalled_only_mirror_fails_at_the_deadline_and_changes_nothing(runner, releases, other_server):
    release = releases["9.3.3"]
    other_server.fault(release.url_path, Reply(200, None, trickle=1.0, trickle_after=1000))
    before = node_state(runner.node)
    played, outcome = runner.module("nodeprep.cni.cni_release", options(release, other_server.base_url, deadline=2))
    assert played.rc != 0
    assert outcome["msg"].startswith("download of %s failed: not finished within the 2 s deadline (received "
                                     % release.url(other_server.base_url))
    assert "raise the deadline for a slow link" in outcome["msg"]
    assert_untouched(runner.node, before)


@pytest.mark.parametrize("pinned", [True, False], ids=["pinned", "checksum-file"])
def test_an_html_page_served_with_200_is_refused_naming_the_url(runner, mirror, releases, pinned):
    release = releases["9.3.4"]
    mirror.fault(release.url_path, html_reply())
    mirror.fault(release.url_path + ".sha256", html_reply())
    extra = {} if pinned else {"checksums": {}}
    before = node_state(runner.node)
    played, outcome = runner.module("nodeprep.cni.cni_release", options(release, mirror.base_url, **extra))
    assert played.rc != 0
    url = release.url(mirror.base_url)
    if pinned:
        assert outcome["msg"].startswith("checksum mismatch for %s: expected sha256 %s" % (url, release.sha256))
        assert "The server sent an HTML or XML page, not a gzip tarball" in outcome["msg"]
    else:
        assert outcome["msg"].startswith("checksum file %s.sha256 is unusable" % url)
    assert_untouched(runner.node, before)


def controller_runner(runner, tmp_path):
    """Plays on localhost with the venv's Python, which has requests: the other HTTP backend."""
    inventory = tmp_path / "controller.yml"
    inventory.write_text("all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
                         "      ansible_python_interpreter: %s\n" % sys.executable)
    return inventory


@pytest.mark.parametrize("backend", ["urls-on-the-node", "requests-on-the-controller"])
def test_credentials_never_reach_the_host_a_redirect_points_to(runner, mirror, releases, other_server, backend, tmp_path):
    """The configured mirror redirects to another origin (another port): its own request log shows
    the headers arrived there, the second server's log shows they never arrived there."""
    release = releases["9.3.5"]
    other_server.fault(release.url_path, redirect(release.url(mirror.base_url), 302))
    task_options = options(release, other_server.base_url, headers=SECRETS)
    if backend == "urls-on-the-node":
        played, outcome = runner.module("nodeprep.cni.cni_release", task_options)
    else:
        task_options["cache_dir"] = str(tmp_path / "controller-cache")
        task = {"name": "Run nodeprep.cni.cni_release", "nodeprep.cni.cni_release": task_options, "register": "outcome"}
        played = ansible_runner.run_playbook(runner.write_play([task], hosts="localhost"), controller_runner(runner, tmp_path),
                                             cwd=tmp_path)
        outcome = played.result("Run nodeprep.cni.cni_release", "localhost")
    assert played.rc == 0, played.describe()
    assert outcome["sha256"] == release.sha256
    sent = dict(other_server.request_log)[release.url_path]
    assert sent["Authorization"] == SECRETS["Authorization"] and sent["X-Token"] == SECRETS["X-Token"]
    arrived = [headers for path, headers in mirror.request_log if path == release.url_path]
    assert len(arrived) == 1
    assert not {"authorization", "x-token"} & set(name.lower() for name in arrived[0])
    assert not set(SECRETS.values()) & set(arrived[0].values())
    assert not any(value in played.stdout for value in SECRETS.values())
    drop_from_cache(runner, release)


def _module_process(playbook_pid):
    """The node-side Python running the module: a /usr/bin/python3 under ansible-playbook."""
    queue, found = [playbook_pid], []
    while queue:
        pid = queue.pop()
        for task in Path("/proc/%d/task" % pid).glob("*/children"):
            try:
                queue.extend(int(child) for child in task.read_text().split())
            except OSError:
                continue
        try:
            argv = Path("/proc/%d/cmdline" % pid).read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[0] == b"/usr/bin/python3":
            found.append(pid)
    return found[-1] if found else None


def test_a_killed_download_leaves_a_partial_file_that_the_next_run_removes(runner, mirror, releases):
    release = releases["9.3.6"]
    mirror.fault(release.url_path, Reply(200, None, trickle=1.0, trickle_after=4096))
    play = runner.write_play([{"name": "Run nodeprep.cni.cni_release", "nodeprep.cni.cni_release":
                               options(release, mirror.base_url, deadline=120), "register": "outcome"}])
    command = ansible_runner.playbook_command(play, runner.inventory)
    with open(runner.workdir / "killed.log", "w") as log:
        playbook = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=runner.workdir,
                                    env=ansible_runner.ansible_env(local_temp=str(runner.workdir)))
    try:
        partial = None
        deadline = time.monotonic() + 60
        while partial is None and time.monotonic() < deadline:
            parts = [name for name in os.listdir(runner.node.path(NODE_CACHE)) if name.endswith(".part")]
            partial = parts[0] if parts else None
            time.sleep(0.2)
        assert partial, "the download never started"
        module_pid = _module_process(playbook.pid)
        assert module_pid, "no module process found"
        os.kill(module_pid, signal.SIGKILL)
        playbook.wait(timeout=60)
    finally:
        if playbook.poll() is None:
            playbook.kill()
            playbook.wait()
    # What kill -9 leaves: the partial file; the lock died with its holder.
    assert partial in os.listdir(runner.node.path(NODE_CACHE))
    assert lock_is_free(runner.node)

    mirror.clear()
    played, outcome = runner.module("nodeprep.cni.cni_release", options(release, mirror.base_url))
    assert played.rc == 0, played.describe()
    assert outcome["downloaded"] is True and partial in outcome["removed_leftovers"]
    assert temp_leftovers(runner.node) == [] and lock_is_free(runner.node)
    drop_from_cache(runner, release)


def test_concurrent_runs_share_one_lock_file_that_is_never_unlinked(runner, mirror, releases):
    """A holds the lock and fails; B waited on that lock file; C arrives after A is gone. If A had
    unlinked the file, B (on the dead inode) and C (on a fresh one) would download at once."""
    release = releases["9.3.7"]
    inode = os.stat(runner.node.path(LOCK)).st_ino
    mirror.fault(release.url_path, Reply(500, None, delay=6, times=1), Reply(200, None, delay=2, times=1))
    play = runner.write_play([{"name": "Run nodeprep.cni.cni_release", "nodeprep.cni.cni_release":
                               options(release, mirror.base_url, retries=0), "register": "outcome"}])

    def start(name):
        log = open(runner.workdir / ("%s.json" % name), "w")
        process = subprocess.Popen(ansible_runner.playbook_command(play, runner.inventory), stdout=log, stderr=subprocess.DEVNULL,
                                   cwd=runner.workdir, env=ansible_runner.ansible_env(local_temp=str(runner.workdir)))
        return process, log

    def finish(name, started):
        process, log = started
        process.wait(timeout=120)
        log.close()
        result = ansible_runner.PlaybookResult(process.returncode, (runner.workdir / ("%s.json" % name)).read_text(), "", [])
        ansible_runner.parse_json_output(result)
        return result.result("Run nodeprep.cni.cni_release", runner.node.name)

    run_a = start("a")
    deadline = time.monotonic() + 60
    while release.url_path not in mirror.requests and time.monotonic() < deadline:
        time.sleep(0.1)
    run_b = start("b")
    while _module_process(run_b[0].pid) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    # B's module runs while A still holds the lock: B is waiting on the lock file's inode.
    assert run_a[0].poll() is None and _module_process(run_b[0].pid)
    result_a = finish("a", run_a)
    assert result_a.get("failed") and "HTTP 500" in result_a["msg"]
    run_c = start("c")
    results = [finish("b", run_b), finish("c", run_c)]
    assert not any(result.get("failed") for result in results), results
    assert sorted(result["downloaded"] for result in results) == [False, True]
    assert mirror.requests.count(release.url_path) == 2  # A's failure and one download, never two at once
    assert os.stat(runner.node.path(LOCK)).st_ino == inode
    assert lock_is_free(runner.node) and temp_leftovers(runner.node) == []
    drop_from_cache(runner, release)


def _inside(node, directory):
    """Names, sizes and hashes under a directory as the node itself sees it (a tmpfs mounted
    inside the node is invisible from the host)."""
    return node.run("cd %s && find . -mindepth 1 -printf '%%p %%y %%s %%m\\n' | sort && "
                    "find . -type f -exec sha256sum {} + | sort" % directory).stdout


def test_a_full_cache_disk_fails_clearly_and_leaves_no_partial_file(runner, mirror, releases):
    release = releases["9.3.8"]
    tiny = "/var/cache/nodeprep/tiny"
    before = node_state(runner.node)
    runner.node.run("mkdir %s && mount -t tmpfs -o size=1m,mode=0755 tmpfs %s" % (tiny, tiny))
    try:
        played, first = runner.module("nodeprep.cni.cni_release", options(release, mirror.base_url, cache_dir=tiny))
        assert played.rc != 0
        assert first["msg"].startswith("cannot use cache_dir %s: No space left on device" % tiny)
        assert first["msg"].endswith("free space there, or set cache_dir to a filesystem with room for the release")
        # The cache directory keeps its (empty) lock file from the first run on; nothing else is left.
        listing = _inside(runner.node, tiny)
        assert listing.splitlines()[0] == "./.lock f 0 600" and len(listing.splitlines()) == 2, listing
        played, second = runner.module("nodeprep.cni.cni_release", options(release, mirror.base_url, cache_dir=tiny))
        assert played.rc != 0 and second["msg"] == first["msg"]
        assert _inside(runner.node, tiny) == listing
        assert mirror.requests.count(release.url_path) == 2  # no retry, no other mirror for a local problem
        assert lock_is_free(runner.node, tiny + "/.lock")
    finally:
        runner.node.run("umount %s; rmdir %s" % (tiny, tiny), check=False)
    assert_untouched(runner.node, before)
