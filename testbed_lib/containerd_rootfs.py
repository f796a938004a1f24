"""The finishing steps of a node rootfs that runs a real containerd with real pod sandboxes.

Applied by ``tools/testbed.py bootstrap`` to a freshly debootstrapped suite, after its packages
are installed: Debian's containerd, or one built from its release tag (``install_built_containerd``
first puts its binaries in ``/usr/local/bin``, its own unit in place and its own ``config default``
in ``/etc/containerd/config.toml``, as containerd's install guide does). Three things make pods run
in a systemd-nspawn node on this VM:

* a sandbox image without a registry: an OCI archive with one layer holding Debian's
  ``busybox-static``, named exactly like the sandbox image containerd's own default config
  names, and imported at every boot by a oneshot unit (containerd's store lives on a tmpfs);
* writable cgroup v1 controllers: nspawn mounts them read-only, so a oneshot unit mounts
  each controller afresh (read-write, inside the node's cgroup namespace) before containerd;
* a ``runc`` wrapper first on containerd's PATH that drops what this VM cannot grant a
  container: a negative ``oomScoreAdj`` (no CAP_SYS_RESOURCE here) and, on a unified cgroup
  hierarchy without controllers (sid), the resource limits;
* nothing in ``/etc/containerd/config.toml`` is changed: the package's (or ``config default``'s)
  own file stays the starting state the collection is tested against.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import shutil
import tomllib
from pathlib import Path
from typing import Callable

SANDBOX_ARCHIVE = "usr/local/share/nodeprep-testbed/sandbox-image.tar"
SANDBOX_UNIT = "nodeprep-sandbox-image.service"
CGROUPS_UNIT = "nodeprep-cgroups-writable.service"
RUNC_WRAPPER = "usr/local/sbin/runc"
RECIPE_VERSION = "3"

RUNC_WRAPPER_SCRIPT = '''#!/usr/bin/python3
"""runc for test bed nodes: drops from a bundle's OCI spec what this VM cannot grant.

No CAP_SYS_RESOURCE here, so a negative oomScoreAdj fails; a unified cgroup hierarchy
without controllers (sid nodes) cannot apply resource limits. Everything else is runc's.
"""
import json
import os
import sys

REAL_RUNC = "/usr/sbin/runc"


def bundle_dir(argv):
    for index, arg in enumerate(argv):
        if arg in ("--bundle", "-b") and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith("--bundle="):
            return arg.split("=", 1)[1]
    return None


def controllers_missing():
    try:
        with open("/sys/fs/cgroup/cgroup.controllers", encoding="utf-8") as handle:
            return "memory" not in handle.read().split()
    except OSError:
        return False


bundle = bundle_dir(sys.argv[1:]) if "create" in sys.argv[1:] or "run" in sys.argv[1:] else None
if bundle:
    spec_path = os.path.join(bundle, "config.json")
    with open(spec_path, encoding="utf-8") as handle:
        spec = json.load(handle)
    spec.get("process", {}).pop("oomScoreAdj", None)
    if controllers_missing():
        spec.get("linux", {}).pop("resources", None)
    with open(spec_path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(spec, handle)
    os.replace(spec_path + ".tmp", spec_path)
os.execv(REAL_RUNC, [REAL_RUNC] + sys.argv[1:])
'''

SANDBOX_UNIT_TEXT = """[Unit]
Description=Import the test bed's sandbox image into containerd (no registry is reachable)
After=containerd.service
Requires=containerd.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart={ctr} -n k8s.io images import /{archive}

[Install]
WantedBy=multi-user.target
"""

CGROUPS_EXEC_START = (
    "ExecStart=/bin/sh -c 'for dir in /sys/fs/cgroup/*/; do c=$$(basename \"$$dir\"); "
    "case \"$$c\" in unified|systemd) continue;; esac; umount -l \"$$dir\" && "
    "mount -t cgroup -o \"rw,nosuid,nodev,noexec,$$c\" cgroup \"$$dir\" || exit 1; done'\n")
CGROUPS_UNIT_TEXT = """[Unit]
Description=Writable cgroup v1 controllers for runc (nspawn mounts them read-only)
Before=containerd.service
ConditionPathIsMountPoint=/sys/fs/cgroup/memory

