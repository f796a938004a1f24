"""The package manager's view of a package, and a package's plugin dir read with a tarball's distrust."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess

import pytest

from ansible_collections.nodeprep.cni.plugins.module_utils._install_tree import InstallTree
from ansible_collections.nodeprep.cni.plugins.module_utils._package_source import (
    PackageMissing,
    UnsafeSource,
    copy_plugin_dir,
    list_plugin_dir,
    query_package,
    refuse_overlap,
)
from ansible_collections.nodeprep.cni.plugins.module_utils._versions import package_version


def _plugin_dir(tmp_path, files):
    directory = tmp_path / "usr-lib-cni"
    directory.mkdir()
    for name, (data, mode) in files.items():
        path = directory / name
        path.write_bytes(data)
        os.chmod(path, mode)
    return directory


def test_list_and_copy_a_plugin_dir_byte_for_byte(tmp_path):
    src = _plugin_dir(tmp_path, {"bridge": (b"\x7fELF bridge", 0o755), "host-local": (b"\x7fELF hl", 0o700),
                                 "LICENSE": (b"Apache-2.0", 0o644)})
    names = list_plugin_dir(str(src))
    assert names == ["LICENSE", "bridge", "host-local"]
    stage = tmp_path / "stage"
    stage.mkdir()
    assert copy_plugin_dir(str(src), names, str(stage)) == names
    for name in names:
        assert hashlib.sha256((stage / name).read_bytes()).hexdigest() == hashlib.sha256((src / name).read_bytes()).hexdigest()
    # Modes are ours: executables 0755, LICENSE 0644, whatever the package had.
    assert stat.S_IMODE((stage / "host-local").stat().st_mode) == 0o755
    assert stat.S_IMODE((stage / "LICENSE").stat().st_mode) == 0o644


def test_a_private_license_or_readme_is_never_published_wider_than_its_source(tmp_path):
    # LICENSE a hard link to a group-only file elsewhere, README.md private to its owner.
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"not for everyone")
    secret.chmod(0o640)
    src = _plugin_dir(tmp_path, {"bridge": (b"\x7fELF bridge", 0o755), "README.md": (b"notes", 0o600)})
    os.link(secret, src / "LICENSE")
    stage = tmp_path / "stage"
    stage.mkdir()
    copy_plugin_dir(str(src), list_plugin_dir(str(src)), str(stage))
    assert (stage / "LICENSE").read_bytes() == b"not for everyone"
    assert stat.S_IMODE((stage / "LICENSE").stat().st_mode) == 0o640
    assert stat.S_IMODE((stage / "README.md").stat().st_mode) == 0o600
    # A world-readable one stays 0644 at most, whatever extra bits it had.
    (src / "README.md").chmod(0o666)
    again = tmp_path / "again"
    again.mkdir()
    copy_plugin_dir(str(src), list_plugin_dir(str(src)), str(again))
    assert stat.S_IMODE((again / "README.md").stat().st_mode) == 0o644


def test_the_real_debian_plugin_dir_is_accepted():
    if not os.path.isdir("/usr/lib/cni"):
        pytest.fail("Debian's containernetworking-plugins is missing on this host: run tools/bootstrap")
    names = list_plugin_dir("/usr/lib/cni")
    assert {"bridge", "host-local", "loopback", "portmap", "macvlan"} <= set(names)


@pytest.mark.parametrize("name, make, reason", [
    ("setuid", lambda p: (p.write_bytes(b"x"), os.chmod(p, 0o4755)), "setuid or setgid"),
    ("notexec", lambda p: (p.write_bytes(b"x"), os.chmod(p, 0o644)), "is not executable"),
    ("link", lambda p: os.symlink("/bin/sh", p), "is a symlink"),
    ("sub", lambda p: p.mkdir(), "is a subdirectory"),
    ("fifo", os.mkfifo, "special file"),
    (".hidden", lambda p: (p.write_bytes(b"x"), os.chmod(p, 0o755)), "hidden name"),
    ("bad name", lambda p: (p.write_bytes(b"x"), os.chmod(p, 0o755)), "not a plain plugin file name"),
])
def test_list_refuses_what_a_tarball_member_may_not_be(tmp_path, name, make, reason):
    src = _plugin_dir(tmp_path, {"bridge": (b"\x7fELF", 0o755)})
    make(src / name)
    with pytest.raises(UnsafeSource, match=reason) as caught:
        list_plugin_dir(str(src))
    assert str(src) in str(caught.value) and "package_dir" in str(caught.value)


def test_list_refuses_an_empty_or_missing_dir_naming_the_fix(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UnsafeSource, match="is empty: the package put no plugins there; set package_dir"):
        list_plugin_dir(str(empty))
    with pytest.raises(UnsafeSource, match="does not exist; set package_dir"):
        list_plugin_dir(str(tmp_path / "nowhere"))


def test_copy_removes_what_it_wrote_when_a_file_turns_into_a_link(tmp_path):
    src = _plugin_dir(tmp_path, {"a": (b"\x7fELF a", 0o755), "b": (b"\x7fELF b", 0o755)})
    names = list_plugin_dir(str(src))
    (src / "b").unlink()
    os.symlink("/etc/shadow", src / "b")
    stage = tmp_path / "stage"
    stage.mkdir()
    with pytest.raises(OSError):
        copy_plugin_dir(str(src), names, str(stage))
    assert not list(stage.iterdir())


def test_refuse_overlap_names_bin_dir_and_the_fix(tmp_path):
    tree = InstallTree(str(tmp_path / "versions"), str(tmp_path / "bin"), [str(tmp_path / "k3s")])
    with pytest.raises(ValueError, match="also bin_dir/link_dirs entry .*set bin_dir to another directory"):
        refuse_overlap(str(tmp_path / "bin"), tree)
    with pytest.raises(ValueError, match="inside versions_dir"):
        refuse_overlap(str(tmp_path / "versions" / "v1.2.3"), tree)
    refuse_overlap("/usr/lib/cni", tree)


def test_query_package_reads_dpkg_and_refuses_a_missing_package():
    if not os.path.exists("/usr/bin/dpkg-query"):
        pytest.fail("this test needs dpkg-query (Debian host)")

    def run_command(argv):
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        return done.returncode, done.stdout, done.stderr

    found = query_package(run_command, "containernetworking-plugins")
    assert found["manager"] == "dpkg" and package_version(found["version"]).text.startswith("1.1.1")
    with pytest.raises(PackageMissing, match="package no-such-cni-package is not installed"):
        query_package(run_command, "no-such-cni-package")
    with pytest.raises(ValueError, match="is not a package name"):
        query_package(run_command, "-rf /")
