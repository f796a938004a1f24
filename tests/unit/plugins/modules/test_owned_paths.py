"""owned_paths: a role's record of what it created, and an uninstall that takes back exactly that.

Real files in a temporary tree; the module runs in process as a playbook would run it.
"""

from __future__ import annotations

import hashlib
import os

from ansible_collections.nodeprep.cni.plugins.modules import owned_paths
from testbed_lib.in_process import run_module_in_process as run_module

CONTENT = b'{"cniVersion": "0.3.1"}\n'


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def picture(root) -> dict:
    found = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            found[os.path.relpath(path, root)] = os.readlink(path) if os.path.islink(path) else (
                open(path, "rb").read() if os.path.isfile(path) else "dir")
    return found


def test_records_only_what_was_missing_and_removes_only_that(tmp_path):
    etc = tmp_path / "etc"
    (etc / "cni/net.d").mkdir(parents=True)
    (etc / "cni/net.d/10-user.conflist").write_bytes(b"user\n")
    record = tmp_path / "var/lib/nodeprep/multus.json"
    pristine = picture(tmp_path)
    made = {"conf": str(etc / "cni/net.d/multus.d"), "net": str(etc / "cni/multus/net.d"),
            "file": str(etc / "cni/net.d/multus.d/daemon-config.json"), "link": str(tmp_path / "netns")}
    args = {"dirs": [str(etc / "cni/net.d"), made["conf"], made["net"]],
            "paths": [{"path": made["file"], "kind": "file", "sha256": sha(CONTENT)},
                      {"path": made["link"], "kind": "link", "target": "/run/netns"}]}

    checked = run_module(owned_paths, dict(args, record=str(record)), check_mode=True)
    assert checked["changed"] and not record.exists()
    noted = run_module(owned_paths, dict(args, record=str(record)))
    assert noted["changed"]
    # The pre-existing conf dir is not the role's; /etc/cni/multus (a missing parent) is.
    assert noted["noted"] == sorted([str(etc / "cni/multus"), made["conf"], made["net"], made["file"], made["link"]])
    os.makedirs(made["conf"])
    os.makedirs(made["net"])
    (etc / "cni/net.d/multus.d/daemon-config.json").write_bytes(CONTENT)
    os.symlink("/run/netns", made["link"])
    again = run_module(owned_paths, dict(args, record=str(record)))
    assert not again["changed"] and again["noted"] == []

    # What Multus itself writes into a dir of ours keeps that dir, and is named.
    (etc / "cni/net.d/multus.d/multus.kubeconfig").write_bytes(b"kubeconfig\n")
    before = picture(tmp_path)
    predicted = run_module(owned_paths, {"record": str(record), "state": "absent"}, check_mode=True, diff=True)
    assert picture(tmp_path) == before
    removed = run_module(owned_paths, {"record": str(record), "state": "absent"})
    assert removed["changed"] and removed["removed"] == predicted["removed"]
    assert removed["left"] == predicted["left"] == [
        {"path": made["conf"], "why": "not empty, it still holds: multus.kubeconfig"}]
    assert set(removed["removed"]) == {made["file"], made["link"], made["net"], str(etc / "cni/multus"), str(record)}
    os.unlink(etc / "cni/net.d/multus.d/multus.kubeconfig")
    os.rmdir(made["conf"])
    assert picture(tmp_path) == pristine  # the record's own dirs went too
    second = run_module(owned_paths, {"record": str(record), "state": "absent"})
    assert not second["changed"] and second["removed"] == [] and second["left"] == []


def test_a_changed_file_a_moved_link_and_a_file_found_there_stay(tmp_path):
    record = tmp_path / "record.json"
    found = tmp_path / "found.conf"
    found.write_bytes(b"the user's\n")
    written, link = tmp_path / "written.conf", tmp_path / "link"
    run_module(owned_paths, {"record": str(record), "paths": [
        {"path": str(found), "kind": "file", "sha256": sha(CONTENT)},
        {"path": str(written), "kind": "file", "sha256": sha(CONTENT)},
        {"path": str(link), "kind": "link", "target": "/run/netns"}]})
    found.write_bytes(CONTENT)
    written.write_bytes(b"edited since\n")
    os.symlink("/elsewhere", link)
    result = run_module(owned_paths, {"record": str(record), "state": "absent"})
    assert result["removed"] == [str(record)]
    whys = {item["path"]: item["why"] for item in result["left"]}
    assert whys == {str(found): "it was there before nodeprep wrote it; left as it is",
                    str(written): "changed since nodeprep wrote it; left as it is",
                    str(link): "now points at /elsewhere, not at /run/netns as nodeprep made it; left as it is"}
    assert found.read_bytes() == CONTENT and written.exists() and os.readlink(link) == "/elsewhere"


def test_a_relative_path_is_refused_before_anything_is_written(tmp_path):
    record = tmp_path / "record.json"
    result = run_module(owned_paths, {"record": str(record), "paths": [{"path": "etc/x", "kind": "file"}]})
    assert result["failed"] and "etc/x" in result["msg"] and "absolute" in result["msg"]
    assert not record.exists()
