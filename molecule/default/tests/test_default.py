"""The default scenario: Debian's containerd package, its own config, our plugins."""


def test_plugins_linked(host):
    bridge = host.file("/opt/cni/bin/bridge")
    assert bridge.is_symlink
    assert bridge.linked_to == "/opt/cni/versions/v9.0.0/bridge"


def test_restart_keeps_links(testbed_node):
    node = testbed_node("bookworm")
    node.restart()
    assert node.run(["readlink", "/opt/cni/bin/bridge"]).stdout.strip() == "/opt/cni/versions/current/bridge"
