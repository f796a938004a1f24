"""playbooks/bake.yml into a node root that no init runs in, then that root booted as a node.

The bake reaches the root the way an image build does: a plain chroot (with a /proc), no systemd,
no runtime. Nothing may be started, restarted or mounted; every file and enablement must be in the
tree, so the first boot brings up /run/netns shared, the plugins linked and containerd pointed at
them without any further Ansible run, and the release tarball is not left in the image.

The Packer example that runs bake.yml passes ``packer validate`` of a current Packer built from its
source with the plugins its ``required_plugins`` names (testbed_lib/packer.py), and what its ansible
provisioner runs resolves the collection the way the provisioner installs it (galaxy_file into a
collections path).
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import yaml

from testbed_lib import packer
from testbed_lib.ansible_runner import write_inventory
from testbed_lib.node import ROOTFS_STAMP, BootedNode, rootfs_path

BAKE = "playbooks/bake.yml"
REPO = Path(__file__).resolve().parents[2]
ADD_CHECK = REPO / "playbooks" / "files" / "cni-add-check.sh"
# An image build's view of the root: chroot with a /proc, in a private mount namespace so the
# /proc mount vanishes with the command. The chroot connection calls: <exe> <root> <shell> -c <cmd>.
CHROOT_EXE = """#!/bin/sh
root=$1
shift
exec unshare --mount --propagation private /bin/sh -c 'mount -t proc proc "$0/proc" && exec chroot "$0" "$@"' "$root" "$@"
"""
NETNS_UNITS = ("run-netns.mount", "nodeprep-netns-propagation.service")


TEMPLATE = "examples/packer/node.pkr.hcl"
CHECKSUM_VAR = ["-var", "base_image_checksum=sha512:" + "0" * 128]


def run_packer(*args, plugin_path=None):
    assert packer.is_ready(), "no Packer %s with its plugins in %s: run make runtimes" % (packer.PACKER_VERSION, packer.PACKER_CACHE)
    # The ansible provisioner runs ansible-playbook from PATH (validate asks its version).
    env = packer.packer_env(dict(os.environ, PATH="%s:%s" % (REPO / ".venv" / "bin", os.environ.get("PATH", ""))))
    if plugin_path is not None:
        env["PACKER_PLUGIN_PATH"] = str(plugin_path)
    return subprocess.run([str(packer.packer_binary()), *args], cwd=REPO, env=env, capture_output=True, text=True, check=False,
                          timeout=300)


def test_packer_example_validates_with_its_required_plugins(tmp_path):
    version = run_packer("version")
    assert version.stdout.startswith("Packer v%s" % packer.PACKER_VERSION), version.stdout

    validated = run_packer("validate", *CHECKSUM_VAR, TEMPLATE)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert validated.stdout.strip() == "The configuration is valid.", validated.stdout
    installed = run_packer("plugins", "installed").stdout
    for plugin in packer.PLUGINS:
        assert str(packer.installed_plugin(plugin)) in installed, installed

    # The template names both plugins: without them packer refuses it, naming each.
    bare = run_packer("validate", *CHECKSUM_VAR, TEMPLATE, plugin_path=tmp_path)
    assert bare.returncode != 0
    for plugin in packer.PLUGINS:
        assert "github.com/hashicorp/%s" % plugin.name in bare.stdout + bare.stderr, bare.stdout + bare.stderr

    # Its structure as packer reads it: the qemu source, the ansible provisioner with the collection's
    # requirements and a collections path, then the shell step that locks the build password.
    inspected = run_packer("inspect", *CHECKSUM_VAR, TEMPLATE).stdout
    sections = dict(re.findall(r"\n {4}(sources|provisioners|post-processors):\n\n((?: {6}\S+\n)+)", inspected))
    assert sections["sources"].split() == ["qemu.node"], inspected
    assert sections["provisioners"].split() == ["ansible", "shell"], inspected


def test_provisioner_resolves_the_collection_it_installs(tmp_path):
    """What the ansible provisioner does: galaxy_file into collections_path, then ansible-playbook with that path."""
    bin_dir = REPO / ".venv" / "bin"
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update(ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false", HOME=str(tmp_path))
    pinned = yaml.safe_load((REPO / "examples/packer/requirements.yml").read_text())["collections"]
    version = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
    assert pinned == [{"name": "nodeprep.cni", "version": version}], pinned

    # Galaxy is not reachable here: the same requirement, served by this checkout's tarball.
    subprocess.run([str(bin_dir / "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path), str(REPO)],
                   env=env, check=True, capture_output=True)
    requirements = tmp_path / "requirements.yml"
    requirements.write_text(yaml.safe_dump({"collections": [
        {"name": str(tmp_path / ("nodeprep-cni-%s.tar.gz" % version)), "type": "file", "version": version}]}))
    collections = tmp_path / "collections"
    subprocess.run([str(bin_dir / "ansible-galaxy"), "collection", "install", "-r", str(requirements), "-p", str(collections)],
                   env=env, check=True, capture_output=True)

    def syntax_check(path):
        return subprocess.run([str(bin_dir / "ansible-playbook"), "-i", "localhost,", "--syntax-check", "examples/packer/bake.yml"],
                              cwd=REPO, env=dict(env, ANSIBLE_COLLECTIONS_PATH=str(path)), capture_output=True, text=True,
                              check=False)

    checked = syntax_check(collections)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # Without the provisioner's collections path the playbook does not resolve: the check above is real.
    empty = syntax_check(tmp_path / "empty")
    assert empty.returncode != 0 and "nodeprep.cni.bake" in empty.stdout + empty.stderr, empty.stdout + empty.stderr


def test_baked_root_boots_ready(mirror, role_vars, run_playbook, tmp_path, tmp_path_factory):
    cache = rootfs_path("trixie", containerd=True)
    assert (cache / ROOTFS_STAMP).is_file(), "no trixie containerd rootfs: run tools/bootstrap"
    image = BootedNode("baked", tmp_path_factory.mktemp("node-baked") / "node", private_network=True, suite="trixie",
                       containerd=True)
    try:
        inventory = write_inventory(tmp_path / "inventory.yml", [image.open_as_image(CHROOT_EXE)])

        baked = run_playbook(BAKE, inventory, extra_vars=role_vars("9.0.0"))
        assert baked.rc == 0, baked.describe()

        # From the bake's own output: nothing was started, restarted or mounted.
        for task in baked.task_results():
            results = task.result.get("results", [task.result])
            for item in results:
                assert item.get("state") not in ("started", "restarted", "reloaded") or not item.get("changed"), \
                    (task.task, item)
            if task.task.startswith(("Restart the runtime", "Activate", "Mount ")):
                assert task.skipped, (task.task, task.result)
        # From the tree: units written and enabled for boot, plugins linked, containerd pointed at them,
        # and no trace of anything live (no mount or socket could leave files in /run of the image).
        for unit in NETNS_UNITS:
            assert image.path("/etc/systemd/system/" + unit).is_file(), unit
        wants = [p.name for p in image.path("/etc/systemd/system").glob("*.wants/*")]
        assert set(NETNS_UNITS) <= set(wants), wants
        assert os.readlink(image.path("/opt/cni/bin/bridge")) == "/opt/cni/versions/current/bridge"
        assert os.readlink(image.path("/opt/cni/versions/current")) == "v9.0.0"
        assert 'bin_dir = "/opt/cni/bin"' in image.path("/etc/containerd/config.toml").read_text()
        # The release went through the node's cache to the version dir; the image keeps none of it.
        cache = image.path("/var/cache/nodeprep/cni")
        assert cache.is_dir() and not [p.name for p in cache.iterdir() if "cni-plugins" in p.name], list(cache.iterdir())
        removed = [t for t in baked.task_results() if t.task == "Remove the release files from the node's cache"]
        assert removed and removed[0].result.get("changed"), [t.task for t in baked.task_results()]
        upper_run = image.workdir / "upper" / "run"
        assert not upper_run.exists() or not any(upper_run.iterdir()), list(upper_run.iterdir())
        subprocess.run(["umount", str(image.rootfs)], check=True)

        # First boot of the baked tree, with no Ansible run.
        image.start()
        mount = image.run("findmnt --noheadings --output FSTYPE,PROPAGATION --mountpoint /run/netns").stdout.split()
        assert mount == ["tmpfs", "shared"], mount
        assert image.run("readlink -f /opt/cni/bin/bridge").stdout.strip() == "/opt/cni/versions/v9.0.0/bridge"
        dump = image.run("containerd config dump").stdout
        assert "/opt/cni/bin" in dump
        assert image.run("systemctl is-active containerd").stdout.strip() == "active"
        image.path("/root/cni-add-check.sh").write_bytes(ADD_CHECK.read_bytes())
        added = image.run("sh /root/cni-add-check.sh /opt/cni/bin")
        assert "bridge ADD and DEL succeeded" in added.stdout
    finally:
        image.stop()
