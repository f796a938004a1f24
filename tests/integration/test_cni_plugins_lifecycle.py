"""The install lifecycle on a real systemd node, through ansible-playbook and the role.

Install A, re-run (changed=0, no request), upgrade to B, roll back, prune, remove; every step
also in check mode first, which must leave the node's bytes untouched.
"""
from __future__ import annotations

import hashlib
import json
import os

import pytest

from testbed_lib.tree import node_state, resolved_links, snapshot, temp_leftovers

SITE = "playbooks/site.yml"
VERIFY = "playbooks/verify.yml"
CALICO = b"#!/bin/sh\necho calico\n"
STRAY_BRIDGE = b"#!/bin/sh\n# a bridge left by another installer\n"


@pytest.fixture
def prepared_node(node):
    """A node whose /opt/cni/bin already holds a foreign calico and a stray same-name bridge."""
    booted = node("lifecycle")
    bin_dir = booted.path("/opt/cni/bin")
    bin_dir.mkdir(parents=True)
    (bin_dir / "calico").write_bytes(CALICO)
    (bin_dir / "bridge").write_bytes(STRAY_BRIDGE)
    os.chmod(bin_dir / "calico", 0o755)
    os.chmod(bin_dir / "bridge", 0o755)
    return booted


def assert_links_into(node, version, plugins):
    for directory in ("/opt/cni/bin", "/var/lib/rancher/k3s/data/cni"):
        links = resolved_links(node, directory)
        for plugin in plugins:
            assert links[plugin] == "/opt/cni/versions/v%s/%s" % (version, plugin), (directory, plugin, links[plugin])


def assert_manifest_matches(node, version):
    version_dir = node.path("/opt/cni/versions/v%s" % version)
    manifest = json.loads((version_dir / ".nodeprep-manifest.json").read_text())
    assert manifest["version"] == version
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((version_dir / name).read_bytes()).hexdigest() == entry["sha256"], name
    return manifest


def check_then_apply(run_playbook, node, playbook, inventory, extra_vars=None):
    """Check mode first (changes nothing, reports a change), then the real run."""
    before = node_state(node)
    checked = run_playbook(playbook, inventory, extra_vars=extra_vars, check=True, diff=True)
    assert checked.rc == 0, checked.describe()
    assert checked.changed(node.name) > 0, checked.describe()
    assert node_state(node) == before, "check mode wrote on the node"
    applied = run_playbook(playbook, inventory, extra_vars=extra_vars, diff=True)
    assert applied.rc == 0, applied.describe()
    assert applied.changed(node.name) > 0
    return applied


def test_install_rerun_upgrade_rollback_prune_absent(
        prepared_node, mirror, inventory, run_playbook, role_vars, module_playbook, tmp_path):
    node = prepared_node
    inv = inventory([node])
    a, b, c = "9.0.0", "9.1.0", "9.2.0"
    plugins = mirror.releases[a].plugins
    pristine_opt = snapshot(node.path("/opt"))

    # Install A: the stray bridge is adopted, calico untouched, every link resolves into A.
    check_then_apply(run_playbook, node, SITE, inv, role_vars(a))
    assert os.readlink(node.path("/opt/cni/versions/current")) == "v" + a
    assert_links_into(node, a, plugins)
    manifest = assert_manifest_matches(node, a)
    assert manifest["tarball_sha256"] == mirror.releases[a].sha256
    assert manifest["source_url"].endswith(mirror.releases[a].url_path)
    assert node.path("/opt/cni/bin/calico").read_bytes() == CALICO
    adopted = json.loads(node.path("/opt/cni/versions/.adopted/index.json").read_text())
    assert [r["original"] for r in adopted] == ["/opt/cni/bin/bridge"]
    assert node.path("/opt/cni/versions/.adopted/" + adopted[0]["stored"]).read_bytes() == STRAY_BRIDGE
    assert '"cniVersion"' in node.run("CNI_COMMAND=VERSION /opt/cni/bin/bridge </dev/null").stdout

    # Re-run: nothing changes and the mirror sees no request at all.
    mirror.clear()
    rerun = run_playbook(SITE, inv, extra_vars=role_vars(a))
    assert rerun.rc == 0 and rerun.changed(node.name) == 0, rerun.describe()
    assert mirror.requests == []

    # The read-only report, as AWX would store it.
    report_dir = tmp_path / "reports"
    verified = run_playbook(VERIFY, inv, extra_vars={"nodeprep_report_dir": str(report_dir),
                                                     "cni_plugins_link_dirs": ["/var/lib/rancher/k3s/data/cni"]})
    assert verified.rc == 0, verified.describe()
    report = json.loads((report_dir / (node.name + ".json")).read_text())
    assert report["schema_version"] == 1
    assert report["cni_plugins"]["current"] == a and report["cni_plugins"]["healthy"] is True
    assert report["cni_plugins"]["unmanaged"] == {"/opt/cni/bin": ["calico"]}
    assert report["cni_plugins"]["link_summary"]["ok"] == 2 * len(plugins)

    # Upgrade to B: current B, previous A, every link resolves into B.
    check_then_apply(run_playbook, node, SITE, inv, role_vars(b))
    assert os.readlink(node.path("/opt/cni/versions/current")) == "v" + b
    assert os.readlink(node.path("/opt/cni/versions/previous")) == "v" + a
    assert_links_into(node, b, plugins)
    assert node.path("/opt/cni/bin/calico").read_bytes() == CALICO

    # Roll back to A; a second rollback run is a no-op, not a swap back.
    rollback = module_playbook(state="rollback")
    check_then_apply(run_playbook, node, rollback, inv)
    assert os.readlink(node.path("/opt/cni/versions/current")) == "v" + a
    assert os.readlink(node.path("/opt/cni/versions/previous")) == "v" + b
    assert_links_into(node, a, plugins)
    again = run_playbook(rollback, inv)
    assert again.rc == 0 and again.changed(node.name) == 0, again.describe()

    # Install C with keep=2: B is neither current nor previous and goes; A (previous) stays.
    check_then_apply(run_playbook, node, SITE, inv, role_vars(c, cni_plugins_keep=2))
    versions = sorted(p.name for p in node.path("/opt/cni/versions").iterdir() if p.name.startswith("v"))
    assert versions == ["v" + a, "v" + c]
    assert os.readlink(node.path("/opt/cni/versions/previous")) == "v" + a
    assert_links_into(node, c, plugins)
    assert node.path("/opt/cni/bin/calico").read_bytes() == CALICO

    # Remove: /opt is byte-identical to before the first install, stray bridge restored; only
    # the node lock (never removed, so a waiting run and a newcomer share one inode) remains.
    check_then_apply(run_playbook, node, module_playbook(state="absent"), inv)
    after = snapshot(node.path("/opt"))
    assert sorted(k for k in after if k.startswith("cni/versions")) == ["cni/versions", "cni/versions/.lock"]
    assert {k: v for k, v in after.items() if not k.startswith("cni/versions")} == pristine_opt
    assert node.path("/opt/cni/bin/bridge").read_bytes() == STRAY_BRIDGE
    gone = run_playbook(module_playbook(state="absent"), inv)
    assert gone.rc == 0 and gone.changed(node.name) == 0, gone.describe()
    assert temp_leftovers(node) == []


