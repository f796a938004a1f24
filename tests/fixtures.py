"""Fixtures for tests on real parts: booted systemd nodes, a local release mirror, ansible-playbook.

Registered for every test directory by tests/conftest.py (``pytest_plugins``).

Nodes and the mirror are real (see testbed_lib/); they need root and tools/bootstrap.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from testbed_lib import ansible_runner, runtimes
from testbed_lib.http_server import LocalServer
from testbed_lib.releases import build_release
from testbed_lib.node import ROOTFS_CACHE, ROOTFS_STAMP, BootedNode, rootfs_path

REPO = Path(__file__).resolve().parents[1]
MIRROR_VERSIONS = ("9.0.0", "9.1.0", "9.2.0")


@pytest.fixture(scope="session")
def rootfs() -> Path:
    """The cached node rootfs. Fails (a silent skip would hide a broken CI) without bootstrap."""
    if os.geteuid() != 0:
        pytest.skip("integration tests boot systemd-nspawn nodes and need root")
    if not (ROOTFS_CACHE / ROOTFS_STAMP).is_file():
        pytest.fail("no node rootfs at %s: run tools/bootstrap (make bootstrap)" % ROOTFS_CACHE)
    return ROOTFS_CACHE


def node_workdir(tmp_path_factory, name: str) -> Path:
    return tmp_path_factory.mktemp("node-" + name) / "node"


def boot_factory(build):
    """Yields a factory that boots what *build* makes of its arguments; every node it started is
    stopped at teardown, in reverse order, even when the test fails."""
    started: list[BootedNode] = []

    def start(*args, **kwargs) -> BootedNode:
        booted = build(*args, **kwargs)
        started.append(booted)
        return booted.start()

    try:
        yield start
    finally:
        for booted in reversed(started):
            booted.stop()


@pytest.fixture
def node(rootfs, tmp_path_factory):
    """Factory: ``node(name="n1", private_network=False, readonly_usr=False)`` boots a node.

    Every node started through it is stopped at teardown, even when the test fails.
    """
    def build(name: str = "node", private_network: bool = False, readonly_usr: bool = False) -> BootedNode:
        return BootedNode(name, node_workdir(tmp_path_factory, name), private_network=private_network,
                          readonly_usr=readonly_usr, rootfs_cache=rootfs)

    yield from boot_factory(build)


@pytest.fixture
def containerd_node(rootfs, tmp_path_factory):
    """Factory: ``containerd_node(suite, name=None)`` boots a private-network node running the suite's
    containerd (bookworm 1.6, trixie 1.7, sid 2.1), or, given a version of
    ``runtimes.CONTAINERD_VERSIONS`` instead, that containerd built from its release tag; with a
    local sandbox image. Stopped at teardown."""
    def build(suite: str, name: str | None = None) -> BootedNode:
        built = suite if suite in runtimes.CONTAINERD_VERSIONS else None
        if built:
            cache, fix = runtimes.containerd_rootfs_path(built), "tools/testbed.py runtimes (make runtimes)"
        else:
            cache, fix = rootfs_path(suite, containerd=True), "tools/bootstrap (make bootstrap)"
        if not (cache / ROOTFS_STAMP).is_file():
            pytest.fail("no %s containerd rootfs at %s: run %s" % (suite, cache, fix))
        name = name or "ctrd-" + suite
        return BootedNode(name, node_workdir(tmp_path_factory, name), private_network=True,
                          suite=suite if not built else runtimes.RUNTIME_SUITE, containerd=True,
                          containerd_version=built)

    yield from boot_factory(build)


@pytest.fixture(scope="session")
def mirror_releases(tmp_path_factory) -> dict:
    """Releases 9.0.0, 9.1.0 and 9.2.0 built from Debian's plugin binaries, keyed by version."""
    root = tmp_path_factory.mktemp("mirror")
    return {version: build_release(root, version) for version in MIRROR_VERSIONS}


@pytest.fixture(scope="session")
def mirror(mirror_releases):
    """A LocalServer on 127.0.0.1 serving ``mirror_releases``; ``mirror.releases`` maps versions."""
    root = list(mirror_releases.values())[0].path.parents[1]
    with LocalServer(root, access_log=root / "access.log") as server:
        server.releases = mirror_releases
        yield server


@pytest.fixture(autouse=True)
def _fresh_mirror_log(request):
    # The mirror is shared by the session; each test sees only its own requests.
    if "mirror" in request.fixturenames:
        request.getfixturevalue("mirror").clear()


@pytest.fixture
def inventory(tmp_path):
    """``inventory(nodes, **kwargs)`` writes a YAML inventory (group "nodes") and returns its path."""

    def write(nodes, **kwargs) -> Path:
        return ansible_runner.write_inventory(tmp_path / "inventory.yml", nodes, **kwargs)

    return write


@pytest.fixture
def run_playbook(tmp_path):
    """``run_playbook(playbook, inventory, **kwargs)``; relative playbook paths are under the repo."""

    def run(playbook, inventory, **kwargs):
        playbook = Path(playbook)
        if not playbook.is_absolute():
            playbook = REPO / playbook
        kwargs.setdefault("cwd", tmp_path)
        return ansible_runner.run_playbook(playbook, inventory, **kwargs)

    return run


@pytest.fixture
def role_vars(mirror, tmp_path):
    def make(version, **extra):
        values = {
            "cni_plugins_version": version,
            "cni_plugins_base_url": mirror.base_url,
            "cni_plugins_checksums": {"amd64": {v: "sha256:" + r.sha256 for v, r in mirror.releases.items()}},
            "cni_plugins_controller_cache_dir": str(tmp_path / "controller-cache"),
            "cni_plugins_link_dirs": ["/var/lib/rancher/k3s/data/cni"],
        }
        values.update(extra)
        return values

    return make


@pytest.fixture
def module_playbook(tmp_path):
    """Writes a one-task playbook calling cni_install with the given options."""
    def write(**options) -> Path:
        options.setdefault("link_dirs", ["/var/lib/rancher/k3s/data/cni"])
        play = [{"name": "cni_install", "hosts": "nodes", "gather_facts": False,
                 "tasks": [{"name": "Run cni_install", "nodeprep.cni.cni_install": options, "register": "result"}]}]
        path = tmp_path / ("cni_install_%s.yml" % options.get("state", "present"))
        path.write_text(yaml.safe_dump(play))
        return path

    return write
