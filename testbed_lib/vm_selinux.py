"""VM nodes that boot with SELinux enforcing on Debian's own policy, running Debian's containerd.

The image (``vm-bookworm-selinux`` under the test-bed cache) is the common VM image's recipe
(vm.py) over the bookworm containerd rootfs (containerd, runc, the sandbox image and its import
unit), plus Debian's ``selinux-policy-default`` (the reference policy), ``policycoreutils``
(``setfiles``, ``restorecon``), ``policycoreutils-python-utils`` (``semanage``),
``selinux-utils`` (``matchpathcon``, ``getenforce``) and ``auditd`` (denials in
``/var/log/audit/audit.log``).

The tree is labelled while the image is built: ``setfiles`` run in a chroot of the staged root
(no /proc, /sys or other mounts to cross) writes every file's ``security.selinux`` attribute, and
``mkfs.ext4 -d`` copies extended attributes into the disk image. So a VM boots straight into
enforcing mode (``KERNEL_ARGS``) without the relabelling boot Debian's ``selinux-activate`` asks
for.
"""
from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

from testbed_lib import vm
from testbed_lib.node import TESTBED_CACHE

SELINUX_IMAGE = TESTBED_CACHE / "vm-bookworm-selinux"
PACKAGES = ("selinux-policy-default", "policycoreutils", "policycoreutils-python-utils", "selinux-utils", "auditd")
KERNEL_ARGS = "security=selinux selinux=1 enforcing=1"
FILE_CONTEXTS = "/etc/selinux/default/contexts/files/file_contexts"
AUDIT_LOG = "/var/log/audit/audit.log"
# Bumped whenever the files below or the steps of finish() change.
RECIPE_VERSION = "1"
FILES = {
    "etc/selinux/config": "SELINUX=enforcing\nSELINUXTYPE=default\n",
    # The seed unit writes root's authorized key and the host key into new files: give them the
    # labels sshd may read, whatever the creating domain's transitions say.
    "etc/systemd/system/nodeprep-vm-seed.service.d/selinux.conf":
        "[Service]\nExecStartPost=/sbin/restorecon -R /root/.ssh /etc/ssh\n",
}
# The test bed's runc wrapper exists for nspawn nodes without CAP_SYS_RESOURCE; a VM has it, so
# containerd runs Debian's runc itself, as on a real host.
REMOVED = ("usr/local/sbin/runc",)


def finish(root: Path, _staging: Path, _run) -> None:
    # After the packages: selinux-policy-default's scripts must not find (or replace) these first.
    for relative, content in FILES.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    for relative in REMOVED:
        (root / relative).unlink(missing_ok=True)
    (root / "root/.ssh").mkdir(mode=0o700, exist_ok=True)
    # A chroot in a mount namespace of its own, not nspawn: only /proc (which setfiles sets labels
    # through) is mounted inside, so every other file setfiles sees is the tree's own.
    subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                    'mount -t proc proc "$1/proc" && exec chroot "$1" setfiles -F -e /proc "$2" /',
                    "label", str(root), FILE_CONTEXTS], check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)


VARIANT = vm.ImageVariant(
    recipe="selinux-%s:%s:%s" % (RECIPE_VERSION, json.dumps(FILES, sort_keys=True), ",".join(REMOVED)),
    packages=PACKAGES, finish=finish)


def ensure_image(base: Path, base_recipe: str, install, run) -> Path:
    """The SELinux image over ``base`` (the bookworm containerd rootfs); nothing when warm."""
    return vm.ensure_image(base, base_recipe, install, run, image=SELINUX_IMAGE, variant=VARIANT)


def selinux_node(name: str, workdir: str | os.PathLike, **options) -> vm.VirtualNode:
    """A VM on the SELinux image, booted enforcing. Its boot starts containerd and auditd as well:
    at a load average of 60 it took 443 s to SSH, so the bound is wider than a plain VM's."""
    options.setdefault("boot_timeout", 900.0)
    return vm.VirtualNode(name, workdir, image=SELINUX_IMAGE, kernel_args=KERNEL_ARGS, **options)


# --- inside a running VM ----------------------------------------------------------------------

def labels(node: vm.VirtualNode, *paths: str) -> dict[str, dict]:
    """Every entry under ``paths`` (links themselves, not their targets): its ``security.selinux``
    context and its class as the policy names it (``dir``, ``file``, ``lnk_file``)."""
    script = "find %s -exec stat -c '%%C|%%F|%%n' {} +" % " ".join(shlex.quote(p) for p in paths)
    classes = {"directory": "dir", "regular file": "file", "regular empty file": "file", "symbolic link": "lnk_file"}
    found = {}
    for line in node.run(script).stdout.splitlines():
        context, kind, path = line.split("|", 2)
        found[path] = {"context": context, "kind": classes.get(kind, kind)}
    return found


def audit_position(node: vm.VirtualNode) -> int:
    """The audit log's size now: denials after this offset are the ones a step caused."""
    return int(node.run(["stat", "-c", "%s", AUDIT_LOG]).stdout.strip())