@pytest.mark.parametrize("download_on", ["node", "controller"])
def test_download_once_and_reuse(node, mirror, inventory, run_playbook, role_vars, download_on):
    """Both download paths fetch the tarball once; a drifted plugin is repaired from the cache."""
    booted = node("dl-" + download_on)
    inv = inventory([booted])
    extra = role_vars("9.0.0", cni_plugins_download_on=download_on)
    first = run_playbook(SITE, inv, extra_vars=extra)
    assert first.rc == 0, first.describe()
    tarball_requests = [r for r in mirror.requests if r.endswith(".tgz")]
    assert tarball_requests == [mirror.releases["9.0.0"].url_path]
    cached = booted.path("/var/cache/nodeprep/cni/" + mirror.releases["9.0.0"].filename)
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == mirror.releases["9.0.0"].sha256

    # Drift: an add-on copies its own bridge over ours through the link.
    target = booted.path("/opt/cni/versions/v9.0.0/bridge")
    target.write_bytes(b"#!/bin/sh\necho not-our-bridge\n")
    info = run_playbook(VERIFY, inv, extra_vars={"nodeprep_report_dir": str(inv.parent / "r")})
    assert info.rc == 0, info.describe()
    report = json.loads((inv.parent / "r" / (booted.name + ".json")).read_text())
    statuses = {link["name"]: link["status"] for link in report["cni_plugins"]["links"]}
    assert statuses["bridge"] == "drifted" and report["cni_plugins"]["healthy"] is False

    mirror.clear()
    repaired = run_playbook(SITE, inv, extra_vars=extra)
    assert repaired.rc == 0 and repaired.changed(booted.name) > 0, repaired.describe()
    assert hashlib.sha256(target.read_bytes()).hexdigest() == \
        json.loads(booted.path("/opt/cni/versions/v9.0.0/.nodeprep-manifest.json").read_text())["files"]["bridge"]["sha256"]
    assert mirror.requests == [], "the cache should have served the repair"


@pytest.mark.parametrize("download_on", ["node", "controller"])
def test_unpinned_release_is_installed_with_a_trust_on_first_use_warning(node, mirror, inventory, run_playbook, role_vars,
                                                                         download_on):
    """Neither pinned nor in the user's table: verified by the mirror's own .sha256 file, and the run says so once."""
    booted = node("tofu-" + download_on)
    extra = role_vars("9.0.0", cni_plugins_download_on=download_on)
    del extra["cni_plugins_checksums"]
    first = run_playbook(SITE, inventory([booted]), extra_vars=extra)
    assert first.rc == 0, first.describe()
    assert os.readlink(booted.path("/opt/cni/versions/current")) == "v9.0.0"
    task = next(t for t in first.task_results() if t.result.get("release"))
    assert task.result["release"]["checksum_source"] == "checksum_file", task.result["release"]
    warning = ("CNI plugins 9.0.0 for amd64 was verified only against the checksum file served beside %s: "
               "trust on first use" % mirror.releases["9.0.0"].url(mirror.base_url))
    shown = [str(w) for w in task.result.get("warnings", [])]
    assert [w for w in shown if "trust on first use" in w] and all(warning in w for w in shown if "trust" in w), shown
    assert (first.stdout + first.stderr).count("trust on first use") == 1, first.stdout[-3000:] + first.stderr[-3000:]
