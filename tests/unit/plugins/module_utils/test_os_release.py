"""The OS family from os-release: which file counts, and how its ID and ID_LIKE are read."""

from __future__ import annotations

import subprocess

import pytest

from ansible_collections.nodeprep.cni.plugins.module_utils._os_release import os_family, os_release_fields, read_command


@pytest.mark.parametrize("text, family", [
    ('ID=debian\nVERSION_ID="12"\n', "Debian"),
    ('ID=ubuntu\nID_LIKE=debian\n', "Debian"),
    ('ID="rocky"\nID_LIKE="rhel centos fedora"\n', "RedHat"),
    ('ID=fedora\n', "RedHat"),
    ("ID='amzn'\r\n", "RedHat"),
    ('ID="opensuse-leap"\nID_LIKE="suse opensuse"\n', "Suse"),
    ('ID=opensuse-tumbleweed\n', "Suse"),
    ('ID=linuxmint\nID_LIKE="ubuntu debian"\n', "Debian"),
    ('ID_LIKE=debian\nID=rocky\n', "RedHat"),         # ID decides before ID_LIKE, wherever the lines are
    ('# ID=debian\nID=flatcar\n', None),             # a comment is no field
    ('ID=flatcar\n', None),
    ("", None),
    ("not an os-release file", None),
])
def test_os_family_from_os_release(text, family):
    assert os_family(text) == family


def test_fields_lose_their_quotes():
    assert os_release_fields('NAME="Debian GNU/Linux"\nID=debian\nbroken line\n') == {"NAME": "Debian GNU/Linux", "ID": "debian"}


def _read(root) -> str:
    return subprocess.run(["sh", "-c", read_command(str(root))], capture_output=True, text=True, check=False).stdout


def test_etc_os_release_wins_over_usr_lib(tmp_path):
    # An image whose /etc/os-release names another OS than the base's /usr/lib/os-release: only
    # /etc counts (os-release(5)), so an unknown OS there is unknown, not the base's family.
    (tmp_path / "etc").mkdir()
    (tmp_path / "usr/lib").mkdir(parents=True)
    (tmp_path / "etc/os-release").write_text("ID=alpine\n")
    (tmp_path / "usr/lib/os-release").write_text("ID=debian\n")
    assert os_family(_read(tmp_path)) is None
    (tmp_path / "etc/os-release").unlink()
    assert os_family(_read(tmp_path)) == "Debian"
    (tmp_path / "usr/lib/os-release").unlink()
    assert _read(tmp_path) == ""
