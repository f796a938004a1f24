"""The install manifest: built from real files, verified against them after changes."""

from __future__ import annotations

import json
import os


from ansible_collections.nodeprep.cni.plugins.module_utils._manifest import (
    MANIFEST_NAME,
    build_manifest,
    is_plugin_name,
    plugin_names,
    read_manifest,
    verify_version_dir,
    write_manifest,
)
from testbed_lib.in_process import script_plugin, sha256_bytes

FILES = {
    "bridge": (script_plugin("bridge"), 0o755),
    "host-local": (script_plugin("host-local"), 0o755),
    "LICENSE": (b"license\n", 0o644),
    "README.md": (b"readme\n", 0o644),
}


def _version_dir(tmp_path):
    version_dir = tmp_path / "versions" / "v1.2.3"
    version_dir.mkdir(parents=True)
    for name, (data, mode) in FILES.items():
        (version_dir / name).write_bytes(data)
        os.chmod(version_dir / name, mode)
    manifest = build_manifest(str(version_dir), "1.2.3", list(FILES), "https://example.invalid/r.tgz", "ab" * 32)
    write_manifest(str(version_dir), manifest)
    return version_dir, manifest


def test_build_manifest_records_real_hashes_modes_and_plugin_flags(tmp_path):
    version_dir, manifest = _version_dir(tmp_path)
    assert manifest["version"] == "1.2.3"
    assert manifest["source_url"] == "https://example.invalid/r.tgz"
    assert manifest["tarball_sha256"] == "ab" * 32
    assert set(manifest["files"]) == set(FILES)
    for name, (data, mode) in FILES.items():
        entry = manifest["files"][name]
        assert entry["sha256"] == sha256_bytes(data)
        assert entry["mode"] == "%04o" % mode
    assert manifest["files"]["bridge"]["plugin"] is True
    assert manifest["files"]["LICENSE"]["plugin"] is False
    assert manifest["files"]["README.md"]["plugin"] is False
    assert plugin_names(manifest) == ["bridge", "host-local"]


def test_written_manifest_reads_back(tmp_path):
    version_dir, manifest = _version_dir(tmp_path)
    with open(version_dir / MANIFEST_NAME, "rb") as handle:
        assert json.loads(handle.read().decode("utf-8")) == manifest
    assert read_manifest(str(version_dir)) == manifest


def test_intact_version_dir(tmp_path):
    version_dir, manifest = _version_dir(tmp_path)
    verdict = verify_version_dir(str(version_dir))
    assert verdict["intact"] is True
    assert verdict["missing"] == [] and verdict["drifted"] == []
    assert verdict["manifest"] == manifest


def test_missing_file_is_reported(tmp_path):
    version_dir = _version_dir(tmp_path)[0]
    os.unlink(version_dir / "host-local")
    verdict = verify_version_dir(str(version_dir))
    assert verdict["intact"] is False
    assert verdict["missing"] == ["host-local"]
    assert verdict["drifted"] == []


def test_file_overwritten_through_a_symlink_is_drifted(tmp_path):
    # An add-on's installer writes /opt/cni/bin/bridge, which is our link into the version dir.
    version_dir = _version_dir(tmp_path)[0]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink(str(version_dir / "bridge"), str(bin_dir / "bridge"))
    with open(bin_dir / "bridge", "wb") as handle:
        handle.write(b"#!/bin/sh\necho calico's copy\n")

    verdict = verify_version_dir(str(version_dir))
    assert verdict["intact"] is False
    assert verdict["drifted"] == ["bridge"]
    assert verdict["missing"] == []


def test_file_replaced_by_a_symlink_is_drifted_even_with_same_bytes(tmp_path):
    version_dir = _version_dir(tmp_path)[0]
    copy = tmp_path / "copy"
    copy.write_bytes(FILES["bridge"][0])
    os.unlink(version_dir / "bridge")
    os.symlink(str(copy), str(version_dir / "bridge"))
    assert verify_version_dir(str(version_dir))["drifted"] == ["bridge"]


def test_dir_without_manifest_is_never_intact(tmp_path):
    version_dir = _version_dir(tmp_path)[0]
    os.unlink(version_dir / MANIFEST_NAME)
    verdict = verify_version_dir(str(version_dir))
    assert verdict["manifest"] is None
    assert verdict["intact"] is False


def test_corrupt_manifest_reads_as_none(tmp_path):
    version_dir = _version_dir(tmp_path)[0]
    (version_dir / MANIFEST_NAME).write_bytes(b"{not json")
    assert read_manifest(str(version_dir)) is None
    (version_dir / MANIFEST_NAME).write_bytes(b'{"files": []}')
    assert read_manifest(str(version_dir)) is None
    assert verify_version_dir(str(version_dir))["intact"] is False


def test_is_plugin_name():
    assert is_plugin_name("bridge")
    assert not is_plugin_name("LICENSE")
    assert not is_plugin_name("README.md")
    assert not is_plugin_name(MANIFEST_NAME)


def test_lost_exec_bit_is_drifted(tmp_path):
    version_dir = _version_dir(tmp_path)[0]
    os.chmod(version_dir / "bridge", 0o644)
    assert verify_version_dir(str(version_dir))["drifted"] == ["bridge"]
