"""Tests for checksum specs, checksum files, the pinned table and its generator."""

from __future__ import annotations

import hashlib
import importlib.util
import os

import pytest

from ansible_collections.nodeprep.cni.plugins.module_utils import _pinned_checksums
from ansible_collections.nodeprep.cni.plugins.module_utils._checksums import (
    expected_digests,
    normalize_user_table,
    parse_checksum_file,
    parse_checksum_spec,
)
from ansible_collections.nodeprep.cni.plugins.module_utils._pinned_checksums import PINNED_SHA256
from testbed_lib.in_process import CHECKSUM_DATA

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
GENERATOR = os.path.join(REPO_ROOT, "tools", "gen_pinned_checksums.py")

SHA256 = hashlib.sha256(b"x").hexdigest()
SHA512 = hashlib.sha512(b"x").hexdigest()
ASSET = "cni-plugins-linux-amd64-v1.4.1.tgz"
AMD64_141_NEW = "2a0ea7072d1806b8526489bcd3b4847a06ab010ee32ba3c3d4e5a3235d3eb138"
AMD64_141_OLD = "1511f6c003ace805eafeb1132727791326283cff88a923d76329e1892bba7a10"


@pytest.fixture(scope="module")
def generator():
    spec = importlib.util.spec_from_file_location("gen_pinned_checksums", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- parse_checksum_spec ------------------------------------------------------------------------

def test_spec_sha256_and_sha512_lowercased():
    assert parse_checksum_spec("sha256:" + SHA256.upper()) == ("sha256", SHA256)
    assert parse_checksum_spec(" SHA512:%s " % SHA512) == ("sha512", SHA512)


@pytest.mark.parametrize("bad, fragment", [
    (SHA256, "no algorithm"),
    ("md5:" + "a" * 32, "unknown algorithm 'md5'"),
    ("sha256:" + SHA256[:-1], "has 64 hex characters, got 63"),
    ("sha512:" + SHA256, "has 128 hex characters, got 64"),
    ("sha256:" + "g" * 64, "not a hex digest"),
    ("sha256:", "not a hex digest"),
    ("", "no algorithm"),
])
def test_spec_rejects_with_clear_message(bad, fragment):
    with pytest.raises(ValueError) as info:
        parse_checksum_spec(bad)
    assert fragment in str(info.value)


# -- parse_checksum_file ------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "%s  %s\n" % (SHA256, ASSET),
    "%s *%s\n" % (SHA256, ASSET),
    "%s  ./dist/%s\n" % (SHA256.upper(), ASSET),
    "%s\n" % SHA256,
    "%s  other.tgz\n%s  %s\n" % ("0" * 64, SHA256, ASSET),
    "# comment\n\n%s  %s\r\n" % (SHA256, ASSET),
])
def test_checksum_file_formats(text):
    assert parse_checksum_file(text, ASSET) == SHA256


def test_checksum_file_missing_entry_names_file():
    with pytest.raises(ValueError, match=ASSET):
        parse_checksum_file("%s  cni-plugins-linux-arm64-v1.4.1.tgz\n%s  x\n" % (SHA256, SHA256), ASSET)


def test_checksum_file_checks_length_for_algorithm():
    assert parse_checksum_file("%s  %s" % (SHA512, ASSET), ASSET, "sha512") == SHA512
    with pytest.raises(ValueError, match="128 hex"):
        parse_checksum_file("%s  %s" % (SHA256, ASSET), ASSET, "sha512")
    with pytest.raises(ValueError, match="not a sha256 or sha512"):
        parse_checksum_file("<html>nope</html>", ASSET)


# -- tables -------------------------------------------------------------------------------------

def test_pinned_141_accepts_both_genuine_values():
    assert expected_digests("1.4.1", "amd64") == ("sha256", [AMD64_141_NEW, AMD64_141_OLD])
    assert len(expected_digests("v1.4.1", "arm64")[1]) == 2
    assert len(expected_digests("1.4.1", "arm")[1]) == 1


