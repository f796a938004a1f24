"""containerd as Debian packages it (1.6, 1.7, 2.1) and as built from its tags (2.2, 2.4), pointed
at our plugins: its own dump, NetworkReady, a pod; Multus's thick-mode dirs and daemon config next
to it."""
import json
import sys
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))

from pods import SUBNET, run_pod, searched_dirs  # noqa: E402  (molecule/shared)


# Files are read through the test bed's own handle on the node (nsenter, the overlay seen from the
# host): one Ansible round trip per file through testinfra's backend costs seconds on every host.
def test_plugins_linked(host, testbed_node):
    node = testbed_node(host.backend.get_hostname())
    assert node.run(["readlink", "-f", "/opt/cni/bin/bridge"]).stdout.strip() == "/opt/cni/versions/v9.0.0/bridge"


# The built containerds (molecule.yml) also get the plugins linked into a second dir.
WANTED_DIRS = {"c22": ["/opt/cni/bin", "/usr/local/lib/cni"], "c24": ["/opt/cni/bin", "/usr/local/lib/cni"]}
DROP_IN = "/etc/containerd/conf.d/90-nodeprep-cni.toml"


def wanted_dirs(host):
    return WANTED_DIRS.get(host.backend.get_hostname(), ["/opt/cni/bin"])


def test_config_only_cni_keys_changed(host, testbed_node):
    node = testbed_node(host.backend.get_hostname())
    config = node.path("/etc/containerd/config.toml").read_text()
    if node.containerd_version:
        # config default's file imports conf.d: it keeps every byte, our keys are in the drop-in.
        assert config == node.run(["containerd", "config", "default"]).stdout
        cni = tomllib.loads(node.path(DROP_IN).read_text())["plugins"]["io.containerd.cri.v1.runtime"]["cni"]
        assert cni["bin_dirs"] == wanted_dirs(host) and "bin_dir" not in cni, cni
    else:
        assert 'bin_dir = "/opt/cni/bin"' in config and "/usr/lib/cni" not in config


def test_containerd_uses_our_dir_and_runs_a_pod(host, testbed_node):
    node = testbed_node(host.backend.get_hostname())
    assert searched_dirs(node) == wanted_dirs(host)
    status, sandbox = run_pod(node)
    assert status["conditions"]["NetworkReady"]["status"], status
    assert sandbox.ip.startswith(SUBNET), sandbox


def test_setting_survives_a_power_cycle(host, testbed_node):
    node = testbed_node(host.backend.get_hostname())
    node.restart()
    assert searched_dirs(node) == wanted_dirs(host)
    # /run is a fresh tmpfs after the boot: only tmpfiles.d can have made Multus's socket dir.
    assert node.run(["test", "-d", "/run/multus"], check=False).returncode == 0


MULTUS_DIRS = ["/etc/cni/multus/net.d", "/etc/cni/net.d/multus.d", "/var/lib/cni/multus"]


def test_multus_daemon_config_points_into_the_host_mounts(host, testbed_node):
    node = testbed_node(host.backend.get_hostname())
    for path in MULTUS_DIRS:
        assert node.run(["test", "-d", path], check=False).returncode == 0, path
    config = json.loads(node.path("/etc/cni/net.d/multus.d/daemon-config.json").read_text())
    assert config["cniConfigDir"] == "/host/etc/cni/net.d"
    assert config["socketDir"] == "/host/run/multus/"
    assert config["multusAutoconfigDir"] == "/host/etc/cni/net.d"
