"""The user's containerd config keeps every byte except the CNI keys; containerd runs pods on it."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))

from pods import SUBNET, run_pod, searched_dirs  # noqa: E402  (molecule/shared)

FILES = Path(__file__).resolve().parents[1] / "files"
# What the collection may change in each user file, and nothing else.
EXPECTED = {
    "bookworm": (FILES / "config-v2.toml").read_text().replace(
        'bin_dir = "/usr/lib/cni"', 'bin_dir = "/opt/cni/bin"'),
    "sid": (FILES / "config-v3.toml").read_text().replace(
        # The user's literal strings stay literal.
        "bin_dir = '/usr/lib/cni'", "bin_dirs = ['/opt/cni/bin', '/usr/lib/cni']"),
    "c23": (FILES / "config-v4.toml").read_text().replace(
        "bin_dirs = ['/usr/lib/cni']", "bin_dirs = ['/opt/cni/bin', '/usr/lib/cni']"),
}


def test_only_the_cni_keys_changed(host):
    name = host.backend.get_hostname()
    # testinfra's Ansible backend drops the final newline of command output.
    assert host.file("/etc/containerd/config.toml").content_string.rstrip("\n") == EXPECTED[name].rstrip("\n")


def test_containerd_searches_our_dir_first_and_runs_a_pod(host, testbed_node):
    node = testbed_node(host.backend.get_hostname())
    assert searched_dirs(node)[0] == "/opt/cni/bin"
    status, sandbox = run_pod(node)
    assert sandbox.ip.startswith(SUBNET), sandbox
