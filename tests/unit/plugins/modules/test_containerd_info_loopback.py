"""containerd_info reads use_internal_loopback from containerd's config (dump), in both dialects."""

from __future__ import annotations

import pytest

from ansible_collections.nodeprep.cni.plugins.modules import containerd_info

V3_DUMP = """version = 3
[plugins]
  [plugins.'io.containerd.cri.v1.runtime']
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ['/opt/cni/bin']
      conf_dir = '/etc/cni/net.d'
      use_internal_loopback = %s
"""
V2_FILE = """version = 2
[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "/opt/cni/bin"
  conf_dir = "/etc/cni/net.d"
"""


@pytest.mark.parametrize("text, expected", [
    (V3_DUMP % "false", False),   # containerd 2.x's default: the loopback plugin runs for every pod
    (V3_DUMP % "true", True),
    (V2_FILE, False),             # 1.6 and 1.7 have no such key: always the plugin
    ("not toml [", False),
    ("version = 3\nplugins = 'x'\n", False),                  # wrong-typed tables are named by cni_settings,
    ("version = 3\n[[plugins]]\nname = 'x'\n", False),       # never a crash here
    ("\ufeff" + V3_DUMP % "true", True),                        # a byte order mark is read past
])
def test_internal_loopback(text, expected):
    assert containerd_info.internal_loopback(text) is expected


def test_the_line_reader_without_tomllib_finds_the_key(monkeypatch):
    monkeypatch.setattr(containerd_info, "tomllib", None)
    assert containerd_info.internal_loopback(V3_DUMP % "true") is True
    assert containerd_info.internal_loopback(V3_DUMP % "false") is False
