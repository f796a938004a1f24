"""The collection on a Flatcar-shaped VM (testbed_lib/vm_flatcar.py): Debian userland with a
read-only erofs ``/usr`` on a disk of its own, ``/etc`` and ``/var`` writable, real reboots.

One VM for the module: ``site.yml`` over real SSH from a release mirror on the host's loopback,
then ``/run/netns`` is a shared tmpfs, the plugins are linked, containerd's own ``config dump`` and
CRI name them and a pod sandbox runs, before and after two real reboots; nothing under ``/usr``
changed. Then a second VM whose root only Ignition prepared, from ``render.yml``'s output: the same
``/run/netns`` at its first boot and after a real reboot, without Ansible. The ``findmnt`` lines
after each boot are printed (``pytest -rA`` shows them).
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time

import pytest
import yaml

from testbed_lib import ansible_runner, cri, vm, vm_flatcar
from tests.fixtures import REPO
from tests.vm.images import require_image

SUBNET = "10.86.0."
CONFLIST = cri.pod_conflist(SUBNET, "cni-flatcar0")
# The roles' own plugin list (cni_plugins_list) decides what is linked; these are the pod's.
POD_PLUGINS = ("bridge", "host-local", "loopback", "portmap")
FIGURES: dict = {"findmnt": []}
# Emulated boots slow down with the machine's load far more than nodes do (TESTBED.md); still bounded.
BOOT_TIMEOUT = 600.0


@pytest.fixture(scope="module")
def flatcar(tmp_path_factory):
    require_image(vm_flatcar.FLATCAR_IMAGE, "Flatcar-shaped VM image", "tools/testbed.py vm-image-flatcar")
    node = vm_flatcar.flatcar_node("flatcar", tmp_path_factory.mktemp("vm-flatcar") / "vm", boot_timeout=BOOT_TIMEOUT)
    try:
        node.start()
        FIGURES["boot"] = dict(node.timings)
        yield node
    finally:
        node.stop()
        print("Flatcar-shaped VM figures: %s" % json.dumps(FIGURES, indent=1))


def netns_is_shared_tmpfs(node: vm.VirtualNode, when: str, figures: dict | None = None) -> None:
    lines = FIGURES["findmnt"] if figures is None else figures["findmnt"]
    lines.append("%s: %s | %s" % (when, vm_flatcar.findmnt_line(node, "/run/netns"), vm_flatcar.findmnt_line(node, "/usr")))
    netns = vm_flatcar.findmnt(node, "/run/netns")
    assert netns is not None, "%s: /run/netns is not a mount point" % when
    assert (netns["fstype"], netns["propagation"]) == ("tmpfs", "shared"), (when, netns)


def usr_is_read_only_erofs(node: vm.VirtualNode) -> None:
    usr = vm_flatcar.findmnt(node, "/usr")
    assert (usr["source"], usr["fstype"]) == ("/dev/vdb", "erofs"), usr
    assert "ro" in usr["options"].split(","), usr
    # The disk itself is read-only (QEMU attaches it so), not only the mount.
    assert node.run(["blockdev", "--getro", "/dev/vdb"]).stdout.strip() == "1"
    denied = node.run(["touch", "/usr/nodeprep-probe"], check=False)
    assert denied.returncode != 0 and "Read-only file system" in denied.stderr, denied


def pod_runs(node: vm.VirtualNode, name: str) -> dict:
    """containerd's CRI through our links: NetworkReady, its own plugin dirs and a sandbox's address."""
    with vm_flatcar.ForwardedCRI(node) as client:
        version = client.wait_ready(timeout=120)
        status = client.wait_network_ready(timeout=60)
        sandbox = client.run_pod_sandbox(name)
        try:
            assert sandbox.ip.startswith(SUBNET), sandbox
        finally:
            client.remove_pod_sandbox(sandbox.id)
    assert status["conditions"]["NetworkReady"]["status"], status["conditions"]
    # The CRI's own config names the dir the role pointed containerd at.
    assert status["info"]["config"]["cni"]["binDir"] == "/opt/cni/bin", status["info"]["config"]["cni"]
    return {"version": version, "ip": sandbox.ip}


def test_usr_is_a_read_only_erofs_and_the_node_says_flatcar(flatcar):
    usr_is_read_only_erofs(flatcar)
    root = vm_flatcar.findmnt(flatcar, "/")
    assert (root["source"], root["fstype"]) == ("/dev/vda", "ext4") and "rw" in root["options"].split(","), root
    assert flatcar.run(["readlink", "/etc/os-release"]).stdout.strip() == "../usr/lib/os-release"
    assert "ID=flatcar\n" in flatcar.read_file("/etc/os-release")
    # containerd runs from the read-only /usr, its config in the writable /etc.
    assert flatcar.run(["systemctl", "is-active", "containerd"]).stdout.strip() == "active"
    assert flatcar.run("readlink /proc/$(systemctl show -P MainPID containerd)/exe").stdout.strip() == "/usr/bin/containerd"
    assert vm_flatcar.findmnt(flatcar, "/run/netns") is None  # nothing made it a mount yet


def test_site_yml_over_ssh_prepares_the_node_without_writing_below_usr(flatcar, mirror, tmp_path):
    # The very file QEMU serves as /usr (held open: a rebuild of the cache would only replace its name).
    usr_image = open(vm_flatcar.FLATCAR_IMAGE / vm_flatcar.USR_IMAGE, "rb")  # pylint: disable=consider-using-with
    usr_before = os.fstat(usr_image.fileno())
    inventory = ansible_runner.write_inventory(tmp_path / "inventory.yml", [flatcar])
    facts = ansible_runner.run_adhoc(inventory, "ansible.builtin.setup", {"gather_subset": ["!all", "!min", "distribution"]})
    assert facts.rc == 0, facts.describe()
    [gathered] = facts.task_results(host=flatcar.name)
    assert gathered.result["ansible_facts"]["ansible_distribution"] == "Flatcar"

    extra_vars = {
        "cni_plugins_version": "9.0.0",
        # The node itself fetches the release, from the mirror on the host's loopback.
        "cni_plugins_download_on": "node",
        "cni_plugins_base_url": vm.guest_url(mirror.base_url),
        "cni_plugins_checksums": {"amd64": {v: "sha256:" + r.sha256 for v, r in mirror.releases.items()}},
    }
    started = time.monotonic()
    result = ansible_runner.run_playbook(REPO / "playbooks/site.yml", inventory, extra_vars=extra_vars, cwd=tmp_path)
    FIGURES["site_seconds"] = round(time.monotonic() - started, 1)
    assert result.rc == 0, result.describe()
    assert "/v9.0.0/cni-plugins-linux-amd64-v9.0.0.tgz" in mirror.requests, mirror.requests
    # The Flatcar vars were the ones in force: the units went to the writable /etc.
    for unit in ("run-netns.mount", "nodeprep-netns-propagation.service"):
        assert flatcar.run(["test", "-f", "/etc/systemd/system/" + unit], check=False).returncode == 0, unit

    usr_is_read_only_erofs(flatcar)
    with usr_image:
        usr_after = os.fstat(usr_image.fileno())
    assert (usr_after.st_mtime_ns, usr_after.st_size) == (usr_before.st_mtime_ns, usr_before.st_size)
    netns_is_shared_tmpfs(flatcar, "after site.yml")
    for plugin in POD_PLUGINS:
        link = "/opt/cni/bin/" + plugin
        assert flatcar.run(["readlink", link]).stdout.strip() == "/opt/cni/versions/current/" + plugin
        assert flatcar.run(["readlink", "-e", link]).stdout.strip() == "/opt/cni/versions/v9.0.0/" + plugin
    assert cri.searched_dirs(flatcar.run(["containerd", "config", "dump"]).stdout) == ["/opt/cni/bin"]
    flatcar.write_file("/etc/cni/net.d/10-podnet.conflist", json.dumps(CONFLIST))
    FIGURES["pod_after_site"] = pod_runs(flatcar, "pod-site")


@pytest.mark.parametrize("reboot", [1, 2])
def test_netns_and_pods_survive_a_real_reboot(flatcar, reboot):
    before = flatcar.boot_id()
    assert flatcar.reboot() != before
    FIGURES["reboot_%d_to_ssh" % reboot] = flatcar.timings["reboot_to_ssh"]
    assert flatcar.system_state in ("running", "degraded")
    netns_is_shared_tmpfs(flatcar, "after reboot %d" % reboot)
    usr_is_read_only_erofs(flatcar)
    assert cri.searched_dirs(flatcar.run(["containerd", "config", "dump"]).stdout) == ["/opt/cni/bin"]
    FIGURES["pod_after_reboot_%d" % reboot] = pod_runs(flatcar, "pod-reboot-%d" % reboot)


def render_flatcar_ignition(tmp_path) -> tuple:
    """playbooks/render.yml's Ignition config for Flatcar, and its units by name (name: contents)."""
    out = tmp_path / "artifacts"
    localhost = tmp_path / "localhost.yml"
    localhost.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    rendered = ansible_runner.run_playbook(REPO / "playbooks/render.yml", localhost, cwd=tmp_path, extra_vars={
        "netns_render_dir": str(out), "netns_render_targets": [{"os": "flatcar", "netns_dir": "/run/netns"}]})
    assert rendered.rc == 0, rendered.describe()
    config = out / "ignition" / "netns-flatcar.ign"
    units = json.loads(config.read_text())["systemd"]["units"]
    assert all(unit["enabled"] is True for unit in units), units
    return config, {unit["name"]: unit["contents"] for unit in units}


