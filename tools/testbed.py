"""Test bed for nodeprep.cni: prepares what tests and the demo need, and runs the demo.

Subcommands:
  bootstrap   collections from the ``ansible`` wheel, ansible-test's offline pip stand-in and
              the cached node rootfs; idempotent and fast once done.
  runtimes    the containerds and CRI-O built from their release tags (testbed_lib/runtimes.py)
              and a node rootfs for each; idempotent, builds nothing when warm.
  demo        boots a node, serves a locally built release and runs playbooks/site.yml and
              playbooks/verify.yml against it.
  node-up     boots a node for manual use and prints its inventory path.
  node-down   stops a node started by node-up.
  release     builds a plugins release into a controller cache (Molecule's create step).
  node-restart  shuts a node down and boots it again on the same files (a power cycle).
  vm-image    the VM nodes' disk image, kernel and initrd (testbed_lib/vm.py); idempotent.
  vm-image-flatcar  the Flatcar-shaped VM image, /usr on read-only erofs (testbed_lib/vm_flatcar.py).
  vm-up       boots a VM node for manual use and prints its inventory path and an ssh command.
  vm-down     powers off a VM started by vm-up.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from testbed_lib import apt_repo  # noqa: E402  (needs REPO on sys.path)
from testbed_lib import containerd_rootfs  # noqa: E402  (needs REPO on sys.path)
from testbed_lib import crio_rootfs  # noqa: E402  (needs REPO on sys.path)
from testbed_lib import monitoring  # noqa: E402  (needs REPO on sys.path)
from testbed_lib import node as node_mod  # noqa: E402  (needs REPO on sys.path)
from testbed_lib import packer as packer_mod  # noqa: E402  (needs REPO on sys.path)
from testbed_lib import runtimes  # noqa: E402  (needs REPO on sys.path)
from testbed_lib import vm as vm_mod  # noqa: E402  (needs REPO on sys.path)
from testbed_lib import vm_selinux  # noqa: E402  (needs REPO on sys.path)
from testbed_lib import vm_flatcar  # noqa: E402  (needs REPO on sys.path)

CACHE = REPO / ".cache"
WHEELS = CACHE / "wheels"
COLLECTIONS_ROOT = CACHE / "collections"
# The wheels the test bed unpacks, pinned with their hashes (tools/lock writes this file).
WHEELS_LOCK = REPO / "tests/requirements-wheels.txt"


def locked_version(name: str, lock: Path = WHEELS_LOCK) -> str:
    """The version ``lock`` pins for ``name`` (a line ``name==version \\``)."""
    for line in lock.read_text(encoding="utf-8").splitlines():
        if line.startswith(name + "=="):
            return line.split("==", 1)[1].split()[0]
    raise SystemExit("testbed: %s pins no %s: run tools/lock" % (lock, name))


ANSIBLE_WHEEL_VERSION = locked_version("ansible")
BUNDLED_COLLECTIONS = ("community/general", "ansible/posix", "awx/awx")
PIP_VERSION = locked_version("pip")
GET_PIP = Path.home() / ".ansible/test/cache" / ("get_pip_%s.py" % PIP_VERSION.replace(".", "_"))
VENV_PIP = REPO / ".venv/bin/pip"
MANUAL_NODES = Path("/var/tmp/nodeprep-testbed-nodes")
MANUAL_VMS = Path("/var/tmp/nodeprep-testbed-vms")


def log(message: str) -> None:
    print("testbed: %s" % message, flush=True)


# --- wheels and collections -------------------------------------------------------------------

def download_wheel(requirement: str, pattern: str) -> Path:
    """Returns the wheel matching ``pattern`` in the wheel cache, downloading it once.

    Every wheel of the lock comes down in one hash-checked ``pip download``.
    """
    found = sorted(WHEELS.glob(pattern))
    if found:
        return found[0]
    WHEELS.mkdir(parents=True, exist_ok=True)
    log("pip download %s (with the wheels lock's other entries)" % requirement)
    subprocess.run([str(VENV_PIP), "download", "-q", "--disable-pip-version-check", "--no-deps",
                    "--only-binary=:all:", "--require-hashes", "--dest", str(WHEELS),
                    "-r", str(WHEELS_LOCK)], check=True)
    found = sorted(WHEELS.glob(pattern))
    if not found:
        raise SystemExit("testbed: pip download %s produced no %s" % (requirement, pattern))
    return found[0]


def ensure_bundled_collections() -> None:
    """Extracts community.general, ansible.posix and awx.awx from the ansible wheel (Galaxy is offline)."""
    target = COLLECTIONS_ROOT / "ansible_collections"
    missing = [c for c in BUNDLED_COLLECTIONS if not (target / c / "MANIFEST.json").is_file()]
    if not missing:
        return
    wheel = download_wheel("ansible==%s" % ANSIBLE_WHEEL_VERSION, "ansible-%s-*.whl" % ANSIBLE_WHEEL_VERSION)
    for collection in missing:
        extract_collection(wheel, collection, target)


def extract_collection(wheel: Path, collection: str, target: Path) -> None:
    # Extract next to the final place and rename, so a half-extracted tree never looks complete.
    prefix = "ansible_collections/%s/" % collection
    final = target / collection
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=final.parent))
    try:
        with zipfile.ZipFile(wheel) as archive:
            members = [m for m in archive.namelist() if m.startswith(prefix)]
            for member in members:
                archive.extract(member, staging)
        if final.exists():
            shutil.rmtree(final)
        os.rename(staging / prefix.rstrip("/"), final)
        log("extracted %s (%d files)" % (collection.replace("/", "."), len(members)))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def ensure_own_collection_link() -> None:
    """nodeprep/cni points at the repo through a relative link, so the repo may move."""
    link = COLLECTIONS_ROOT / "ansible_collections/nodeprep/cni"
    link.parent.mkdir(parents=True, exist_ok=True)
    wanted = os.path.relpath(REPO, link.parent)
    if link.is_symlink() and os.readlink(link) == wanted:
        return
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(wanted)
    log("linked %s -> %s" % (link, wanted))


# --- ansible-test's offline pip ---------------------------------------------------------------

GET_PIP_TEMPLATE = '''\
"""Offline stand-in for pip's get-pip.py, written by tools/testbed.py bootstrap.

