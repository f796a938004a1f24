"""A flat apt repository with Debian's real containernetworking-plugins, for nodes without network.

The package and the dependencies the node rootfs lacks are taken from the host's apt cache or
downloaded once with ``apt-get download`` into the test bed's cache (tools/testbed.py bootstrap);
``dpkg-scanpackages`` indexes them, and a node reads the repo as ``deb [trusted=yes] file:/… ./``.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from testbed_lib.node import TESTBED_CACHE

DEBS_CACHE = TESTBED_CACHE / "debs"
APT_ARCHIVES = Path("/var/cache/apt/archives")
PLUGINS_PACKAGE = "containernetworking-plugins"
PLUGINS_DEB = "containernetworking-plugins_1.1.1+ds1-3+b5_amd64.deb"
PLUGINS_VERSION = "1.1.1+ds1-3+b5"
# What the package needs beyond the node rootfs: iptables and its libraries, and python3-apt, which
# Ansible's apt module installs first on a node that lacks it.
DEPENDENCIES = ("iptables", "libip6tc2", "libnetfilter-conntrack3", "libnfnetlink0", "libnftnl11", "netbase",
                "python3-apt", "python-apt-common", "distro-info-data")


def _found(package: str) -> Path | None:
    pattern = PLUGINS_DEB if package == PLUGINS_PACKAGE else package + "_*.deb"
    for directory in (DEBS_CACHE, APT_ARCHIVES):
        hits = sorted(directory.glob(pattern))
        if hits:
            return hits[-1]
    return None


def missing_debs() -> list[str]:
    return [package for package in (PLUGINS_PACKAGE,) + DEPENDENCIES if _found(package) is None]


def ensure_debs() -> None:
    """Download the packages the host's apt cache lacks (once; a re-run finds them cached)."""
    missing = missing_debs()
    if not missing:
        return
    DEBS_CACHE.mkdir(parents=True, exist_ok=True)
    names = [PLUGINS_PACKAGE + "=" + PLUGINS_VERSION if package == PLUGINS_PACKAGE else package for package in missing]
    subprocess.run(["apt-get", "download", "-qq"] + names, cwd=DEBS_CACHE, check=True)


def add_rebuilt_version(repo: Path, version: str) -> Path:
    """Debian's package rebuilt under another *version* (same files), added to *repo* and indexed.

    Stands for a package update from the distribution: dpkg upgrades to it like to any newer version.
    """
    with tempfile.TemporaryDirectory(prefix="deb-") as scratch:
        tree = Path(scratch) / "tree"
        subprocess.run(["dpkg-deb", "-R", str(_found(PLUGINS_PACKAGE)), str(tree)], check=True)
        control = tree / "DEBIAN" / "control"
        control.write_text(re.sub(r"(?m)^Version: .*$", "Version: " + version, control.read_text()))
        built = repo / ("%s_%s_amd64.deb" % (PLUGINS_PACKAGE, version.replace(":", "%3a")))
        subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(tree), str(built)], check=True, capture_output=True)
    _index(repo)
    return built


KUBERNETES_CNI = "kubernetes-cni"


def add_kubernetes_cni(repo: Path, version: str) -> Path:
    """A ``kubernetes-cni`` package like kubelet's (its plugins owned in /opt/cni/bin), added to *repo*.

    Built from Debian's plugin binaries (usr/lib/cni moved to opt/cni/bin); each *version* carries a
    marker file of its own, so an upgrade visibly writes new bytes over every plugin name.
    """
    with tempfile.TemporaryDirectory(prefix="deb-") as scratch:
        tree = Path(scratch) / "tree"
        subprocess.run(["dpkg-deb", "-x", str(_found(PLUGINS_PACKAGE)), str(tree)], check=True)
        bin_dir = tree / "opt" / "cni" / "bin"
        bin_dir.mkdir(parents=True)
        for plugin in sorted((tree / "usr" / "lib" / "cni").iterdir()):
            plugin.rename(bin_dir / plugin.name)
            with open(bin_dir / plugin.name, "ab") as handle:  # a trailing byte string keeps an ELF runnable
                handle.write(("\0kubernetes-cni %s\n" % version).encode())
        shutil.rmtree(tree / "usr")
        (tree / "DEBIAN").mkdir()
        (tree / "DEBIAN" / "control").write_text(
            "Package: %s\nVersion: %s\nArchitecture: amd64\nMaintainer: nodeprep tests <tests@nodeprep.invalid>\n"
            "Description: CNI plugins in /opt/cni/bin, shaped like kubelet's kubernetes-cni package\n" % (KUBERNETES_CNI, version))
        built = repo / ("%s_%s_amd64.deb" % (KUBERNETES_CNI, version))
        subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(tree), str(built)], check=True, capture_output=True)
    _index(repo)
    return built


def _index(repo: Path) -> None:
    index = subprocess.run(["dpkg-scanpackages", "--multiversion", ".", "/dev/null"], cwd=repo, capture_output=True,
                           text=True, check=True)
    (repo / "Packages").write_text(index.stdout)


def build_flat_repo(dest: Path) -> Path:
    """Copy the packages into *dest* and index them there; returns *dest*."""
    missing = missing_debs()
    if missing:
        raise FileNotFoundError("no .deb for %s in %s or %s: run tools/bootstrap (make bootstrap)"
                                % (", ".join(missing), DEBS_CACHE, APT_ARCHIVES))
    dest.mkdir(parents=True, exist_ok=True)
    for package in (PLUGINS_PACKAGE,) + DEPENDENCIES:
        shutil.copy2(_found(package), dest)
    _index(dest)
    return dest
