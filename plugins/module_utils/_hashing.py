# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hashing helpers shared by downloads, the cache and install manifests."""

from __future__ import annotations

import hashlib
import os

SUPPORTED_ALGORITHMS = ("sha256", "sha512")
HEX_LENGTH = {"sha256": 64, "sha512": 128}
CHUNK_SIZE = 1024 * 1024


def new_hash(algorithm: str):
    if algorithm not in SUPPORTED_ALGORITHMS:
        raise ValueError("unsupported checksum algorithm %r; use one of %s" % (algorithm, ", ".join(SUPPORTED_ALGORITHMS)))
    return hashlib.new(algorithm)


def file_digest(path: str, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in chunks so large tarballs never sit in memory."""
    digest = new_hash(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_SIZE), b""):
            digest.update(chunk)
    return digest.hexdigest()


def run_digest(path: str, digests=None) -> str:
    """sha256 of *path*, read once per run: *digests* maps real paths to what this run already hashed
    (a version's files checked against its manifest are the files `current`'s links resolve to)."""
    if digests is None:
        return file_digest(path)
    key = os.path.realpath(path)
    if key not in digests:
        digests[key] = file_digest(key)
    return digests[key]
