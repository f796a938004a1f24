"""Reads what the kernel's ``dm-log-writes`` target recorded and replays it: every state a power cut
could have left on the disk.

The target passes writes through to a data device and appends each one, once it is on stable
storage in the order the device acknowledged it, to a log device. A flush or FUA write is the only
point at which the kernel promises anything reached the disk, so the disk's content after each of
them is one state a power cut may leave (the method of xfstests' generic/482 and CrashMonkey).

The log, as Documentation/admin-guide/device-mapper/log-writes.rst describes it (all numbers
little-endian; "sector" is the data device's logical block size, given in the super block)::

    sector 0      super block: magic u64, version u64, nr_entries u64, sectorsize u32
    sector 1...   entries, one after the other:
                    one sector: sector u64, nr_sectors u64, flags u64, data_len u64
                                (a mark's name follows in the same sector, data_len bytes)
                    nr_sectors sectors of the written data (none for a discard or a mark)

Replay works on plain image files on the host: it needs no device-mapper (the host kernel here has
none), only the log and a copy of the data device as it was when logging started.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MAGIC = 0x6A736677736872
VERSION = 1
FLUSH, FUA, DISCARD, MARK, METADATA = 1 << 0, 1 << 1, 1 << 2, 1 << 3, 1 << 4
_SUPER = struct.Struct("<QQQI")
_ENTRY = struct.Struct("<QQQQ")


class LogError(ValueError):
    """The log device holds no log of dm-log-writes, or one cut short."""


@dataclass(frozen=True)
class Entry:
    index: int
    sector: int  # where the write went on the data device, in the log's sectors
    nr_sectors: int
    flags: int
    data_offset: int  # where its data is in the log file (bytes)
    mark: str | None = None

    @property
    def durable(self) -> bool:
        """A flush or FUA: everything logged up to here is on the disk."""
        return bool(self.flags & (FLUSH | FUA))


@dataclass(frozen=True)
class Log:
    path: Path
    sectorsize: int
    entries: tuple[Entry, ...]

    def marks(self) -> dict[str, int]:
        """Each mark's name and the index of its entry."""
        return {entry.mark: entry.index for entry in self.entries if entry.mark is not None}

    def durable_points(self, start: int = 0, end: int | None = None) -> list[int]:
        """Indexes of the flush and FUA entries in ``[start, end)``: each ends one crash state."""
        stop = len(self.entries) if end is None else end
        return [entry.index for entry in self.entries[start:stop] if entry.durable]


def read_log(path: str | Path) -> Log:
    """Parses the log device (a raw image file) into its entries; the data stays in the file."""
    path = Path(path)
    with open(path, "rb") as log:
        head = log.read(_SUPER.size)
        if len(head) < _SUPER.size:
            raise LogError("%s is too short for a dm-log-writes super block" % path)
        magic, version, count, sectorsize = _SUPER.unpack(head)
        if magic != MAGIC or version != VERSION:
            raise LogError("%s holds no dm-log-writes log (magic %#x, version %d)" % (path, magic, version))
        if sectorsize < _ENTRY.size or sectorsize & (sectorsize - 1):
            raise LogError("%s: implausible sector size %d" % (path, sectorsize))
        size = path.stat().st_size
        entries = []
        offset = sectorsize  # the super block takes the first sector
        for index in range(count):
            log.seek(offset)
            raw = log.read(sectorsize)
            if len(raw) < sectorsize:
                raise LogError("%s ends inside entry %d of %d" % (path, index, count))
            sector, nr_sectors, flags, data_len = _ENTRY.unpack_from(raw)
            mark = None
            if flags & MARK:
                mark = raw[_ENTRY.size:_ENTRY.size + data_len].decode("utf-8", "replace")
            offset += sectorsize
            data_offset = offset
            if not flags & (DISCARD | MARK):
                offset += nr_sectors * sectorsize
            if offset > size:
                raise LogError("%s ends inside the data of entry %d" % (path, index))
            entries.append(Entry(index, sector, nr_sectors, flags, data_offset, mark))
    return Log(path, sectorsize, tuple(entries))


class Replayer:
    """Applies a log's entries, in order, to an image file that starts as the data device did.

    ``advance(index)`` applies every entry up to and including ``index``; ``snapshot(dest)``
    copies the image as it is now.
    """

    CHUNK = 1 << 20

    def __init__(self, log: Log, image: str | Path):
        self.log = log
        self.image = Path(image)
        self.applied = 0  # entries applied so far
        self._log_file: BinaryIO = open(log.path, "rb")
        self._image_file: BinaryIO = open(self.image, "r+b")

    def __enter__(self) -> "Replayer":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._log_file.close()
        self._image_file.close()

    def advance(self, index: int) -> None:
        if index < self.applied - 1:
            raise ValueError("entry %d is already applied (at %d)" % (index, self.applied))
        for entry in self.log.entries[self.applied:index + 1]:
            self._apply(entry)
        self.applied = max(self.applied, index + 1)
        self._image_file.flush()

    def _apply(self, entry: Entry) -> None:
        size = self.log.sectorsize
        if entry.flags & MARK or not entry.nr_sectors:
            return
        self._image_file.seek(entry.sector * size)
        remaining = entry.nr_sectors * size
        if entry.flags & DISCARD:
            # What a discarded range reads back as is undefined; zeros are one thing it may be.
            zeros = bytes(min(remaining, self.CHUNK))
            while remaining:
                self._image_file.write(zeros[:min(remaining, len(zeros))])
                remaining -= min(remaining, len(zeros))
            return
        self._log_file.seek(entry.data_offset)
        while remaining:
            chunk = self._log_file.read(min(remaining, self.CHUNK))
            if not chunk:
                raise LogError("%s: the data of entry %d is cut short" % (self.log.path, entry.index))
            self._image_file.write(chunk)
            remaining -= len(chunk)

    def snapshot(self, dest: str | Path) -> Path:
        """A copy of the image as the entries applied so far left it (sparse where it is)."""
        self._image_file.flush()
        dest = Path(dest)
        try:
            dest.unlink()
        except FileNotFoundError:
            pass
        with open(self.image, "rb") as source, open(dest, "wb") as target:
            _sparse_copy(source, target)
        return dest


def _sparse_copy(source: BinaryIO, target: BinaryIO, block: int = 1 << 16) -> None:
    """Copies ``source`` into ``target``, leaving holes where whole blocks are zero."""
    zero = bytes(block)
    size = 0
    while True:
        chunk = source.read(block)
        if not chunk:
            break
        size += len(chunk)
        if chunk == zero[:len(chunk)]:
            target.seek(len(chunk), 1)
        else:
            target.write(chunk)
    target.truncate(size)


def fresh_image(path: str | Path, size: int) -> Path:
    """An all-zero image file of ``size`` bytes, as a new virtual disk starts (sparse)."""
    path = Path(path)
    with open(path, "wb") as image:
        image.truncate(size)
    return path