ansible-test runs this file to put pip into a fresh venv. It installs a pip wheel that was
downloaded beforehand, without asking any index.
"""
import os
import sys

# Beside this file, so the stand-in works wherever its cache dir is seen from (a chroot's too).
WHEEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wheels", %(wheel)r)

sys.path.insert(0, WHEEL)
from pip._internal.cli.main import main  # noqa: E402  (importable only from the wheel)

# get-pip.py's own switches are meaningless for a plain wheel install; package specs are
# replaced by the local wheel.
options = [arg for arg in sys.argv[1:] if arg.startswith("-") and arg not in ("--no-setuptools", "--no-wheel")]
sys.exit(main(["install", "--no-index", "--find-links", os.path.dirname(WHEEL)] + options + [WHEEL]))
'''


def install_get_pip(wheel: Path, stand_in: Path) -> None:
    """Writes the stand-in ``stand_in`` for ``wheel``, with a copy of the wheel beside it.

    ansible-test's cache is shared by every checkout on the machine, so the stand-in must not name
    a file inside one checkout: that checkout may be deleted while another still runs sanity.
    """
    kept = stand_in.parent / "wheels" / wheel.name
    if not kept.is_file() or kept.read_bytes() != wheel.read_bytes():
        kept.parent.mkdir(parents=True, exist_ok=True)
        partial = kept.with_name(kept.name + ".tmp")
        shutil.copyfile(wheel, partial)
        os.replace(partial, kept)
    content = GET_PIP_TEMPLATE % {"wheel": kept.name}
    if stand_in.is_file() and stand_in.read_text() == content:
        return
    stand_in.parent.mkdir(parents=True, exist_ok=True)
    temp = stand_in.with_suffix(".tmp")
    temp.write_text(content)
    os.replace(temp, stand_in)
    log("wrote %s" % stand_in)


def ensure_get_pip() -> None:
    install_get_pip(download_wheel("pip==%s" % PIP_VERSION, "pip-%s-*.whl" % PIP_VERSION), GET_PIP)


# --- node rootfs ------------------------------------------------------------------------------

ROOTFS_PACKAGES = ["systemd-sysv", "dbus", "iproute2", "procps", "util-linux"]
# Units that fail or only slow down boot inside a container without consoles or udev.
MASKED_UNITS = [
    "console-getty.service",
    "getty@tty1.service",
    "systemd-udevd.service",
    "systemd-udev-trigger.service",
    "systemd-udev-settle.service",
    "systemd-hwdb-update.service",
    "systemd-modules-load.service",
    "systemd-timesyncd.service",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "e2scrub_reap.service",
    "e2scrub_all.timer",
    "fstrim.timer",
]
# Bumped whenever the recipe changes, so an old cache is rebuilt instead of silently reused.
ROOTFS_RECIPE = "1:" + ",".join(ROOTFS_PACKAGES) + ":" + ",".join(MASKED_UNITS)


def debian_mirror() -> str:
    """The Debian mirror this machine already uses (the only one reachable here)."""
    for source in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        uris, suites = None, None
        for line in source.read_text().splitlines():
            if line.startswith("URIs:"):
                uris = line.split(":", 1)[1].split()
            elif line.startswith("Suites:"):
                suites = line.split(":", 1)[1].split()
        if uris and suites and "bookworm" in suites:
            return uris[0]
    for source in sorted(Path("/etc/apt/sources.list.d").glob("*.list")) + [Path("/etc/apt/sources.list")]:
        if source.is_file():
            for line in source.read_text().splitlines():
                fields = line.split()
                if len(fields) >= 3 and fields[0] == "deb" and fields[2].startswith("bookworm"):
                    return next(f for f in fields[1:] if f.startswith("http"))
    return "http://deb.debian.org/debian"


def rootfs_is_complete(final: Path = node_mod.ROOTFS_CACHE, recipe: str = ROOTFS_RECIPE) -> bool:
    stamp = final / node_mod.ROOTFS_STAMP
    return stamp.is_file() and stamp.read_text().strip() == recipe


def rootfs_in_use(rootfs: Path) -> bool:
    """True while an overlay of a running node has the rootfs as its lower layer."""
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        return any("lowerdir=%s," % rootfs in line or "lowerdir=%s " % rootfs in line for line in mountinfo)


def ensure_rootfs(final: Path = node_mod.ROOTFS_CACHE, suite: str = "bookworm",
                  recipe: str = ROOTFS_RECIPE, packages: list[str] | None = None, finish=None,
                  base: Path | None = None) -> None:
    """Builds one cached rootfs in a staging dir and renames it into place with its stamp.

    With ``base`` (a complete cached rootfs) the staging dir starts as a copy of it instead of a
    fresh debootstrap, and only ``finish`` runs on it.
    """
    if rootfs_is_complete(final, recipe):
        return
    if final.exists() and rootfs_in_use(final):
        raise SystemExit("testbed: %s needs a rebuild but running nodes use it; stop them first" % final)
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(final.name + ".build-*"):
        log("removing interrupted build %s" % stale)
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=final.name + ".build-", dir=final.parent))
    started = time.monotonic()
    if base is not None:
        log("copying %s into %s" % (base, staging))
        subprocess.run(["cp", "-a", "--reflink=auto", "%s/." % base, str(staging)], check=True)
        (staging / node_mod.ROOTFS_STAMP).unlink()
    else:
        mirror = debian_mirror()
        log("debootstrap %s from %s into %s" % (suite, mirror, staging))
        subprocess.run(["debootstrap", "--variant=minbase", "--include=python3", suite,
                        str(staging), mirror], check=True, stdout=subprocess.DEVNULL)
        if suite == "sid":
            # sid's Release file may be past its Valid-Until by this machine's clock.
            (staging / "etc/apt/apt.conf.d/99nodeprep-valid-until").write_text(
                'Acquire::Check-Valid-Until "false";\n')
        install_in_rootfs(staging, packages or ROOTFS_PACKAGES)
        tune_rootfs(staging)
    if finish is not None:
        finish(staging)
    (staging / node_mod.ROOTFS_STAMP).write_text(recipe + "\n")
    staging.chmod(0o755)  # mkdtemp made it 0700; it becomes every node's "/"
    if final.exists():
        shutil.rmtree(final)
    os.rename(staging, final)
    log("rootfs ready in %.0f s: %s" % (time.monotonic() - started, final))


# Nodes that run a real containerd with pod sandboxes, one per Debian suite (1.6, 1.7, 2.1).
CONTAINERD_PACKAGES = ROOTFS_PACKAGES + ["containerd", "runc", "busybox-static"]
CONTAINERD_RECIPE = "containerd-%s:%s:%s" % (containerd_rootfs.RECIPE_VERSION, ROOTFS_RECIPE, ",".join(CONTAINERD_PACKAGES))


def ensure_containerd_rootfs(suite: str) -> None:
    final = node_mod.rootfs_path(suite, containerd=True)
    ensure_rootfs(final, suite, CONTAINERD_RECIPE, CONTAINERD_PACKAGES,
                  finish=lambda staging: containerd_rootfs.finish(
                      staging, lambda *command, capture=False: nspawn_run(staging, *command, capture=capture)))


# Nodes that run a containerd built from source (testbed_lib/runtimes.py): sid's systemd and
# runc 1.3.6 (what containerd 2.2 and later are released against), no Debian containerd. One base
# rootfs is copied for each containerd version.
RUNTIME_BASE_PACKAGES = ROOTFS_PACKAGES + ["runc", "busybox-static"]
RUNTIME_BASE_RECIPE = "runtime-base:%s:%s" % (ROOTFS_RECIPE, ",".join(RUNTIME_BASE_PACKAGES))


def ensure_runtime_base_rootfs() -> Path:
    final = node_mod.TESTBED_CACHE / ("rootfs-runtime-%s" % runtimes.RUNTIME_SUITE)
    ensure_rootfs(final, runtimes.RUNTIME_SUITE, RUNTIME_BASE_RECIPE, RUNTIME_BASE_PACKAGES)
    return final


def ensure_built_containerd_rootfs(version: str) -> None:
    """A node rootfs running containerd ``version`` as built from its tag, on its own default config."""
    program = runtimes.containerd(version)
    runtimes.ensure_built(program)
    base = ensure_runtime_base_rootfs()
    recipe = "containerd-build-%s:%s:%s:%s" % (containerd_rootfs.RECIPE_VERSION, RUNTIME_BASE_RECIPE,
                                               json.dumps(program.recipe(), sort_keys=True),
                                               runtimes.build_info(program).get("go", ""))

    def finish(staging: Path) -> None:
        def run(*command, capture=False):
            return nspawn_run(staging, *command, capture=capture)
        containerd_rootfs.install_built_containerd(staging, program.bin_dir, program.home / "containerd.service", run)
        containerd_rootfs.finish(staging, run)

    ensure_rootfs(runtimes.containerd_rootfs_path(version), runtimes.RUNTIME_SUITE, recipe, finish=finish, base=base)


def ensure_monitoring_rootfs() -> None:
    """The bookworm containerd rootfs plus Debian's node_exporter and Prometheus (testbed_lib/monitoring.py)."""
    ensure_containerd_rootfs("bookworm")
    recipe = "%s:%s" % (monitoring.RECIPE, CONTAINERD_RECIPE)
    ensure_rootfs(monitoring.ROOTFS, "bookworm", recipe, base=node_mod.rootfs_path("bookworm", containerd=True),
                  finish=lambda staging: monitoring.finish(staging, install_in_rootfs))


