"""crio_info run in-process: the dirs CRI-O uses from ``crio config`` (defaults printed commented out, as
CRI-O's template does) or from its files and drop-ins when the binary cannot run.

The binary here is a stand-in script that prints what CRI-O 1.36's ``crio config`` prints for the network
table; the real binary is read on a CRI-O node in tests/integration/test_crio.py.
"""

from __future__ import annotations

import pytest

from ansible_collections.nodeprep.cni.plugins.modules import crio_info
from testbed_lib.in_process import run_module_in_process

DEFAULTS = """[crio.runtime]
# default_runtime = "crun"

[crio.network]

# The default CNI network name to be selected. If not set or "", then
# CRI-O will pick-up the first one found in network_dir.
# cni_default_network = ""

# Path to the directory where CNI configuration files are located.
# network_dir = "/etc/cni/net.d/"

# Paths to directories where CNI plugin binaries are located.
# plugin_dirs = [
# \t"/opt/cni/bin/",
# ]

[crio.metrics]
# plugin_dirs = ["/not/this/table"]
"""
SET = DEFAULTS.replace('# network_dir = "/etc/cni/net.d/"', 'network_dir = "/etc/cni/net.d"').replace(
    '# plugin_dirs = [\n# \t"/opt/cni/bin/",\n# ]', 'plugin_dirs = [\n\t"/opt/cni/bin",\n\t"/usr/local/lib/cni",\n]')


def run(tmp_path, config_output=None, files=None):
    binary = tmp_path / "crio"
    if config_output is not None:
        (tmp_path / "out.toml").write_text(config_output)
        binary.write_text('#!/bin/sh\ncase "$*" in\n *--version*) echo "crio version 1.36.3" ;;\n'
                          ' *) cat "%s" ;;\nesac\n' % (tmp_path / "out.toml"))
        binary.chmod(0o755)
    conf_d = tmp_path / "crio.conf.d"
    conf_d.mkdir()
    for name, text in (files or {}).items():
        (tmp_path / name).write_text(text)
    result = run_module_in_process(crio_info, {"binary": str(binary), "config_path": str(tmp_path / "crio.conf"),
                                               "config_dir": str(conf_d), "socket": str(tmp_path / "no.sock")})
    assert result["rc"] == 0 and result["changed"] is False, result
    return result


@pytest.mark.parametrize("output, dirs, conf_dir", [
    (DEFAULTS, ["/opt/cni/bin"], "/etc/cni/net.d"),
    (SET, ["/opt/cni/bin", "/usr/local/lib/cni"], "/etc/cni/net.d"),
])
def test_crio_config_names_the_dirs_also_when_they_are_defaults(tmp_path, output, dirs, conf_dir):
    result = run(tmp_path, output)
    assert (result["runtime"], result["installed"], result["version"], result["source"]) == (
        "crio", True, "1.36.3", "crio config")
    assert result["bin_dirs"] == dirs and result["conf_dir"] == conf_dir
    assert result["runtime_plugins"] == [] and result["use_internal_loopback"] is True
    assert result["cri"]["reachable"] is False and "no CRI socket" in result["cri"]["error"]


def test_without_the_binary_the_main_file_and_drop_ins_are_read_in_order(tmp_path):
    result = run(tmp_path, files={
        "crio.conf": '[crio.network]\nnetwork_dir = "/etc/cni/main.d"\n',
        "crio.conf.d/10-nodeprep-cni.conf": '[crio.network]\nplugin_dirs = ["/opt/cni/bin", "/x"]\n',
        "crio.conf.d/20-later.conf": '[crio.network]\nplugin_dirs = ["/opt/cni/bin"]\n'})
    assert result["source"] == "config file" and result["installed"] is False
    assert result["bin_dirs"] == ["/opt/cni/bin"] and result["conf_dir"] == "/etc/cni/main.d"


def test_a_broken_drop_in_is_named_not_a_crash(tmp_path):
    result = run(tmp_path, files={"crio.conf.d/10-x.conf": "[crio.network]\nplugin_dirs = '/x'\n"})
    assert "10-x.conf" in result["config_error"] and "not a list" in result["config_error"]
    assert result["bin_dirs"] == []
