"""Test-bed nodes reached over real SSH: an OpenSSH server inside each node.

The nodes share the host's network namespace (they only install files), so each node's sshd
listens on 127.0.0.1 on a port of its own; the distribution's ssh.service/ssh.socket are masked
in the rootfs so nothing ever binds the host's port 22. Host keys are generated inside each node
at start (its own overlay layer), the client key once per bench run.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

# pylint: disable=wrong-import-position
import testbed as testbed_tool  # noqa: E402  (tools/testbed.py)
from testbed_lib import node as node_mod  # noqa: E402

SSH_ROOTFS = node_mod.TESTBED_CACHE / "rootfs-bookworm-ssh"
SSH_RECIPE = "ssh-1:" + testbed_tool.ROOTFS_RECIPE


def ensure_ssh_rootfs() -> Path:
    """The bookworm rootfs plus openssh-server, cached next to it and rebuilt when either changes."""
    if testbed_tool.rootfs_is_complete(SSH_ROOTFS, SSH_RECIPE):
        return SSH_ROOTFS
    if SSH_ROOTFS.exists() and testbed_tool.rootfs_in_use(SSH_ROOTFS):
        raise SystemExit("bench: %s needs a rebuild but running nodes use it; stop them first" % SSH_ROOTFS)
    testbed_tool.ensure_rootfs()
    for stale in SSH_ROOTFS.parent.glob(SSH_ROOTFS.name + ".build-*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=SSH_ROOTFS.name + ".build-", dir=SSH_ROOTFS.parent))
    subprocess.run(["cp", "-a", "--reflink=auto", str(node_mod.ROOTFS_CACHE) + "/.", str(staging)], check=True)
    (staging / node_mod.ROOTFS_STAMP).unlink()
    testbed_tool.install_in_rootfs(staging, ["openssh-server"])
    for unit in ("ssh.service", "ssh.socket", "sshd.service"):
        link = staging / "etc/systemd/system" / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    # Keys made at package install would be shared by every node: each node makes its own.
    for key in (staging / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    testbed_tool.tune_rootfs(staging)
    (staging / node_mod.ROOTFS_STAMP).write_text(SSH_RECIPE + "\n")
    staging.chmod(0o755)
    if SSH_ROOTFS.exists():
        shutil.rmtree(SSH_ROOTFS)
    staging.rename(SSH_ROOTFS)
    return SSH_ROOTFS


def client_key(directory: Path) -> Path:
    key = directory / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_sshd(node, key: Path) -> int:
    """Host keys, the client's public key and an sshd on 127.0.0.1:<port> inside the node."""
    ssh_dir = node.path("/root/.ssh")
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    authorized = ssh_dir / "authorized_keys"
    authorized.write_text(Path(str(key) + ".pub").read_text())
    authorized.chmod(0o600)
    port = free_port()
    node.run("ssh-keygen -A >/dev/null && mkdir -p /run/sshd && /usr/sbin/sshd -p %d -o ListenAddress=127.0.0.1 "
             "-o PermitRootLogin=prohibit-password -o PasswordAuthentication=no -o UsePAM=no" % port)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return port
        time.sleep(0.05)
    raise RuntimeError("sshd in node %s did not listen on 127.0.0.1:%d" % (node.name, port))


def inventory_vars(port: int, key: Path) -> dict:
    return {
        "ansible_connection": "ansible.builtin.ssh",
        "ansible_host": "127.0.0.1",
        "ansible_port": port,
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(key),
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
        "ansible_python_interpreter": "/usr/bin/python3",
    }
