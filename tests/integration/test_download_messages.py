"""What a user running site.yml sees: progress of a slow download while the task still runs, refusals that
name the role variable to change, a dry run that refuses what the real run refuses, and a local directory
of releases as the source of a real install.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import socket

from testbed_lib.http_server import Reply
from testbed_lib.tree import node_state, snapshot

SITE = "playbooks/site.yml"
BASE = "9.0.0"
PROGRESS = re.compile(r"^cni_plugins \[(?P<host>[^\]]+)\]: downloading (?P<asset>\S+) \(mirror 1 of 1, (?P<url>\S+)\): "
                      r"(?P<got>[\d.]+ (?:B|KiB|MiB)) of (?P<total>[\d.]+ MiB) \((?P<percent>\d+)%\), [\d.]+ (?:B|KiB|MiB)/s, "
                      r"(?P<seconds>\d+) s so far$")


def failure_messages(result) -> str:
    return "\n".join(str(t.result.get("msg", "")) for t in result.task_results() if t.failed)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_slow_download_progress_and_a_dry_run_that_refuses_like_the_real_one(node, mirror, inventory, run_playbook, role_vars):
    nodes = [node("messages-a"), node("messages-b")]
    inv = inventory(nodes)
    release = mirror.releases[BASE]
    size = release.path.stat().st_size
    # A slow link: the tarball arrives in 50 pieces, one every 0.5 s, so the download takes two and a half intervals.
    mirror.fault(release.url_path, Reply(200, None, trickle=0.5, trickle_bytes=size // 50 + 1))
    wanted = role_vars(BASE, cni_plugins_list=["bridge", "loopback", "no-such-plugin"])
    before = [node_state(booted) for booted in nodes]

    checked = run_playbook(SITE, inv, extra_vars=wanted, check=True, json_output=False)
    assert checked.rc != 0, checked.describe()
    output = checked.stdout.splitlines()
    lines = [match for match in map(PROGRESS.match, output) if match]
    assert len(lines) >= 2, checked.describe()
    # One fork downloads (the release is fetched once for both nodes), the other says whose download it waits for.
    downloader = lines[0]["host"]
    assert all(m["host"] == downloader and m["asset"] == release.filename and m["url"] == release.url(mirror.base_url)
               for m in lines), checked.describe()
    (waiter,) = [booted.name for booted in nodes if booted.name != downloader]
    waiting = [line for line in output if line.startswith("cni_plugins [%s]: waiting for another run's download of %s into "
                                                          % (waiter, release.filename))]
    assert len(waiting) == 1, checked.describe()
    assert mirror.requests.count(release.url_path) == 1
    # Steady: one line per 10 s interval (give or take the rounding), counting up, each before the task's result.
    seconds = [int(m["seconds"]) for m in lines]
    assert seconds[0] >= 10 and all(later - earlier >= 9 for earlier, later in zip(seconds, seconds[1:])), checked.describe()
    assert len(lines) <= 3, checked.describe()
    assert checked.stdout.index(lines[-1].group(0)) < checked.stdout.index("fatal: [")
    refusal = ("plugins (role: cni_plugins_list) names no-such-plugin, which the release does not contain; choose from: ")
    assert checked.stdout.count(refusal) >= 2, checked.describe()
    assert [node_state(booted) for booted in nodes] == before
    print("\n".join([m.group(0) for m in lines] + waiting + [line for line in output if line.startswith("fatal:")]))

    # The real run refuses the same, before the release reaches the nodes' caches.
    mirror.clear()
    applied = run_playbook(SITE, inv, extra_vars=wanted, json_output=False)
    assert applied.rc != 0 and applied.stdout.count(refusal) >= 2, applied.describe()
    assert [node_state(booted) for booted in nodes] == before
    assert mirror.requests == []  # the controller's cache had it from the dry run


def test_refusals_name_the_role_variable_and_a_local_directory_installs(node, mirror, inventory, run_playbook, role_vars):
    booted = node("sources")
    inv = inventory([booted])
    before = node_state(booted)

    # One run, two mirrors failing two ways: the first refuses connections, the second lacks the version.
    dead = "http://127.0.0.1:%d" % closed_port()
    failed = run_playbook(SITE, inv, extra_vars=role_vars("9.7.0", cni_plugins_base_url=dead, cni_plugins_mirrors=[mirror.base_url],
                                                          cni_plugins_retries=0))
    message = failure_messages(failed)
    assert failed.rc != 0 and message.startswith("every mirror failed: download of %s/v9.7.0/" % dead), failed.describe()
    assert "connection refused (nothing listens on that host and port)" in message
    assert "base_url (role: cni_plugins_base_url) and mirrors (role: cni_plugins_mirrors)" in message
    assert "HTTPConnectionPool" not in message
    assert "download of %s/v9.7.0/cni-plugins-linux-amd64-v9.7.0.tgz.sha256 failed: HTTP 404" % mirror.base_url in message
    assert "version 9.7.0 for amd64 is not on that mirror" in message
    assert "check version (role: cni_plugins_version)" in message
    assert node_state(booted) == before

    # The mirror's own tree as a plain directory: no web server, the same checksum verification.
    mirror.clear()
    local = run_playbook(SITE, inv, extra_vars=role_vars("9.1.0", cni_plugins_base_url=str(mirror.root),
                                                         cni_plugins_checksums={}), args=["--tags", "cni_plugins"])
    assert local.rc == 0, local.describe()
    assert mirror.requests == []
    tree = snapshot(booted.path("/opt/cni/versions"))
    assert tree["current"] == ("link", "v9.1.0")
    manifest = json.loads(booted.path("/opt/cni/versions/v9.1.0/.nodeprep-manifest.json").read_text())
    assert manifest["tarball_sha256"] == mirror.releases["9.1.0"].sha256
    assert "file://%s/v9.1.0/" % mirror.root in json.dumps(manifest)
    # What the user read, for a reader of the test log (-s).
    print(message)


NODE_PROGRESS = re.compile(r"^cni_plugins \[(?P<host>[^\]]+)\]: the node downloads (?P<asset>\S+) \(mirror 1 of 1, (?P<url>\S+)\), "
                           r"(?P<seconds>\d+) s so far$")


def test_nodes_download_against_a_digest_read_once_and_say_so_while_they_do(node, mirror, inventory, run_playbook, role_vars):
    """download_on: node with a version pinned nowhere: the controller reads the .sha256 file once, the node fetches the
    tarball and verifies it against that; a slow download is announced every 10 s; --check refuses what the real run
    refuses and writes nothing on the node."""
    booted = node("node-dl")
    inv = inventory([booted])
    release = mirror.releases[BASE]
    wanted = role_vars(BASE, cni_plugins_download_on="node")
    del wanted["cni_plugins_checksums"]
    before = node_state(booted)

    checked = run_playbook(SITE, inv, extra_vars=dict(wanted, cni_plugins_list=["bridge", "no-such-plugin"]), check=True,
                           json_output=False)
    assert checked.rc != 0 and "names no-such-plugin, which the release does not contain" in checked.stdout, checked.describe()
    assert node_state(booted) == before

    mirror.clear()
    size = release.path.stat().st_size
    mirror.fault(release.url_path, Reply(200, None, trickle=0.5, trickle_bytes=size // 50 + 1))
    done = run_playbook(SITE, inv, extra_vars=wanted, json_output=False)
    assert done.rc == 0, done.describe()
    lines = [m for m in map(NODE_PROGRESS.match, done.stdout.splitlines()) if m]
    assert lines and all(m["host"] == booted.name and m["asset"] == release.filename and m["url"] == release.url(mirror.base_url)
                         for m in lines), done.describe()
    assert [int(m["seconds"]) for m in lines][0] >= 10, done.describe()
    read_once = "cni_plugins [%s]: nodes verify %s amd64 against %s.sha256, read once by the controller" % (
        booted.name, BASE, release.url(mirror.base_url))
    assert read_once in done.stdout, done.describe()
    assert sorted(mirror.requests) == sorted([release.url_path, release.url_path + ".sha256"]), mirror.requests
    cached = booted.path("/var/cache/nodeprep/cni/" + release.filename)
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == release.sha256
    assert os.readlink(booted.path("/opt/cni/versions/current")) == "v" + BASE
