"""The dm-log-writes reader and replayer (testbed_lib/logwrites.py) on logs laid out as the kernel
writes them; tests/vm/test_power_cut.py reads real ones from a guest kernel."""
from __future__ import annotations

import struct

import pytest

from testbed_lib import logwrites

SECTOR = 512


def _log(path, entries, sectorsize=SECTOR, count=None):
    """A log file: the super block, then each (sector, flags, data or mark name) entry."""
    body = b""
    for sector, flags, payload in entries:
        if flags & logwrites.MARK:
            head = struct.pack("<QQQQ", 0, 0, flags, len(payload)) + payload
            body += head.ljust(sectorsize, b"\0")
        else:
            nr_sectors = len(payload) // sectorsize if not flags & logwrites.DISCARD else payload
            body += struct.pack("<QQQQ", sector, nr_sectors, flags, 0).ljust(sectorsize, b"\0")
            if not flags & logwrites.DISCARD:
                body += payload
    superblock = struct.pack("<QQQI", logwrites.MAGIC, logwrites.VERSION, len(entries) if count is None else count,
                             sectorsize).ljust(sectorsize, b"\0")
    path.write_bytes(superblock + body)
    return path


def test_entries_marks_and_flush_points_are_read_as_the_kernel_lays_them_out(tmp_path):
    log = logwrites.read_log(_log(tmp_path / "log", [
        (0, logwrites.MARK, b"start"),
        (2, 0, b"a" * SECTOR * 2),
        (0, logwrites.FLUSH, b""),
        (5, logwrites.FUA | logwrites.METADATA, b"b" * SECTOR),
        (2, logwrites.DISCARD, 1),
        (0, logwrites.MARK, b"end"),
    ]))
    assert log.marks() == {"start": 0, "end": 5}
    assert [(e.sector, e.nr_sectors) for e in log.entries] == [(0, 0), (2, 2), (0, 0), (5, 1), (2, 1), (0, 0)]
    assert log.durable_points() == [2, 3]
    assert log.durable_points(3, 5) == [3]
    # Data follows its entry's sector; a discard and a mark carry none.
    assert log.entries[1].data_offset == 3 * SECTOR and log.entries[3].data_offset == 7 * SECTOR


def test_replay_rebuilds_the_disk_at_each_point_and_snapshots_are_independent(tmp_path):
    log = logwrites.read_log(_log(tmp_path / "log", [
        (1, 0, b"a" * SECTOR),
        (0, logwrites.FLUSH, b""),
        (1, 0, b"b" * SECTOR * 2),
        (1, logwrites.DISCARD, 1),
        (0, logwrites.FLUSH, b""),
    ]))
    image = logwrites.fresh_image(tmp_path / "disk", 4 * SECTOR)
    with logwrites.Replayer(log, image) as replay:
        replay.advance(1)
        first = replay.snapshot(tmp_path / "first").read_bytes()
        replay.advance(4)
        second = replay.snapshot(tmp_path / "second").read_bytes()
        with pytest.raises(ValueError):
            replay.advance(0)
    zero = bytes(SECTOR)
    assert first == zero + b"a" * SECTOR + zero * 2
    assert second == zero + zero + b"b" * SECTOR + zero
    assert (tmp_path / "first").read_bytes() == first  # the later replay left the copy alone


def test_a_device_without_a_log_or_a_log_cut_short_is_refused(tmp_path):
    (tmp_path / "zeros").write_bytes(bytes(4096))
    with pytest.raises(logwrites.LogError, match="no dm-log-writes log"):
        logwrites.read_log(tmp_path / "zeros")
    short = _log(tmp_path / "short", [(1, 0, b"a" * SECTOR)], count=2)
    with pytest.raises(logwrites.LogError, match="ends inside entry 1 of 2"):
        logwrites.read_log(short)
    torn = tmp_path / "torn"
    torn.write_bytes(_log(tmp_path / "whole", [(1, 0, b"a" * SECTOR * 4)]).read_bytes()[:-SECTOR])
    with pytest.raises(logwrites.LogError, match="inside the data of entry 0"):
        logwrites.read_log(torn)
