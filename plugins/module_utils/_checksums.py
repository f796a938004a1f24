# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checksum specs, release checksum files and the pinned/user checksum tables."""

from __future__ import annotations

import re

from ansible_collections.nodeprep.cni.plugins.module_utils._hashing import HEX_LENGTH, SUPPORTED_ALGORITHMS
from ansible_collections.nodeprep.cni.plugins.module_utils._pinned_checksums import PINNED_SHA256
from ansible_collections.nodeprep.cni.plugins.module_utils._versions import release_key

_HEX = re.compile(r"^[0-9a-fA-F]+$")
_LENGTH_TO_ALGORITHM = dict((length, algorithm) for algorithm, length in HEX_LENGTH.items())


def _check_hex(algorithm: str, digest: str, what: str) -> str:
    if not _HEX.match(digest):
        raise ValueError("%s: %r is not a hex digest; give %s:<%d hex characters>" % (what, digest, algorithm, HEX_LENGTH[algorithm]))
    if len(digest) != HEX_LENGTH[algorithm]:
        raise ValueError(
            "%s: a %s digest has %d hex characters, got %d; check that the value was copied whole"
            % (what, algorithm, HEX_LENGTH[algorithm], len(digest))
        )
    return digest.lower()


def parse_checksum_spec(spec, what: str = "checksum") -> tuple:
    """``"sha256:<hex>"`` or ``"sha512:<hex>"`` -> (algorithm, lowercase hex); ValueError otherwise."""
    text = str(spec if spec is not None else "").strip()
    algorithm, separator, digest = text.partition(":")
    algorithm = algorithm.strip().lower()
    if not separator:
        raise ValueError("%s %r has no algorithm; write it as sha256:<hex> or sha512:<hex>" % (what, text))
    if algorithm not in SUPPORTED_ALGORITHMS:
        raise ValueError("%s %r uses unknown algorithm %r; use one of %s" % (what, text, algorithm, ", ".join(SUPPORTED_ALGORITHMS)))
    return algorithm, _check_hex(algorithm, digest.strip(), what)


def _parse_table_value(value, what: str) -> tuple:
    """One user table value (hex, "algo:hex") -> (algorithm, hex); bare hex is sha256 or sha512 by length."""
    text = str(value).strip()
    if ":" in text:
        return parse_checksum_spec(text, what)
    algorithm = _LENGTH_TO_ALGORITHM.get(len(text))
    if algorithm is None:
        raise ValueError(
            "%s: %r is neither a sha256 (64 hex) nor a sha512 (128 hex) digest; write sha256:<hex> or sha512:<hex>" % (what, text)
        )
    return algorithm, _check_hex(algorithm, text, what)


def _parse_table_entry(values, what: str) -> tuple:
    """A user table entry (one value or a list) -> (algorithm, [hex, ...]) with one algorithm."""
    items = values if isinstance(values, (list, tuple)) else [values]
    if not items:
        raise ValueError("%s: empty checksum list; give at least one sha256:<hex> or sha512:<hex>" % what)
    parsed = [_parse_table_value(item, what) for item in items]
    algorithms = set(algorithm for algorithm, dummy in parsed)
    if len(algorithms) != 1:
        raise ValueError("%s: mixes %s digests; list values of one algorithm only" % (what, " and ".join(sorted(algorithms))))
    return parsed[0][0], [digest for dummy, digest in parsed]


def normalize_user_table(table) -> dict:
    """Validate a user table ``{arch: {version: value | [values]}}`` -> ``{arch: {version: (algo, [hex])}}``."""
    if not table:
        return {}
    if not isinstance(table, dict):
        raise ValueError("checksums must be a mapping {arch: {version: checksum}}, got %s" % type(table).__name__)
    normalized = {}
    for arch, versions in table.items():
        if not isinstance(versions, dict):
            raise ValueError("checksums[%r] must be a mapping {version: checksum}, got %s" % (arch, type(versions).__name__))
        for version, values in versions.items():
            what = "checksums[%r][%r]" % (arch, version)
            normalized.setdefault(str(arch), {})[release_key(version)] = _parse_table_entry(values, what)
    return normalized


def expected_digests(version: str, arch: str, user_table=None):
    """(algorithm, [hex, ...]) that verify *version*/*arch*, or None when neither table knows it.

    A user entry for an arch/version replaces the pinned one (e.g. a locally built release).
    """
    user_entry = normalize_user_table(user_table).get(arch, {}).get(release_key(version))
    if user_entry is not None:
        return user_entry
    pinned = PINNED_SHA256.get(arch, {}).get(release_key(version))
    if pinned:
        return "sha256", list(pinned)
    return None


def parse_checksum_file(text: str, filename: str, algorithm=None) -> str:
    """Digest for *filename* from a ``sha256sum``-style file: ``<hex>  <name>`` or ``<hex> *<name>``.

    A file holding a single bare digest is accepted too. Names match on their basename.
    """
    wanted = filename.rsplit("/", 1)[-1]
    lines = [line.strip() for line in (text or "").splitlines() if line.strip() and not line.strip().startswith("#")]
    if len(lines) == 1 and len(lines[0].split()) == 1:
        return _checked_file_digest(lines[0], filename, algorithm)
    for line in lines:
        parts = line.split(None, 1)
        if len(parts) != 2:
            continue
        name = parts[1].strip().lstrip("*").rsplit("/", 1)[-1]
        if name == wanted:
            return _checked_file_digest(parts[0], filename, algorithm)
    raise ValueError("the checksum file has no entry for %s" % wanted)


def _checked_file_digest(digest: str, filename: str, algorithm) -> str:
    what = "checksum file entry for %s" % filename.rsplit("/", 1)[-1]
    if algorithm is not None:
        return _check_hex(algorithm, digest, what)
    inferred = _LENGTH_TO_ALGORITHM.get(len(digest))
    if inferred is None or not _HEX.match(digest):
        raise ValueError("%s: %r is not a sha256 or sha512 hex digest" % (what, digest))
    return digest.lower()