# A node running CRI-O built from its tag (testbed_lib/crio_rootfs.py): the same sid base, with
# Debian's conmon, crun and skopeo (which stores the pause image while the rootfs is built).
def ensure_crio_rootfs() -> Path:
    built = runtimes.ensure_crio()
    program = runtimes.crio()
    node_files = runtimes.ensure_crio_node_files(program.version)
    base = ensure_runtime_base_rootfs()
    recipe = "crio-build-%s:%s:%s:%s:%s:%s" % (
        crio_rootfs.RECIPE_VERSION, RUNTIME_BASE_RECIPE, ",".join(crio_rootfs.PACKAGES),
        json.dumps(program.recipe(), sort_keys=True), runtimes.build_info(program).get("go", ""),
        runtimes.CRIO_NODE_RECIPE)

    def finish(staging: Path) -> None:
        install_in_rootfs(staging, crio_rootfs.PACKAGES)
        crio_rootfs.install_built_crio(staging, built["crio"], node_files,
                                       lambda *command, capture=False: nspawn_run(staging, *command, capture=capture))

    final = runtimes.crio_rootfs_path(program.version)
    ensure_rootfs(final, runtimes.RUNTIME_SUITE, recipe, finish=finish, base=base)
    return final


def nspawn_run(rootfs: Path, *command: str, capture: bool = False) -> str:
    """Runs a command in the rootfs without booting it (nspawn needs the private /run/systemd)."""
    cgroups, env = node_mod.private_cgroups("build-%d" % os.getpid())
    try:
        result = subprocess.run(node_mod.nspawn_prefix() + ["-D", str(rootfs), "--pipe"] + list(command),
                                check=True, stdin=subprocess.DEVNULL, text=True,
                                stdout=subprocess.PIPE if capture else subprocess.DEVNULL, env=env)
    finally:
        node_mod.remove_cgroups(cgroups)
    return result.stdout or ""


