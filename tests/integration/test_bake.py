"""playbooks/bake.yml into a node root that no init runs in, then that root booted as a node.

The bake reaches the root the way an image build does: a plain chroot (with a /proc), no systemd,
no runtime. Nothing may be started, restarted or mounted; every file and enablement must be in the
tree, so the first boot brings up /run/netns shared, the plugins linked and containerd pointed at
them without any further Ansible run. The Packer example that runs bake.yml passes packer validate.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.testbed.node import ROOTFS_STAMP, Node, rootfs_path

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


def test_packer_example_validates():
    env = dict(os.environ, PATH="%s:%s" % (REPO / ".venv" / "bin", os.environ.get("PATH", "")), CHECKPOINT_DISABLE="1")
    validated = subprocess.run(["packer", "validate", "-var", "base_image_checksum=sha512:" + "0" * 128,
                                "examples/packer/node.pkr.hcl"], cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert validated.returncode == 0, validated.stdout + validated.stderr


def test_baked_root_boots_ready(mirror, role_vars, run_playbook, tmp_path, tmp_path_factory):
    cache = rootfs_path("trixie", containerd=True)
    assert (cache / ROOTFS_STAMP).is_file(), "no trixie containerd rootfs: run tools/bootstrap"
    image = Node("baked", tmp_path_factory.mktemp("node-baked") / "node", private_network=True, suite="trixie",
                 containerd=True)
    try:
        image._mount_overlay()
        chroot_exe = tmp_path / "chroot-exe"
        chroot_exe.write_text(CHROOT_EXE)
        chroot_exe.chmod(0o755)
        inventory = tmp_path / "inventory.yml"
        inventory.write_text(
            "all:\n  children:\n    nodes:\n      hosts:\n        baked:\n"
            "          ansible_connection: community.general.chroot\n"
            "          ansible_host: %s\n          ansible_chroot_exe: %s\n"
            "          ansible_python_interpreter: /usr/bin/python3\n" % (image.rootfs, chroot_exe))

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
