"""Hostile release archives with correct checksums: only the archive check stands between them and
the node. Each is refused, naming the tarball, the member and the fix, on every path a tarball
takes: downloaded on the node (cni_release refuses it before the cache), handed to cni_install as
``src`` (refused before the first byte is written), and through the role from the controller.
"""
from __future__ import annotations

import shutil

import pytest

from tests.reliability.downloads_support import (
    BASE,
    FIX_FRAGMENT,
    NODE_CACHE,
    SITE,
    assert_untouched,
    booted_runner,
    role_vars,
)
from testbed_lib.releases import HOSTILE_MEMBERS, build_expansion_bomb, build_hostile
from testbed_lib.tree import node_state, snapshot

# kind -> (version label, the words of the refusal)
CASES = {
    "absolute": ("9.6.1", "has an absolute path"),
    "hardlink": ("9.6.2", "is a hardlink to '/etc/shadow'"),
    "device": ("9.6.3", "is a device, fifo or other special file"),
    "fifo": ("9.6.4", "is a device, fifo or other special file"),
    "setuid": ("9.6.5", "has the setuid or setgid bit (mode 4755)"),
    "duplicate": ("9.6.6", "appears twice"),
    "huge-member": ("9.6.7", "is 209715200 bytes, over the 128 MiB limit for one file"),
    "newline-name": ("9.6.8", "has control characters or terminal escapes in its name"),
    "escape-name": ("9.6.9", "has control characters or terminal escapes in its name"),
    "expansion-bomb": ("9.6.10", "brings the unpacked size over the 512 MiB limit for a whole archive"),
}
MEMBERS = dict(HOSTILE_MEMBERS, **{"expansion-bomb": "./plugin-04"})
HOSTILE_DIR = "/root/hostile"


@pytest.fixture(scope="module")
def hostile(mirror):
    root = mirror.root
    built = {}
    for kind, (version, dummy) in CASES.items():
        built[kind] = build_expansion_bomb(root, version) if kind == "expansion-bomb" else build_hostile(root, version, kind)
    return built


@pytest.fixture(scope="module")
def runner(rootfs, tmp_path_factory, mirror):
    with booted_runner(rootfs, tmp_path_factory, mirror, "archives") as runner:
        yield runner


def loop_items(hostile):
    return [{"kind": kind, "version": release.version, "sha256": release.sha256, "file": release.filename}
            for kind, release in hostile.items()]


def by_kind(outcome):
    return dict((item["item"]["kind"], item) for item in outcome["results"])


@pytest.fixture(scope="module")
def download_refusals(runner, mirror, hostile):
    """Every hostile release fetched by cni_release on the node, in one play."""
    before = node_state(runner.node)
    options = {"version": "{{ item.version }}", "checksum": "sha256:{{ item.sha256 }}", "base_url": mirror.base_url,
               "cache_dir": NODE_CACHE, "retries": 0}
    mirror.clear()
    played, outcome = runner.module("nodeprep.cni.cni_release", options, loop=loop_items(hostile))
    # The mirror's log is cleared for every test; keep what this play requested.
    return before, mirror.requests, by_kind(outcome)


@pytest.fixture(scope="module")
def install_refusals(runner, hostile):
    """Every hostile tarball handed to cni_install as src, in one play (the user's own files)."""
    directory = runner.node.path(HOSTILE_DIR)
    directory.mkdir(parents=True)
    for release in hostile.values():
        shutil.copyfile(release.path, directory / release.filename)
    before = node_state(runner.node)
    options = {"version": "{{ item.version }}", "src": HOSTILE_DIR + "/{{ item.file }}"}
    played, outcome = runner.module("nodeprep.cni.cni_install", options, loop=loop_items(hostile))
    return before, played, by_kind(outcome)


def assert_clear_refusal(message, kind, where):
    words = CASES[kind][1]
    assert where in message, message
    assert "member %r %s" % (MEMBERS[kind], words) in message, message
    assert FIX_FRAGMENT in message
    # A hostile name is shown escaped: no newline or escape byte reaches a log or a terminal.
    assert "\n" not in message and "\x1b" not in message and "\x07" not in message


@pytest.mark.parametrize("kind", sorted(CASES))
def test_downloaded_hostile_archive_never_reaches_the_cache(download_refusals, runner, mirror, hostile, kind):
    before, requested, results = download_refusals
    result = results[kind]
    release = hostile[kind]
    assert result.get("failed"), result
    assert_clear_refusal(result["msg"], kind, "%s (downloaded from %s)" % (release.filename, release.url(mirror.base_url)))
    assert result["msg"].endswith("it was discarded and the cache is unchanged")
    assert requested.count(release.url_path) == 1  # refused, not retried or fetched elsewhere
    assert_untouched(runner.node, before)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_hostile_src_is_refused_before_the_first_byte_is_written(install_refusals, runner, hostile, kind):
    before, played, results = install_refusals
    result = results[kind]
    assert result.get("failed"), result
    assert_clear_refusal(result["msg"], kind, "%s/%s" % (HOSTILE_DIR, hostile[kind].filename))
    assert_untouched(runner.node, before)
    assert snapshot(runner.node.path("/opt/cni/versions"))["current"] == ("link", "v" + BASE)


def test_role_refuses_a_hostile_release_on_the_controller_and_the_node_never_sees_it(runner, mirror, hostile, tmp_path):
    release = hostile["absolute"]
    controller_cache = tmp_path / "controller-cache"
    checksums = {"amd64": {BASE: "sha256:" + mirror.releases[BASE].sha256, release.version: "sha256:" + release.sha256}}
    before = node_state(runner.node)
    played = runner.playbook(SITE, role_vars(mirror, controller_cache, release.version, cni_plugins_checksums=checksums))
    assert played.rc != 0
    failed = [task for task in played.task_results() if task.failed]
    assert [task.task.split(" : ")[-1] for task in failed] == ["Install the wanted release unless the node has it intact, and link it"]
    assert_clear_refusal(failed[0].result["msg"], "absolute", release.filename)
    assert sorted(p.name for p in controller_cache.iterdir()) == [".lock"]
    assert_untouched(runner.node, before)
