# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plugins that an OS package installed, as a source for the versioned install.

Two things live here: the package manager's view of one package (installed? which version?, whose
version names a version directory as ``_versions.package_version`` maps it), and reading the
package's plugin directory with the same distrust as a release tarball's members.
"""

from __future__ import annotations

import os
import re
import shutil
import stat

from ansible_collections.nodeprep.cni.plugins.module_utils._hashing import CHUNK_SIZE
from ansible_collections.nodeprep.cni.plugins.module_utils._manifest import NON_PLUGIN_FILES
from ansible_collections.nodeprep.cni.plugins.module_utils._paths import canonical, is_inside
from ansible_collections.nodeprep.cni.plugins.module_utils._safe_tar import (
    MAX_MEMBER_BYTES,
    MAX_MEMBERS,
    MAX_TOTAL_BYTES,
    plain_name_problem,
    remove_written,
)

# Package names as dpkg and rpm allow them; anything else is refused before a command is run.
_PACKAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+_-]*$")


class UnsafeSource(ValueError):
    """The package's plugin directory holds something we refuse to copy; nothing was written."""


class PackageMissing(ValueError):
    """The package is not installed on the node."""


def check_package_name(name: str) -> str:
    if not _PACKAGE_NAME.match(name or ""):
        raise ValueError("package %r is not a package name; give the name the package manager knows, such as "
                         "containernetworking-plugins or kubernetes-cni" % (name,))
    return name


def query_package(run_command, name: str) -> dict:
    """``{"manager", "version"}`` of the installed package; PackageMissing when it is not installed.

    dpkg is asked first (Debian family), then rpm; a node with neither cannot use a package source.
    """
    check_package_name(name)
    if shutil.which("dpkg-query"):
        rc, out, dummy = run_command(["dpkg-query", "-W", "-f=${db:Status-Abbrev}|${Version}", name])
        status, dummy, version = out.partition("|")
        if rc != 0 or not status.startswith("ii"):
            raise PackageMissing("package %s is not installed (dpkg-query)" % name)
        return {"manager": "dpkg", "version": version.strip()}
    if shutil.which("rpm"):
        rc, out, dummy = run_command(["rpm", "-q", "--qf", "%{EPOCH}:%{VERSION}-%{RELEASE}", name])
        if rc != 0:
            raise PackageMissing("package %s is not installed (rpm)" % name)
        epoch, dummy, version = out.strip().partition(":")
        return {"manager": "rpm", "version": version if epoch in ("(none)", "0", "") else "%s:%s" % (epoch, version)}
    raise ValueError("package source needs dpkg-query or rpm on the node and neither is there; use source release")


def _refuse(src_dir: str, name: str, reason: str) -> UnsafeSource:
    return UnsafeSource("package_dir %s: %s %s; refusing the whole directory (nodeprep copies only flat, regular, "
                        "executable plugin files; set package_dir to the directory of the package's plugins)"
                        % (src_dir, name, reason))


def list_plugin_dir(src_dir: str) -> list:
    """Names of the files to copy from *src_dir*, each checked like a release tarball's member."""
    try:
        entries = sorted(os.listdir(src_dir))
    except FileNotFoundError:
        raise UnsafeSource("package_dir %s does not exist; set package_dir to where the package puts its plugins "
                           "(dpkg -L or rpm -ql lists them)" % src_dir)
    except NotADirectoryError:
        raise UnsafeSource("package_dir %s is not a directory; set package_dir to where the package puts its plugins" % src_dir)
    if not entries:
        raise UnsafeSource("package_dir %s is empty: the package put no plugins there; set package_dir to where the package "
                           "puts its plugins (dpkg -L or rpm -ql lists them)" % src_dir)
    if len(entries) > MAX_MEMBERS:
        raise UnsafeSource("package_dir %s holds more than %d entries, where a plugin dir has about 25; set package_dir to "
                           "the package's plugin directory" % (src_dir, MAX_MEMBERS))
    total = 0
    for name in entries:
        problem = plain_name_problem(name)
        if problem:
            raise _refuse(src_dir, repr(name), problem)
        info = os.lstat(os.path.join(src_dir, name))
        if stat.S_ISLNK(info.st_mode):
            raise _refuse(src_dir, name, "is a symlink")
        if stat.S_ISDIR(info.st_mode):
            raise _refuse(src_dir, name, "is a subdirectory")
        if not stat.S_ISREG(info.st_mode):
            raise _refuse(src_dir, name, "is a device, fifo or other special file")
        if info.st_mode & (stat.S_ISUID | stat.S_ISGID):
            raise _refuse(src_dir, name, "has the setuid or setgid bit (mode %04o)" % stat.S_IMODE(info.st_mode))
        if not info.st_mode & stat.S_IXUSR and name not in NON_PLUGIN_FILES:
            raise _refuse(src_dir, name, "is not executable")
        if info.st_size > MAX_MEMBER_BYTES:
            raise _refuse(src_dir, name, "is %d bytes, far more than any plugin" % info.st_size)
        total += info.st_size
        if total > MAX_TOTAL_BYTES:
            raise _refuse(src_dir, name, "brings the total over %d bytes, far more than any plugin set" % MAX_TOTAL_BYTES)
    return entries


