"""Container runtimes that Debian does not package, built from their own sources at exact tags.

Each program is a Go module fetched through the Go module proxy with ``go install
<module>/<cmd>@<tag>``, which builds exactly the tagged ``go.mod`` (a ``replace`` directive makes
it refuse, so a tag that needs one fails loudly instead of building something else). Binaries are
static (``CGO_ENABLED=0``; containerd's btrfs snapshotter, the only cgo part it builds by default,
is left out with the ``no_btrfs`` tag).

Cache layout, keyed by version (``tools/testbed.py bootstrap`` fills it; tests only read it)::

    /var/cache/nodeprep-testbed/go/                       private GOPATH, GOMODCACHE, GOCACHE
    /var/cache/nodeprep-testbed/runtimes/containerd-2.3.7/
        bin/containerd bin/ctr bin/containerd-shim-runc-v2
        containerd.service                                containerd's own unit, from the same tag
        .nodeprep-runtime-complete                        the recipe it was built with (JSON)
    /var/cache/nodeprep-testbed/runtimes/crio-node-files-1.36.3/
        bin/pinns crio.service                            from CRI-O's tagged tree (make, not go)

A build runs in a staging dir next to its final place and is renamed into place with its stamp,
so an interrupted build never looks complete; a warm run finds the stamp and runs no ``go`` at all.
One lock file serialises builds from several checkouts sharing the cache.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

TESTBED_CACHE = Path("/var/cache/nodeprep-testbed")
RUNTIMES_CACHE = TESTBED_CACHE / "runtimes"
GO_ROOT = TESTBED_CACHE / "go"
STAMP = ".nodeprep-runtime-complete"
LOCK = RUNTIMES_CACHE / ".lock"
# Bumped whenever the way programs are built changes, so old builds are rebuilt, not reused.
RECIPE_VERSION = "1"

CONTAINERD_MODULE = "github.com/containerd/containerd/v2"
# The newest patch release of each containerd line the collection is proven on beyond Debian's
# packages (1.6, 1.7, 2.1): 2.2 (end of life), 2.3 (long-term support, config version 4) and
# 2.4 (current; no longer reads the CNI ``bin_dir``).
CONTAINERD_VERSIONS = ("2.2.9", "2.3.7", "2.4.2")
CONTAINERD_COMMANDS = ("cmd/containerd", "cmd/ctr", "cmd/containerd-shim-runc-v2")
# The Debian suite under nodes that run a built runtime (its systemd, runc and busybox).
RUNTIME_SUITE = "sid"


class BuildError(RuntimeError):
    """A program could not be built; the message holds the go command's own output."""


def log(message: str) -> None:
    print("testbed: %s" % message, flush=True)


@dataclass(frozen=True)
class GoProgram:
    """Commands of one Go module at one release tag, built into one cached bin dir."""

    name: str
    module: str
    version: str  # without the leading "v"
    commands: tuple[str, ...]
    tags: tuple[str, ...] = ()
    ldflags: tuple[str, ...] = ()
    cgo: bool = False
    binaries: tuple[str, ...] = ()
    # Files of the module's source tree kept beside bin/ (e.g. containerd's own systemd unit).
    source_files: tuple[str, ...] = ()
    # Build with ``go build`` inside the downloaded module instead of ``go install <module>@<tag>``:
    # the proxy refuses the version list of some modules (CRI-O's), which ``go install`` reads for
    # its deprecation check; the tagged go.mod and go.sum are the same either way.
    in_module_dir: bool = False

    @property
    def tag(self) -> str:
        return "v" + self.version

    @property
    def home(self) -> Path:
        return RUNTIMES_CACHE / ("%s-%s" % (self.name, self.version))

    @property
    def bin_dir(self) -> Path:
        return self.home / "bin"

    def recipe(self) -> dict:
        recipe = {"recipe": RECIPE_VERSION, "module": self.module, "tag": self.tag,
                  "commands": list(self.commands), "tags": list(self.tags),
                  "ldflags": list(self.ldflags), "cgo": self.cgo, "source_files": list(self.source_files)}
        if self.in_module_dir:
            recipe["in_module_dir"] = True
        return recipe

    def expected_binaries(self) -> tuple[str, ...]:
        return self.binaries or tuple(command.rsplit("/", 1)[-1] for command in self.commands)


