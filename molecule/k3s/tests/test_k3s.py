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
