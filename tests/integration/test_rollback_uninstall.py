"""playbooks/rollback.yml and playbooks/uninstall.yml on one real node in k3s's layout.

site.yml installs A then B (k3s's static dir gets the plugins k3s lacks, a stray bridge in the bin dir
is adopted, Multus and netns are prepared); rollback.yml makes A current again and verify.yml says so.
Then a namespace lives in /run/netns and Multus has written into a dir of the role's, and uninstall.yml
runs: check mode first (nothing changes, the plan is reported), then for real with another layout than
the install's. After it no link anywhere on the node points into the versions dir, only the node lock
is left of it, the adopted bridge is back byte for byte, the netns units are gone while the mount that
holds the namespace stays, and the summary names what stayed and why. A second uninstall changes nothing.
On a node running Debian's containerd, uninstall.yml gives containerd its own config back byte for byte.
"""
from __future__ import annotations

import json
import os
import time

from testbed_lib.k3s import K3S_DATA, fake_k3s
from testbed_lib.tree import resolved_links, snapshot

SITE, ROLLBACK = "playbooks/site.yml", "playbooks/rollback.yml"
UNINSTALL, VERIFY = "playbooks/uninstall.yml", "playbooks/verify.yml"
A, B = "9.0.0", "9.1.0"
VERSIONS = "/opt/cni/versions"
STRAY_BRIDGE = b"#!/bin/sh\n# a bridge another installer left\n"
UNITS = ("run-netns.mount", "nodeprep-netns-propagation.service")
# What the roles touch, and so what check mode must leave byte for byte.
WATCHED = ("/opt", "/var/lib/rancher", "/etc/systemd/system", "/etc/cni", "/etc/tmpfiles.d", "/var/lib/cni",
           "/var/lib/nodeprep")
# Kernel and per-boot trees; a link in them cannot be ours.
NOT_WALKED = {"proc", "sys", "dev"}


def picture(node) -> dict:
    return {top: snapshot(node.path(top)) for top in WATCHED}


def links_into_versions(node) -> list:
    """Every symlink on the node whose target lies in the versions dir (as the node would resolve it)."""
    root = str(node.path("/"))
    hits = []
    for directory, dirnames, filenames in os.walk(root):
        if directory == root:
            dirnames[:] = [d for d in dirnames if d not in NOT_WALKED]
        for name in dirnames + filenames:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                continue
            inside = "/" + os.path.relpath(path, root)
            target = os.path.normpath(os.path.join(os.path.dirname(inside), os.readlink(path)))
            if target == VERSIONS or target.startswith(VERSIONS + "/"):
                hits.append("%s -> %s" % (inside, os.readlink(path)))
    return hits


def summary(result, host) -> list:
    shown = [t.result.get("msg") for t in result.task_results("Show what was removed, what was restored and what was left, and why")
             if t.host == host]
    assert shown, result.describe()
    return shown[-1]


def enabled(node) -> list:
    return node.run(["systemctl", "is-enabled", *UNITS], check=False).stdout.split()


def timed(run_playbook, timings):
    """run_playbook that notes each run's seconds (printed at the end, for the node lane's budget)."""
    def run(playbook, *args, **kwargs):
        started = time.monotonic()
        result = run_playbook(playbook, *args, **kwargs)
        timings.append("%s%s %.1fs" % (playbook.rsplit("/", 1)[-1], " --check" if kwargs.get("check") else "", time.monotonic() - started))
        return result
    return run


