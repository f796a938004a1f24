# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SELinux labels of what we install: the label the loaded policy gives the OS's own plugin dir.

Files renamed into place keep the label of the directory they were created in, and a directory a
runtime created gets a generic one, so on an enforcing host a runtime could be refused executing
our plugins. After every change the installer sets, on each entry under ``versions_dir`` and on
each link it made, the label the policy assigns to the same kind of entry in ``OS_PLUGIN_DIR``,
and registers ``versions_dir`` as equivalent to that dir (``semanage fcontext -e``) where
``semanage`` exists, so a full relabel (``restorecon -R``) gives the same labels again.

Nothing here needs an SELinux Python binding: the kernel's selinuxfs says whether SELinux is on,
the labels are the ``security.selinux`` extended attribute, and the policy is asked through
``matchpathcon`` (libselinux's own lookup). Reading the policy's file_contexts files here instead
would mean re-implementing libselinux's order of precedence (local and home-dir files, the
substitution files, regex specificity), and any difference would be undone by the next
``restorecon``; the command gives exactly the answer ``restorecon`` uses.
"""

from __future__ import annotations

import os
import stat

SELINUXFS = "/sys/fs/selinux"
# The dir every runtime searches by default and where the OS's container policy places CNI plugins.
OS_PLUGIN_DIR = "/opt/cni/bin"
XATTR = "security.selinux"
SELINUX_CONFIG = "/etc/selinux/config"
LOOKUP_FIX = ("install the package that provides matchpathcon (selinux-utils on Debian and Ubuntu, "
              "libselinux-utils on the RHEL family and Fedora)")


class SELinuxError(Exception):
    """The policy could not be asked, or a label could not be set; the message names the fix."""


def enabled(selinuxfs=None) -> bool:
    """True when the running kernel has SELinux on (selinuxfs is mounted), in either mode."""
    return os.path.exists(os.path.join(selinuxfs or SELINUXFS, "enforce"))


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "lnk_file"
    if stat.S_ISDIR(mode):
        return "dir"
    return "file"


def current_label(path: str):
    """The entry's own label (a link's, not its target's); None when it has none."""
    try:
        return os.getxattr(path, XATTR, follow_symlinks=False).rstrip(b"\0").decode("ascii")
    except OSError:
        return None


class Policy:
    """Answers what label the loaded policy gives an entry of a kind in OS_PLUGIN_DIR."""

    def __init__(self, run_command, get_bin_path, reference: str = OS_PLUGIN_DIR):
        self.run_command = run_command
        self.get_bin_path = get_bin_path
        self.reference = reference
        self.cache = {}

    def path_for(self, name: str, kind: str) -> str:
        """Where in the reference dir an entry named ``name`` of class ``kind`` would be: a
        directory is asked as the reference dir itself."""
        return self.reference if kind == "dir" else os.path.join(self.reference, name)

    def expected(self, name: str, kind: str) -> str:
        """The label the policy gives ``name`` (a file's or link's base name) in the reference dir."""
        self.ask([(name, kind)])
        return self.cache[(self.path_for(name, kind), kind)]

    def ask(self, entries) -> None:
        """Asks the policy once per class for every (name, kind) not asked yet: each matchpathcon
        run loads the whole file-context database, which takes seconds on a slow node."""
        wanted = {}
        for name, kind in entries:
            path = self.path_for(name, kind)
            if (path, kind) not in self.cache and path not in wanted.setdefault(kind, []):
                wanted[kind].append(path)
        for kind, paths in sorted(wanted.items()):
            if paths:
                self.cache.update(((path, kind), label) for path, label in zip(paths, self._lookup(paths, kind)))

    def _lookup(self, paths, kind: str) -> list:
        command = self.get_bin_path("matchpathcon")
        if not command:
            raise SELinuxError("SELinux is enabled on this node, but no matchpathcon was found to ask the loaded policy "
                               "which label %s gets: %s" % (self.reference, LOOKUP_FIX))
        rc, out, err = self.run_command([command, "-n", "-m", kind] + list(paths))
        labels = out.split()
        if rc != 0 or len(labels) != len(paths) or "<<none>>" in labels:
            raise SELinuxError("the loaded SELinux policy gives no label for %s (matchpathcon said: %s); give %s a file "
                               "context in the policy (semanage fcontext -a -t <type> '%s(/.*)?')"
                               % (", ".join(paths), (err or out).strip() or "nothing", self.reference, self.reference))
        return labels


