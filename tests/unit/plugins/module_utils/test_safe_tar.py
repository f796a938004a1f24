"""Safe extraction of release tarballs: real archives built with tarfile, real files in tmp_path."""

from __future__ import annotations

import gzip
import json
import os
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from ansible_collections.nodeprep.cni.plugins.module_utils._safe_tar import (
    FIX,
    MAX_MEMBER_BYTES,
    ExtractionFailed,
    Limits,
    UnsafeArchive,
    list_members,
    safe_extract,
    unpack,
)
from testbed_lib.in_process import REAL_PLUGIN_DIR, sha256_bytes, sha256_file
from testbed_lib.releases import build_tarball, member as tar_member, pack, tar_bytes


@pytest.fixture
def dest(tmp_path):
    path = tmp_path / "dest"
    path.mkdir()
    return path


def _real_bridge() -> bytes:
    with open(os.path.join(REAL_PLUGIN_DIR, "bridge"), "rb") as handle:
        return handle.read()


def test_flat_archive_extracts_bytes_and_modes_from_exec_bit_only(tmp_path, dest):
    bridge = _real_bridge()
    tar_path = str(tmp_path / "release.tgz")
    Path(tar_path).write_bytes(pack([
        tar_member("./", kind=tarfile.DIRTYPE, mode=0o755),
        # group/other write on an executable, odd bits on a non-executable: neither is copied.
        tar_member("./bridge", bridge, mode=0o777, uid=1234, gid=1234),
        tar_member("./README.md", b"readme\n", mode=0o666, uid=1234, gid=1234),
        tar_member("LICENSE", b"license\n", mode=0o600),
    ]))

    names = safe_extract(tar_path, str(dest))

    assert sorted(names) == ["LICENSE", "README.md", "bridge"]
    assert sorted(os.listdir(dest)) == ["LICENSE", "README.md", "bridge"]
    assert sha256_file(dest / "bridge") == sha256_bytes(bridge)
    assert (dest / "README.md").read_bytes() == b"readme\n"
    assert stat.S_IMODE(os.lstat(dest / "bridge").st_mode) == 0o755
    assert stat.S_IMODE(os.lstat(dest / "README.md").st_mode) == 0o644
    assert stat.S_IMODE(os.lstat(dest / "LICENSE").st_mode) == 0o644
    # The archive claims uid/gid 1234; the file belongs to whoever runs the extraction.
    assert os.lstat(dest / "bridge").st_uid == os.getuid()
    assert os.lstat(dest / "bridge").st_gid == os.getgid()
    assert os.lstat(dest / "README.md").st_uid == os.getuid()


def test_list_members_names_regular_files_only(tmp_path):
    tar_path = build_tarball(tmp_path / "r.tgz", {"bridge": b"a", "loopback": b"b", "LICENSE": b"c"})
    assert sorted(list_members(tar_path)) == ["LICENSE", "bridge", "loopback"]


