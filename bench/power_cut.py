"""Every crash state a power cut can leave during install, upgrade, rollback and uninstall, the
containerd config write (containerd_cni present and absent) and the netns role's units.

The full replay behind tests/vm/test_power_cut.py (which checks every few flushes): a VM records
the operations on a disk behind dm-log-writes, once per ext4 data mode (the default ``ordered``,
and ``writeback`` without the flush on rename, the weakest ordering ext4 allows); every flush or
FUA point of each operation is rebuilt on the host and checked, and the next run settles each of
them (testbed_lib/power_cut.py). Prints the figures and writes bench/results/power-cut.json.
Needs root and the VM image (make vm-image). Usage: .venv/bin/python bench/power_cut.py [every] [settle_every]
"""
from __future__ import annotations

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


def main(argv: list[str]) -> int:
    every = int(argv[0]) if argv else 1
    settle_every = int(argv[1]) if len(argv) > 1 else 1
    results = {}
    failed = False
    for options in (power_cut.ORDERED, power_cut.WRITEBACK):
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="nodeprep-power-cut-") as workdir:
            report = power_cut.run(Path(workdir), every=every, settle_every=settle_every, mount_options=options)
        report["wall_seconds"] = round(time.monotonic() - started, 1)
        print("ext4 %s:\n%s\nVM boot to SSH %s s, recording %s s, wall %s s\n" % (
            options, power_cut.describe(report), report["boot"]["boot_to_ssh"], report["record"]["record"],
            report["wall_seconds"]), flush=True)
        results[options] = report
        failed = failed or bool(report["problems"])
    out = Path(REPO, "bench", "results", "power-cut.json")
    out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    print("written: %s" % out)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
