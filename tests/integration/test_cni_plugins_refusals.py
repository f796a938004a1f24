"""Bad releases fail with a message naming the file and the reason, and change nothing."""
from __future__ import annotations

import hashlib

import pytest

from testbed_lib.tree import node_state, snapshot, temp_leftovers
from testbed_lib.releases import build_corrupt_checksum, build_traversal, build_truncated

SITE = "playbooks/site.yml"
BASE = "9.0.0"


@pytest.fixture(scope="module")
def hostile(mirror):
    root = mirror.root
    return {
        "corrupt": build_corrupt_checksum(root, "9.9.1"),
        "truncated": build_truncated(root, "9.9.2"),
        "traversal": build_traversal(root, "9.9.3"),
    }


def failure_messages(result) -> str:
    return "\n".join(str(t.result.get("msg", "")) for t in result.task_results() if t.failed)


@pytest.mark.parametrize("kind, pin, reason", [
    # The release's own .sha256 file does not match the tarball.
    ("corrupt", "none", "checksum"),
    # Pinned to the full archive's hash, the truncated download cannot match it.
    ("truncated", "full", "checksum"),
    # Pinned to the truncated bytes themselves, so the install's own reading must refuse it.
    ("truncated", "bytes", "truncated or corrupt"),
    # Checksums are right; the archive itself is hostile.
    ("traversal", "none", ".."),
])
def test_bad_release_changes_nothing(node, mirror, hostile, inventory, run_playbook, role_vars, kind, pin, reason):
    booted = node("bad-" + kind)
    inv = inventory([booted])
    installed = run_playbook(SITE, inv, extra_vars=role_vars(BASE, cni_plugins_download_on="node"))
    assert installed.rc == 0, installed.describe()
    release = hostile[kind]
    checksums = {"amd64": {BASE: "sha256:" + mirror.releases[BASE].sha256}}
    if pin == "full":
        checksums["amd64"][release.version] = "sha256:" + release.sha256
    elif pin == "bytes":
        checksums["amd64"][release.version] = "sha256:" + hashlib.sha256(release.path.read_bytes()).hexdigest()
    before = node_state(booted)

    bad_vars = role_vars(release.version, cni_plugins_download_on="node", cni_plugins_checksums=checksums)
    failed = run_playbook(SITE, inv, extra_vars=bad_vars)
    assert failed.rc != 0
    message = failure_messages(failed)
    assert release.filename in message, message
    assert reason in message, message
    after = node_state(booted)
    assert after["opt"] == before["opt"], "the install changed after a refused release"
    if reason != "truncated or corrupt" and kind != "traversal":
        # A tarball that fails its checksum never reaches the cache.
        assert after["cache"] == before["cache"]
    assert temp_leftovers(booted) == []
    assert snapshot(booted.path("/opt/cni/versions"))["current"] == ("link", "v" + BASE)