def denials_since(node: vm.VirtualNode, offset: int) -> list[str]:
    """AVC lines auditd wrote after ``offset`` (auditd flushes each record as it comes)."""
    text = node.run("tail -c +%d %s" % (offset + 1, AUDIT_LOG)).stdout
    return [line for line in text.splitlines() if "type=AVC" in line]


# Debian's policy has no domain for containerd: systemd starts it in initrc_t, which the policy's
# "unconfined" module leaves unconfined, so no label keeps it from executing a file. To show what a
# label means to a confined domain, a plugin is run the way init starts a daemon: from initrc_t
# through a file of a daemon's entry type, which moves into that daemon's confined domain
# (dhcpc_t: the DHCP client, which may run programs labelled bin_t, as it runs its hook scripts).
CONFINED_DOMAIN = "dhcpc_t"
CONFINED_ENTRY = ("/usr/local/sbin/nodeprep-confined-exec", "dhcpc_exec_t")
SERVICE_START = ("/usr/local/sbin/nodeprep-as-service", "initrc_exec_t")


def install_confined_exec(node: vm.VirtualNode) -> None:
    """The two small scripts run_confined() uses, labelled as entry points."""
    node.write_file(CONFINED_ENTRY[0], '#!/bin/sh\nexec "$@"\n', mode=0o755)
    node.write_file(SERVICE_START[0], '#!/bin/sh\nexec %s "$@"\n' % CONFINED_ENTRY[0], mode=0o755)
    for path, label in (CONFINED_ENTRY, SERVICE_START):
        node.run(["chcon", "-t", label, path])


def run_confined(node: vm.VirtualNode, *command: str, env: dict | None = None):
    """``command`` in the confined domain CONFINED_DOMAIN (entered as init enters a daemon's)."""
    assignments = ["%s=%s" % item for item in (env or {}).items()]
    return node.run(["env", *assignments, "runcon", "system_u:system_r:initrc_t:s0", SERVICE_START[0], *command],
                    check=False)


# Runs in the VM as root's login domain: copies one connection of the socket to stdin/stdout.
RELAY = """
import os, socket, sys, threading
conn = socket.socket(socket.AF_UNIX)
conn.connect(sys.argv[1])
def upstream():
    while True:
        data = os.read(0, 65536)
        if not data:
            conn.shutdown(socket.SHUT_WR)
            return
        conn.sendall(data)
threading.Thread(target=upstream, daemon=True).start()
while True:
    data = conn.recv(65536)
    if not data:
        break
    os.write(1, data)
"""


class ForwardedSocket:
    """A unix socket inside the VM, reachable through a socket on the host.

    Each connection to the host's end runs a relay in the VM over the VM's SSH connection, as
    root's login shell runs it. Not ssh's own socket forwarding: that connects from sshd's
    SELinux domain, which may not talk to the runtime, and its denials would mix with the ones
    a test looks for. Quacks like a node for ``cri.CRI``: ``path(socket)`` is the host's end.
    """

    def __init__(self, node: vm.VirtualNode, remote: str):
        self.node = node
        self.remote = remote
        self.rootfs = "(no node root: the socket is relayed)"  # cri.CRI rewrites paths under a node's root
        self.pid = 0
        self.local = Path(tempfile.mkdtemp(prefix="nodeprep-vm-socket-")) / "socket"
        self.server: socket.socket | None = None
        self.relays: list[subprocess.Popen] = []
        self.closing = False

    def __enter__(self) -> "ForwardedSocket":
        self.node.run(["true"])  # the shared SSH connection exists before the relays use it
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(str(self.local))
        self.server.listen(8)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self) -> None:
        while not self.closing:
            try:
                client = self.server.accept()[0]
            except OSError:
                return
            relay = subprocess.Popen(self.node.ssh_command() + ["--", "python3 -c %s %s" % (
                shlex.quote(RELAY), shlex.quote(self.remote))], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL)
            self.relays.append(relay)
            threading.Thread(target=self._pump_up, args=(client, relay), daemon=True).start()
            threading.Thread(target=self._pump_down, args=(client, relay), daemon=True).start()

    @staticmethod
    def _pump_up(client: socket.socket, relay: subprocess.Popen) -> None:
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                relay.stdin.write(data)
                relay.stdin.flush()
        except OSError:
            pass
        try:
            relay.stdin.close()
        except OSError:
            pass

    @staticmethod
    def _pump_down(client: socket.socket, relay: subprocess.Popen) -> None:
        try:
            while True:
                data = relay.stdout.read1(65536)
                if not data:
                    break
                client.sendall(data)
        except OSError:
            pass
        client.close()

    def __exit__(self, *exc_info) -> None:
        self.closing = True
        if self.server is not None:
            self.server.close()
        for relay in self.relays:
            if relay.poll() is None:
                relay.terminate()
            try:
                relay.wait(timeout=10)
            except subprocess.TimeoutExpired:
                relay.kill()
                relay.wait(timeout=10)
        self.local.unlink(missing_ok=True)
        self.local.parent.rmdir()

    def path(self, _socket: str) -> Path:
        return self.local