def walk(top: str):
    """``top`` and every entry under it, links not followed."""
    if not os.path.lexists(top):
        return
    yield top
    for root, dirs, files in os.walk(top):
        for name in sorted(dirs) + sorted(files):
            yield os.path.join(root, name)


def relabel(policy: Policy, paths, check_mode: bool) -> list:
    """Sets the expected label on every path whose label differs; returns each change made (or, in
    check mode, that would be made) as ``{path, before, after}``."""
    found = []
    for path in paths:
        try:
            found.append((path, _kind(os.lstat(path).st_mode)))
        except FileNotFoundError:
            continue
    policy.ask([(os.path.basename(path), kind) for path, kind in found])
    changes = []
    for path, kind in found:
        after = policy.expected(os.path.basename(path), kind)
        before = current_label(path)
        if before == after:
            continue
        if not check_mode:
            try:
                os.setxattr(path, XATTR, after.encode("ascii"), follow_symlinks=False)
            except OSError as exc:
                raise SELinuxError("could not label %s %s: %s; run the play with become (root) so the label can be set"
                                   % (path, after, exc.strerror))
        changes.append({"path": path, "before": before, "after": after})
    return changes


def _policy_type(config: str) -> str:
    try:
        with open(config, "r", encoding="utf-8") as handle:
            for line in handle:
                key, equals, value = line.strip().partition("=")
                if equals and key.strip() == "SELINUXTYPE":
                    return value.strip()
    except OSError:
        pass
    return ""


def equivalent_to(path: str, config: str):
    """The path ``path`` is registered as equivalent to (file_contexts.subs of the loaded policy type), else None."""
    subs = os.path.join(os.path.dirname(config), _policy_type(config), "contexts", "files", "file_contexts.subs")
    try:
        with open(subs, "r", encoding="utf-8") as handle:
            for line in handle:
                fields = line.split()
                if len(fields) == 2 and fields[0] == path:
                    return fields[1]
    except OSError:
        pass
    return None


def register_equivalence(run_command, get_bin_path, path: str, reference: str, check_mode: bool, config: str) -> dict:
    """``path`` relabelled like ``reference`` by ``restorecon``: added once where semanage exists."""
    found = equivalent_to(path, config)
    result = {"path": path, "equal_to": reference, "changed": False, "semanage": True}
    if found == reference:
        return result
    command = get_bin_path("semanage")
    if not command:
        result["semanage"] = False
        return result
    result["changed"] = True
    if not check_mode:
        rc, out, err = run_command([command, "fcontext", "-m" if found else "-a", "-e", reference, path])
        if rc != 0:
            raise SELinuxError("semanage could not make %s equivalent to %s for relabelling: %s"
                               % (path, reference, (err or out).strip()))
    return result


def policy_for(run_command, get_bin_path, selinuxfs=None, reference: str = OS_PLUGIN_DIR):
    """None on a node without SELinux; else a Policy that has already answered once, so a node that
    cannot be asked fails before the installer changes anything."""
    if not enabled(selinuxfs or SELINUXFS):
        return None
    policy = Policy(run_command, get_bin_path, reference)
    policy.expected("", "dir")
    return policy


def settle(policy, versions_dir: str, links, check_mode: bool, config=None) -> dict:
    """Labels everything under ``versions_dir`` and each of ``links`` as the policy labels its
    reference dir and registers the equivalence; with no policy (no SELinux) does nothing."""
    if policy is None:
        return {"enabled": False, "relabelled": [], "equivalence": None}
    changes = relabel(policy, list(walk(versions_dir)) + sorted(links), check_mode)
    equivalence = register_equivalence(policy.run_command, policy.get_bin_path, versions_dir, policy.reference,
                                       check_mode, config or SELINUX_CONFIG)
    return {"enabled": True, "relabelled": changes, "equivalence": equivalence}
