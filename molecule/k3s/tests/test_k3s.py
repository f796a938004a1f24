"""The k3s layout: the plugins k3s lacks join its dir; its own links and generated config stay.

Files are read through the node's overlay from the host (testbed_node), which is far quicker
than one Ansible round trip per file.
"""
import os
from pathlib import Path

FILES = Path(__file__).resolve().parents[1] / "files"
BUNDLED = ["bandwidth", "bridge", "firewall", "flannel", "host-local", "loopback", "portmap"]
# What the test release has that k3s's multi-call binary does not answer to.
ADDED = ["macvlan", "ipvlan", "ptp", "tuning", "vlan"]
LAYOUT = {
    "k3s-static": ("/var/lib/rancher/k3s/data/cni", "config-v3.toml", "config-v3.toml.d"),
    "k3s-legacy": ("/var/lib/rancher/k3s/data/current/bin", "config-v2.toml", "config.toml.d"),
}
AGENT = "/var/lib/rancher/k3s/agent/etc/containerd"


def test_k3s_links_untouched_and_missing_plugins_added(host, testbed_node):
    name = host.backend.get_hostname()
    node, (plugin_dir, _config, _drop_ins) = testbed_node(name), LAYOUT[name]
    for plugin in BUNDLED:
        assert os.readlink(node.path("%s/%s" % (plugin_dir, plugin))).endswith("cni"), plugin
    assert node.run(["%s/bridge" % plugin_dir]).stdout.strip() == "k3s cni bridge"
    for plugin in ADDED:
        assert os.readlink(node.path("%s/%s" % (plugin_dir, plugin))) == "/opt/cni/versions/current/" + plugin
    # Nothing of k3s's was adopted: the install found no same-name file of its own to move.
    assert not node.path("/opt/cni/versions/.adopted").exists()


def test_standard_bin_dir_has_every_plugin(host):
    assert host.file("/opt/cni/bin/macvlan").linked_to == "/opt/cni/versions/v9.0.0/macvlan"
    assert host.file("/opt/cni/bin/bridge").linked_to == "/opt/cni/versions/v9.0.0/bridge"


def test_generated_config_untouched_and_drop_in_written(host, testbed_node):
    name = host.backend.get_hostname()
    node, (plugin_dir, config, drop_ins) = testbed_node(name), LAYOUT[name]
    assert node.path(AGENT + "/config.toml").read_text() == (FILES / config).read_text()
    drop_in = node.path("%s/%s/90-nodeprep-cni.toml" % (AGENT, drop_ins)).read_text()
    version = "3" if config == "config-v3.toml" else "2"
    table = "io.containerd.cri.v1.runtime" if version == "3" else "io.containerd.grpc.v1.cri"
    assert drop_in.startswith("version = %s\n" % version)
    assert '[plugins."%s".cni]' % table in drop_in
    assert 'bin_dir = "%s"' % plugin_dir in drop_in
    assert 'conf_dir = "/var/lib/rancher/k3s/agent/etc/cni/net.d"' in drop_in


UNITS = {"k3s-static": "k3s", "k3s-legacy": "k3s-agent"}


def starts(node, unit, kind="starting"):
    path = node.path("/var/lib/rancher/k3s/%s.%s" % (unit, kind))
    return [float(line) for line in path.read_text().split()] if path.exists() else []


def test_the_drop_in_restarted_the_nodes_own_k3s_unit_once(host, testbed_node):
    name = host.backend.get_hostname()
    node, unit = testbed_node(name), UNITS[name]
    other = "k3s-agent" if unit == "k3s" else "k3s"
    # Started by prepare, restarted by converge's new drop-in; the idempotence and check-mode runs
    # changed nothing and restarted nothing. The unit this node does not run was never started.
    assert len(starts(node, unit)) == 2 and len(starts(node, unit, "started")) == 2
    assert starts(node, other) == []
    assert node.run(["systemctl", "is-active", unit]).stdout.strip() == "active"


def test_restarts_ran_one_node_after_the_other(testbed_node):
    windows = sorted((starts(testbed_node(name), unit)[1], starts(testbed_node(name), unit, "started")[1])
                     for name, unit in UNITS.items())
    # containerd_restart_throttle: 1 - the second node's restart began after the first one's ended.
    assert windows[0][1] <= windows[1][0], windows