def test_rollback_then_uninstall_takes_everything_back(node, mirror, inventory, run_playbook, role_vars, tmp_path):
    timings: list = []
    run_playbook = timed(run_playbook, timings)
    booted = node("undo", private_network=True)
    fake_k3s(booted)
    bin_dir = booted.path("/opt/cni/bin")
    bin_dir.mkdir(parents=True)
    (bin_dir / "bridge").write_bytes(STRAY_BRIDGE)
    (bin_dir / "bridge").chmod(0o755)
    k3s_own = snapshot(booted.path(K3S_DATA + "/cni"))
    pristine = picture(booted)
    inv = inventory([booted])
    plugins = mirror.releases[A].plugins

    def settings(version, **extra):
        return role_vars(version, cni_plugins_link_dirs=[], nodeprep_runtime="none", multus_enabled=True, **extra)

    installed = run_playbook(SITE, inv, extra_vars=settings(A))
    assert installed.rc == 0, installed.describe()
    # The upgrade needs only the plugins' part of the play.
    upgraded = run_playbook(SITE, inv, extra_vars=settings(B), args=["--tags", "cni_plugins"])
    assert upgraded.rc == 0, upgraded.describe()
    assert os.readlink(booted.path(VERSIONS + "/current")) == "v" + B
    assert "macvlan" in os.listdir(booted.path(K3S_DATA + "/cni"))  # the layout's dir got what k3s lacks
    assert enabled(booted) == ["enabled", "enabled"]

    # Rollback (cni_install's own tests cover its check mode and that a re-run does not swap back): A is current.
    rolled = run_playbook(ROLLBACK, inv, extra_vars=settings(B), diff=True)
    assert rolled.rc == 0 and rolled.changed(booted.name) > 0, rolled.describe()
    assert any("runs v%s (previous: v%s)" % (A, B) in str(t.result.get("msg")) for t in rolled.task_results()), rolled.describe()
    reports = tmp_path / "reports"
    verified = run_playbook(VERIFY, inv, extra_vars=dict(settings(B), nodeprep_report_dir=str(reports)))
    assert verified.rc == 0, verified.describe()
    report = json.loads((reports / (booted.name + ".json")).read_text())
    assert report["cni_plugins"]["current"] == A and report["cni_plugins"]["healthy"] is True
    links = resolved_links(booted)
    assert {name: links.get(name) for name in plugins} == {name: "%s/v%s/%s" % (VERSIONS, A, name) for name in plugins}

    # A pod's namespace lives in /run/netns; Multus wrote its kubeconfig into a dir the role made.
    booted.run("ip netns add live-pod")
    booted.path("/etc/cni/net.d/multus.d/multus.kubeconfig").write_text("# written by Multus\n")

    # The uninstall is given the standard layout: the links in k3s's dir go all the same (the install recorded it).
    undo = dict(settings(B), cni_plugins_layout="standard")
    before = picture(booted)
    planned = run_playbook(UNINSTALL, inv, extra_vars=undo, check=True, diff=True)
    assert planned.rc == 0 and planned.changed(booted.name) > 0, planned.describe()
    assert picture(booted) == before, "check mode wrote on the node"
    assert enabled(booted) == ["enabled", "enabled"]
    predicted = summary(planned, booted.name)
    assert any(line.startswith("cni_plugins: would restore 1: /opt/cni/bin/bridge") for line in predicted), predicted

    done = run_playbook(UNINSTALL, inv, extra_vars=undo, diff=True)
    assert done.rc == 0 and done.changed(booted.name) > 0, done.describe()
    lines = summary(done, booted.name)
    print("\n".join(lines))

    assert links_into_versions(booted) == []
    assert sorted(os.listdir(booted.path(VERSIONS))) == [".lock"]
    assert (bin_dir / "bridge").read_bytes() == STRAY_BRIDGE
    assert snapshot(booted.path(K3S_DATA + "/cni")) == k3s_own  # k3s's own links untouched, ours gone
    assert enabled(booted) == [] or set(enabled(booted)) <= {"not-found"}
    for unit in UNITS:
        assert not booted.path("/etc/systemd/system/" + unit).exists()
    assert not [p for p in snapshot(booted.path("/etc/systemd/system")) if p.endswith(UNITS)]
    # The namespace keeps its mount: /run/netns is still a mount point and the namespace still works.
    assert booted.run(["findmnt", "-n", "/run/netns"], check=False).returncode == 0
    assert booted.run(["ip", "netns", "exec", "live-pod", "true"], check=False).returncode == 0
    print("playbook runs: " + ", ".join(timings))
    assert any(line.startswith("netns: left /run/netns: still mounted: namespaces live in it (live-pod)") for line in lines), lines
    assert "multus: left /etc/cni/net.d/multus.d: not empty, it still holds: multus.kubeconfig" in lines, lines
    assert "cni_plugins: restored 1: /opt/cni/bin/bridge" in lines, lines
    assert any(line.startswith("cni_plugins: left %s/.lock: the node lock is never removed" % VERSIONS) for line in lines), lines
    assert not booted.path("/etc/tmpfiles.d/nodeprep-multus.conf").exists()
    assert not booted.path("/etc/cni/net.d/multus.d/daemon-config.json").exists()

    # Everything else of the watched trees is as before the first run, but for what stays and why.
    after = picture(booted)
    assert after["/var/lib/rancher"] == pristine["/var/lib/rancher"]
    assert after["/etc/systemd/system"] == pristine["/etc/systemd/system"]
    assert after["/etc/tmpfiles.d"] == pristine["/etc/tmpfiles.d"]
    assert after["/var/lib/cni"] == pristine["/var/lib/cni"]
    assert after["/var/lib/nodeprep"] == pristine["/var/lib/nodeprep"] == {}
    assert {k: v for k, v in after["/opt"].items() if not k.startswith("cni/versions")} == pristine["/opt"]
    assert set(after["/etc/cni"]) - set(pristine["/etc/cni"]) == {"net.d", "net.d/multus.d", "net.d/multus.d/multus.kubeconfig"}

    second = run_playbook(UNINSTALL, inv, extra_vars=undo)
    assert second.rc == 0 and second.changed(booted.name) == 0, second.describe()
    assert booted.run(["ip", "netns", "exec", "live-pod", "true"], check=False).returncode == 0
    print("playbook runs: " + ", ".join(timings))


def test_uninstall_gives_containerd_its_own_config_back(containerd_node, mirror, inventory, run_playbook, role_vars):
    """End to end on Debian's containerd: site.yml, then uninstall.yml takes the runtime's settings back first.
    (The first test proves a second uninstall changes nothing.)"""
    booted = containerd_node("bookworm", name="undo-ctrd")
    config = booted.path("/etc/containerd/config.toml").read_bytes()
    containerd_files = snapshot(booted.path("/etc/containerd"))
    inv = inventory([booted])
    settings = role_vars(A, cni_plugins_link_dirs=[], containerd_backup=False)
    installed = run_playbook(SITE, inv, extra_vars=settings)
    assert installed.rc == 0, installed.describe()
    assert snapshot(booted.path("/etc/containerd")) != containerd_files

    done = run_playbook(UNINSTALL, inv, extra_vars=settings)
    assert done.rc == 0 and done.changed(booted.name) > 0, done.describe()
    lines = summary(done, booted.name)
    print("\n".join(lines))
    assert booted.path("/etc/containerd/config.toml").read_bytes() == config
    assert snapshot(booted.path("/etc/containerd")) == containerd_files
    assert links_into_versions(booted) == []
    assert sorted(os.listdir(booted.path(VERSIONS))) == [".lock"]
    assert booted.run(["findmnt", "-n", "/run/netns"], check=False).returncode != 0  # no namespace lived there
    assert "netns: removed 4: " in "\n".join(lines) and "/run/netns (its tmpfs, unmounted)" in "\n".join(lines), lines
