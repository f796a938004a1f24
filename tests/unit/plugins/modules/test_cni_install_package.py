"""cni_install with a package's plugin directory as its source: the host's real Debian package
(containernetworking-plugins, read only) and its real binaries, which the probe runs."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from ansible_collections.nodeprep.cni.plugins.module_utils._manifest import MANIFEST_NAME
from ansible_collections.nodeprep.cni.plugins.module_utils import _versions
from ansible_collections.nodeprep.cni.plugins.modules import cni_info, cni_install
from testbed_lib.in_process import REAL_PLUGIN_DIR, VERSION_A as A, run_module_in_process, sha256_file
from testbed_lib.tree import snapshot

PACKAGE = "containernetworking-plugins"


@pytest.fixture(scope="module")
def package_version():
    done = subprocess.run(["dpkg-query", "-W", "-f=${Version}", PACKAGE], capture_output=True, text=True, check=False)
    if done.returncode != 0 or not os.path.isdir(REAL_PLUGIN_DIR):
        pytest.fail("Debian's %s is not installed on this host: run tools/bootstrap" % PACKAGE)
    return done.stdout.strip()


def install(node, check_mode=False, diff=False, **extra):
    extra.setdefault("src_dir", REAL_PLUGIN_DIR)
    args = node.args(package=PACKAGE, **extra)
    return run_module_in_process(cni_install, args, check_mode=check_mode, diff=diff)


def ok(result):
    assert result["rc"] == 0 and not result.get("failed"), result.get("msg")
    return result


def refused(result, *words):
    assert result["rc"] == 1 and result.get("failed") is True, result
    for word in words:
        assert word in result["msg"], result["msg"]
    return result


def test_package_install_copies_the_plugin_dir_under_the_package_version(node, package_version):
    label = _versions.package_version(package_version).text
    before = snapshot(node.root)
    checked = ok(install(node, check_mode=True, diff=True))
    assert checked["changed"] and checked["version"] == label
    assert snapshot(node.root) == before, "check mode wrote"

    result = ok(install(node, diff=True))
    assert result["changed"] and result["installed"] and result["version"] == label
    assert result["package"] == {"name": PACKAGE, "version": package_version, "manager": "dpkg"}
    version_dir = node.version_dir(label)
    assert os.readlink(os.path.join(node.versions_dir, "current")) == "v" + label
    names = sorted(os.listdir(REAL_PLUGIN_DIR))
    for name in names:
        assert sha256_file(os.path.join(version_dir, name)) == sha256_file(os.path.join(REAL_PLUGIN_DIR, name)), name
        for directory in node.link_dirs:
            assert os.path.realpath(os.path.join(directory, name)) == os.path.join(version_dir, name)
    with open(os.path.join(version_dir, MANIFEST_NAME)) as handle:
        manifest = json.load(handle)
    assert sorted(manifest["files"]) == names
    assert manifest["source"] == {"type": "package", "package": PACKAGE, "package_version": package_version,
                                  "manager": "dpkg", "dir": REAL_PLUGIN_DIR}
    assert manifest["tarball_sha256"] is None

    info = ok(run_module_in_process(cni_info, node.info_args()))
    assert info["current"] == label and info["current_source"]["package_version"] == package_version

    settled = snapshot(node.root)
    again = ok(install(node))
    assert not again["changed"] and not again["installed"] and again["actions"] == []
    assert snapshot(node.root) == settled


def test_package_version_then_a_release_then_rollback_to_the_package(node, releases, package_version):
    label = _versions.package_version(package_version).text
    ok(install(node))
    upgraded = ok(run_module_in_process(cni_install, node.args(src=releases[A].path, version=A)))
    assert upgraded["version"] == A and upgraded["previous"] == label
    back = ok(run_module_in_process(cni_install, node.args(state="rollback")))
    assert back["version"] == label and back["previous"] == A
    assert os.path.realpath(os.path.join(node.bin_dir, "bridge")) == os.path.join(node.version_dir(label), "bridge")
    named = ok(run_module_in_process(cni_install, node.args(state="rollback", version="v" + A)))
    assert named["version"] == A


def test_a_missing_package_is_reported_or_refused_and_nothing_is_written(node):
    before = snapshot(node.root)
    reported = ok(run_module_in_process(cni_install, node.args(package="no-such-cni-package", src_dir=REAL_PLUGIN_DIR, on_missing_src="report")))
    assert reported["src_needed"] and not reported["changed"]
    assert "package no-such-cni-package is not installed" in reported["reason"]
    refused(run_module_in_process(cni_install, node.args(package="no-such-cni-package", src_dir=REAL_PLUGIN_DIR)),
            "package no-such-cni-package is not installed", "install it first")
    assert snapshot(node.root) == before


def test_package_dir_equal_to_bin_dir_is_refused_naming_the_fix(node, package_version):
    os.makedirs(node.bin_dir)
    before = snapshot(node.root)
    refused(install(node, src_dir=node.bin_dir), "package_dir %s is also bin_dir" % node.bin_dir,
            "set bin_dir to another directory")
    assert snapshot(node.root) == before


def test_an_empty_or_unsafe_package_dir_is_refused_and_nothing_is_written(node, tmp_path, package_version):
    empty = tmp_path / "empty"
    empty.mkdir()
    before = snapshot(node.root)
    refused(install(node, src_dir=str(empty)), "package_dir %s is empty" % empty, "set package_dir")
    (empty / "bridge").write_bytes(b"\x7fELF")
    os.chmod(empty / "bridge", 0o4755)
    refused(install(node, src_dir=str(empty)), "setuid")
    assert snapshot(node.root) == before


def test_an_explicit_version_names_the_install_and_bad_ones_are_refused(node, package_version):
    ok(install(node, version="1.1.1-local"))
    assert os.path.isdir(node.version_dir("1.1.1-local"))
    refused(install(node, version="1.1/../x"), "not an installed version's name")
    refused(run_module_in_process(cni_install, node.args(package=PACKAGE, src=REAL_PLUGIN_DIR)), "mutually exclusive")
    refused(run_module_in_process(cni_install, node.args(package=PACKAGE)), "needs src_dir")
