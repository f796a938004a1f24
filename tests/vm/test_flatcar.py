"""The collection on a Flatcar-shaped VM (testbed_lib/vm_flatcar.py): Debian userland with a
read-only erofs ``/usr`` on a disk of its own, ``/etc`` and ``/var`` writable, real reboots.

One VM for the module: ``site.yml`` over real SSH from a release mirror on the host's loopback,
then ``/run/netns`` is a shared tmpfs, the plugins are linked, containerd's own ``config dump`` and
CRI name them and a pod sandbox runs, before and after two real reboots; nothing under ``/usr``
changed. The ``findmnt`` lines after each boot are printed
(``pytest -rA`` shows them).
"""
from __future__ import annotations

import json
import os
import time

import pytest

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


def netns_is_shared_tmpfs(node: vm.VirtualNode, when: str) -> None:
    FIGURES["findmnt"].append("%s: %s | %s" % (when, vm_flatcar.findmnt_line(node, "/run/netns"),
                                               vm_flatcar.findmnt_line(node, "/usr")))
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