def install_in_rootfs(rootfs: Path, packages: list[str]) -> None:
    log("installing %s in the rootfs" % " ".join(packages))
    env = ["--setenv=DEBIAN_FRONTEND=noninteractive"]
    nspawn_run(rootfs, *env, "apt-get", "-q", "update")
    nspawn_run(rootfs, *env, "apt-get", "install", "-y", "-q", "--no-install-recommends", *packages)
    nspawn_run(rootfs, "apt-get", "clean")


def tune_rootfs(rootfs: Path) -> None:
    for unit in MASKED_UNITS:
        link = rootfs / "etc/systemd/system" / unit
        if not link.is_symlink():
            link.unlink(missing_ok=True)
            link.symlink_to("/dev/null")
    # An empty machine-id lets every node get its own at boot; without /etc/hostname (debootstrap
    # copies the host's) a node keeps the unique machine name nspawn gives it.
    (rootfs / "etc/machine-id").write_text("")
    (rootfs / "etc/hostname").unlink(missing_ok=True)
    shutil.rmtree(rootfs / "var/lib/apt/lists", ignore_errors=True)
    (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)


def check_node_boots() -> None:
    """Boots one throwaway node the first time, so a broken rootfs shows up in bootstrap."""
    marker = node_mod.ROOTFS_CACHE.parent / ".boot-verified"
    if marker.is_file() and marker.read_text() == ROOTFS_RECIPE:
        return
    log("test boot of a node")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="nodeprep-bootcheck-", dir="/var/tmp") as workdir:
        with node_mod.BootedNode("bootcheck", Path(workdir) / "node") as node:
            state = node.run(["systemctl", "is-system-running"], check=False).stdout.strip()
    log("node booted (%s) and stopped in %.1f s" % (state, time.monotonic() - started))
    marker.write_text(ROOTFS_RECIPE)


