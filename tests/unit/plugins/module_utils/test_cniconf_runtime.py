"""Coverage as the runtime sees it: the plugins it runs for every pod (containerd's loopback), the
dhcp daemon a dhcp IPAM config needs, and CNI STATUS (spec 1.1.0) asked of real plugin processes.

The dhcp daemon is a real unix socket; STATUS runs real executables through the module's own
run_command (small shell plugins that answer VERSION and STATUS like the spec says).
"""

from __future__ import annotations

import json
import os
import socket

import pytest

from ansible_collections.nodeprep.cni.plugins.module_utils._cniconf import (
    DHCP_SOCKET,
    Coverage,
    cni_status,
    config_entry,
    dhcp_daemon_problem,
    plugin_uses,
    runtime_entry,
    status_candidates,
    summarize,
)
from ansible_collections.nodeprep.cni.plugins.module_utils._probe import probe_plugin, status_invoker
from testbed_lib.in_process import real_run_command

RUN = real_run_command()
V110 = '{"cniVersion":"1.1.0","supportedVersions":["0.4.0","1.0.0","1.1.0"]}'

# A plugin that answers VERSION, and STATUS with success or a spec error (code 50: not available).
# It records the config it got on stdin and its CNI_PATH, so the test sees what a runtime would send.
STATUS_PLUGIN = """#!/bin/sh
# fake CNI plugin %(name)s
case "$CNI_COMMAND" in
  VERSION) echo '%(answer)s' ;;
  STATUS)
    cat > "%(record)s.stdin"; echo "$CNI_PATH" > "%(record)s.path"
    if [ -e "%(record)s.down" ]; then echo '{"cniVersion":"1.1.0","code":50,"msg":"no upstream network"}'; exit 1; fi ;;
  *) exit 4 ;;
esac
"""


def plugin(directory, name, answer=V110):
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(STATUS_PLUGIN % {"name": name, "answer": answer, "record": path})
    os.chmod(path, 0o755)
    return path


def probe(path):
    return probe_plugin(RUN, path)


def test_the_runtime_entry_counts_loopback_like_a_config_type(tmp_path):
    bin_dir = str(tmp_path / "bin")
    plugin(bin_dir, "bridge")
    entry = Coverage([bin_dir], probe).check(runtime_entry("containerd 2.1.9", ["loopback"]))
    assert entry["missing_types"] == ["loopback"] and entry["covered"] is False
    summary = summarize([entry])
    assert summary["missing_types"] == ["loopback"]
    assert summary["problems"] == ["containerd 2.1.9 (runs it for every pod): plugin type(s) not installed in any plugin dir: loopback"]
    plugin(bin_dir, "loopback")
    assert Coverage([bin_dir], probe).check(runtime_entry("containerd 2.1.9", ["loopback"]))["covered"] is True


DHCP_CONFLIST = {"cniVersion": "1.0.0", "name": "lan", "plugins": [{"type": "macvlan", "master": "eth0", "ipam": {"type": "dhcp"}}]}


def test_dhcp_ipam_needs_its_daemon_listening(tmp_path):
    bin_dir = str(tmp_path / "bin")
    plugin(bin_dir, "macvlan")
    plugin(bin_dir, "dhcp")
    sock = str(tmp_path / "dhcp.sock")
    config = json.loads(json.dumps(DHCP_CONFLIST))
    config["plugins"][0]["ipam"]["daemonSocketPath"] = sock
    checker = Coverage([bin_dir], probe, dhcp_daemon_problem)

    down = checker.check(config_entry("lan.conflist", "conflist", config))
    assert down["covered"] is False and down["missing_types"] == []
    problem = summarize([down])["problems"][0]
    assert problem.startswith("lan.conflist: uses dhcp IPAM but no CNI dhcp daemon answers at %s" % sock), problem
    assert "start the dhcp plugin's daemon" in problem

    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(sock)
    server.listen(1)
    try:
        up = Coverage([bin_dir], probe, dhcp_daemon_problem).check(config_entry("lan.conflist", "conflist", config))
        assert up["covered"] is True and up["daemon_problems"] == []
    finally:
        server.close()


def test_the_default_dhcp_socket_is_the_daemons():
    uses = plugin_uses(DHCP_CONFLIST)
    assert [use.get("daemon_socket") for use in uses] == [None, DHCP_SOCKET]


CONFLIST_110 = {"cniVersion": "1.1.0", "name": "podnet",
                "plugins": [{"type": "bridge", "bridge": "cni0", "ipam": {"type": "host-local"}}, {"type": "portmap"}]}


@pytest.fixture
def plugins_110(tmp_path):
    bin_dir = str(tmp_path / "bin")
    return bin_dir, [plugin(bin_dir, name) for name in ("bridge", "host-local", "portmap")]


def test_status_asks_each_plugin_of_a_covered_110_conflist_in_order(plugins_110):
    bin_dir, (bridge, dummy, portmap) = plugins_110
    entry = Coverage([bin_dir], probe).check(config_entry("podnet.conflist", "conflist", CONFLIST_110))
    answer = cni_status(entry, [bin_dir], status_invoker(RUN))
    assert answer == {"path": "podnet.conflist", "ran": True, "ok": True, "message": "ok"}
    # What the plugin got is what libcni sends: its own config with the list's name and version.
    sent = json.loads(open(bridge + ".stdin", encoding="utf-8").read())
    assert sent == dict(CONFLIST_110["plugins"][0], name="podnet", cniVersion="1.1.0")
    assert open(portmap + ".path", encoding="utf-8").read().strip() == bin_dir


def test_a_plugin_that_is_not_available_fails_status_with_its_error(plugins_110):
    bin_dir, (dummy, dummy2, portmap) = plugins_110
    open(portmap + ".down", "w", encoding="utf-8").close()
    entry = Coverage([bin_dir], probe).check(config_entry("podnet.conflist", "conflist", CONFLIST_110))
    answer = cni_status(entry, [bin_dir], status_invoker(RUN))
    assert answer["ran"] is True and answer["ok"] is False
    assert answer["message"] == "portmap: code 50: no upstream network"


def test_status_is_not_asked_of_older_or_uncovered_conflists(plugins_110):
    bin_dir, dummy = plugins_110
    older = dict(CONFLIST_110, cniVersion="1.0.0")
    entry = Coverage([bin_dir], probe).check(config_entry("old.conflist", "conflist", older))
    assert status_candidates(entry) == []
    assert cni_status(entry, [bin_dir], status_invoker(RUN))["message"].startswith("not asked: STATUS needs")
    missing = dict(CONFLIST_110, plugins=CONFLIST_110["plugins"] + [{"type": "tuning"}])
    entry = Coverage([bin_dir], probe).check(config_entry("gap.conflist", "conflist", missing))
    answer = cni_status(entry, [bin_dir], status_invoker(RUN))
    assert answer["ran"] is False and "not covered" in answer["message"]


def test_a_plugin_without_110_support_is_a_version_finding_and_status_is_not_asked(tmp_path):
    bin_dir = str(tmp_path / "bin")
    plugin(bin_dir, "bridge", answer='{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}')
    plugin(bin_dir, "host-local")
    plugin(bin_dir, "portmap")
    entry = Coverage([bin_dir], probe).check(config_entry("podnet.conflist", "conflist", CONFLIST_110))
    assert entry["covered"] is False and entry["version_mismatches"][0]["type"] == "bridge"
    assert cni_status(entry, [bin_dir], status_invoker(RUN))["ran"] is False
