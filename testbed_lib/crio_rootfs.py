"""A node rootfs that runs CRI-O built from its release tag, with real pod sandboxes and no registry.

Applied by ``tools/testbed.py runtimes`` to a copy of the sid runtime base (systemd, runc,
busybox-static) after Debian's ``conmon``, ``crun`` and ``skopeo`` are installed in it:

* ``crio`` (testbed_lib/runtimes.py) and the tagged tree's ``pinns`` go to ``/usr/local/bin`` and
  the tree's own ``crio.service`` to ``/etc/systemd/system``, as ``make install`` lays them out;
* the pause image CRI-O's own defaults name is the test bed's busybox sandbox image (the same OCI
  archive the containerd nodes import), copied by ``skopeo`` into CRI-O's containers-storage while
  the rootfs is built, so a node starts with it and never pulls;
* ``/etc/crio/crio.conf`` holds only what this VM needs, never a ``[crio.network]`` key: those
  stay CRI-O's defaults until the collection's drop-in in ``crio.conf.d`` sets them.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Callable

from testbed_lib import containerd_rootfs

RECIPE_VERSION = "1"
PACKAGES = ["conmon", "crun", "skopeo"]
SOCKET = "/run/crio/crio.sock"
STORAGE = "/var/lib/containers/storage"
RUNROOT = "/run/containers/storage"

# vfs: the node's root is itself an overlayfs, on which CRI-O's overlay driver cannot stack.
# No iptables or nft in the node and no pod asks for a hostPort, so CRI-O's host-port manager is off.
CRIO_CONF = """# The test bed's CRI-O settings (testbed_lib/crio_rootfs.py); CNI settings are CRI-O's defaults.
[crio]
storage_driver = "vfs"

[crio.runtime]
pinns_path = "/usr/local/bin/pinns"
disable_hostport_mapping = true
"""


def default_pause_image(crio_config: str) -> str:
    """The pause image ``crio config`` names (commented out when it is CRI-O's built-in default)."""
    found = re.search(r'^#?\s*pause_image\s*=\s*"([^"]+)"', crio_config, re.MULTILINE)
    if not found:
        raise RuntimeError("crio config names no pause_image")
    return found.group(1)


def install_built_crio(rootfs: Path, crio_bin: Path, node_files: Path, run_in_rootfs: Callable[..., str]) -> str:
    """CRI-O, pinns, its unit, the test bed's config and the pause image; returns the image's name."""
    for binary in (crio_bin / "crio", node_files / "bin/pinns"):
        target = rootfs / "usr/local/bin" / binary.name
        shutil.copyfile(binary, target)
        target.chmod(0o755)
    (rootfs / "etc/systemd/system/crio.service").write_text((node_files / "crio.service").read_text())
    wants = rootfs / "etc/systemd/system/multi-user.target.wants/crio.service"
    wants.parent.mkdir(parents=True, exist_ok=True)
    wants.unlink(missing_ok=True)
    wants.symlink_to("/etc/systemd/system/crio.service")
    (rootfs / "etc/crio/crio.conf.d").mkdir(parents=True, exist_ok=True)
    (rootfs / "etc/crio/crio.conf").write_text(CRIO_CONF)

    name = default_pause_image(run_in_rootfs("crio", "--log-level", "error", "config", capture=True))
    archive = rootfs / containerd_rootfs.SANDBOX_ARCHIVE
    archive.parent.mkdir(parents=True, exist_ok=True)
    archive.write_bytes(containerd_rootfs.sandbox_image_archive((rootfs / "bin/busybox").read_bytes(), name))
    # No registry: skopeo's default policy would want signatures it cannot fetch for a local archive.
    run_in_rootfs("skopeo", "--insecure-policy", "copy", "--quiet", "oci-archive:/" + containerd_rootfs.SANDBOX_ARCHIVE,
                  "containers-storage:[vfs@%s+%s]%s" % (STORAGE, RUNROOT, name))
    (rootfs / "usr/local/share/nodeprep-testbed/sandbox-image.name").write_text(name + "\n")
    # CRI-O copies the node's /etc/hosts into every sandbox.
    hosts = rootfs / "etc/hosts"
    if not hosts.exists():
        hosts.write_text("127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n")
    return name
