"""playbooks/verify.yml as it is against verify.yml at an earlier commit, on the same installed nodes.

The scale target for verify is stated against the verify of before (three cni_info runs per node,
each hashing every installed file): this runs both on one set of test-bed nodes, alternating, and
prints medians of wall time, the controller's CPU seconds and its peak memory (bench/accounting.py,
as bench/compare.py counts them) and the ratios. The earlier verify is the collection exported from
git at --commit and found first on the collection path (the other collections as the bench has
them); the nodes have the plugins installed once by this tree's cni_plugins role, as in the bench.
With --profile, one more run of this tree's verify with ansible.posix.profile_tasks: where its
wall time goes, task by task.

Usage: .venv/bin/python bench/verify_against.py [--commit abd6303] [--nodes 20] [--rounds 3] [--profile]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# pylint: disable=wrong-import-position
import accounting  # noqa: E402  (bench/accounting.py)
import compare  # noqa: E402  (bench/compare.py)
from compare import REPO, VERIFY, VERSION_A, Bed, LocalServer, build_release, log  # noqa: E402
from testbed_lib.ansible_runner import COLLECTIONS_PATH  # noqa: E402

# The last commit whose verify.yml ran cni_info three times per node (the one-reading verify merged after it).
BEFORE = "abd6303"
# The figures printed and compared (compare.medians keeps every one of compare.FIGURES).
FIGURES = ("wall", "cpu", "peak_pss")


def export_collection(commit: str, root: Path) -> Path:
    """The collection as it was at ``commit``, under root/ansible_collections/nodeprep/cni."""
    target = root / "ansible_collections" / "nodeprep" / "cni"
    target.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", commit], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commit", default=BEFORE, help="the earlier verify's commit (default %s)" % BEFORE)
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="then one profiled run of this tree's verify")
    args = parser.parse_args()
    if args.nodes < 1 or args.rounds < 1:
        raise SystemExit("verify_against: --nodes and --rounds are positive whole numbers")
    with tempfile.TemporaryDirectory(prefix="nodeprep-verify-against-", dir="/var/tmp") as temp:
        temp = Path(temp)
        before_root = temp / "before"
        before = export_collection(args.commit, before_root)
        build_release(temp / "mirror", VERSION_A)
        costs = accounting.Accounting(interval=0.5)
        verifies = {"before": (before / "playbooks" / "verify.yml", {"ANSIBLE_COLLECTIONS_PATH": "%s:%s" % (before_root, COLLECTIONS_PATH)}),
                    "now": (VERIFY, {})}
        samples: dict = {name: [] for name in verifies}
        try:
            with LocalServer(temp / "mirror", access_log=temp / "access.log") as mirror:
                log("booting %d local node(s)" % args.nodes)
                nodes, host_vars = compare.boot_nodes("local", args.nodes, temp, None)
                try:
                    bed = Bed("local", nodes, mirror, temp, host_vars, costs)
                    bed.wipe(args.nodes)
                    bed.play(compare.APPROACHES["ours"], args.nodes, bed.extra_vars("ours", VERSION_A))
                    verify_vars = {"nodeprep_hosts": "nodes", "cni_plugins_version": VERSION_A,
                                   "nodeprep_report_dir": str(temp / "reports")}
                    for index in range(args.rounds):
                        order = list(verifies) if index % 2 == 0 else list(reversed(verifies))
                        for name in order:
                            playbook, env = verifies[name]
                            figures = bed.play(playbook, args.nodes, verify_vars, env=env)
                            samples[name].append(figures)
                            log("round %d: verify %-6s %7.2f s, controller %6.2f CPU s, peak %4.0f MB PSS" % (
                                index + 1, name, figures["wall"], figures["cpu"], figures["peak_pss"] / 1e6))
                    profiled = bed.play(VERIFY, args.nodes, verify_vars, profile=True) if args.profile else None
                finally:
                    compare.stop_nodes(nodes)
        finally:
            costs.close()
    medians = compare.medians({"verify": samples})["verify"]
    print("\nverify on %d node(s), medians of %d round(s); before = %s" % (args.nodes, args.rounds, args.commit))
    print("  %-7s %9s %18s %14s" % ("", "wall s", "controller CPU s", "peak MB PSS"))
    for name, found in medians.items():
        print("  %-7s %9.2f %18.2f %14.0f" % (name, found["wall"], found["cpu"], found["peak_pss"] / 1e6))
    print("  %-7s %8.2fx %17.2fx %13.2fx" % ("now/before", *(medians["now"][key] / medians["before"][key] for key in FIGURES)))
    print("  per node: before %.3f, now %.3f controller CPU s" % (medians["before"]["cpu"] / args.nodes, medians["now"]["cpu"] / args.nodes))
    if profiled:
        print("\nprofile of this tree's verify on %d node(s), %.2f s wall:" % (args.nodes, profiled["wall"]))
        for line in compare.profile_lines(profiled["stdout"]):
            print("  " + line)
    return 0


if __name__ == "__main__":
    compare.run_main(main, "verify_against")
