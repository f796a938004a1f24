"""containerd as Debian packages it, pointed at our plugins: its own dump, NetworkReady, a pod;
Multus's thick-mode dirs and daemon config next to it."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))

from pods import SUBNET, run_pod, searched_dirs  # noqa: E402  (molecule/shared)


def test_plugins_linked(host):
    assert host.file("/opt/cni/bin/bridge").linked_to == "/opt/cni/versions/v9.0.0/bridge"


def test_config_only_cni_keys_changed(host):
    config = host.file("/etc/containerd/config.toml").content_string
    assert 'bin_dir = "/opt/cni/bin"' in config and "/usr/lib/cni" not in config


def test_containerd_uses_our_dir_and_runs_a_pod(host, testbed_node):
    node = testbed_node(host.backend.get_hostname())
    assert searched_dirs(node) == ["/opt/cni/bin"]
    status, sandbox = run_pod(node)
    assert status["conditions"]["NetworkReady"]["status"], status
    assert sandbox.ip.startswith(SUBNET), sandbox


def test_setting_survives_a_power_cycle(host, testbed_node):
    node = testbed_node(host.backend.get_hostname())
    node.restart()
    assert searched_dirs(node) == ["/opt/cni/bin"]
    # /run is a fresh tmpfs after the boot: only tmpfiles.d can have made Multus's socket dir.
    assert host.file("/run/multus").is_directory


MULTUS_DIRS = ["/etc/cni/multus/net.d", "/etc/cni/net.d/multus.d", "/var/lib/cni/multus"]


def test_multus_daemon_config_points_into_the_host_mounts(host):
    for path in MULTUS_DIRS:
        assert host.file(path).is_directory, path
    config = json.loads(host.file("/etc/cni/net.d/multus.d/daemon-config.json").content_string)
    assert config["cniConfigDir"] == "/host/etc/cni/net.d"
    assert config["socketDir"] == "/host/run/multus/"
    assert config["multusAutoconfigDir"] == "/host/etc/cni/net.d"
