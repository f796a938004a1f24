"""Every kind of version string the collection reads, parsed by one module: odd input included."""

from __future__ import annotations

import pytest

from ansible_collections.nodeprep.cni.plugins.module_utils._versions import (
    Version,
    containerd_version,
    dir_version,
    installed_version,
    package_version,
    release_key,
    release_version,
    spec_version,
    version_key,
)


# releases ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("given, text", [
    ("1.4.1", "1.4.1"), ("v1.9.1", "1.9.1"), (" v1.9.1 ", "1.9.1"), ("1.9.1\n", "1.9.1"), ("0.7.0", "0.7.0"),
    ("10.20.30", "10.20.30"),
])
def test_release_versions_with_or_without_v_and_whitespace(given, text):
    found = release_version(given)
    assert found.text == str(found) == text and found == release_version(text)


@pytest.mark.parametrize("bad", ["", None, "1.4", "1.4.1.2", "vv1.4.1", "V1.4.1", "1.4.x", "latest", "1.04.1",
                                 "1.4.1-rc1", "v 1.4.1", "1.4.1\n2.0.0", "../1.4.1", "1.4.1/x"])
def test_release_junk_is_refused_naming_it(bad):
    with pytest.raises(ValueError) as info:
        release_version(bad)
    assert repr(bad) in str(info.value) and "such as 1.4.1" in str(info.value)


def test_releases_order_by_number_not_text():
    assert sorted(["1.10.0", "1.9.1", "1.2.10", "1.2.9"], key=release_version) == ["1.2.9", "1.2.10", "1.9.1", "1.10.0"]
    assert release_version("v1.10.0") > release_version("1.9.1")
    assert release_version("1.4.1").release == (1, 4, 1) and release_version("1.4.1").major == 1


@pytest.mark.parametrize("given, key", [("v1.4.1", "1.4.1"), ("V1.4.1", "1.4.1"), (" 1.4.1 ", "1.4.1"), ("9.0.0", "9.0.0")])
def test_checksum_tables_look_releases_up_without_v(given, key):
    assert release_key(given) == key


# installed versions (version directory names) ---------------------------------------------------

@pytest.mark.parametrize("entry, text", [
    ("v1.9.1", "1.9.1"), ("v1.1.1+ds1-3+b5", "1.1.1+ds1-3+b5"), ("v2.0.0-rc1", "2.0.0-rc1"), ("v1.4.0-1.1+epoch1", "1.4.0-1.1+epoch1"),
])
def test_version_dirs_name_their_version(entry, text):
    assert dir_version(entry).text == text


@pytest.mark.parametrize("entry", ["current", "previous", ".stage-v2.0.0-abc", ".adopted", "1.9.1", "v1.9", "v1.9.1/",
                                   "v1.9.1 ", "v1.9.1\n", "v1.9.1-", "v1.9.1~rc1", "v..", "v1.9.1/../x", ""])
def test_other_entries_are_no_version_dirs(entry):
    assert dir_version(entry) is None


def test_installed_names_order_numerically_with_suffixes_before_their_release():
    assert version_key("1.10.0") > version_key("1.9.1")
    assert version_key("2.0.0-rc1") < version_key("2.0.0")
    assert sorted(["1.2.10", "1.2.9", "1.10.0"], key=version_key) == ["1.2.9", "1.2.10", "1.10.0"]
    # A package's build of 1.1.1 sorts between 1.1.0 and 1.2.0.
    assert version_key("1.1.0") < version_key("1.1.1+ds1-3+b5") < version_key("1.2.0")
    # What is no name at all sorts first instead of failing the sort.
    assert sorted(["1.0.0", "junk"], key=version_key) == ["junk", "1.0.0"]


@pytest.mark.parametrize("given, text", [("1.9.1", "1.9.1"), ("v1.9.1", "1.9.1"), (" v1.1.1+ds1-3+b5\n", "1.1.1+ds1-3+b5")])
def test_installed_version_given_by_a_user(given, text):
    assert installed_version(given).text == text


@pytest.mark.parametrize("given", ["1.2", "v1.2", "../v1.2.3", "1.2.3/x", "", None, "vv1.2.3", "1.2.3-" + "x" * 120])
def test_installed_version_refuses_what_is_no_version_dir(given):
    with pytest.raises(ValueError, match="not an installed version's name"):
        installed_version(given)


# package versions -----------------------------------------------------------------------------