[Service]
Type=oneshot
RemainAfterExit=yes
""" + CGROUPS_EXEC_START + """
[Install]
WantedBy=multi-user.target
"""

# The sandbox's process: PID 1 ignores signals it has no handler for, so trap TERM to stop.
SANDBOX_ENTRYPOINT = ["/bin/busybox", "sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait; done"]


def default_sandbox_image(config_default: str) -> str:
    """The sandbox image named by ``containerd config default`` (v2, and v3/v4 alike)."""
    config = tomllib.loads(config_default)
    plugins = config.get("plugins", {})
    if config.get("version", 2) >= 3:
        return plugins["io.containerd.cri.v1.images"]["pinned_images"]["sandbox"]
    return plugins["io.containerd.grpc.v1.cri"]["sandbox_image"]


def _blob(blobs: dict[str, bytes], data: bytes) -> tuple[str, int]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return digest, len(data)


def sandbox_image_archive(busybox: bytes, name: str) -> bytes:
    """An OCI image layout archive with one layer (bin/busybox), named ``name``."""
    layer_buffer = io.BytesIO()
    with tarfile.open(fileobj=layer_buffer, mode="w", format=tarfile.PAX_FORMAT) as layer:
        for directory in ("bin", "proc", "sys", "dev", "etc", "tmp"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            layer.addfile(info)
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = len(busybox), 0o755
        layer.addfile(info, io.BytesIO(busybox))
        link = tarfile.TarInfo("bin/sh")
        link.type, link.linkname = tarfile.SYMTYPE, "busybox"
        layer.addfile(link)
    layer_tar = layer_buffer.getvalue()
    blobs: dict[str, bytes] = {}
    diff_id = "sha256:" + hashlib.sha256(layer_tar).hexdigest()
    layer_digest, layer_size = _blob(blobs, gzip.compress(layer_tar, mtime=0))
    config = {"architecture": "amd64", "os": "linux",
              "config": {"Entrypoint": SANDBOX_ENTRYPOINT},
              "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
    config_digest, config_size = _blob(blobs, json.dumps(config, sort_keys=True).encode())
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": config_digest, "size": config_size},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": layer_digest, "size": layer_size}]}
    manifest_digest, manifest_size = _blob(blobs, json.dumps(manifest, sort_keys=True).encode())
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "digest": manifest_digest, "size": manifest_size,
                            "platform": {"architecture": "amd64", "os": "linux"},
                            "annotations": {"io.containerd.image.name": name,
                                            "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1]}}]}
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w", format=tarfile.PAX_FORMAT) as out:
        files = {"oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
                 "index.json": json.dumps(index, sort_keys=True).encode()}
        files.update(("blobs/sha256/" + d.split(":", 1)[1], data) for d, data in blobs.items())
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), 0o644
            out.addfile(info, io.BytesIO(data))
    return archive.getvalue()


def finish(rootfs: Path, run_in_rootfs: Callable[..., str]) -> None:
    """Adds the sandbox image, its import unit and the runc wrapper to a built rootfs."""
    name = default_sandbox_image(run_in_rootfs("containerd", "config", "default", capture=True))
    archive = rootfs / SANDBOX_ARCHIVE
    archive.parent.mkdir(parents=True, exist_ok=True)
    archive.write_bytes(sandbox_image_archive((rootfs / "bin/busybox").read_bytes(), name))
    ctr = "/usr/bin/ctr" if (rootfs / "usr/bin/ctr").exists() else "/usr/local/bin/ctr"
    units = {SANDBOX_UNIT: SANDBOX_UNIT_TEXT.format(archive=SANDBOX_ARCHIVE, ctr=ctr),
             CGROUPS_UNIT: CGROUPS_UNIT_TEXT}
    wants = rootfs / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    for unit, text in units.items():
        (rootfs / "etc/systemd/system" / unit).write_text(text)
        (wants / unit).unlink(missing_ok=True)
        (wants / unit).symlink_to("/etc/systemd/system/" + unit)
    # containerd copies the node's /etc/hosts into every sandbox; bookworm's minbase has none.
    hosts = rootfs / "etc/hosts"
    if not hosts.exists():
        hosts.write_text("127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n")
    wrapper = rootfs / RUNC_WRAPPER
    wrapper.parent.mkdir(parents=True, exist_ok=True)
    wrapper.write_text(RUNC_WRAPPER_SCRIPT)
    wrapper.chmod(0o755)
    (rootfs / "usr/local/share/nodeprep-testbed/sandbox-image.name").write_text(name + "\n")


def install_built_containerd(rootfs: Path, bin_dir: Path, unit: Path, run_in_rootfs: Callable[..., str]) -> None:
    """containerd built from a release tag, laid out as its install guide says, on its own default config."""
    for binary in sorted(bin_dir.iterdir()):
        target = rootfs / "usr/local/bin" / binary.name
        shutil.copyfile(binary, target)
        target.chmod(0o755)
    (rootfs / "etc/systemd/system/containerd.service").write_text(unit.read_text())
    wants = rootfs / "etc/systemd/system/multi-user.target.wants/containerd.service"
    wants.parent.mkdir(parents=True, exist_ok=True)
    wants.unlink(missing_ok=True)
    wants.symlink_to("/etc/systemd/system/containerd.service")
    config = rootfs / "etc/containerd/config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(run_in_rootfs("/usr/local/bin/containerd", "config", "default", capture=True))