HOSTILE = [
    pytest.param("/etc/evil", {"data": b"x"}, "absolute", id="absolute-path"),
    pytest.param("../x", {"data": b"x"}, "escapes", id="dotdot"),
    pytest.param("a/../../x", {"data": b"x"}, "escapes", id="nested-dotdot"),
    pytest.param("sub/bridge", {"data": b"x"}, "subdirectory", id="subdirectory-member"),
    pytest.param("sub", {"kind": tarfile.DIRTYPE}, "subdirectory", id="directory-member"),
    pytest.param("evil-link", {"kind": tarfile.SYMTYPE, "linkname": "/etc/passwd"}, "link", id="symlink"),
    pytest.param("evil-hard", {"kind": tarfile.LNKTYPE, "linkname": "bridge"}, "link", id="hardlink"),
    pytest.param("evil-chr", {"kind": tarfile.CHRTYPE}, "device", id="char-device"),
    pytest.param("evil-fifo", {"kind": tarfile.FIFOTYPE}, "fifo", id="fifo"),
    pytest.param("evil-blk", {"kind": tarfile.BLKTYPE}, "device", id="block-device"),
    pytest.param("suid", {"data": b"x", "mode": 0o4755}, "setuid", id="setuid"),
    pytest.param("sgid", {"data": b"x", "mode": 0o2755}, "setgid", id="setgid"),
    pytest.param("bridge\nloopback", {"data": b"x"}, "control characters", id="newline-in-name"),
    pytest.param("\x1b[2Jbridge", {"data": b"x"}, "terminal escapes", id="escape-in-name"),
    pytest.param("./.hidden", {"data": b"x"}, "hidden", id="leading-dot"),
    pytest.param("..bridge", {"data": b"x"}, "hidden", id="double-leading-dot"),
    pytest.param("br idge", {"data": b"x"}, "plain plugin file name", id="space-in-name"),
    pytest.param("br\u00efdge", {"data": b"x"}, "plain plugin file name", id="non-ascii-name"),
    pytest.param("a" * 129, {"data": b"x"}, "plain plugin file name", id="overlong-name"),
]


@pytest.mark.parametrize("name, member, words", HOSTILE)
def test_hostile_member_is_refused_by_name_and_nothing_is_written(tmp_path, dest, name, member, words):
    # The hostile member comes last, after good files: validation must precede the first write.
    tar_path = build_tarball(tmp_path / "hostile.tgz", {"bridge": b"good", "loopback": b"good"}, extra_members=[tar_member(name, **member)])

    with pytest.raises(UnsafeArchive) as info:
        safe_extract(tar_path, str(dest))

    message = str(info.value)
    assert repr(name) in message
    assert tar_path in message
    assert words in message
    assert os.listdir(dest) == []
    assert not os.path.lexists(tmp_path / "x")
    assert not os.path.lexists(tmp_path / "sub")


@pytest.mark.parametrize("name, member, words", HOSTILE)
def test_list_members_refuses_the_same_members(tmp_path, name, member, words):
    tar_path = build_tarball(tmp_path / "hostile.tgz", {"bridge": b"good"}, extra_members=[tar_member(name, **member)])
    with pytest.raises(UnsafeArchive, match=words):
        list_members(tar_path)


def test_duplicate_names_are_refused(tmp_path, dest):
    # "./bridge" and "bridge" are the same file: which copy wins would be up to the order.
    tar_path = build_tarball(tmp_path / "dup.tgz", {"bridge": b"first"}, extra_members=[tar_member("bridge", data=b"second")])
    with pytest.raises(UnsafeArchive) as info:
        safe_extract(tar_path, str(dest))
    assert tar_path in str(info.value)
    assert "twice" in str(info.value)
    assert os.listdir(dest) == []


def test_empty_archive_is_refused(tmp_path, dest):
    tar_path = build_tarball(tmp_path / "empty.tgz", {})  # only the "./" directory entry
    with pytest.raises(UnsafeArchive) as info:
        safe_extract(tar_path, str(dest))
    assert tar_path in str(info.value)
    assert "no files" in str(info.value)
    assert os.listdir(dest) == []