def ignition_wrote(root, units: dict) -> None:
    """Every unit byte for byte in the root's /etc, each enabled by Ignition's preset, and its result file."""
    for name, contents in units.items():
        assert (root / "etc/systemd/system" / name).read_text() == contents, name
    preset = (root / vm_flatcar.IGNITION_PRESET).read_text()
    # One line per unit, in no fixed order.
    assert preset.endswith("\n") and sorted(preset.splitlines()) == sorted("enable " + name for name in units), preset
    assert json.loads((root / "etc/.ignition-result.json").read_text())["userConfigProvided"] is True


def files_stage_succeeded_but_for_relabelling(stage: dict, units: dict, root) -> str:
    """The files stage's outcome, failing on anything but Ignition's SELinux relabel step being unable to run.

    Debian builds Ignition with relabelling on, which (whether or not the root uses SELinux) ends
    the files stage by running ``setfiles`` over what it wrote. That step comes after every file,
    unit, preset and the result file are written, and it changes nothing but SELinux labels, which
    this root's kernel and /etc/selinux/config (SELINUX=disabled) do not use. So only that exact
    failure, with setfiles absent and everything written (checked byte for byte), is accepted.
    """
    ignition_wrote(root, units)
    log = stage["log"]
    if stage["rc"] == 0:
        return "exit 0"
    failed = [line for line in log.splitlines() if "[failed]" in line or line.startswith("CRITICAL")]
    assert stage["rc"] == 1 and shutil.which("setfiles") is None, log
    # Ignition relabels each unit it wrote, the preset dir it made and its result file.
    assert "relabeling %d patterns" % (len(units) + 2) in log, log
    assert len(failed) == 2 and all('"setfiles": executable file not found in $PATH' in line for line in failed), log
    assert failed[1].startswith("CRITICAL : Ignition failed: failed to handle relabeling:"), log
    for name in units:
        assert '[finished] setting preset to enabled for "%s"' % name in log, log
    return "exit 1: " + failed[1]


