"""Packer and the plugins examples/packer/node.pkr.hcl requires, built from their sources at pinned versions.

Debian's packer (1.6.6) predates external plugins, so it cannot check the template's
``required_plugins``. Each program here is a Go module fetched through the Go module proxy at an
exact release tag and built as the main module (Packer's own ``go.mod`` has a ``replace``, which
``go install module@tag`` refuses), with the ``go.sum`` of that tag, so the bytes built are the
tag's. ``go mod download`` checks every module against the checksum database.

Cache layout, keyed by version (``tools/testbed.py bootstrap`` fills it; tests only read it)::

    /var/cache/nodeprep-testbed/go/                         GOPATH, GOMODCACHE, GOCACHE (shared)
    /var/cache/nodeprep-testbed/packer/packer-1.16.0/packer
    /var/cache/nodeprep-testbed/packer/plugins/github.com/hashicorp/ansible/
        packer-plugin-ansible_v1.1.2_x5.0_linux_amd64        (and ..._SHA256SUM)

The plugin dir is a private ``PACKER_PLUGIN_PATH`` laid out the way ``packer init`` installs
plugins (the file names carry version and plugin API version, and a ``_SHA256SUM`` file sits
beside each), so ``packer validate`` finds them offline without ``packer init``. Every binary is
built in a staging path and renamed into place last, so an interrupted build never looks
complete; a warm run finds the binaries and runs no ``go`` at all.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

TESTBED_CACHE = Path("/var/cache/nodeprep-testbed")
PACKER_CACHE = TESTBED_CACHE / "packer"
PLUGIN_PATH = PACKER_CACHE / "plugins"
GO_ROOT = TESTBED_CACHE / "go"
LOCK = PACKER_CACHE / ".lock"

# The newest release of each whose source the module proxy serves: Packer 1.16.0 (July 2026);
# packer-plugin-ansible 1.1.2 (Oct 2024; the zips of 1.1.3 to 1.1.6 are refused or not in the
# checksum database); packer-plugin-qemu 1.0.9 (the 1.0.10 and 1.1.x tags are refused). Packer 1.10
# and later are under the Business Source License 1.1, which allows this use (building and running
# it to validate a template); the plugins are MPL-2.0.
PACKER_VERSION = "1.16.0"
PACKER_MODULE = "github.com/hashicorp/packer"


@dataclass(frozen=True)
class Plugin:
    name: str
    module: str
    version: str

    @property
    def source_dir(self) -> Path:
        # Where ``packer init`` puts a plugin whose required_plugins source is github.com/hashicorp/<name>.
        return PLUGIN_PATH / "github.com" / "hashicorp" / self.name


PLUGINS = (
    Plugin("ansible", "github.com/hashicorp/packer-plugin-ansible", "1.1.2"),
    Plugin("qemu", "github.com/hashicorp/packer-plugin-qemu", "1.0.9"),
)


class BuildError(RuntimeError):
    """A program could not be built; the message holds the go command's own output."""


def log(message: str) -> None:
    print("testbed: %s" % message, flush=True)


def packer_binary(version: str = PACKER_VERSION) -> Path:
    return PACKER_CACHE / ("packer-%s" % version) / "packer"


def installed_plugin(plugin: Plugin) -> Path | None:
    """The plugin binary packer would load, with its checksum file beside it, or None."""
    for binary in sorted(plugin.source_dir.glob("packer-plugin-%s_v%s_x*_linux_amd64" % (plugin.name, plugin.version))):
        if Path(str(binary) + "_SHA256SUM").is_file():
            return binary
    return None


def is_ready() -> bool:
    return packer_binary().is_file() and all(installed_plugin(plugin) for plugin in PLUGINS)


def go_env() -> dict:
    env = dict(os.environ)
    env.update(GOPATH=str(GO_ROOT), GOMODCACHE=str(GO_ROOT / "pkg" / "mod"), GOCACHE=str(GO_ROOT / "cache"),
               GOFLAGS="-modcacherw -mod=readonly", CGO_ENABLED="0")
    return env


def go_command() -> str:
    found = shutil.which("go") or "/usr/local/go/bin/go"
    if not os.path.isfile(found):
        raise BuildError("no go command on PATH or in /usr/local/go/bin: install Go 1.26 or newer")
    return found


def _go(args: list[str], cwd: Path | None = None) -> str:
    done = subprocess.run([go_command(), *args], cwd=cwd, env=go_env(), capture_output=True, text=True, check=False, timeout=3600)
    if done.returncode != 0:
        raise BuildError("go %s failed:\n%s" % (" ".join(args), (done.stderr or done.stdout)[-4000:]))
    return done.stdout


def build_module(module: str, version: str, target: Path, ldflags: str = "") -> float:
    """``go build`` of *module* at tag v*version* as the main module into *target*; returns seconds."""
    started = time.monotonic()
    download = json.loads(_go(["mod", "download", "-json", "%s@v%s" % (module, version)]))
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".build-", dir=str(target.parent)) as scratch:
        source = Path(scratch) / "src"
        shutil.copytree(download["Dir"], source)
        for path in source.rglob("*"):
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o200)
        staged = Path(scratch) / target.name
        _go(["build", "-trimpath", "-ldflags", ("-s -w " + ldflags).strip(), "-o", str(staged), "."], cwd=source)
        os.replace(staged, target)
    return time.monotonic() - started


def _install_plugin(plugin: Plugin) -> None:
    plugin.source_dir.mkdir(parents=True, exist_ok=True)
    staged = plugin.source_dir / (".packer-plugin-%s-%s.build" % (plugin.name, plugin.version))
    ldflags = "-X %s/version.Version=%s -X %s/version.VersionPrerelease=" % (plugin.module, plugin.version, plugin.module)
    seconds = build_module(plugin.module, plugin.version, staged, ldflags)
    # The plugin names its own version and plugin API version; packer accepts the file only when its
    # name says the same.
    described = json.loads(subprocess.run([str(staged), "describe"], capture_output=True, text=True, check=True).stdout)
    if described["version"] != plugin.version:
        staged.unlink()
        raise BuildError("%s built from v%s says it is %s" % (plugin.module, plugin.version, described["version"]))
    final = plugin.source_dir / ("packer-plugin-%s_v%s_%s_linux_amd64" % (plugin.name, plugin.version, described["api_version"]))
    digest = hashlib.sha256(staged.read_bytes()).hexdigest()
    Path(str(final) + "_SHA256SUM").write_text(digest)
    os.replace(staged, final)
    log("packer-plugin-%s %s built in %.0f s: %s" % (plugin.name, plugin.version, seconds, final))


def ensure_packer() -> None:
    """Packer and the template's plugins in the cache; builds only what is missing."""
    if is_ready():
        return
    PACKER_CACHE.mkdir(parents=True, exist_ok=True)
    with open(LOCK, "a+", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not packer_binary().is_file():
            # Packer embeds its version from the tag's version/VERSION file.
            seconds = build_module(PACKER_MODULE, PACKER_VERSION, packer_binary())
            log("packer %s built in %.0f s: %s" % (PACKER_VERSION, seconds, packer_binary()))
        for plugin in PLUGINS:
            if not installed_plugin(plugin):
                _install_plugin(plugin)


def packer_env(base: dict | None = None) -> dict:
    """The environment that runs the cached packer with the private plugin dir, offline."""
    env = dict(os.environ if base is None else base)
    env.update(PACKER_PLUGIN_PATH=str(PLUGIN_PATH), CHECKPOINT_DISABLE="1", PACKER_CONFIG_DIR=str(PACKER_CACHE / "config"))
    return env
