"""Debian's Prometheus parts in a test node: node_exporter serving the textfile verify writes, promtool
checking it, and a Prometheus scraping several nodes.

``tools/testbed.py runtimes`` builds ``rootfs-monitoring-bookworm`` once: a copy of the bookworm
containerd rootfs with Debian's ``prometheus-node-exporter`` (1.5) and ``prometheus`` (2.42, with
``promtool``). Both packaged units are disabled there: a test starts node_exporter through systemd with
the arguments it needs (loopback only, our textfile dir), and runs Prometheus by hand, stopped by PID.
"""
from __future__ import annotations

import json
import shutil
import socket
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable

from testbed_lib.node import TESTBED_CACHE, BootedNode

ROOTFS = TESTBED_CACHE / "rootfs-monitoring-bookworm"
PACKAGES = ("prometheus-node-exporter", "prometheus")
# The packaged services would listen on every address at boot: tests start them on the loopback.
DISABLED_UNITS = ("prometheus.service", "prometheus-node-exporter.service")
TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"
EXPORTER_DEFAULTS = "/etc/default/prometheus-node-exporter"
RECIPE = "monitoring-2:" + ",".join(PACKAGES) + ":" + ",".join(DISABLED_UNITS)


def finish(rootfs: Path, install: Callable[[Path, list], None]) -> None:
    """Installs the packages into a staging copy of the containerd rootfs and disables their units."""
    install(rootfs, list(PACKAGES))
    for wants in (rootfs / "etc/systemd/system").glob("*.wants"):
        for unit in DISABLED_UNITS:
            # The links point at /lib/... inside the rootfs: broken seen from the host, so no exists().
            if (wants / unit).is_symlink():
                (wants / unit).unlink()
    shutil.rmtree(rootfs / "var/lib/apt/lists", ignore_errors=True)
    (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)


def free_port() -> int:
    """A port nothing listens on now on 127.0.0.1 (nodes on the host's network share its loopback)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_node_exporter(node: BootedNode, port: int, textfile_dir: str = TEXTFILE_DIR) -> str:
    """Starts the node's packaged node_exporter unit on 127.0.0.1:``port``; returns its metrics URL."""
    node.path(EXPORTER_DEFAULTS).write_text(
        'ARGS="--web.listen-address=127.0.0.1:%d --collector.textfile.directory=%s"\n' % (port, textfile_dir))
    node.run(["systemctl", "start", "prometheus-node-exporter.service"])
    url = "http://127.0.0.1:%d/metrics" % port
    wait_http(node, url)
    return url


def fetch(node: BootedNode, url: str, timeout: float = 10) -> str:
    """GETs ``url`` from inside the node (its own network namespace and loopback)."""
    script = "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=%r).read().decode())" % timeout
    return node.run(["python3", "-c", script, url], timeout=timeout + 20).stdout


def wait_http(node: BootedNode, url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        result = node.run(["python3", "-c", "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)",
                           url], check=False)
        if result.returncode == 0:
            return
        last = result.stderr.strip().splitlines()[-1:] or [""]
        time.sleep(0.2)
    raise AssertionError("%s did not answer in %.0f s: %s" % (url, timeout, last))


class Prometheus:
    """Debian's prometheus run by hand inside a node, on 127.0.0.1 only, stopped by its PID."""

    def __init__(self, node: BootedNode, port: int, targets: list[str], interval: str = "1s"):
        self.node, self.port, self.targets, self.interval = node, port, targets, interval
        self.pid: int | None = None
        self.workdir = "/var/tmp/nodeprep-prometheus"

    def __enter__(self) -> "Prometheus":
        config = {"global": {"scrape_interval": self.interval, "evaluation_interval": self.interval},
                  "scrape_configs": [{"job_name": "node", "static_configs": [{"targets": self.targets}]}]}
        self.node.run(["mkdir", "-p", self.workdir + "/data"])
        self.node.path(self.workdir + "/prometheus.yml").write_text(json.dumps(config))
        started = self.node.run(
            "cd %s && { nohup prometheus --config.file=prometheus.yml --storage.tsdb.path=data"
            " --web.listen-address=127.0.0.1:%d </dev/null >prometheus.log 2>&1 & echo $!; }" % (self.workdir, self.port))
        self.pid = int(started.stdout.split()[-1])
        try:
            wait_http(self.node, "http://127.0.0.1:%d/-/ready" % self.port, timeout=60)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def stop(self) -> None:
        if self.pid is None:
            return
        # The PID is the node's own (nsenter -p): signal it inside the node, then wait until it is gone.
        self.node.run(["kill", "-TERM", str(self.pid)], check=False)
        for _attempt in range(100):
            if self.node.run(["kill", "-0", str(self.pid)], check=False).returncode != 0:
                break
            time.sleep(0.1)
        else:
            self.node.run(["kill", "-KILL", str(self.pid)], check=False)
        self.pid = None

    def log(self) -> str:
        try:
            return self.node.path(self.workdir + "/prometheus.log").read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def query(self, promql: str) -> list:
        url = "http://127.0.0.1:%d/api/v1/query?%s" % (self.port, urllib.parse.urlencode({"query": promql}))
        answer = json.loads(fetch(self.node, url))
        if answer.get("status") != "success":
            raise AssertionError("query %r failed: %s" % (promql, answer))
        return answer["data"]["result"]

    def wait_for(self, promql: str, count: int, timeout: float = 60) -> list:
        """The query's result once it has ``count`` series (scrapes take a few intervals)."""
        deadline = time.monotonic() + timeout
        result: list = []
        while time.monotonic() < deadline:
            result = self.query(promql)
            if len(result) == count:
                return result
            time.sleep(0.5)
        raise AssertionError("%r gave %d series after %.0f s, not %d: %s\n%s"
                             % (promql, len(result), timeout, count, result, self.log()))