def containerd(version: str) -> GoProgram:
    package = CONTAINERD_MODULE + "/version"
    return GoProgram(
        name="containerd", module=CONTAINERD_MODULE, version=version, commands=CONTAINERD_COMMANDS,
        tags=("no_btrfs",), source_files=("containerd.service",),
        # What containerd's own Makefile stamps in: `containerd --version` must name the release
        # (the collection reads it to pick the CNI keys).
        ldflags=("-X", "%s.Version=%s" % (package, version), "-X", "%s.Package=%s" % (package, CONTAINERD_MODULE)))


CRIO_MODULE = "github.com/cri-o/cri-o"
# The newest CRI-O release the module proxy serves (its conmon and runc come from Debian).
CRIO_VERSION = "1.36.3"
CRICTL_MODULE = "sigs.k8s.io/cri-tools"
CRICTL_VERSION = "1.37.0"
# cgo for seccomp (Debian's libseccomp-dev, which tools/bootstrap installs); image signatures through
# the pure-Go OpenPGP code instead of gpgme, and no devicemapper or btrfs graph drivers (no headers,
# and a node uses vfs or overlay storage anyway).
CRIO_TAGS = ("containers_image_openpgp", "seccomp", "exclude_graphdriver_devicemapper", "exclude_graphdriver_btrfs")


def crio(version: str = CRIO_VERSION) -> GoProgram:
    return GoProgram(
        name="crio", module=CRIO_MODULE, version=version, commands=("cmd/crio",), tags=CRIO_TAGS, cgo=True,
        in_module_dir=True)  # its version is a constant in the tagged source


def crictl(version: str = CRICTL_VERSION) -> GoProgram:
    package = CRICTL_MODULE + "/pkg/version"
    return GoProgram(name="crictl", module=CRICTL_MODULE, version=version, commands=("cmd/crictl",),
                     ldflags=("-X", "%s.Version=%s" % (package, version)))


PLUGINS_MODULE = "github.com/containernetworking/plugins"
# Upstream's plugins with CNI spec 1.1.0 (STATUS, supportedVersions up to 1.1.0); Debian's
# bookworm build, which the release mirror repacks, stops at 1.0.0.
PLUGINS_VERSION = "1.9.1"
PLUGINS_COMMANDS = ("plugins/main/bridge", "plugins/main/loopback", "plugins/ipam/host-local", "plugins/meta/portmap")


def cni_plugins(version: str = PLUGINS_VERSION) -> GoProgram:
    return GoProgram(name="cni-plugins", module=PLUGINS_MODULE, version=version, commands=PLUGINS_COMMANDS,
                     ldflags=("-X", "%s/pkg/utils/buildversion.BuildVersion=v%s" % (PLUGINS_MODULE, version)))


# What a CRI-O node needs from CRI-O's own source tree beside the Go binary: ``pinns`` (C; it makes
# the pod's namespaces) built by the tree's own pinns/Makefile, and the tree's systemd unit.
CRIO_NODE_RECIPE = "1:make -C pinns (static, gcc):contrib/systemd/crio.service"


def crio_node_files_home(version: str = CRIO_VERSION) -> Path:
    return RUNTIMES_CACHE / ("crio-node-files-%s" % version)