def test_truncated_gzip_is_refused(tmp_path, dest):
    whole = build_tarball(tmp_path / "whole.tgz", {"bridge": _real_bridge(), "loopback": b"tail"})
    with open(whole, "rb") as handle:
        data = handle.read()
    cut = tmp_path / "cut.tgz"
    cut.write_bytes(data[: len(data) // 2])

    with pytest.raises(UnsafeArchive) as info:
        safe_extract(str(cut), str(dest))
    assert str(cut) in str(info.value)
    assert "truncated or corrupt" in str(info.value)
    assert os.listdir(dest) == []


def test_not_a_tarball_is_refused(tmp_path, dest):
    junk = tmp_path / "junk.tgz"
    junk.write_bytes(b"<html>rate limited</html>\n")
    with pytest.raises(UnsafeArchive) as info:
        safe_extract(str(junk), str(dest))
    assert str(junk) in str(info.value)
    assert os.listdir(dest) == []


def test_existing_file_in_dest_is_not_overwritten_and_partial_writes_are_removed(tmp_path, dest):
    # An extraction that fails half way (here: the second file already exists) removes what it wrote.
    tar_path = build_tarball(tmp_path / "r.tgz", {"a-first": b"new", "b-second": b"new"})
    (dest / "b-second").write_bytes(b"keep me")
    with pytest.raises(ExtractionFailed, match="a file of that name is already there"):
        safe_extract(tar_path, str(dest))
    assert sorted(os.listdir(dest)) == ["b-second"]
    assert (dest / "b-second").read_bytes() == b"keep me"


def test_symlink_planted_in_dest_is_not_followed(tmp_path, dest):
    outside = tmp_path / "outside"
    outside.write_bytes(b"original")
    os.symlink(str(outside), str(dest / "bridge"))
    tar_path = build_tarball(tmp_path / "r.tgz", {"bridge": b"payload"})
    with pytest.raises(ExtractionFailed, match="cannot write"):
        safe_extract(tar_path, str(dest))
    assert outside.read_bytes() == b"original"


def test_refusal_names_the_label_and_the_fix(tmp_path, dest):
    tar_path = build_tarball(tmp_path / "hostile.tgz", {"bridge": b"good"}, extra_members=[tar_member("/etc/evil", data=b"x")])
    label = "cni-plugins-linux-amd64-v9.0.0.tgz from http://127.0.0.1:1/v9.0.0/cni-plugins-linux-amd64-v9.0.0.tgz"
    with pytest.raises(UnsafeArchive) as info:
        safe_extract(tar_path, str(dest), label=label)
    assert str(info.value).startswith(label + ": member '/etc/evil' has an absolute path")
    assert FIX in str(info.value)
    assert os.listdir(dest) == []


def _header_only(path, name, size):
    """A gzip tarball whose one member claims *size* bytes; the data is not there. A size check
    that reads only the header refuses it without decompressing (or writing) a single byte."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o755
    with gzip.open(path, "wb") as handle:
        handle.write(info.tobuf(format=tarfile.GNU_FORMAT))
    return str(path)


def test_member_far_larger_than_any_plugin_is_refused_from_its_header(tmp_path, dest):
    tar_path = _header_only(tmp_path / "huge.tgz", "./bridge", 5 * 1024 ** 3)
    with pytest.raises(UnsafeArchive) as info:
        safe_extract(tar_path, str(dest))
    message = str(info.value)
    assert "'./bridge' is 5368709120 bytes, over the %d MiB limit for one file" % (MAX_MEMBER_BYTES // 1024 ** 2) in message
    assert tar_path in message
    assert os.listdir(dest) == []


def test_total_size_limit_refuses_an_expansion_bomb_before_writing(tmp_path, dest):
    # Every member is under the per-file limit; together they pass the archive limit.
    files = dict(("plugin-%d" % index, b"\0" * 4096) for index in range(6))
    tar_path = build_tarball(tmp_path / "bomb.tgz", files)
    limits = Limits(member_bytes=8192, total_bytes=5 * 4096)
    with pytest.raises(UnsafeArchive) as info:
        safe_extract(tar_path, str(dest), limits=limits)
    assert "'./plugin-5' brings the unpacked size over the 20480 bytes limit for a whole archive" in str(info.value)
    assert os.listdir(dest) == []
    assert sorted(safe_extract(tar_path, str(dest), limits=Limits(member_bytes=8192, total_bytes=6 * 4096))) == sorted(files)


def test_too_many_members_are_refused(tmp_path, dest):
    files = dict(("p%d" % index, b"x") for index in range(5))
    tar_path = build_tarball(tmp_path / "many.tgz", files)
    with pytest.raises(UnsafeArchive, match="more than 4 members"):
        list_members(tar_path, limits=Limits(members=4))
    # "./" counts as a member too: 6 in all.
    assert len(list_members(tar_path, limits=Limits(members=6))) == 5


def test_a_full_disk_fails_clearly_and_leaves_nothing(tmp_path):
    """A real 64 KiB tmpfs in a private mount namespace: the second file does not fit."""
    tar_path = build_tarball(tmp_path / "r.tgz", {"a-small": b"x" * 1024, "b-large": os.urandom(256 * 1024)})
    small = tmp_path / "small"
    small.mkdir()
    script = (
        "import json, os, sys\n"
        "from ansible_collections.nodeprep.cni.plugins.module_utils._safe_tar import ExtractionFailed, safe_extract\n"
        "try:\n"
        "    safe_extract(sys.argv[1], sys.argv[2])\n"
        "except ExtractionFailed as exc:\n"
        "    print(json.dumps({'error': str(exc), 'left': os.listdir(sys.argv[2])}))\n"
    )
    command = ["unshare", "-m", "--propagation", "private", "sh", "-c",
               'mount -t tmpfs -o size=64k tmpfs "$1" && exec "$2" -c "$3" "$4" "$1"', "sh",
               str(small), sys.executable, script, tar_path]
    done = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
                          check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert "cannot write %s/b-large while extracting %s: No space left on device" % (small, tar_path) in outcome["error"]
    assert "free space" in outcome["error"]
    assert outcome["left"] == []
    assert issubclass(ExtractionFailed, ValueError)


def test_unpack_reads_the_archive_once_and_hashes_what_it_writes(tmp_path, dest, monkeypatch):
    bridge = _real_bridge()
    tar_path = str(tmp_path / "release.tgz")
    build_tarball(tar_path, {"bridge": bridge, "LICENSE": b"license\n"})
    opened = []
    real_open = tarfile.open
    monkeypatch.setattr(tarfile, "open", lambda *a, **k: opened.append(k.get("mode")) or real_open(*a, **k))

    unpacked = unpack(tar_path, str(dest))

    assert opened == ["r|"]  # one streaming pass (gzip read by gzip), no listing pass before it
    assert sorted(unpacked.names) == ["LICENSE", "bridge"]
    assert unpacked.digests == {"bridge": sha256_bytes(bridge), "LICENSE": sha256_bytes(b"license\n")}
    assert unpacked.digests["bridge"] == sha256_file(str(dest / "bridge"))
    assert unpacked.archive_sha256 == sha256_file(tar_path)


def test_a_hostile_member_after_good_ones_leaves_nothing_written(tmp_path, dest):
    tar_path = str(tmp_path / "release.tgz")
    Path(tar_path).write_bytes(pack([tar_member("bridge", _real_bridge(), mode=0o755), tar_member("LICENSE", b"license\n"),
                                     tar_member("../evil", b"x")]))
    with pytest.raises(UnsafeArchive, match="escapes the target directory"):
        unpack(tar_path, str(dest))
    assert os.listdir(str(dest)) == []
    assert not os.path.exists(str(tmp_path / "evil"))


def test_a_member_hidden_in_a_second_gzip_member_is_seen_and_refused(tmp_path, dest):
    """One tar stream split over two concatenated gzip members, the hostile file in the second."""
    plain = tmp_path / "release.tar"
    plain.write_bytes(tar_bytes([tar_member("bridge", _real_bridge(), mode=0o755),
                                 tar_member("/etc/cron.d/evil", b"* * * * * root true\n")]))
    data = plain.read_bytes()
    tar_path = tmp_path / "release.tgz"
    tar_path.write_bytes(gzip.compress(data[:512 * 4]) + gzip.compress(data[512 * 4:]))
    with pytest.raises(UnsafeArchive, match="absolute path"):
        unpack(str(tar_path), str(dest))
    assert os.listdir(str(dest)) == []
