"""How much the manifest-checked no-op path saves over an install, with real plugin binaries.

Runs nodeprep.cni.cni_install in-process against a node root in a temp dir (never the host's
/opt/cni): a first install of a release repacked from Debian's plugins, the no-op re-run that
every later playbook run takes, an upgrade, a rollback, and a cni_info report. Prints the median
of several rounds per step and the ratios. Usage: .venv/bin/python bench/install_paths.py [rounds]
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(REPO, ".cache", "collections"), REPO]

# pylint: disable=wrong-import-position
from ansible_collections.nodeprep.cni.plugins.modules import cni_info, cni_install  # noqa: E402
from testbed_lib.in_process import FakeRoot, real_release_files, run_module_in_process  # noqa: E402
from testbed_lib.releases import build_tarball  # noqa: E402


def timed(module, args) -> float:
    start = time.perf_counter()
    result = run_module_in_process(module, args)
    elapsed = time.perf_counter() - start
    if result["rc"] != 0:
        raise SystemExit("benchmark step failed: %s" % result.get("msg"))
    return elapsed


def one_round(workdir: str, tarballs: dict) -> dict:
    node = FakeRoot(os.path.join(workdir, "root"))
    os.makedirs(node.root)
    a, b = sorted(tarballs)
    return {
        "install": timed(cni_install, node.args(src=tarballs[a], version=a)),
        "no-op re-run": timed(cni_install, node.args(src=tarballs[a], version=a)),
        "upgrade": timed(cni_install, node.args(src=tarballs[b], version=b)),
        "rollback": timed(cni_install, node.args(state="rollback")),
        "cni_info": timed(cni_info, node.info_args()),
    }


def main(rounds: int = 5) -> None:
    files = real_release_files(plugins=tuple(sorted(os.listdir("/usr/lib/cni"))))
    samples = {}
    with tempfile.TemporaryDirectory(prefix="nodeprep-bench-") as temp:
        tarballs = {}
        for version in ("9.0.0", "9.1.0"):
            path = os.path.join(temp, "cni-plugins-linux-amd64-v%s.tgz" % version)
            build_tarball(path, dict(files, **{"README.md": ("release %s\n" % version).encode()}))
            tarballs[version] = path
        size = sum(os.path.getsize(p) for p in tarballs.values()) / len(tarballs) / 1e6
        for index in range(rounds):
            workdir = os.path.join(temp, "round%d" % index)
            os.makedirs(workdir)
            for step, seconds in one_round(workdir, tarballs).items():
                samples.setdefault(step, []).append(seconds)
    medians = {step: statistics.median(values) for step, values in samples.items()}
    print("cni_install / cni_info, %d plugins, tarball %.1f MB, median of %d rounds" % (
        len([n for n in files if n not in ("LICENSE", "README.md")]), size, rounds))
    for step, seconds in medians.items():
        print("  %-14s %8.1f ms" % (step, seconds * 1000))
    print("  install / no-op re-run   %.1fx" % (medians["install"] / medians["no-op re-run"]))
    print("  upgrade / rollback       %.1fx" % (medians["upgrade"] / medians["rollback"]))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
