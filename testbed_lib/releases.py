"""A local CNI plugins release mirror: Debian's real plugin binaries repacked as upstream ships them.

Layout (same as upstream's release downloads):
    <root>/v<version>/cni-plugins-linux-<arch>-v<version>.tgz
    <root>/v<version>/cni-plugins-linux-<arch>-v<version>.tgz.sha256   "<hex>  <filename>\\n"
    <root>/v<version>/cni-plugins-linux-<arch>-v<version>.tgz.sha512
Archives are byte-for-byte reproducible (fixed mtimes and owners, sorted members, gzip mtime 0),
so building the same version twice gives the same checksum.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

DEBIAN_PLUGINS_DIR = "/usr/lib/cni"
DEBIAN_LICENSE = Path("/usr/share/doc/containernetworking-plugins/copyright")
# Any fixed instant works; it only has to be the same on every build.
FIXED_MTIME = 1704067200  # 2024-01-01T00:00:00Z


@dataclass(frozen=True)
class Release:
    """A release on disk. sha256/sha512 are what the published checksum files claim."""

    version: str
    arch: str
    path: Path
    url_path: str
    sha256: str
    sha512: str
    plugins: tuple[str, ...] = field(default_factory=tuple)

    @property
    def filename(self) -> str:
        return self.path.name

    def url(self, base_url: str) -> str:
        return base_url.rstrip("/") + self.url_path


def tarball_name(version: str, arch: str = "amd64", os_name: str = "linux") -> str:
    return "cni-plugins-%s-%s-v%s.tgz" % (os_name, arch, version)


def available_plugins(plugins_dir: str = DEBIAN_PLUGINS_DIR) -> list[str]:
    directory = Path(plugins_dir)
    return sorted(p.name for p in directory.iterdir() if p.is_file() and os.access(p, os.X_OK))


# --- tar members ------------------------------------------------------------------------------

def _info(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = FIXED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def member(name: str, data: bytes = b"", mode: int = 0o755, kind: bytes = tarfile.REGTYPE, linkname: str = "",
           uid: int = 0, gid: int = 0) -> tuple[tarfile.TarInfo, bytes | None]:
    """One member exactly as named (tarfile.add would normalise hostile names away)."""
    regular = kind in (tarfile.REGTYPE, tarfile.AREGTYPE)
    info = _info(name, kind, mode, len(data) if regular else 0)
    info.linkname = linkname
    info.uid, info.gid = uid, gid
    return info, data if regular else None


def file_member(name: str, data: bytes, mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    return member(name, data, mode)


def dir_member(name: str) -> tuple[tarfile.TarInfo, None]:
    return member(name, mode=0o755, kind=tarfile.DIRTYPE)


def symlink_member(name: str, target: str) -> tuple[tarfile.TarInfo, None]:
    return member(name, mode=0o777, kind=tarfile.SYMTYPE, linkname=target)


def files_members(files: dict[str, bytes], dot_prefix: bool = True) -> list:
    """A release's members in upstream's layout: "./", then the sorted files as "./<name>";
    LICENSE and README.md 0644, everything else (the plugins) 0755."""
    prefix = "./" if dot_prefix else ""
    members = [dir_member("./")] if dot_prefix else []
    members.extend(member(prefix + name, data, 0o644 if name in ("LICENSE", "README.md") else 0o755)
                   for name, data in sorted(files.items()))
    return members


def _readme(version: str, arch: str, plugins: list[str]) -> bytes:
    return ("# CNI plugins v%s (%s)\n\nTest build for nodeprep.cni: Debian's containernetworking-plugins "
            "binaries repacked in the layout of an upstream release.\n\nPlugins: %s\n"
            % (version, arch, ", ".join(plugins))).encode()


def _license() -> bytes:
    if DEBIAN_LICENSE.is_file():
        return DEBIAN_LICENSE.read_bytes()
    return b"Apache License, Version 2.0\n"


def release_members(version: str, arch: str, plugins_dir: str, plugins: list[str]) -> list:
    """The members of a normal release of the plugins in ``plugins_dir``, in upstream's order."""
    files = {"LICENSE": _license(), "README.md": _readme(version, arch, plugins)}
    files.update((plugin, (Path(plugins_dir) / plugin).read_bytes()) for plugin in plugins)
    return files_members(files)


