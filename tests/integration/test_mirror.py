"""playbooks/mirror.yml: an air-gapped mirror built from a release server, then used alone.

Two versions x two architectures are mirrored from a local upstream-layout server; a re-run makes
no request; an interrupted mirror is completed with only the missing file; a tampered source file
is refused and never appears in the mirror; then the release server is gone and site.yml installs
from the built tree served by a fresh static web server.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from testbed_lib.http_server import LocalServer
from testbed_lib.releases import build_release

MIRROR = "playbooks/mirror.yml"
SITE = "playbooks/site.yml"
VERSIONS = ("9.0.0", "9.1.0")
ARCHS = ("amd64", "arm64")
TAMPERED = "9.2.0"
# Real plugins, fewer of them: the mirror's work does not depend on the count, its bytes do.
PLUGINS = ["bridge", "host-local", "loopback", "portmap"]


def localhost_inventory(path: Path) -> Path:
    path.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    return path


def checksum_table(releases) -> dict:
    table: dict = {}
    for release in releases:
        table.setdefault(release.arch, {})[release.version] = "sha256:" + release.sha256
    return table


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    """The source: two versions x two architectures, plus a release whose tarball was tampered with."""
    root = tmp_path_factory.mktemp("upstream")
    releases = [build_release(root, version, arch, plugins=PLUGINS) for version in VERSIONS for arch in ARCHS]
    genuine = build_release(root, TAMPERED, "amd64", plugins=PLUGINS)
    # Someone swapped the tarball on the server after its checksum was pinned.
    genuine.path.write_bytes(genuine.path.read_bytes()[:-64] + bytes(64))
    with LocalServer(root) as server:
        server.built = releases
        server.genuine = genuine
        yield server


def test_mirror_built_verified_resumed_and_served_alone(upstream, tmp_path, node, inventory, run_playbook):
    local = localhost_inventory(tmp_path / "localhost.yml")
    mirror_dir = tmp_path / "air-gap" / "cni"
    table = checksum_table(upstream.built + [upstream.genuine])
    extra = {"nodeprep_mirror_dir": str(mirror_dir), "nodeprep_mirror_versions": list(VERSIONS),
             "nodeprep_mirror_archs": list(ARCHS), "nodeprep_mirror_source_url": upstream.base_url,
             "cni_plugins_checksums": table}

    # Check mode plans four releases and writes nothing.
    planned = run_playbook(MIRROR, local, extra_vars=extra, check=True)
    assert planned.rc == 0, planned.describe()
    assert planned.changed("localhost") > 0
    assert not mirror_dir.exists()

    built = run_playbook(MIRROR, local, extra_vars=extra)
    assert built.rc == 0, built.describe()
    for release in upstream.built:
        mirrored = mirror_dir / release.url_path.lstrip("/")
        assert mirrored.read_bytes() == release.path.read_bytes()
        data = mirrored.read_bytes()
        assert (mirrored.parent / (mirrored.name + ".sha256")).read_text() == \
            "%s  %s\n" % (hashlib.sha256(data).hexdigest(), mirrored.name)
        assert (mirrored.parent / (mirrored.name + ".sha512")).read_text() == \
            "%s  %s\n" % (hashlib.sha512(data).hexdigest(), mirrored.name)
    assert sorted(r for r in upstream.requests if r.endswith(".tgz")) == sorted(r.url_path for r in upstream.built)
    # The directory is the bundle: its index checks every tarball on the far side of the air gap.
    index = (mirror_dir / "SHA256SUMS").read_text().splitlines()
    assert sorted(index) == sorted("%s  %s" % (r.sha256, r.url_path.lstrip("/")) for r in upstream.built)
    checked = subprocess.run(["sha256sum", "--check", "--strict", "SHA256SUMS"], cwd=mirror_dir,
                             capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    # A re-run over a complete mirror: nothing changes and the source sees no request.
    upstream.clear()
    again = run_playbook(MIRROR, local, extra_vars=extra)
    assert again.rc == 0 and again.changed("localhost") == 0, again.describe()
    assert upstream.requests == []

    # Interrupted: one tarball never arrived and a partial download was left behind.
    lost = upstream.built[3]
    (mirror_dir / lost.url_path.lstrip("/")).unlink()
    partial = mirror_dir / ("v" + lost.version) / (".%s.download" % lost.filename)
    partial.write_bytes(lost.path.read_bytes()[:1000])
    upstream.clear()
    resumed = run_playbook(MIRROR, local, extra_vars=extra)
    assert resumed.rc == 0, resumed.describe()
    assert [r for r in upstream.requests if r.endswith(".tgz")] == [lost.url_path]
    assert (mirror_dir / lost.url_path.lstrip("/")).read_bytes() == lost.path.read_bytes()
    assert not partial.exists()

    # A tampered source file is refused and never written under its name.
    tampered = run_playbook(MIRROR, local, extra_vars=dict(extra, nodeprep_mirror_versions=[TAMPERED],
                                                           nodeprep_mirror_archs=["amd64"]))
    assert tampered.rc != 0
    message = " ".join(str(item.get("msg", "")) for t in tampered.task_results() if t.failed
                       for item in t.result.get("results", [t.result]))
    assert "checksum mismatch" in message and upstream.genuine.sha256 in message, tampered.describe()
    tampered_dir = mirror_dir / ("v" + TAMPERED)
    assert sorted(p.name for p in tampered_dir.iterdir()) == [".lock"]

    # The release server is gone; the mirror tree alone, under any static server, serves site.yml.
    upstream.stop()
    booted = node("from-mirror")
    with LocalServer(mirror_dir) as static:
        static_url = static.base_url  # the port is gone once the server stops
        installed = run_playbook(SITE, inventory([booted]), extra_vars={
            "cni_plugins_version": VERSIONS[1], "cni_plugins_base_url": static_url,
            "cni_plugins_checksums": table, "nodeprep_runtime": "none",
            "cni_plugins_controller_cache_dir": str(tmp_path / "controller-cache")})
        assert installed.rc == 0, installed.describe()
    wanted = next(r for r in upstream.built if r.version == VERSIONS[1] and r.arch == "amd64")
    manifest = json.loads(booted.path("/opt/cni/versions/v%s/.nodeprep-manifest.json" % VERSIONS[1]).read_text())
    assert manifest["tarball_sha256"] == wanted.sha256
    assert manifest["source_url"] == static_url + wanted.url_path
    assert os.readlink(booted.path("/opt/cni/versions/current")) == "v" + VERSIONS[1]
    assert '"cniVersion"' in booted.run("CNI_COMMAND=VERSION /opt/cni/bin/bridge </dev/null").stdout


def test_versions_as_typed_name_one_bundle_whose_index_matches_its_files(tmp_path, run_playbook):
    """A version with a leading space, a "v" or a duplicate names the same release, its directory and
    its SHA256SUMS line alike; a doubled "v" is refused, naming the variable, before any request."""
    root = tmp_path / "source"
    releases = [build_release(root, "9.3.0", "amd64", plugins=PLUGINS), build_release(root, "9.4.0", "amd64", plugins=PLUGINS)]
    local = localhost_inventory(tmp_path / "localhost.yml")
    mirror_dir = tmp_path / "bundle"
    with LocalServer(root) as server:
        extra = {"nodeprep_mirror_dir": str(mirror_dir), "nodeprep_mirror_versions": [" 9.3.0", "v9.4.0", "9.4.0"],
                 "nodeprep_mirror_archs": ["amd64"], "nodeprep_mirror_source_url": server.base_url,
                 "cni_plugins_checksums": checksum_table(releases)}
        built = run_playbook(MIRROR, local, extra_vars=extra)
        assert built.rc == 0, built.describe()
        assert sorted(p.name for p in mirror_dir.iterdir()) == ["SHA256SUMS", "v9.3.0", "v9.4.0"]
        index = (mirror_dir / "SHA256SUMS").read_text().splitlines()
        assert index == ["%s  %s" % (r.sha256, r.url_path.lstrip("/")) for r in releases]
        checked = subprocess.run(["sha256sum", "--check", "--strict", "SHA256SUMS"], cwd=mirror_dir,
                                 capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr

        server.clear()
        doubled = run_playbook(MIRROR, local, extra_vars=dict(extra, nodeprep_mirror_dir=str(tmp_path / "other"),
                                                              nodeprep_mirror_versions=["vv9.3.0"]))
        assert doubled.rc != 0
        assert "nodeprep_mirror_versions: invalid CNI plugins version 'vv9.3.0'" in doubled.describe()
        assert server.requests == [] and not (tmp_path / "other").exists()