def cmd_bootstrap(_args: argparse.Namespace) -> int:
    started = time.monotonic()
    ensure_bundled_collections()
    ensure_own_collection_link()
    ensure_get_pip()
    ensure_rootfs()
    for suite in node_mod.SUITES:
        ensure_containerd_rootfs(suite)
    # The package-source test installs Debian's real package from a local repo inside an offline node.
    apt_repo.ensure_debs()
    node_mod.raise_inotify_limit()
    check_node_boots()
    log("bootstrap done in %.1f s" % (time.monotonic() - started))
    return 0


def cmd_runtimes(_args: argparse.Namespace) -> int:
    """What the node lane builds from source before its first test: the runtimes and their node
    rootfs, and the current Packer (with its plugins) that validates the Packer example."""
    started = time.monotonic()
    for version in runtimes.CONTAINERD_VERSIONS:
        ensure_built_containerd_rootfs(version)
    packer_mod.ensure_packer()
    ensure_crio_rootfs()
    ensure_monitoring_rootfs()
    log("runtimes ready in %.1f s" % (time.monotonic() - started))
    return 0


def cmd_vm_image(_args: argparse.Namespace) -> int:
    """The VM nodes' image: the cached bookworm rootfs with Debian's kernel and OpenSSH, as an ext4
    disk image (testbed_lib/vm.py)."""
    started = time.monotonic()
    ensure_rootfs()
    vm_mod.ensure_image(node_mod.ROOTFS_CACHE, ROOTFS_RECIPE, install_in_rootfs, nspawn_run)
    # SELinux enforcing with Debian's containerd: over the bookworm containerd rootfs.
    ensure_containerd_rootfs("bookworm")
    vm_selinux.ensure_image(node_mod.rootfs_path("bookworm", containerd=True), CONTAINERD_RECIPE,
                            install_in_rootfs, nspawn_run)
    log("VM image ready in %.1f s" % (time.monotonic() - started))
    return 0


