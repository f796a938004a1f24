"""mount_info: the kernel's mount table as data, odd paths included, and "unknown" instead of a crash.

The fixed tables are mountinfo lines as the kernel writes them (proc(5)); the live checks compare the
module's answer on this machine's own table with util-linux's findmnt.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from ansible_collections.nodeprep.cni.plugins.module_utils import _mountinfo
from ansible_collections.nodeprep.cni.plugins.modules import mount_info
from testbed_lib.in_process import run_module_in_process as run_module

TABLE = "\n".join([
    "22 1 0:21 / / rw,relatime shared:1 - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w",
    "30 22 0:26 / /run rw,nosuid,nodev shared:5 - tmpfs tmpfs rw,mode=755",
    "31 30 0:27 / /run/netns rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,mode=755",
    "32 30 0:27 / /run/netns rw,nosuid,nodev,noexec,relatime shared:9 - tmpfs tmpfs rw,mode=755",
    r"40 22 8:1 /data /srv/my\040dir\011tab\012nl\134back rw master:3 - ext4 /dev/sda1 rw",
    r"41 22 8:2 / /srv/caf\303\251 ro,relatime shared:4 master:2 unbindable - xfs /dev/my\040disk ro",
    "42 22 0:40 / /opt/cni rw propagate_from:7 - tmpfs none rw",
]) + "\n"


def write(tmp_path, text):
    path = tmp_path / "mountinfo"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_octal_escapes_are_the_characters_they_stand_for():
    mounts = _mountinfo.parse(TABLE)
    odd = [m for m in mounts if m["id"] == 40][0]
    assert odd["target"] == "/srv/my dir\ttab\nnl\\back"
    assert odd["root"] == "/data"
    assert [m for m in mounts if m["id"] == 41][0]["target"] == "/srv/caf\u00e9"
    assert [m for m in mounts if m["id"] == 41][0]["source"] == "/dev/my disk"


@pytest.mark.parametrize("mount_id, expected", [(22, "shared"), (31, "private"), (40, "private,slave"),
                                                (41, "shared,slave,unbindable"), (42, "private")])
def test_propagation_in_findmnts_words(mount_id, expected):
    assert [m for m in _mountinfo.parse(TABLE) if m["id"] == mount_id][0]["propagation"] == expected


def test_the_topmost_of_a_stack_and_the_deepest_holder_win():
    mounts = _mountinfo.parse(TABLE)
    assert _mountinfo.on_target(mounts, "/run/netns")["id"] == 32
    assert _mountinfo.on_target(mounts, "/run/netns/pod1") is None
    assert _mountinfo.holding(mounts, "/run/netns/pod1")["id"] == 32
    assert _mountinfo.holding(mounts, "/run/netnsX")["id"] == 30  # a sibling's prefix is not a parent
    assert _mountinfo.holding(mounts, "/srv/my dir\ttab\nnl\\back/x")["id"] == 40
    assert _mountinfo.holding(mounts, "/opt/cni/bin")["target"] == "/opt/cni"
    assert _mountinfo.holding(mounts, "/usr/bin")["target"] == "/"


def test_read_only_comes_from_the_per_mount_options():
    mounts = {m["id"]: m for m in _mountinfo.parse(TABLE)}
    assert mounts[41]["read_only"] and not mounts[40]["read_only"]


def test_a_line_it_cannot_read_is_unknown_naming_the_line(tmp_path):
    result = run_module(mount_info, {"paths": ["/"], "mountinfo": write(tmp_path, "22 1 0:21 / / rw\n")})
    assert result["rc"] == 0 and result["known"] is False
    assert "does not understand" in result["reason"] and "22 1 0:21" in result["reason"]
    assert result["paths"]["/"]["mount"] is None


def test_no_proc_is_unknown_with_the_reason_not_a_failure(tmp_path):
    result = run_module(mount_info, {"paths": [str(tmp_path)], "mountinfo": str(tmp_path / "proc/self/mountinfo")})
    assert result["rc"] == 0 and result["changed"] is False
    assert result["known"] is False and "/proc is not mounted" in result["reason"]
    entry = result["paths"][str(tmp_path)]
    # The filesystem part is still read: only the mounts are unknown.
    assert entry["kind"] == "directory" and entry["mount"] is None and entry["mountpoint"] is None


def test_a_chroot_of_a_directory_is_unknown(tmp_path):
    # The kernel leaves out mounts outside the process's root: a plain directory as root has none at /.
    chrooted = "33 30 0:27 / /run/netns rw - tmpfs tmpfs rw\n"
    result = run_module(mount_info, {"paths": ["/run/netns"], "mountinfo": write(tmp_path, chrooted)})
    assert result["known"] is False and "no mount at /" in result["reason"]


def test_a_table_of_another_root_is_unknown(tmp_path):
    # Every device number here is one this machine's / is not on.
    other = "22 1 250:250 / / rw shared:1 - ext4 /dev/other rw\n"
    result = run_module(mount_info, {"paths": ["/"], "mountinfo": write(tmp_path, other)})
    assert result["known"] is False and "another root" in result["reason"]


def test_paths_must_be_absolute():
    result = run_module(mount_info, {"paths": ["run/netns"]})
    assert result["failed"] and "run/netns" in result["msg"]


def test_the_filesystem_part_kind_links_and_entries(tmp_path):
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "pod 1").write_text("")
    (tmp_path / "link").symlink_to("dir")
    (tmp_path / "file").write_text("")
    paths = [str(tmp_path / name) for name in ("dir", "link", "file", "missing/deeper")]
    result = run_module(mount_info, {"paths": paths}, check_mode=True)
    found = result["paths"]
    assert [found[p]["kind"] for p in paths] == ["directory", "link", "file", "missing"]
    assert found[paths[0]]["entries"] == ["pod 1"]
    assert found[paths[1]]["entries"] == [] and found[paths[1]]["link_target"] == "dir"
    assert found[paths[1]]["resolves_to"] == paths[0]
    assert found[paths[3]]["resolves_to"] == paths[3]


def findmnt(*args):
    out = subprocess.run(["findmnt", "--json", "--output", "TARGET,SOURCE,FSTYPE,PROPAGATION"] + list(args),
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["filesystems"][-1]


@pytest.mark.parametrize("path", ["/", "/proc", "/proc/self", "/usr/bin", os.path.dirname(os.path.abspath(__file__))])
def test_this_machines_table_agrees_with_findmnt(path):
    result = run_module(mount_info, {"paths": [path]})
    assert result["known"] is True, result["reason"]
    mount, expected = result["paths"][path]["mount"], findmnt("--target", path)
    assert (mount["target"], mount["fstype"], mount["propagation"]) == (
        expected["target"], expected["fstype"], expected["propagation"])