def tar_bytes(members: list) -> bytes:
    """An uncompressed tar archive of ``members`` ((TarInfo, bytes or None) pairs), in order."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return raw.getvalue()


def pack(members: list) -> bytes:
    compressed = io.BytesIO()
    # filename="" and mtime=0 keep the gzip header free of anything that varies between builds.
    # Level 1: ten times faster than 9 on these binaries for 10 % more bytes; tests build many.
    with gzip.GzipFile(filename="", fileobj=compressed, mode="wb", mtime=0, compresslevel=1) as gz:
        gz.write(tar_bytes(members))
    return compressed.getvalue()


def tarball(files: dict[str, bytes], extra_members: list = (), dot_prefix: bool = True) -> bytes:
    """A gzip release tarball of ``files`` ({name: bytes}) in upstream's layout, then ``extra_members``
    (hostile ones, say) as given."""
    return pack(files_members(files, dot_prefix) + list(extra_members))


def build_tarball(path: str | os.PathLike, files: dict[str, bytes], extra_members: list = (),
                  dot_prefix: bool = True) -> str:
    """``tarball()`` written at ``path``; returns the path."""
    Path(path).write_bytes(tarball(files, extra_members, dot_prefix))
    return str(path)


# --- writing releases -------------------------------------------------------------------------

def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.name + ".tmp")
    temp.write_bytes(data)
    os.replace(temp, path)


def _checksum_line(hex_digest: str, filename: str) -> bytes:
    return ("%s  %s\n" % (hex_digest, filename)).encode()


def write_release(root: str | os.PathLike, version: str, arch: str, archive: bytes,
                  checksummed: bytes | None = None, plugins: list[str] | None = None,
                  checksum_files: tuple[str, ...] = ("sha256", "sha512")) -> Release:
    """Writes ``archive`` and the ``checksum_files`` computed over ``checksummed`` (default: the archive)."""
    name = tarball_name(version, arch)
    url_path = "/v%s/%s" % (version, name)
    path = Path(root) / url_path.lstrip("/")
    summed = archive if checksummed is None else checksummed
    digests = {"sha256": hashlib.sha256(summed).hexdigest(), "sha512": hashlib.sha512(summed).hexdigest()}
    _write(path, archive)
    for algorithm in checksum_files:
        _write(path.with_name(name + "." + algorithm), _checksum_line(digests[algorithm], name))
    return Release(version, arch, path, url_path, digests["sha256"], digests["sha512"], tuple(plugins or ()))


def _plugins(plugins_dir: str, plugins: list[str] | None) -> list[str]:
    return sorted(plugins) if plugins is not None else available_plugins(plugins_dir)


def build_release(root: str | os.PathLike, version: str, arch: str = "amd64",
                  plugins_dir: str = DEBIAN_PLUGINS_DIR, plugins: list[str] | None = None) -> Release:
    """A faithful release: real binaries, LICENSE, a README naming the version, checksum files."""
    names = _plugins(plugins_dir, plugins)
    archive = pack(release_members(version, arch, plugins_dir, names))
    return write_release(root, version, arch, archive, plugins=names)


# --- hostile releases, for tests that must refuse them ------------------------------------------

def build_corrupt_checksum(root: str | os.PathLike, version: str, arch: str = "amd64",
                           plugins_dir: str = DEBIAN_PLUGINS_DIR, plugins: list[str] | None = None) -> Release:
    """A valid archive whose published checksum files do not match it.

    The returned sha256/sha512 are the (wrong) published values; the archive's real hash differs.
    """
    names = _plugins(plugins_dir, plugins)
    archive = pack(release_members(version, arch, plugins_dir, names))
    return write_release(root, version, arch, archive, checksummed=archive + b"corrupt", plugins=names)


def build_truncated(root: str | os.PathLike, version: str, arch: str = "amd64",
                    plugins_dir: str = DEBIAN_PLUGINS_DIR, plugins: list[str] | None = None) -> Release:
    """The first half of a valid archive, with checksum files of the FULL archive."""
    names = _plugins(plugins_dir, plugins)
    archive = pack(release_members(version, arch, plugins_dir, names))
    return write_release(root, version, arch, archive[: len(archive) // 2], checksummed=archive, plugins=names)


def build_traversal(root: str | os.PathLike, version: str, arch: str = "amd64",
                    plugins_dir: str = DEBIAN_PLUGINS_DIR, plugins: list[str] | None = None,
                    member: str = "../evil") -> Release:
    """A well-formed archive (correct checksums) that also holds a member escaping the target."""
    names = _plugins(plugins_dir, plugins)
    members = release_members(version, arch, plugins_dir, names)
    members.append(file_member(member, b"#!/bin/sh\necho escaped\n", 0o755))
    return write_release(root, version, arch, pack(members), plugins=names)


def build_symlink_member(root: str | os.PathLike, version: str, arch: str = "amd64",
                         plugins_dir: str = DEBIAN_PLUGINS_DIR, plugins: list[str] | None = None,
                         member: str = "./evil-link", target: str = "/etc/passwd") -> Release:
    """A well-formed archive (correct checksums) that also holds a symlink member."""
    names = _plugins(plugins_dir, plugins)
    members = release_members(version, arch, plugins_dir, names)
    members.append(symlink_member(member, target))
    return write_release(root, version, arch, pack(members), plugins=names)


MIB = 1024 * 1024


# Hostile releases need real plugins (so everything but the hostile member is right) but not all
# of them: three keep each build small and fast.
HOSTILE_PLUGINS = ["bridge", "host-local", "loopback"]


def _raw_tar(members: list) -> bytes:
    """Uncompressed tar blocks of ``members``, without the end-of-archive marker."""
    out = io.BytesIO()
    for info, data in members:
        out.write(info.tobuf(format=tarfile.GNU_FORMAT))
        if data:
            out.write(data)
            out.write(bytes(-len(data) % tarfile.BLOCKSIZE))
    return out.getvalue()


def pack_streamed(members: list, zero_members: list[tuple[str, int]] = ()) -> bytes:
    """Like pack(), plus members of ``size`` zero bytes each, as concatenated gzip members.

    Every gzip reader accepts concatenated members; a MiB of zeros compresses to about 1 KB once
    and is repeated, so hundreds of MiB of content cost no time and no memory to build.
    """
    parts = [gzip.compress(_raw_tar(members), compresslevel=1, mtime=0)]
    zero_mib = gzip.compress(bytes(MIB), compresslevel=9, mtime=0)
    for name, size in zero_members:
        if size % MIB:
            raise ValueError("zero members are whole MiB")
        parts.append(gzip.compress(_info(name, mode=0o755, size=size).tobuf(format=tarfile.GNU_FORMAT), mtime=0))
        parts.append(zero_mib * (size // MIB))
    parts.append(gzip.compress(bytes(2 * tarfile.BLOCKSIZE), mtime=0))
    return b"".join(parts)


def _with_release(root, version, arch, plugins_dir, plugins, extra_members, zero_members=()) -> Release:
    """A faithful release plus ``extra_members``, with correct checksum files: only the archive's
    content is hostile, so only an archive check can refuse it."""
    names = _plugins(plugins_dir, plugins if plugins is not None else HOSTILE_PLUGINS)
    members = release_members(version, arch, plugins_dir, names) + list(extra_members)
    return write_release(root, version, arch, pack_streamed(members, zero_members), plugins=names)


def _special(name: str, kind: bytes, linkname: str = "", mode: int = 0o644) -> tuple[tarfile.TarInfo, None]:
    info = _info(name, kind, mode)
    info.linkname = linkname
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3  # /dev/null's numbers
    return info, None


# Each builds a release whose checksums are right and whose archive holds one hostile thing.
# The member a test expects in the refusal is HOSTILE_MEMBERS[kind].
HOSTILE_MEMBERS = {
    "absolute": "/etc/cron.d/nodeprep-evil",
    "hardlink": "./evil-hardlink",
    "device": "./evil-device",
    "fifo": "./evil-fifo",
    "setuid": "./bridge-setuid",
    "duplicate": "bridge",
    "huge-member": "./huge",
    "newline-name": "./bridge\nloopback",
    "escape-name": "./\x1b]0;pwned\x07bridge",
}


def hostile_members(kind: str) -> list:
    name = HOSTILE_MEMBERS[kind]
    if kind == "absolute":
        return [file_member(name, b"* * * * * root touch /tmp/pwned\n")]
    if kind == "hardlink":
        return [_special(name, tarfile.LNKTYPE, linkname="/etc/shadow")]
    if kind == "device":
        return [_special(name, tarfile.CHRTYPE, mode=0o666)]
    if kind == "fifo":
        return [_special(name, tarfile.FIFOTYPE)]
    if kind == "setuid":
        return [file_member(name, b"#!/bin/sh\nid\n", mode=0o4755)]
    if kind == "duplicate":
        # "./bridge" is already in the release; a second, different "bridge" follows it.
        return [file_member(name, b"#!/bin/sh\necho second bridge\n", mode=0o755)]
    if kind == "huge-member":
        return []  # its bytes are streamed zeros: see build_hostile
    if kind in ("newline-name", "escape-name"):
        return [file_member(name, b"#!/bin/sh\necho odd name\n", mode=0o755)]
    raise ValueError("unknown hostile archive kind %r" % kind)


def build_hostile(root: str | os.PathLike, version: str, kind: str, arch: str = "amd64",
                  plugins_dir: str = DEBIAN_PLUGINS_DIR, plugins: list[str] | None = None) -> Release:
    """A release (correct checksums) with one hostile member of ``kind`` (see HOSTILE_MEMBERS)."""
    zeros = [(HOSTILE_MEMBERS[kind], 200 * MIB)] if kind == "huge-member" else []
    return _with_release(root, version, arch, plugins_dir, plugins, hostile_members(kind), zeros)


def build_expansion_bomb(root: str | os.PathLike, version: str, arch: str = "amd64", member_mib: int = 120,
                         members: int = 5, plugins_dir: str = DEBIAN_PLUGINS_DIR) -> Release:
    """A real release of well under a MB more that unpacks to ``members`` x ``member_mib`` MiB.

    Each extra member stays under any per-file limit; only a limit on the whole archive stops it.
    """
    names = _plugins(plugins_dir, HOSTILE_PLUGINS)
    zeros = [("./plugin-%02d" % index, member_mib * MIB) for index in range(members)]
    archive = pack_streamed(release_members(version, arch, plugins_dir, names), zeros)
    return write_release(root, version, arch, archive, plugins=names)