@pytest.mark.parametrize("given, label", [
    ("1.1.1+ds1-3+b5", "1.1.1+ds1-3+b5"),          # Debian bookworm's containernetworking-plugins
    ("1.9.1+ds1-1", "1.9.1+ds1-1"),                # sid
    ("1.4.0-1.1", "1.4.0-1.1"),                    # kubernetes-cni from pkgs.k8s.io
    ("0.8.7-00", "0.8.7-00"),                      # kubernetes-cni from the old apt.kubernetes.io
    ("1:1.4.0-1.1", "1.4.0-1.1+epoch1"),           # an epoch: ':' separates CNI_PATH entries
    ("0:1.4.0-1", "1.4.0-1"),                      # epoch 0 is no epoch
    ("1.2.0~rc1-1", "1.2.0-rc1-1"),                # Debian's '~' (sorts before)
    ("1.1.1-3.el9", "1.1.1-3.el9"),                # rpm version-release
    ("1.3.0", "1.3.0"),
    ("1.1.1+ds1-3+b5\n", "1.1.1+ds1-3+b5"),        # as dpkg-query's output ends
])
def test_package_versions_map_to_safe_names(given, label):
    found = package_version(given)
    assert found.text == label
    assert ":" not in found.text and "/" not in found.text and "~" not in found.text
    # The name reads back as an installed version, from its directory and as a user gives it.
    assert dir_version("v" + found.text) == found == installed_version(found.text)


@pytest.mark.parametrize("given", [
    "", None, "1.1", "1.1+ds1-1", "a1.2.3", "1.2.3/../../etc", "1.2.3 x", "1:2:1.2.3", "1.2.3-" + "x" * 120, "1.2.3$(id)",
    "v1.2.3",
])
def test_package_versions_without_a_safe_name_are_refused_naming_the_fix(given):
    with pytest.raises(ValueError, match="pass version to name it yourself"):
        package_version(given)


# containerd -----------------------------------------------------------------------------------

@pytest.mark.parametrize("output, release, text", [
    ("containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3", (1, 6, 20), "1.6.20~ds1"),
    ("containerd github.com/containerd/containerd 1.7.24~ds1 1.7.24~ds1-6+deb13u1\n", (1, 7, 24), "1.7.24~ds1"),
    ("containerd github.com/containerd/containerd/v2 2.1.9+unknown", (2, 1, 9), "2.1.9+unknown"),
    ("containerd github.com/containerd/containerd/v2 2.3.7 \n", (2, 3, 7), "2.3.7"),
    ("containerd github.com/containerd/containerd/v2 v2.3.0-rc.1 0a1b2c3d", (2, 3, 0), "v2.3.0-rc.1"),
    ("containerd containerd.io v1.7.24 88bf19b2", (1, 7, 24), "v1.7.24"),
    # A warning printed first is not the version line.
    ("WARN[0000] deprecated option in config\ncontainerd github.com/containerd/containerd v1.7.24 88bf19b2", (1, 7, 24), "v1.7.24"),
    ("2.1", (2, 1, 0), "2.1"),
    ("v2.0.4", (2, 0, 4), "v2.0.4"),
    (" 1.7\n", (1, 7, 0), "1.7"),
])
def test_containerd_versions_from_its_output_or_a_user(output, release, text):
    found = containerd_version(output)
    assert found.release == release and found.text == text


@pytest.mark.parametrize("junk", ["", None, "containerd: command not found", "1", "v", "1.7junk", "2.3.4.5", "1.x", "latest",
                                  "containerd github.com/containerd/containerd/v2 unknown"])
def test_containerd_junk_is_no_version(junk):
    assert containerd_version(junk) is None


def test_containerd_pre_release_decides_like_its_release_and_sorts_before_it():
    rc, final = containerd_version("v2.3.0-rc.1"), containerd_version("2.3.0")
    assert rc.release == final.release == (2, 3, 0)
    assert rc < final


# CNI spec versions ------------------------------------------------------------------------------

@pytest.mark.parametrize("given, release", [("1.1.0", (1, 1, 0)), ("0.3.1", (0, 3, 1)), ("1.0", (1, 0, 0)), ("2", (2, 0, 0))])
def test_spec_versions_read_as_libcni_does(given, release):
    assert spec_version(given).release == release


@pytest.mark.parametrize("junk", ["", "1.1.0-rc1", "1.1.0.0", "v1.1.0", "1.1.0\n", None, 1.1, ["1.1.0"]])
def test_spec_version_junk_is_none(junk):
    assert spec_version(junk) is None


def test_version_is_hashable_and_never_equal_to_a_string():
    assert len({release_version("1.9.1"), release_version("v1.9.1")}) == 1
    assert release_version("1.9.1") != "1.9.1"
    assert isinstance(release_version("1.9.1"), Version) and repr(release_version("1.9.1")) == "Version('1.9.1')"
