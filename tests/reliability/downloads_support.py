"""Shared by the download, archive and role reliability tests: one booted node per test module,
one-task playbooks that run a module on it, and the checks every case ends with."""
from __future__ import annotations

import contextlib
import shlex
from pathlib import Path

import yaml

from testbed_lib import ansible_runner
from testbed_lib.node import BootedNode
from testbed_lib.tree import node_state, temp_leftovers

REPO = Path(__file__).resolve().parents[2]
SITE = REPO / "playbooks" / "site.yml"
BASE = "9.0.0"
NODE_CACHE = "/var/cache/nodeprep/cni"
LOCK = NODE_CACHE + "/.lock"
FIX_FRAGMENT = "use the official release"


def boot(rootfs, tmp_path_factory, name):
    workdir = tmp_path_factory.mktemp("node-" + name) / "node"
    return BootedNode(name, workdir, rootfs_cache=rootfs).start()


@contextlib.contextmanager
def booted_runner(rootfs, tmp_path_factory, mirror, name):
    """A Runner on a fresh node (stopped afterwards) that already has the base release installed."""
    node = boot(rootfs, tmp_path_factory, name)
    try:
        runner = Runner(node, tmp_path_factory.mktemp(name + "-runs"))
        runner.install_base(mirror, tmp_path_factory.mktemp("controller-cache"))
        yield runner
    finally:
        node.stop()


def checksums_for(*releases):
    """A user checksum table pinning each release's published sha256."""
    return {"amd64": dict((r.version, "sha256:" + r.sha256) for r in releases)}


def role_vars(mirror, controller_cache, version=BASE, **extra):
    values = {
        "cni_plugins_version": version,
        "cni_plugins_base_url": mirror.base_url,
        "cni_plugins_checksums": checksums_for(*mirror.releases.values()),
        "cni_plugins_controller_cache_dir": str(controller_cache),
        # Short waits: every fault the tests inject is meant to fail fast.
        "cni_plugins_retries": 1,
    }
    values.update(extra)
    return values


class Runner:
    """Runs playbooks against one node from one work directory."""

    def __init__(self, node, workdir: Path):
        self.node = node
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.inventory = ansible_runner.write_inventory(self.workdir / "inventory.yml", [node])
        self.count = 0

    def playbook(self, playbook, extra_vars=None, **kwargs):
        kwargs.setdefault("cwd", self.workdir)
        return ansible_runner.run_playbook(playbook, self.inventory, extra_vars=extra_vars, **kwargs)

    def write_play(self, tasks, hosts="nodes", name="case", extra_hosts=None):
        self.count += 1
        play = {"name": name, "hosts": hosts, "gather_facts": False, "tasks": tasks}
        path = self.workdir / ("play-%02d.yml" % self.count)
        path.write_text(yaml.safe_dump([play], sort_keys=False))
        return path

    def module(self, module, options, loop=None, **kwargs):
        """One task running ``module`` with ``options`` on the node; returns (playbook result, task result)."""
        task = {"name": "Run " + module, module: options, "register": "outcome"}
        if loop is not None:
            task["loop"] = loop
            task["ignore_errors"] = True
        result = self.playbook(self.write_play([task]), **kwargs)
        return result, result.result("Run " + module, self.node.name)

    def install_base(self, mirror, controller_cache):
        """The node has BASE installed through the role, downloaded on the node: /opt and the
        node's cache (with its lock file) exist, as on any node a fleet has run on before."""
        done = self.playbook(SITE, role_vars(mirror, controller_cache, cni_plugins_download_on="node"))
        assert done.rc == 0, done.describe()
        return done


def lock_is_free(node, lock=LOCK) -> bool:
    """True when no process holds the lock (flock -n gets it at once)."""
    return node.run("flock -n -E 99 %s true" % shlex.quote(lock), check=False).returncode == 0


def assert_untouched(node, before):
    """The case's closing checks: /opt and the cache byte-identical, no temp file, no lock holder."""
    after = node_state(node)
    assert after["opt"] == before["opt"], "the node's /opt changed"
    assert after["cache"] == before["cache"], "the node's cache changed"
    assert temp_leftovers(node) == []
    assert lock_is_free(node)