def ignited_node_is_prepared(node: vm.VirtualNode, units: dict, when: str, figures: dict) -> None:
    """/run/netns a shared tmpfs, /usr the read-only erofs, and Ignition's units enabled and active, byte for byte."""
    netns_is_shared_tmpfs(node, when, figures)
    usr_is_read_only_erofs(node)
    for name, contents in units.items():
        assert node.read_file("/etc/systemd/system/" + name) == contents, (when, name)
        assert node.run(["systemctl", "is-enabled", name]).stdout.strip() == "enabled", (when, name)
        assert node.run(["systemctl", "is-active", name]).stdout.strip() == "active", (when, name)
        assert node.run(["readlink", "/etc/systemd/system/local-fs.target.wants/" + name]).stdout.strip() == \
            "/etc/systemd/system/" + name, (when, name)
    # Ansible never reached this VM: no record of the role, no Ansible temp dir.
    for path in ("/var/lib/nodeprep", "/root/.ansible", "/tmp/.ansible-remote"):
        assert node.run(["test", "-e", path], check=False).returncode == 1, (when, path)


# systemd's own line on its first-boot preset step. systemd 252 applies every preset it can and then
# reports a masked unit (the image masks several) as this error (ERFKILL is its "unit is masked").
PRESETS_APPLIED = ("Populated /etc with preset unit settings.",
                   "Failed to populate /etc with preset unit settings, ignoring: Operation not possible due to RF-kill")