def test_pinned_skips_unsupported_and_unknown():
    for arch in PINNED_SHA256:
        assert "0.6.0" not in PINNED_SHA256[arch]
    assert expected_digests("0.6.0", "amd64") is None
    assert expected_digests("9.0.0", "amd64") is None
    assert expected_digests("1.4.1", "riscv64") is None


def test_user_table_overrides_pinned_entry():
    table = {"amd64": {"1.4.1": "sha256:" + SHA256}}
    assert expected_digests("1.4.1", "amd64", table) == ("sha256", [SHA256])
    # other entries still come from the pinned table
    assert expected_digests("1.4.1", "arm64", table)[1][0].startswith("56fe62d7")


def test_user_table_extends_with_new_versions_and_forms():
    table = {"amd64": {"v9.0.0": SHA512, "9.0.1": [SHA256, "sha256:" + "1" * 64]}, "riscv64": {"1.9.1": "sha512:" + SHA512}}
    assert expected_digests("9.0.0", "amd64", table) == ("sha512", [SHA512])
    assert expected_digests("9.0.1", "amd64", table) == ("sha256", [SHA256, "1" * 64])
    assert expected_digests("1.9.1", "riscv64", table) == ("sha512", [SHA512])


@pytest.mark.parametrize("table, fragment", [
    ({"amd64": {"9.0.0": [SHA256, SHA512]}}, "mixes"),
    ({"amd64": {"9.0.0": "abc"}}, "neither a sha256"),
    ({"amd64": {"9.0.0": []}}, "empty checksum list"),
    ({"amd64": "sha256:" + SHA256}, "must be a mapping"),
    (["x"], "must be a mapping"),
])
def test_user_table_errors_name_the_entry(table, fragment):
    with pytest.raises(ValueError) as info:
        normalize_user_table(table)
    assert fragment in str(info.value)


# -- generator ----------------------------------------------------------------------------------

def test_committed_pinned_module_matches_checksum_data(generator):
    with open(CHECKSUM_DATA, encoding="utf-8") as handle:
        regenerated = generator.render(handle.read())
    with open(_pinned_checksums.__file__, encoding="utf-8") as handle:
        committed = handle.read()
    assert regenerated == committed, "run tools/gen_pinned_checksums.py"


def test_generator_reads_older_value_comments_and_skips_old_versions(generator):
    text = (
        "cni_plugins_checksums:\n"
        "  amd64:\n"
        '    "1.4.1": "%s"  # re-uploaded; older value %s (mirror)\n'
        '    "0.8.1": "%s"  # stale 0.6.0 hash %s...; not a real change\n'
        '    "0.6.0": "%s"\n'
        "other_section:\n"
        "  amd64:\n"
        '    "1.0.0": "x"  # older value %s\n'
    ) % ("a" * 64, "b" * 64, "c" * 64, "d" * 12, "e" * 64, "f" * 64)
    table = generator.build_table(text)
    assert table == {"amd64": {"1.4.1": ["a" * 64, "b" * 64], "0.8.1": ["c" * 64]}}
    source = generator.render(text)
    namespace = {}
    exec(compile(source, "generated", "exec"), namespace)  # pylint: disable=exec-used
    assert namespace["PINNED_SHA256"] == {"amd64": {"1.4.1": ("a" * 64, "b" * 64), "0.8.1": ("c" * 64,)}}
    assert max(len(line) for line in source.splitlines()) < 160


def test_generator_check_mode_detects_stale_output(generator, tmp_path):
    output = tmp_path / "_pinned.py"
    assert generator.main(["--source", CHECKSUM_DATA, "--output", str(output), "--check"]) == 1
    assert generator.main(["--source", CHECKSUM_DATA, "--output", str(output)]) == 0
    assert generator.main(["--source", CHECKSUM_DATA, "--output", str(output), "--check"]) == 0
    assert output.read_text() == open(_pinned_checksums.__file__, encoding="utf-8").read()
