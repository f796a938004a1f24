"""Tests for release naming, version normalisation and the broken-release refusal."""

from __future__ import annotations

import pytest
import yaml

from ansible_collections.nodeprep.cni.plugins.module_utils import _release
from ansible_collections.nodeprep.cni.plugins.module_utils._release import (
    BROKEN_VERSIONS,
    DEFAULT_BASE_URL,
    asset_name,
    broken_table,
    normalize_version,
    refuse_broken,
    release_url,
)
from testbed_lib.in_process import CHECKSUM_DATA


@pytest.mark.parametrize("given, expected", [
    ("1.4.1", "1.4.1"),
    ("v1.4.1", "1.4.1"),
    (" v1.9.1 ", "1.9.1"),
    ("0.7.0", "0.7.0"),
    ("10.20.30", "10.20.30"),
])
def test_normalize_accepts_release_versions(given, expected):
    assert normalize_version(given) == expected


@pytest.mark.parametrize("bad", ["", None, "1.4", "1.4.1.2", "vv1.4.1", "1.4.x", "latest", "1.04.1", "1.4.1-rc1", "V 1.4.1"])
def test_normalize_rejects_malformed_naming_input_and_fix(bad):
    with pytest.raises(ValueError) as info:
        normalize_version(bad)
    message = str(info.value)
    assert repr(bad) in message
    assert "such as 1.4.1" in message


@pytest.mark.parametrize("old", ["0.6.0", "v0.6.9", "0.1.0"])
def test_normalize_rejects_versions_before_0_7_0(old):
    with pytest.raises(ValueError, match="before 0.7.0"):
        normalize_version(old)


def test_asset_name_and_url():
    assert asset_name("1.4.1", "linux", "amd64") == "cni-plugins-linux-amd64-v1.4.1.tgz"
    expected = DEFAULT_BASE_URL + "/v1.4.1/cni-plugins-linux-arm64-v1.4.1.tgz"
    assert release_url(DEFAULT_BASE_URL, "1.4.1", "linux", "arm64") == expected
    assert release_url(DEFAULT_BASE_URL + "/", "1.4.1", "linux", "arm64") == expected
    assert DEFAULT_BASE_URL == "https://github.com/containernetworking/plugins/releases/download"


@pytest.mark.parametrize("broken, replacement", sorted(BROKEN_VERSIONS.items()))
def test_refuse_broken_names_replacement(broken, replacement):
    with pytest.raises(ValueError) as info:
        refuse_broken(broken)
    assert str(info.value) == "CNI plugins %s is a known-broken release; use %s" % (broken, replacement)


def test_refuse_broken_passes_good_versions_and_custom_table():
    refuse_broken("1.6.2")
    refuse_broken("1.7.1")
    refuse_broken("1.6.1", broken={})
    with pytest.raises(ValueError, match="use 9.9.9"):
        refuse_broken("1.2.3", broken={"1.2.3": "9.9.9"})


def test_broken_versions_match_checksum_data():
    with open(CHECKSUM_DATA, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    assert BROKEN_VERSIONS == {str(k): str(v) for k, v in data["cni_plugins_broken_versions"].items()}
    assert _release.MINIMUM_VERSION == (0, 7, 0)


def test_broken_table_normalizes_both_sides_and_names_bad_entries():
    assert broken_table({"v1.6.1": "v1.6.2", "1.7.0": "1.7.1"}) == {"1.6.1": "1.6.2", "1.7.0": "1.7.1"}
    assert broken_table({}) == {} and broken_table(None) == {}
    with pytest.raises(ValueError, match="broken_versions entry '1.6.1': 'latest'"):
        broken_table({"1.6.1": "latest"})