def first_boot_presets(node: vm.VirtualNode) -> str | None:
    """systemd's line on the presets when it took this boot for the machine's first, else None."""
    journal = node.run(["journalctl", "-b", "-o", "cat"]).stdout.splitlines()
    if "Detected first boot." not in journal:
        return None
    return next((line for line in journal if "preset unit settings" in line), "no preset step logged")


def test_ignition_alone_gives_the_same_netns_at_first_boot(tmp_path):
    require_image(vm_flatcar.FLATCAR_IMAGE, "Flatcar-shaped VM image", "tools/testbed.py vm-image-flatcar")
    assert os.access(vm_flatcar.IGNITION, os.X_OK), "no %s: run tools/bootstrap (Debian package ignition)" % vm_flatcar.IGNITION
    figures: dict = {"findmnt": []}
    config, units = render_flatcar_ignition(tmp_path)
    # A fresh root: none of the units exist before Ignition writes them.
    fresh = vm_flatcar.FLATCAR_IMAGE / vm_flatcar.ROOT_TREE
    assert not any((fresh / "etc/systemd/system" / name).exists() for name in units)
    assert not (fresh / vm_flatcar.IGNITION_PRESET).exists()

    ignited = vm_flatcar.ignition_root(config, tmp_path / "ignition")
    figures["ignition_seconds"] = {stage: ignited.stages[stage]["seconds"] for stage in ("fetch-offline", "files")}
    figures["ignition_files_stage"] = files_stage_succeeded_but_for_relabelling(ignited.stages["files"], units, ignited.root)
    shutil.rmtree(ignited.root)

    node = vm_flatcar.flatcar_node("ignited", tmp_path / "vm", image=ignited.image, boot_timeout=BOOT_TIMEOUT)
    try:
        node.start()
        figures["first_boot"] = dict(node.timings)
        figures["first_boot_presets"] = first_boot_presets(node)
        assert figures["first_boot_presets"] in PRESETS_APPLIED, figures["first_boot_presets"]
        root = vm_flatcar.findmnt(node, "/")
        assert (root["source"], root["fstype"]) == ("/dev/vda", "ext4") and "rw" in root["options"].split(","), root
        ignited_node_is_prepared(node, units, "Ignition's first boot", figures)
        machine_id = node.read_file("/etc/machine-id").strip()
        assert len(machine_id) == 32 and int(machine_id, 16) >= 0, machine_id

        before = node.boot_id()
        assert node.reboot() != before
        figures["reboot_to_ssh"] = node.timings["reboot_to_ssh"]
        # Not a first boot any more: what Ignition's preset enabled stays enabled on disk.
        assert first_boot_presets(node) is None
        assert node.read_file("/etc/machine-id").strip() == machine_id
        ignited_node_is_prepared(node, units, "after a reboot", figures)
    finally:
        if node.console_log.exists():  # kept for a failed run: stop() removes the VM's files
            shutil.copyfile(node.console_log, tmp_path / "console.log")
        node.stop()
        print("Ignition-prepared Flatcar-shaped VM figures: %s" % json.dumps(figures, indent=1))
