"""Plugins that network add-ons drop into /opt/cni/bin: reported, taken over, given back.

A script imitating kube-router's install-cni init container copies its four plugins into
/opt/cni/bin where they are absent and writes its conflist; verify.yml tells those files apart
from our links, the file adopted at install time and a file drifted through our link, naming
kube-router; the role's next run takes them over and says so; state=absent gives them back.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import yaml

from testbed_lib.tree import resolved_links

VERIFY = "playbooks/verify.yml"
KUBE_ROUTER_PLUGINS = ("bridge", "host-local", "loopback", "portmap")
IMAGE_DIR = "/usr/libexec/kube-router-cni"
STRAY_TUNING = b"#!/bin/sh\n# tuning left by an earlier installer\n"
KUBE_ROUTER_CONFLIST = {
    "cniVersion": "0.3.0", "name": "mynet",
    "plugins": [{"name": "kubernetes", "type": "bridge", "bridge": "kube-bridge", "isDefaultGateway": True,
                 "ipam": {"type": "host-local", "subnet": "10.244.0.0/24"}},
                {"type": "portmap", "capabilities": {"portMappings": True}}],
}
# What kube-router's init container does: its conflist when absent, then each of its plugins into
# the host's plugin dir only when that name is absent ("only if missing").
INIT_CONTAINER = """
set -eu
conf=/etc/cni/net.d/10-kuberouter.conflist
mkdir -p /etc/cni/net.d /opt/cni/bin
if [ ! -f "$conf" ]; then cp %(image)s/cni-conf.json "$conf.tmp" && mv "$conf.tmp" "$conf"; fi
for plugin in %(plugins)s; do
  if [ ! -f "/opt/cni/bin/$plugin" ]; then cp "%(image)s/$plugin" "/opt/cni/bin/$plugin"; echo "copied $plugin"; fi
done
""" % {"image": IMAGE_DIR, "plugins": " ".join(KUBE_ROUTER_PLUGINS)}


def kube_router_image(node) -> dict:
    """The plugins in kube-router's image: real binaries, each with bytes of its own."""
    image = node.path(IMAGE_DIR)
    image.mkdir(parents=True)
    blobs = {}
    for plugin in KUBE_ROUTER_PLUGINS:
        # Trailing bytes after an ELF image do not change how it runs.
        blobs[plugin] = Path("/usr/lib/cni", plugin).read_bytes() + b"\0kube-router image build\n"
        (image / plugin).write_bytes(blobs[plugin])
        os.chmod(image / plugin, 0o755)
    (image / "cni-conf.json").write_text(json.dumps(KUBE_ROUTER_CONFLIST))
    return blobs


def role_playbook(directory: Path) -> Path:
    """The cni_plugins role alone: what site.yml runs for the plugins, without the other roles."""
    path = directory / "cni_plugins.yml"
    path.write_text(yaml.safe_dump([{"name": "Install the CNI plugins", "hosts": "nodes", "gather_facts": False,
                                     "roles": [{"role": "nodeprep.cni.cni_plugins"}]}]))
    return path


def report_of(run_playbook, inv, node, report_dir, link_dirs):
    verified = run_playbook(VERIFY, inv, extra_vars={"nodeprep_report_dir": str(report_dir), "cni_plugins_link_dirs": link_dirs})
    report = json.loads((report_dir / (node.name + ".json")).read_text())
    return verified, report


def test_kube_router_plugins_reported_taken_over_and_given_back(node, mirror, inventory, run_playbook, role_vars,
                                                                module_playbook, tmp_path):
    booted = node("kube-router")
    inv = inventory([booted])
    bin_dir = booted.path("/opt/cni/bin")
    bin_dir.mkdir(parents=True)
    (bin_dir / "tuning").write_bytes(STRAY_TUNING)
    os.chmod(bin_dir / "tuning", 0o755)
    blobs = kube_router_image(booted)
    variables = role_vars("9.0.0")
    link_dirs = variables["cni_plugins_link_dirs"]

    role = role_playbook(tmp_path)
    installed = run_playbook(role, inv, extra_vars=variables)
    assert installed.rc == 0, installed.describe()

    # Our links to the four go (an operator's clean-up), kube-router's init container runs,
    # and calico-style drift hits bandwidth through our link.
    for plugin in KUBE_ROUTER_PLUGINS:
        (bin_dir / plugin).unlink()
    copied = booted.run(INIT_CONTAINER).stdout.split("\n")
    assert [line for line in copied if line] == ["copied " + p for p in KUBE_ROUTER_PLUGINS]
    booted.path("/opt/cni/versions/v9.0.0/bandwidth").write_bytes(b"#!/bin/sh\necho overwritten\n")

    verified, report = report_of(run_playbook, inv, booted, tmp_path / "before", link_dirs)
    assert verified.rc == 0, verified.describe()
    kinds = {(e["path"], e["kind"], e["addon"]) for e in report["cni_plugins"]["ownership"]}
    for plugin in KUBE_ROUTER_PLUGINS:
        assert ("/opt/cni/bin/" + plugin, "dropped", "kube-router") in kinds
    assert ("/opt/cni/bin/tuning", "adopted", None) in kinds
    assert ("/opt/cni/bin/bandwidth", "drifted", None) in kinds
    assert ("/opt/cni/bin/macvlan", "ours", None) in kinds
    summary = report["cni_plugins"]["ownership_summary"]
    assert summary["dropped"] == 4 and summary["adopted"] == 1 and summary["drifted"] == 2, summary
    assert report["cni_plugins"]["healthy"] is False

    # The next run takes the four back, repairs the drift, and says what it took over.
    retaken = run_playbook(role, inv, extra_vars=variables)
    assert retaken.rc == 0, retaken.describe()
    # Whichever task of the role installs, its result carries took_over.
    install = next(t.result for t in retaken.task_results(host=booted.name) if t.result.get("took_over"))
    warnings = " ".join(install.get("warnings", []))
    for plugin in KUBE_ROUTER_PLUGINS:
        assert "/opt/cni/bin/%s (from kube-router)" % plugin in install["took_over"]
        assert "/opt/cni/bin/%s (from kube-router)" % plugin in warnings
    links = resolved_links(booted)
    for plugin in KUBE_ROUTER_PLUGINS + ("bandwidth", "tuning"):
        assert links[plugin] == "/opt/cni/versions/v9.0.0/" + plugin
    manifest = json.loads(booted.path("/opt/cni/versions/v9.0.0/.nodeprep-manifest.json").read_text())
    assert hashlib.sha256(booted.path("/opt/cni/versions/v9.0.0/bandwidth").read_bytes()).hexdigest() == \
        manifest["files"]["bandwidth"]["sha256"]

    # state=absent gives kube-router its files back, byte for byte, and the stray tuning too.
    removed = run_playbook(module_playbook(state="absent"), inv)
    assert removed.rc == 0, removed.describe()
    for plugin in KUBE_ROUTER_PLUGINS:
        assert not (bin_dir / plugin).is_symlink()
        assert (bin_dir / plugin).read_bytes() == blobs[plugin]
    assert (bin_dir / "tuning").read_bytes() == STRAY_TUNING
