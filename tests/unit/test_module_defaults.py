"""`module_defaults` for the collection's action groups (meta/runtime.yml), in a real play.

Every task of the play gives only what is its own; the directories, the mirror and its checksums,
and containerd's config file and binary come from the groups. The play runs on this machine with
the local connection, on temporary directories only, against a release served on 127.0.0.1.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ansible_collections.nodeprep.cni.plugins.module_utils._arch import node_arch
from testbed_lib.http_server import LocalServer
from testbed_lib.in_process import build_tarball, release_files

VERSION = "9.0.0"
PLUGINS = ["bridge", "host-local", "loopback", "portmap"]


@pytest.fixture
def local_release(tmp_path):
    """A release of script plugins in upstream's layout, served on 127.0.0.1; yields (base_url, sha256)."""
    root = tmp_path / "mirror"
    asset = "cni-plugins-linux-%s-v%s.tgz" % (node_arch(), VERSION)
    (root / ("v" + VERSION)).mkdir(parents=True)
    tarball = build_tarball(root / ("v" + VERSION) / asset, release_files(VERSION, PLUGINS))
    digest = hashlib.sha256(Path(tarball).read_bytes()).hexdigest()
    with LocalServer(root) as server:
        yield server.base_url, digest


def run_play(tmp_path, play):
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([play], sort_keys=False))
    env = {key: value for key, value in os.environ.items() if "proxy" not in key.lower()}
    env.update(ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_NOCOLOR="1", NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")
    ansible_playbook = Path(sys.executable).parent / "ansible-playbook"
    done = subprocess.run([str(ansible_playbook), "-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable,
                           str(playbook)], capture_output=True,
                          text=True, check=False, env=env, timeout=300)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    tasks = json.loads(done.stdout[done.stdout.index("{"):])["plays"][0]["tasks"]
    return {task["task"]["name"]: task["hosts"]["localhost"] for task in tasks}


def test_group_defaults_reach_every_module_and_action_of_their_group(tmp_path, local_release):
    base_url, digest = local_release
    versions_dir, bin_dir = tmp_path / "node/versions", tmp_path / "node/bin"
    config = tmp_path / "node/containerd.toml"
    config.parent.mkdir(parents=True)
    original = b'version = 2\n\n[plugins."io.containerd.grpc.v1.cri".cni]\n  bin_dir = "/usr/lib/cni"\n  conf_dir = "/etc/cni/net.d"\n'
    config.write_bytes(original)
    play = {
        "name": "Shared options set once",
        "hosts": "localhost",
        "gather_facts": False,
        "module_defaults": {
            "group/nodeprep.cni.cni": {"versions_dir": str(versions_dir), "bin_dir": str(bin_dir)},
            "group/nodeprep.cni.release": {"base_url": base_url, "retries": 0,
                                           "checksums": {node_arch(): {VERSION: "sha256:" + digest}}},
            "group/nodeprep.cni.containerd": {"config_path": str(config), "binary": str(tmp_path / "no-containerd")},
        },
        "tasks": [
            {"name": "plugins", "nodeprep.cni.cni_plugins": {
                "version": VERSION, "controller_cache_dir": str(tmp_path / "controller-cache"),
                "node_cache_dir": str(tmp_path / "node-cache")}},
            {"name": "info", "nodeprep.cni.cni_info": {"probe_versions": False, "package_owners": False}},
            {"name": "release", "nodeprep.cni.cni_release": {"version": VERSION, "cache_dir": str(tmp_path / "cache")}},
            {"name": "containerd info", "nodeprep.cni.containerd_info": {"socket": str(tmp_path / "no.sock")}},
            {"name": "containerd edit", "check_mode": True, "nodeprep.cni.containerd_cni": {
                "bin_dirs": [str(bin_dir)], "containerd_version": "1.7.24", "validate": False, "backup": False}},
        ],
    }
    results = run_play(tmp_path, play)

    # group/cni: the action installed into the group's directories, and cni_info read them.
    installed = results["plugins"]
    assert installed["changed"] is True and installed["version"] == VERSION, installed
    assert installed["release"]["url"] == "%s/v%s/cni-plugins-linux-%s-v%s.tgz" % (base_url, VERSION, node_arch(), VERSION)
    assert os.readlink(versions_dir / "current") == "v" + VERSION
    for name in PLUGINS:
        assert os.readlink(bin_dir / name) == str(versions_dir / "current" / name)
        assert (bin_dir / name).resolve() == versions_dir / ("v" + VERSION) / name
    assert results["info"]["current"] == VERSION and results["info"]["healthy"] is True, results["info"]

    # group/release: cni_release downloaded from the group's mirror, verified by the group's table.
    fetched = results["release"]
    assert fetched["downloaded"] is True and fetched["checksum_source"] == "user_table" and fetched["sha256"] == digest
    assert hashlib.sha256(Path(fetched["path"]).read_bytes()).hexdigest() == digest

    # group/containerd: both modules read the group's file (containerd_info through config_path,
    # containerd_cni through its alias of that name); check mode left the file as it was.
    assert results["containerd info"]["source"] == "config file"
    assert results["containerd info"]["bin_dirs"] == ["/usr/lib/cni"]
    edit = results["containerd edit"]
    assert edit["path"] == str(config) and edit["changed"] is True, edit
    assert config.read_bytes() == original
