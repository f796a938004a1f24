"""containerd_info run in-process: a config it cannot use is named, never a crash.

The binary is absent here (a path under tmp_path), so the module reads the config file itself,
as it does for an embedded containerd; Debian's containerd 1.6 on this machine gives the dump path.
"""

from __future__ import annotations

import shutil

import pytest

from ansible_collections.nodeprep.cni.plugins.modules import containerd_info
from testbed_lib.in_process import run_module_in_process

V2 = 'version = 2\n[plugins."io.containerd.grpc.v1.cri".cni]\n  bin_dir = "/opt/cni/bin"\n  conf_dir = "/etc/cni/net.d"\n'


def info(tmp_path, text, binary=None):
    config = tmp_path / "config.toml"
    config.write_text(text, encoding="utf-8")
    result = run_module_in_process(containerd_info, {"config_path": str(config), "binary": binary or str(tmp_path / "none"),
                                                     "socket": str(tmp_path / "no.sock")})
    assert result["rc"] == 0 and result["changed"] is False, result
    return result


@pytest.mark.parametrize("text, named", [
    ('version = 2\nplugins = "x"\n', "'plugins' is not a table"),
    ('version = 2\n[[plugins]]\n  a = 1\n', "'plugins' is not a table"),
    ('version = 2\n[[plugins."io.containerd.grpc.v1.cri".cni]]\n  bin_dir = "/x"\n',
     "'plugins.io.containerd.grpc.v1.cri.cni' is not a table"),
    ("version = 3\n[plugins.'io.containerd.cri.v1.runtime'.cni]\n  bin_dirs = '/x'\n", "bin_dirs is not a list"),
    ("version = 3\n[plugins\n", "is not valid TOML"),
])
def test_wrong_typed_config_is_named_not_a_crash(tmp_path, text, named):
    result = info(tmp_path, text)
    assert result["source"] == "config file" and result["bin_dirs"] == []
    assert str(tmp_path / "config.toml") in result["config_error"] and named in result["config_error"]


def test_byte_order_mark_is_read(tmp_path):
    result = info(tmp_path, "\ufeff" + V2)
    assert result["bin_dirs"] == ["/opt/cni/bin"] and result["conf_dir"] == "/etc/cni/net.d"
    assert "config_error" not in result


def test_dump_of_a_real_containerd(tmp_path):
    result = info(tmp_path, V2, binary=shutil.which("containerd"))
    assert result["source"] == "config dump" and result["bin_dirs"] == ["/opt/cni/bin"], result


@pytest.mark.parametrize("printed, version", [
    ("containerd github.com/containerd/containerd/v2 2.1.9+unknown", "2.1.9+unknown"),
    ("containerd github.com/containerd/containerd v1.7.24 88bf19b2", "v1.7.24"),
    # A line before the version line (a wrapper's warning) does not become the version.
    ("WARN[0000] deprecated option in config\ncontainerd github.com/containerd/containerd v1.7.24 88bf19b2", "v1.7.24"),
])
def test_version_is_read_from_the_version_line(tmp_path, printed, version):
    binary = tmp_path / "containerd"
    binary.write_text("#!/bin/sh\n[ \"$1\" = --version ] || exit 1\ncat <<'OUT'\n%s\nOUT\n" % printed)
    binary.chmod(0o755)
    result = info(tmp_path, V2, binary=str(binary))
    assert result["installed"] and result["version"] == version
