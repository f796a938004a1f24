"""containerd's CNI keys: dialect rules, byte-for-byte edits, and the refusals.

Candidates are checked by the real containerd 1.6 that tools/bootstrap installs on this machine
(``containerd --config FILE config dump`` only reads FILE): what we write, containerd accepts.
"""
from __future__ import annotations

import shutil
import subprocess
import tomllib

import pytest

from ansible_collections.nodeprep.cni.plugins.module_utils import _containerd_config as config

DEBIAN_V2 = '''version = 2

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "/etc/cni/net.d"
  [plugins."io.containerd.internal.v1.opt"]
    path = "/var/lib/containerd/opt"
'''
USER_V3 = '''# hand-written
version = 3

[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dir = '/usr/lib/cni'   # one dir, as 2.0 took it
  conf_dir = '/etc/cni/net.d'

[debug]
  level = 'info'
'''


def dump(tmp_path, text):
    """containerd 1.6's own view of a v2 candidate."""
    path = tmp_path / "candidate.toml"
    path.write_text(text)
    result = subprocess.run([shutil.which("containerd"), "--config", str(path), "config", "dump"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return tomllib.loads(result.stdout)


@pytest.mark.parametrize("output, version", [
    ("containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3", (1, 6, 20)),
    ("containerd github.com/containerd/containerd/v2 2.1.9+unknown", (2, 1, 9)),
    ("containerd containerd.io v1.7.24 88bf19b2", (1, 7, 24)),
    ("2.1", (2, 1, 0)),
    ("v2.0.4", (2, 0, 4)),
    ("", None),
    ("containerd: command not found", None),
])
def test_version_parsing(output, version):
    assert config.parse_containerd_version(output) == version


def test_v2_file_changes_only_the_cni_values(tmp_path):
    text, facts = config.edit(DEBIAN_V2, "/etc/containerd/config.toml", ["/opt/cni/bin", "/var/lib/rancher/k3s/data/cni"],
                              "/etc/cni/net.d", (2, 1, 9))
    assert text == DEBIAN_V2.replace('"/usr/lib/cni"', '"/opt/cni/bin"')
    assert facts["dialect"] == 2 and facts["bin_dir_key"] == "bin_dir" and facts["bin_dirs"] == ["/opt/cni/bin"]
    assert dump(tmp_path, text)["plugins"]["io.containerd.grpc.v1.cri"]["cni"]["bin_dir"] == "/opt/cni/bin"


def test_second_edit_is_a_no_op():
    once, _facts = config.edit(DEBIAN_V2, "f", ["/opt/cni/bin"], "/etc/cni/net.d", (1, 6, 20))
    again, _facts = config.edit(once, "f", ["/opt/cni/bin"], "/etc/cni/net.d", (1, 6, 20))
    assert again == once


def test_v3_on_21_moves_bin_dir_into_bin_dirs_in_place():
    text, facts = config.edit(USER_V3, "f", ["/opt/cni/bin"], "/etc/cni/net.d", (2, 1, 9))
    assert text == USER_V3.replace("bin_dir = '/usr/lib/cni'", 'bin_dirs = ["/opt/cni/bin", "/usr/lib/cni"]')
    cni = tomllib.loads(text)["plugins"]["io.containerd.cri.v1.runtime"]["cni"]
    assert "bin_dir" not in cni and cni["bin_dirs"] == ["/opt/cni/bin", "/usr/lib/cni"]
    assert facts["bin_dir_key"] == "bin_dirs"


def test_v3_on_20_keeps_bin_dir():
    text, facts = config.edit(USER_V3, "f", ["/opt/cni/bin"], "/etc/cni/net.d", (2, 0, 4))
    assert text == USER_V3.replace("bin_dir = '/usr/lib/cni'", 'bin_dir = "/opt/cni/bin"')
    assert facts["bin_dir_key"] == "bin_dir"


def test_v3_without_known_version_follows_the_file():
    with_bin_dirs = USER_V3.replace("bin_dir = '/usr/lib/cni'", "bin_dirs = ['/usr/lib/cni']")
    assert config.edit(with_bin_dirs, "f", ["/opt/cni/bin"], None, None)[1]["bin_dir_key"] == "bin_dirs"
    assert config.edit(USER_V3, "f", ["/opt/cni/bin"], None, None)[1]["bin_dir_key"] == "bin_dir"


@pytest.mark.parametrize("version, dialect, table", [
    ((1, 7, 24), 2, "io.containerd.grpc.v1.cri"),
    ((2, 1, 9), 3, "io.containerd.cri.v1.runtime"),
])
def test_new_file_for_the_detected_version(tmp_path, version, dialect, table):
    text, facts = config.edit(None, "f", ["/opt/cni/bin", "/usr/libexec/cni"], "/etc/cni/net.d", version)
    parsed = tomllib.loads(text)
    assert parsed["version"] == dialect and facts["created"]
    cni = parsed["plugins"][table]["cni"]
    assert cni["conf_dir"] == "/etc/cni/net.d"
    if dialect == 2:
        assert cni["bin_dir"] == "/opt/cni/bin"
        assert dump(tmp_path, text)["plugins"][table]["cni"]["bin_dir"] == "/opt/cni/bin"
    else:
        assert cni["bin_dirs"] == ["/opt/cni/bin", "/usr/libexec/cni"]


def test_missing_table_is_added_and_the_rest_kept(tmp_path):
    original = 'version = 2\n# only metrics here\n[metrics]\n  address = "127.0.0.1:1338"\n'
    text, _facts = config.edit(original, "f", ["/opt/cni/bin"], "/etc/cni/net.d", (1, 6, 20))
    assert text.startswith(original)
    assert dump(tmp_path, text)["plugins"]["io.containerd.grpc.v1.cri"]["cni"]["bin_dir"] == "/opt/cni/bin"


def test_new_file_without_any_version_asks_for_containerd_version():
    with pytest.raises(config.ContainerdConfigError, match="set containerd_version"):
        config.edit(None, "/etc/containerd/config.toml", ["/opt/cni/bin"], None, None)


def test_malformed_toml_names_file_and_line():
    broken = 'version = 2\n[plugins."io.containerd.grpc.v1.cri".cni\n  bin_dir = "/usr/lib/cni"\n'
    with pytest.raises(config.ContainerdConfigError) as error:
        config.edit(broken, "/etc/containerd/config.toml", ["/opt/cni/bin"], None, (1, 6, 20))
    message = str(error.value)
    assert "/etc/containerd/config.toml is not valid TOML" in message and "line 2" in message
    assert "nothing was changed" in message


@pytest.mark.parametrize("text, hint", [
    ('root = "/var/lib/containerd"\n', "no top-level 'version'"),
    ("version = 4\n", "version = 4"),
    ('version = "2"\n', "version = 2"),
])
def test_unknown_version_is_refused(text, hint):
    with pytest.raises(config.ContainerdConfigError, match=r"version = 2'? \(containerd 1.x\) or '?version = 3") as error:
        config.edit(text, "/etc/containerd/config.toml", ["/opt/cni/bin"], None, (1, 7, 24))
    assert hint in str(error.value)


def test_drop_in_seed_copies_the_main_cni_table():
    k3s = 'version = 3\n[plugins."io.containerd.cri.v1.runtime".cni]\n  bin_dir = "/var/lib/rancher/k3s/data/cni"\n'
    seed = config.drop_in_seed(k3s, "config.toml")
    text, facts = config.edit(seed, "drop-in", ["/var/lib/rancher/k3s/data/cni"], "/k3s/net.d", None)
    assert facts["bin_dir_key"] == "bin_dir"
    parsed = tomllib.loads(text)["plugins"]["io.containerd.cri.v1.runtime"]["cni"]
    assert parsed == {"bin_dir": "/var/lib/rancher/k3s/data/cni", "conf_dir": "/k3s/net.d"}


def test_imports_drop_in_dir():
    assert config.imports_drop_in_dir('version = 3\nimports = ["/etc/containerd/conf.d/*.toml"]\n') == "/etc/containerd/conf.d"
    assert config.imports_drop_in_dir("version = 3\n") is None


def test_version_3_file_on_containerd_1_is_refused():
    with pytest.raises(config.ContainerdConfigError, match="never converts a config between versions"):
        config.edit(USER_V3, "f", ["/opt/cni/bin"], None, (1, 7, 24))