def cmd_vm_image_flatcar(_args: argparse.Namespace) -> int:
    """The Flatcar-shaped VM image: the bookworm containerd rootfs with Debian's kernel, its /usr
    an erofs image on a read-only disk of its own (testbed_lib/vm_flatcar.py)."""
    started = time.monotonic()
    ensure_rootfs()
    ensure_containerd_rootfs("bookworm")
    vm_flatcar.ensure_image(node_mod.rootfs_path("bookworm", containerd=True), CONTAINERD_RECIPE, install_in_rootfs,
                            nspawn_run)
    log("Flatcar-shaped VM image ready in %.1f s" % (time.monotonic() - started))
    return 0


# --- demo -------------------------------------------------------------------------------------

DEMO_CONFLIST = {
    "cniVersion": "0.4.0", "name": "demo",
    "plugins": [{"type": "bridge", "bridge": "cni-demo0", "isGateway": True,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.87.0.0/24"}]]}},
                {"type": "portmap", "capabilities": {"portMappings": True}}],
}


def cmd_demo(_args: argparse.Namespace) -> int:
    from testbed_lib.ansible_runner import run_playbook, write_inventory
    from testbed_lib.http_server import LocalServer
    from testbed_lib.releases import build_release

    site, verify = REPO / "playbooks/site.yml", REPO / "playbooks/verify.yml"
    missing = [str(p.relative_to(REPO)) for p in (site, verify) if not p.is_file()]
    if missing:
        log("missing %s: nothing to demo yet" % ", ".join(missing))
        return 1
    version = "9.0.0"
    with tempfile.TemporaryDirectory(prefix="nodeprep-demo-", dir="/var/tmp") as temp:
        temp = Path(temp)
        release = build_release(temp / "mirror", version)
        # A node running Debian's containerd, in its own network namespace (pods get addresses).
        with LocalServer(temp / "mirror") as mirror, node_mod.BootedNode(
                "demo", temp / "node", private_network=True, suite="trixie", containerd=True) as node:
            inventory = temp / "inventory.yml"
            write_inventory(inventory, [node])
            extra = {
                "cni_plugins_version": version,
                "cni_plugins_base_url": mirror.base_url,
                "cni_plugins_checksums": {"amd64": {version: "sha256:" + release.sha256}},
                # Keep the demo's controller-side cache out of the user's home.
                "cni_plugins_controller_cache_dir": str(temp / "controller-cache"),
            }
            log("node %s booted, mirror at %s" % (node.name, mirror.base_url))
            reports = temp / "nodeprep-reports"
            rc = 0
            # The second site.yml run shows the no-op path: changed=0 and no request to the mirror.
            for playbook in (site, site, verify):
                if playbook == verify:
                    # What a network add-on would install; containerd reports NetworkReady once it loads it.
                    node.path("/etc/cni/net.d").mkdir(parents=True, exist_ok=True)
                    node.path("/etc/cni/net.d/10-demo.conflist").write_text(json.dumps(DEMO_CONFLIST))
                mirror.clear()
                log("ansible-playbook %s" % playbook.relative_to(REPO))
                result = run_playbook(playbook, inventory, extra_vars=dict(extra, nodeprep_report_dir=str(reports)),
                                      json_output=False, cwd=temp)
                print(result.stdout, end="")
                if result.stderr:
                    print(result.stderr, end="", file=sys.stderr)
                rc = rc or result.rc
                log("mirror requests during that run: %s" % (", ".join(mirror.requests) or "none"))
            for report in sorted(reports.glob("*.json")) if reports.is_dir() else []:
                data = json.loads(report.read_text())
                plugins = data["cni_plugins"]
                log("report %s: schema_version %s, current %s, healthy %s, %d links, missing types %s" % (
                    report.name, data["schema_version"], plugins["current"], plugins["healthy"],
                    len(plugins["links"]), plugins["missing_types"] or "none"))
                runtime = data.get("runtime") or {}
                if runtime:
                    log("runtime: containerd %s searches %s (all current: %s), NetworkReady %s, last CNI load %s" % (
                        runtime["version"], ", ".join(runtime["plugin_dirs"]), runtime["plugin_dirs_current"],
                        runtime["network_ready"], runtime["last_cni_load_status"]))
    return rc


# --- manual nodes -----------------------------------------------------------------------------

def node_workdir(args: argparse.Namespace) -> Path:
    return Path(args.workdir) if args.workdir else MANUAL_NODES / args.name


def load_node(workdir: Path, name: str) -> node_mod.BootedNode:
    state_file = workdir / "node.json"
    if not state_file.is_file():
        raise SystemExit("testbed: no node %s in %s" % (name, workdir))
    return node_mod.BootedNode.from_state(json.loads(state_file.read_text()))


def cmd_node_up(args: argparse.Namespace) -> int:
    from testbed_lib.ansible_runner import write_inventory

    workdir = node_workdir(args)
    if (workdir / "node.json").exists():
        raise SystemExit("testbed: %s exists; run node-down %s first" % (workdir, args.name))
    os_release = Path(args.os_release).read_text() if args.os_release else None
    node = node_mod.BootedNode(args.name, workdir / "node", private_network=args.private_network,
                               readonly_usr=args.readonly_usr, detached=True, suite=args.suite,
                               containerd=args.containerd, os_release=os_release,
                               containerd_version=args.containerd_version)
    node.start()
    inventory = workdir / "inventory.yml"
    write_inventory(inventory, [node])
    (workdir / "node.json").write_text(json.dumps(node.state()))
    print(inventory)
    return 0


def cmd_node_down(args: argparse.Namespace) -> int:
    workdir = node_workdir(args)
    if not (workdir / "node.json").is_file():
        log("no node %s in %s: nothing to stop" % (args.name, workdir))
        return 0
    load_node(workdir, args.name).stop()
    shutil.rmtree(workdir, ignore_errors=True)
    log("node %s stopped" % args.name)
    return 0


def cmd_node_restart(args: argparse.Namespace) -> int:
    """Shuts a node down cleanly and boots it again on the same overlay upper dir."""
    workdir = node_workdir(args)
    node = load_node(workdir, args.name)
    node.restart()
    (workdir / "node.json").write_text(json.dumps(node.state()))
    log("node %s restarted (init pid %s)" % (args.name, node.pid))
    return 0


def cmd_vm_up(args: argparse.Namespace) -> int:
    from testbed_lib.ansible_runner import write_inventory

    workdir = Path(args.workdir) if args.workdir else MANUAL_VMS / args.name
    if (workdir / "vm.json").exists():
        raise SystemExit("testbed: %s exists; run vm-down %s first" % (workdir, args.name))
    node = vm_mod.VirtualNode(args.name, workdir / "vm")
    node.start()
    inventory = workdir / "inventory.yml"
    write_inventory(inventory, [node])
    (workdir / "vm.json").write_text(json.dumps(node.state()))
    node.disconnect()  # no SSH connection outlives this command
    log("VM %s up in %.1f s (QEMU pid %s, console %s)"
        % (args.name, node.timings["boot_to_running"], node.pid, node.console_log))
    print(inventory)
    print(" ".join(node.ssh_command(master=False)))
    return 0


def cmd_vm_down(args: argparse.Namespace) -> int:
    workdir = Path(args.workdir) if args.workdir else MANUAL_VMS / args.name
    state_file = workdir / "vm.json"
    if not state_file.is_file():
        log("no VM %s in %s: nothing to stop" % (args.name, workdir))
        return 0
    node = vm_mod.VirtualNode.from_state(json.loads(state_file.read_text()))
    node.stop()
    shutil.rmtree(workdir, ignore_errors=True)
    log("VM %s stopped (%s, %.1f s)" % (args.name, node.last_exit or "not running", node.timings.get("poweroff", 0)))
    return 0


def cmd_release(args: argparse.Namespace) -> int:
    """Builds a release straight into a controller cache, with its checksum table as JSON."""
    from testbed_lib.releases import build_release

    cache = Path(args.cache_dir)
    with tempfile.TemporaryDirectory(prefix="nodeprep-release-", dir="/var/tmp") as temp:
        release = build_release(temp, args.version)
        cache.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(release.path, cache / release.filename)
    Path(args.checksums).write_text(json.dumps({"amd64": {args.version: "sha256:" + release.sha256}}) + "\n")
    log("release %s in %s" % (args.version, cache))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("bootstrap").set_defaults(func=cmd_bootstrap)
    sub.add_parser("runtimes").set_defaults(func=cmd_runtimes)
    sub.add_parser("demo").set_defaults(func=cmd_demo)
    sub.add_parser("vm-image").set_defaults(func=cmd_vm_image)
    sub.add_parser("vm-image-flatcar").set_defaults(func=cmd_vm_image_flatcar)
    up = sub.add_parser("node-up")
    up.add_argument("name")
    up.add_argument("--workdir", help="node files and state (default %s/NAME)" % MANUAL_NODES)
    up.add_argument("--suite", choices=node_mod.SUITES, default="bookworm")
    up.add_argument("--containerd", action="store_true", help="a rootfs with containerd and runc")
    up.add_argument("--containerd-version", choices=runtimes.CONTAINERD_VERSIONS,
                    help="a rootfs running this containerd, built from its release tag (implies --containerd)")
    up.add_argument("--private-network", action="store_true")
    up.add_argument("--readonly-usr", action="store_true")
    up.add_argument("--os-release", help="a file that replaces /etc/os-release in the node")
    up.set_defaults(func=cmd_node_up)
    release = sub.add_parser("release")
    release.add_argument("version")
    release.add_argument("--cache-dir", required=True)
    release.add_argument("--checksums", required=True, help="JSON checksum table to write")
    release.set_defaults(func=cmd_release)
    for command, func in (("node-down", cmd_node_down), ("node-restart", cmd_node_restart),
                          ("vm-up", cmd_vm_up), ("vm-down", cmd_vm_down)):
        parser_ = sub.add_parser(command)
        parser_.add_argument("name")
        parser_.add_argument("--workdir")
        parser_.set_defaults(func=func)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