def ensure_crio_node_files(version: str = CRIO_VERSION) -> Path:
    """``bin/pinns`` and ``crio.service`` from the tagged CRI-O tree, cached by version; returns their dir.

    The tree is the one the Go build downloaded (warm: from the private module cache, no network).
    """
    home = crio_node_files_home(version)
    recipe = {"recipe": CRIO_NODE_RECIPE, "module": CRIO_MODULE, "tag": "v" + version}

    def built() -> bool:
        try:
            return (json.loads((home / STAMP).read_text()).get("build") == recipe
                    and (home / "bin/pinns").is_file() and (home / "crio.service").is_file())
        except (OSError, ValueError):
            return False

    if built():
        return home
    RUNTIMES_CACHE.mkdir(parents=True, exist_ok=True)
    with open(LOCK, "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if built():
            return home
        started = time.monotonic()
        GO_ROOT.mkdir(parents=True, exist_ok=True)
        source = download_module(crio(version), go_environment(), go_command())
        staging = Path(tempfile.mkdtemp(prefix=home.name + ".build-", dir=RUNTIMES_CACHE))
        try:
            # The module cache is read-only: make runs in a copy of pinns/, writing ../bin/pinns.
            shutil.copytree(source / "pinns", staging / "src/pinns")
            for path in (staging / "src").rglob("*"):
                path.chmod(path.stat().st_mode | 0o200)
            log("building pinns %s" % version)
            result = subprocess.run(["make", "-C", str(staging / "src/pinns")], capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise BuildError("building pinns %s failed:\n%s%s" % (version, result.stdout, result.stderr))
            (staging / "bin").mkdir()
            os.rename(staging / "src/bin/pinns", staging / "bin/pinns")
            shutil.rmtree(staging / "src")
            shutil.copyfile(source / "contrib/systemd/crio.service", staging / "crio.service")
            seconds = round(time.monotonic() - started, 1)
            (staging / STAMP).write_text(json.dumps({"build": recipe, "seconds": seconds}, indent=1) + "\n")
            staging.chmod(0o755)
            if home.exists():
                shutil.rmtree(home)
            os.rename(staging, home)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    log("built pinns %s in %.0f s: %s" % (version, seconds, home))
    return home


def crio_rootfs_path(version: str = CRIO_VERSION) -> Path:
    """The cached node rootfs running CRI-O ``version`` (`make runtimes` builds it)."""
    return TESTBED_CACHE / ("rootfs-crio-%s" % version)


def containerd_bin_dir(version: str) -> Path:
    """The dir with ``containerd``, ``ctr`` and ``containerd-shim-runc-v2`` of that release."""
    return containerd(version).bin_dir


def containerd_rootfs_path(version: str) -> Path:
    """The cached node rootfs running containerd ``version`` (`make runtimes` builds it)."""
    return TESTBED_CACHE / ("rootfs-containerd-%s" % version)


def is_built(program: GoProgram) -> bool:
    stamp = program.home / STAMP
    try:
        recorded = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return False
    return (recorded.get("build") == program.recipe()
            and all((program.bin_dir / binary).is_file() for binary in program.expected_binaries())
            and all((program.home / name).is_file() for name in program.source_files))


def build_info(program: GoProgram) -> dict:
    """What the stamp recorded about the build (Go version, seconds), or {} when not built."""
    try:
        return json.loads((program.home / STAMP).read_text())
    except (OSError, ValueError):
        return {}


def go_environment() -> dict[str, str]:
    """The machine's Go with a private module and build cache, so warm builds need no network."""
    env = dict(os.environ)
    env.update({
        "GOPATH": str(GO_ROOT),
        "GOMODCACHE": str(GO_ROOT / "pkg/mod"),
        "GOCACHE": str(GO_ROOT / "cache"),
        # Module files stay writable, so the cache can be removed with rm -rf.
        "GOFLAGS": "-modcacherw -buildvcs=false",
        # A module that asks for a newer Go than the installed one must fail, not fetch a toolchain
        # behind the test bed's back; GOTOOLCHAIN set by the caller still wins.
        "GOTOOLCHAIN": os.environ.get("GOTOOLCHAIN", "local"),
    })
    env.pop("GOWORK", None)
    return env


def go_command() -> str:
    for candidate in (shutil.which("go"), "/usr/local/go/bin/go", "/usr/lib/go/bin/go"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise BuildError("no go command found: the test bed builds runtimes with the installed Go")


def download_module(program: GoProgram, env: dict[str, str], go: str) -> Path:
    """Fetches the tagged module; returns its source dir. Its go.mod must have no replace directive."""
    result = subprocess.run([go, "mod", "download", "-json", "%s@%s" % (program.module, program.tag)],
                            env=env, capture_output=True, text=True, check=False, cwd=GO_ROOT)
    if result.returncode != 0:
        raise BuildError("go mod download %s@%s failed:\n%s%s" % (
            program.module, program.tag, result.stdout, result.stderr))
    go_mod = Path(json.loads(result.stdout)["GoMod"]).read_text()
    if any(line.strip().startswith("replace") for line in go_mod.splitlines()):
        raise BuildError("%s@%s has replace directives in its go.mod: it does not build as published"
                         % (program.module, program.tag))
    return Path(json.loads(result.stdout)["Dir"])


def ensure_built(program: GoProgram) -> Path:
    """Builds the program once (under the cache lock) and returns its bin dir."""
    if is_built(program):
        return program.bin_dir
    RUNTIMES_CACHE.mkdir(parents=True, exist_ok=True)
    with open(LOCK, "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not is_built(program):  # another checkout may have built it while we waited
            _build(program)
    return program.bin_dir


def _build(program: GoProgram) -> None:
    go, env = go_command(), go_environment()
    GO_ROOT.mkdir(parents=True, exist_ok=True)
    for stale in RUNTIMES_CACHE.glob(program.home.name + ".build-*"):
        log("removing interrupted build %s" % stale)
        shutil.rmtree(stale, ignore_errors=True)
    started = time.monotonic()
    source = download_module(program, env, go)
    staging = Path(tempfile.mkdtemp(prefix=program.home.name + ".build-", dir=RUNTIMES_CACHE))
    try:
        env.update({"GOBIN": str(staging / "bin"), "CGO_ENABLED": "1" if program.cgo else "0"})
        command = [go, "build" if program.in_module_dir else "install", "-trimpath"]
        if program.tags:
            command += ["-tags", ",".join(program.tags)]
        command += ["-ldflags", " ".join(("-s", "-w") + program.ldflags)]
        if program.in_module_dir:
            (staging / "bin").mkdir()
            command += ["-o", str(staging / "bin") + "/"] + ["./" + cmd for cmd in program.commands]
        else:
            command += ["%s/%s@%s" % (program.module, cmd, program.tag) for cmd in program.commands]
        log("building %s %s (%s)" % (program.name, program.version, ", ".join(program.expected_binaries())))
        # The staging dir (or the tagged module itself) as working dir: no go.mod or go.work of the caller applies.
        result = subprocess.run(command, env=env, cwd=source if program.in_module_dir else staging,
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise BuildError("building %s %s failed:\n%s%s" % (
                program.name, program.version, result.stdout, result.stderr))
        missing = [b for b in program.expected_binaries() if not (staging / "bin" / b).is_file()]
        if missing:
            raise BuildError("building %s %s produced no %s" % (program.name, program.version, ", ".join(missing)))
        for name in program.source_files:
            shutil.copyfile(source / name, staging / name)
        go_version = subprocess.run([go, "env", "GOVERSION"], env=env, capture_output=True, text=True,
                                    check=True).stdout.strip()
        seconds = round(time.monotonic() - started, 1)
        (staging / STAMP).write_text(json.dumps({"build": program.recipe(), "go": go_version,
                                                 "seconds": seconds}, indent=1) + "\n")
        staging.chmod(0o755)
        if program.home.exists():
            shutil.rmtree(program.home)
        os.rename(staging, program.home)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log("built %s %s in %.0f s: %s" % (program.name, program.version, seconds, program.bin_dir))


def ensure_containerds(versions: tuple[str, ...] = CONTAINERD_VERSIONS) -> dict[str, Path]:
    """Every pinned containerd built; returns their bin dirs by version."""
    return {version: ensure_built(containerd(version)) for version in versions}


def ensure_crio() -> dict[str, Path]:
    """CRI-O and upstream's CNI plugins built (what the tests use); returns their bin dirs by name."""
    built = {program.name: ensure_built(program) for program in (cni_plugins(), crio())}
    built["pinns"] = ensure_crio_node_files() / "bin"
    return built


def main(argv: list[str] | None = None) -> int:
    """``python3 -m testbed_lib.runtimes [VERSION…]``: build (or find) containerds, print their dirs."""
    import sys
    versions = tuple(argv if argv is not None else sys.argv[1:]) or CONTAINERD_VERSIONS
    if versions == ("crio",):
        for name, bin_dir in ensure_crio().items():
            print("%s %s" % (name, bin_dir))
        return 0
    if versions == ("crictl",):  # for checking a CRI-O node by hand; no test needs it
        print("crictl %s" % ensure_built(crictl()))
        return 0
    for version, bin_dir in ensure_containerds(versions).items():
        print("containerd %s %s" % (version, bin_dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