def copy_plugin_dir(src_dir: str, names, dest_dir: str) -> list:
    """Copy *names* (from ``list_plugin_dir``) into the existing *dest_dir*; return the names written.

    Each file is opened without following links and checked again on the open descriptor, so a
    file swapped for a link or special file after listing is refused, not read. Files are created
    by us: plugins 0755; LICENSE/README.md at most 0644 and never wider than the source's own mode
    (one may be a hard link to a private file: its copy must not become readable by more users).
    A failure removes what was written.
    """
    written = []
    try:
        for name in names:
            source = os.path.join(src_dir, name)
            target = os.path.join(dest_dir, name)
            in_fd = os.open(source, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(in_fd, "rb") as reader:
                info = os.fstat(reader.fileno())
                if not stat.S_ISREG(info.st_mode) or info.st_mode & (stat.S_ISUID | stat.S_ISGID) or info.st_size > MAX_MEMBER_BYTES:
                    raise _refuse(src_dir, name, "changed while it was read")
                mode = 0o644 & stat.S_IMODE(info.st_mode) if name in NON_PLUGIN_FILES else 0o755
                out_fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
                written.append(target)
                with os.fdopen(out_fd, "wb") as writer:
                    shutil.copyfileobj(reader, writer, CHUNK_SIZE)
                    writer.flush()
                    os.fsync(writer.fileno())
            os.chmod(target, mode)
    except BaseException:
        remove_written(written)
        raise
    return [os.path.basename(path) for path in written]


def refuse_overlap(package_dir: str, tree) -> None:
    """A package dir that is also a link dir would have its files replaced by our links; refuse that."""
    if canonical(package_dir) in tree.link_dirs:
        raise ValueError("package_dir %s is also bin_dir/link_dirs entry %s: the package owns the files there, our links would "
                         "replace them and its next upgrade would overwrite our links; set bin_dir to another directory "
                         "(for example /opt/cni/nodeprep-bin) and point the runtime at it, or use source release"
                         % (package_dir, canonical(package_dir)))
    if is_inside(package_dir, tree.versions_dir):
        raise ValueError("package_dir %s is inside versions_dir %s; set package_dir to the package's plugin directory"
                         % (package_dir, tree.versions_dir))


# --- files a package owns in the plugin dirs --------------------------------------------------
#
# kubelet's packages pull in kubernetes-cni, which owns the names in /opt/cni/bin; a distribution's
# containernetworking-plugins may own them elsewhere. A link of ours over such a name is undone by
# the package's next upgrade, so the installer asks before adopting and cni_info reports them.

_RPM_NOT_OWNED = re.compile(r"^file (.+) is not owned by any package$")


def package_owners(run_command, paths) -> dict:
    """``{path: package}`` for the *paths* a package owns, in one query of the node's package manager.

    dpkg is asked first (``dpkg-query -S``), then rpm (``rpm -qf``); a node with neither owns nothing.
    Several owners of one path are joined with ``, `` as dpkg prints them.
    """
    paths = sorted(set(paths))
    if not paths:
        return {}
    if shutil.which("dpkg-query"):
        dummy, out, dummy = run_command(["dpkg-query", "-S"] + paths, check_rc=False)
        return _dpkg_owners(out, paths)
    if shutil.which("rpm"):
        dummy, out, dummy = run_command(["rpm", "-qf", "--qf", "[%{FILENAMES}\t%{=NAME}\n]"] + paths, check_rc=False)
        return _rpm_owners(out, paths)
    return {}


def _dpkg_owners(output: str, paths) -> dict:
    """``pkg1, pkg2: /path`` lines; diversion lines and paths nobody owns (on stderr) are skipped."""
    wanted, found = set(paths), {}
    for line in (output or "").splitlines():
        if line.startswith("diversion "):
            continue
        owners, sep, path = line.partition(": ")
        if sep and path.strip() in wanted:
            found[path.strip()] = owners.strip()
    return found


def _rpm_owners(output: str, paths) -> dict:
    """``<file>\\t<package>`` for every file of each owning package; only the asked paths count."""
    wanted, found = set(paths), {}
    for line in (output or "").splitlines():
        if _RPM_NOT_OWNED.match(line):
            continue
        path, sep, name = line.partition("\t")
        if sep and path in wanted and name.strip():
            owners = found.setdefault(path, [])
            if name.strip() not in owners:
                owners.append(name.strip())
    return dict((path, ", ".join(names)) for path, names in found.items())


def package_owned_refusal(owned: dict) -> str:
    """The refusal for plugin names a package owns; *owned* maps each path to its package."""
    by_package = {}
    for path in sorted(owned):
        by_package.setdefault(owned[path], []).append(path)
    listed = "; ".join("%s owned by package %s" % (", ".join(paths), package) for package, paths in sorted(by_package.items()))
    first = sorted(by_package)[0]
    return ("%s: the package's next upgrade would overwrite nodeprep's links there, so nothing was changed. Fixes: give "
            "nodeprep a plugin dir of its own and point the runtime at it (bin_dir; role: cni_plugins_bin_dir, e.g. "
            "/opt/cni/nodeprep-bin, which the containerd role wires into containerd or CRI-O); or use the package's plugins "
            "(role: cni_plugins_source: package, cni_plugins_package_name: %s, cni_plugins_package_dir: the package's dir, "
            "with cni_plugins_bin_dir set to another dir); or take the names over anyway with adopt_package_files: true "
            "(role: cni_plugins_adopt_package_files: true): verify.yml then warns at every run that the package's next "
            "upgrade overwrites them" % (listed, first))
