"""Power cuts during install, upgrade, rollback and uninstall (testbed_lib/power_cut.py).

A VM logs every write to the disk holding /opt/cni through the kernel's dm-log-writes, on ext4 in
its weakest ordering (data=writeback, noauto_da_alloc). The disk as it was at every ``EVERY``-th
flush or FUA of each operation is rebuilt from the log on the host and checked: `current`
complete, every link runnable or as it was, the user's files kept, fsck clean; every
``SETTLE_EVERY``-th state, the next run ends where the uncut run ended, with an honest
``changed``. A control writer that renames without fsync must show torn states, or the replay
could not catch anything. ``make power-cut`` checks every flush, and the containerd config write
and the netns units as well.
"""
from __future__ import annotations

import os

from testbed_lib import power_cut
from tests.vm.images import require_image

EVERY = int(os.environ.get("NODEPREP_POWER_CUT_EVERY", "4"))
SETTLE_EVERY = int(os.environ.get("NODEPREP_POWER_CUT_SETTLE_EVERY", "3"))


def test_a_power_cut_at_any_flush_leaves_a_complete_version_and_the_users_files(tmp_path):
    require_image()
    report = power_cut.run(tmp_path, every=EVERY, settle_every=SETTLE_EVERY, mount_options=power_cut.WRITEBACK,
                           config_operations=())
    print(power_cut.describe(report))
    print("VM boot to SSH %s s; recording (s): %s" % (report["boot"]["boot_to_ssh"], report["record"]))
    # The uncut runs did what each operation says, or the states in between prove little.
    assert [report["results"][op]["changed"] for op in power_cut.OPERATIONS] == [True] * 4, report["results"]
    # The replay catches a writer that counts on the filesystem's ordering.
    assert report["control"]["torn"] >= 1, report["control"]
    assert report["problems"] == [], power_cut.describe(report)
    for operation in power_cut.OPERATIONS:
        figures = report["operations"][operation]
        # Each operation makes the filesystem flush several times: the cut states are real ones.
        assert figures["flush_points"] >= 2, (operation, figures)
        assert figures["checked"] >= 2 and figures["settled"] >= 1, (operation, figures)
        # Some states are cut before the end: the settling runs had something to do.
        assert figures["reached_end"] < figures["checked"], (operation, figures)
