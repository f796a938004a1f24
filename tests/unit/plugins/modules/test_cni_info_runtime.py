"""cni_info as verify.yml calls it for the runtime: its own plugins counted, STATUS answers reported."""

from __future__ import annotations

import json
import os

from ansible_collections.nodeprep.cni.plugins.modules import cni_info
from testbed_lib.in_process import run_module_in_process
from ansible_collections.nodeprep.cni.tests.unit.plugins.module_utils.test_cniconf_runtime import CONFLIST_110, plugin


def test_runtime_plugins_and_status_of_a_110_conflist(node):
    bin_dir = node.bin_dir
    for name in ("bridge", "host-local", "portmap"):
        plugin(bin_dir, name)
    os.makedirs(node.conf_dir)
    with open(os.path.join(node.conf_dir, "10-podnet.conflist"), "w", encoding="utf-8") as handle:
        json.dump(CONFLIST_110, handle)
    args = node.info_args(conf_dirs=[node.conf_dir], plugin_dirs=[bin_dir], runtime_plugins=["loopback"],
                          runtime_name="containerd 2.1.9", cni_status=True, package_owners=False)

    result = run_module_in_process(cni_info, args)
    assert result["rc"] == 0
    assert result["missing_types"] == ["loopback"]
    assert "containerd 2.1.9 (runs it for every pod): plugin type(s) not installed in any plugin dir: loopback" \
        in result["coverage"]["problems"]
    path = os.path.join(node.conf_dir, "10-podnet.conflist")
    assert result["cni_status"] == [{"path": path, "ran": True, "ok": True, "message": "ok"}]
    assert all("config" not in entry and "uses" not in entry for entry in result["configs"])

    open(os.path.join(bin_dir, "portmap.down"), "w", encoding="utf-8").close()
    plugin(bin_dir, "loopback")
    result = run_module_in_process(cni_info, args)
    assert result["missing_types"] == [] and result["coverage"]["ok"] is True
    assert result["cni_status"] == [{"path": path, "ran": True, "ok": False, "message": "portmap: code 50: no upstream network"}]
