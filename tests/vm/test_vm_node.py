"""VM nodes on Debian's own kernel under QEMU (testbed_lib/vm.py), reached by Ansible over real SSH.

One VM: boot, an Ansible ping and a module of this collection over SSH, a real reboot, a clean
power-off; the figures (boot to SSH, reboot, power-off) are printed (``pytest -rA`` shows them).
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from testbed_lib import ansible_runner, vm
from testbed_lib.http_server import LocalServer
from testbed_lib.node import pid_alive

LISTEN = "0A"  # a listening socket's state in /proc/net/tcp


def listeners(port: int) -> list[str]:
    """The local addresses (hex, as the kernel prints them) listening on ``port`` on the host."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table, encoding="ascii") as sockets:
            for line in list(sockets)[1:]:
                fields = line.split()
                address, hex_port = fields[1].split(":")
                if int(hex_port, 16) == port and fields[3] == LISTEN:
                    found.append(address)
    return found


def processes_of(machine: str) -> list[int]:
    """PIDs of the host's processes whose command line names the VM (its QEMU, its SSH connections)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if machine.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def only_result(result: ansible_runner.PlaybookResult, host: str) -> dict:
    assert result.rc == 0, result.describe()
    [task] = result.task_results(host=host)
    return task.result


def test_the_vm_command_line_writes_only_its_overlay_and_forwards_only_the_loopback(tmp_path):
    if not vm.image_info():
        raise AssertionError("no VM image at %s: run tools/testbed.py vm-image (make vm-lane)" % vm.VM_IMAGE)
    node = vm.VirtualNode("shape", tmp_path / "vm", accel="tcg", disks=("64M",))
    node.prepare()
    node.port = 2222
    command = node.qemu_command()
    assert command[command.index("-accel") + 1] == "tcg"
    assert command[command.index("-netdev") + 1] == "user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22"
    drives = [command[index + 1] for index, argument in enumerate(command) if argument == "-drive"]
    assert drives == ["file=%s,format=qcow2,if=virtio" % path for path in (node.overlay, node.disk_path(0))]
    info = json.loads(subprocess.run(["qemu-img", "info", "--output", "json", str(node.overlay)],
                                     capture_output=True, text=True, check=True).stdout)
    assert (info["format"], info["backing-filename"]) == ("qcow2", str(vm.VM_IMAGE / "disk.img"))
    assert info["virtual-size"] == os.stat(vm.VM_IMAGE / "disk.img").st_size
    node.stop()
    assert not node.workdir.exists()


def test_a_vm_answers_ansible_over_ssh_reboots_and_powers_off(virtual_node, tmp_path):
    disk = vm.VM_IMAGE / "disk.img"
    disk_before = disk.stat()
    node = virtual_node("lane", disks=("64M",), kernel_args="nodeprep.lane=1")
    booted = dict(node.timings)
    # What the later lanes build on: an empty disk of its own (dm targets go there) and kernel arguments.
    assert node.run(["lsblk", "--bytes", "--nodeps", "--noheadings", "--output", "SIZE", "/dev/vdb"]).stdout.split() == [
        str(64 << 20)]
    assert "nodeprep.lane=1" in node.read_file("/proc/cmdline").split()
    assert node.system_state == "running", node.run(["systemctl", "--failed", "--no-legend"], check=False).stdout
    # The forward is the VM's only way in, and it is on the host's loopback alone.
    assert listeners(node.port) == ["0100007F"]
    # Its own kernel (Debian's, from the image), its own root filesystem on the virtual disk.
    assert node.run(["uname", "-r"]).stdout.strip() == vm.image_info()["kernel"] != os.uname().release

    inventory = ansible_runner.write_inventory(tmp_path / "inventory.yml", [node])
    assert only_result(ansible_runner.run_adhoc(inventory, "ansible.builtin.ping"), node.name)["ping"] == "pong"
    mounts = only_result(ansible_runner.run_adhoc(inventory, "nodeprep.cni.mount_info",
                                                  {"paths": ["/", "/opt/cni/bin"]}), node.name)
    assert mounts["known"] is True and mounts["changed"] is False, mounts
    root = mounts["paths"]["/"]["mountpoint"]
    assert (root["source"], root["fstype"]) == ("/dev/vda", "ext4"), root
    assert mounts["paths"]["/opt/cni/bin"]["mount"]["target"] == "/"
    # Ansible came in through sshd, not a local shell.
    facts = only_result(ansible_runner.run_adhoc(inventory, "ansible.builtin.setup",
                                                 {"filter": ["ansible_env", "ansible_kernel"]}), node.name)
    assert facts["ansible_facts"]["ansible_env"]["SSH_CONNECTION"].split()[2] == vm.GUEST_ADDRESS
    assert facts["ansible_facts"]["ansible_kernel"] == vm.image_info()["kernel"]

    # A server on the host's loopback (a release mirror) is there for the guest at the gateway's address.
    served = tmp_path / "served"
    served.mkdir()
    (served / "release.txt").write_bytes(os.urandom(4096))
    with LocalServer(served) as mirror:
        fetched = node.run(["python3", "-c", "import sys, urllib.request; sys.stdout.buffer.write("
                            "urllib.request.urlopen(sys.argv[1], timeout=30).read())", vm.guest_url(mirror.url("release.txt"))],
                           text=False).stdout
        assert fetched == (served / "release.txt").read_bytes() and mirror.requests == ["/release.txt"]

    first_boot = node.boot_id()
    assert node.reboot() != first_boot
    assert node.system_state == "running"
    assert only_result(ansible_runner.run_adhoc(inventory, "ansible.builtin.ping"), node.name)["ping"] == "pong"

    pid = node.pid
    node.stop()
    assert node.last_exit == "poweroff" and node.exit_code() == 0, node.qemu_output()
    assert not pid_alive(pid) and processes_of(node.machine) == []  # no QEMU, no SSH connection left
    # The cached image is only ever a backing file: no VM writes to it.
    assert (disk.stat().st_mtime_ns, disk.stat().st_size) == (disk_before.st_mtime_ns, disk_before.st_size)
    print("VM figures (s): image build (cold) %s, boot to SSH %s, boot to running %s, reboot to SSH %s, "
          "power-off %s; accelerator %s" % (
              vm.image_info()["seconds"], booted["boot_to_ssh"], booted["boot_to_running"],
              node.timings["reboot_to_ssh"], node.timings["poweroff"], node.accel))


def test_a_vm_that_does_not_answer_in_time_is_killed_by_its_pid(tmp_path, request):
    if not vm.image_info():
        raise AssertionError("no VM image at %s: run tools/testbed.py vm-image (make vm-lane)" % vm.VM_IMAGE)
    # Five seconds is far too short for a boot under emulation: SSH never answers.
    node = vm.VirtualNode("mute", tmp_path / "vm", boot_timeout=5, stop_timeout=5)
    request.addfinalizer(node.stop)
    with pytest.raises(vm.VMError, match="no SSH on 127.0.0.1"):
        node.start()
    assert node.last_exit == "killed" and node.exit_code() is not None
    assert processes_of(node.machine) == []
    assert node.console_log.is_file()  # kept for whoever reads the failure
