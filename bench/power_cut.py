"""Every crash state a power cut can leave during install, upgrade, rollback and uninstall, the
containerd config write (containerd_cni present and absent) and the netns role's units.

The full replay behind tests/vm/test_power_cut.py (which checks every few flushes): a VM records
the operations on a disk behind dm-log-writes, once per ext4 data mode (the default ``ordered``,
and ``writeback`` without the flush on rename, the weakest ordering ext4 allows); every flush or
FUA point of each operation is rebuilt on the host and checked, and the next run settles each of
them (testbed_lib/power_cut.py). Prints the figures and writes bench/results/power-cut.json.
Needs root and the VM image (make vm-image). Usage (--help for the options):
.venv/bin/python bench/power_cut.py [every] [settle_every] [--mode ordered|writeback] [--only plugins|config]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(REPO, ".cache", "collections"), REPO]

# pylint: disable=wrong-import-position
from testbed_lib import power_cut  # noqa: E402


MODES = {"ordered": power_cut.ORDERED, "writeback": power_cut.WRITEBACK}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("every", type=int, nargs="?", default=1, help="check every n-th flush point (default: all)")
    parser.add_argument("settle_every", type=int, nargs="?", default=1,
                        help="run the next install on every n-th checked state (default: all)")
    parser.add_argument("--mode", choices=sorted(MODES), action="append",
                        help="ext4 data mode to record under, repeatable (default: both)")
    parser.add_argument("--only", choices=["plugins", "config"],
                        help="record only the plugins' operations, or only the containerd config and netns units")
    args = parser.parse_args(argv)
    modes = args.mode or ["ordered", "writeback"]
    selection = {"operations": () if args.only == "config" else power_cut.OPERATIONS,
                 "config_operations": () if args.only == "plugins" else power_cut.CONFIG_OPERATIONS}
    results = {}
    failed = False
    for mode in modes:
        options = MODES[mode]
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="nodeprep-power-cut-") as workdir:
            report = power_cut.run(Path(workdir), every=args.every, settle_every=args.settle_every,
                                   mount_options=options, **selection)
        report["wall_seconds"] = round(time.monotonic() - started, 1)
        print("ext4 %s:\n%s\nVM boot to SSH %s s, recording %s s, wall %s s\n" % (
            options, power_cut.describe(report), report["boot"]["boot_to_ssh"], report["record"]["record"],
            report["wall_seconds"]), flush=True)
        results[options] = report
        failed = failed or bool(report["problems"])
    # A partial run is kept beside the full one, not over it.
    name = "power-cut" + "".join("-" + part for part in [args.only] + (args.mode or []) if part)
    out = Path(REPO, "bench", "results", name + ".json")
    out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    print("written: %s" % out)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
