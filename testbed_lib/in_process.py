"""Run a collection module's ``main()`` in-process and hand back its result dict.

The module sees its arguments exactly as Ansible would deliver them (``module_args``), prints
its JSON result and calls ``sys.exit``; we capture both, so a test asserts on the same result a
playbook would get.

Import as ``from testbed_lib.in_process import run_module_in_process`` (tests/conftest.py puts
the collection and the repository on sys.path). A module run inside a booted node is
tests/reliability/node_module.py's ``run_module_on_node``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import subprocess
import sys

from ansible.module_utils import basic as _basic
from ansible.module_utils.common import warnings as _warnings

from testbed_lib.releases import DEBIAN_PLUGINS_DIR, build_tarball, member

try:
    from ansible.module_utils.testing import patch_module_args as _core_patch_module_args
except ImportError:  # ansible-core < 2.19 has no public helper for this
    _core_patch_module_args = None


class ModuleExit(Exception):
    """The module did not print a result (it crashed before exit_json/fail_json)."""


@contextlib.contextmanager
def module_args(args: dict):
    """Delivers *args* to the next ``AnsibleModule`` the way the core under test does.

    ansible-core 2.19 added ``patch_module_args``, which also sets up the serialization profile
    that its modules expect; older cores read the arguments from ``basic._ANSIBLE_ARGS``.
    """
    if _core_patch_module_args is not None:
        with _core_patch_module_args(args):
            yield
        return
    saved = _basic._ANSIBLE_ARGS
    _basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode("utf-8")
    try:
        yield
    finally:
        _basic._ANSIBLE_ARGS = saved


def _reset_global_warnings():
    # AnsibleModule keeps warnings in a process-wide store (a dict from ansible-core 2.19, a list
    # before); one module run must not see the last one's.
    for name in ("_global_warnings", "_global_deprecations"):
        store = getattr(_warnings, name, None)
        if isinstance(store, (dict, list)):
            store.clear()


def run_module_in_process(module, args: dict, check_mode: bool = False, diff: bool = False) -> dict:
    """Call ``module.main()`` with *args*; return the result dict plus ``rc`` (the exit code).

    A failed module returns ``failed: True`` and ``msg`` like it would to a playbook; an uncaught
    exception propagates so the test shows the traceback.
    """
    full_args = dict(args)
    full_args["_ansible_check_mode"] = check_mode
    full_args["_ansible_diff"] = diff
    _reset_global_warnings()
    out = io.StringIO()
    code = None
    with module_args(full_args), contextlib.redirect_stdout(out):
        try:
            module.main()
        except SystemExit as exc:
            code = exc.code
    text = out.getvalue().strip()
    if code is None or not text:
        raise ModuleExit("module %s returned without a result (exit code %r, output %r)" % (module.__name__, code, text[:500]))
    result = json.loads(text.splitlines()[-1])
    result["rc"] = code
    return result


# Test data builders shared by the module and module_utils tests --------------------------------

# The pinned checksum data the shipped table is generated from (inside the repository, like
# everything the tests read).
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKSUM_DATA = os.path.join(REPO, "tools", "data", "cni_plugins_checksums.yml")
REAL_PLUGIN_DIR = DEBIAN_PLUGINS_DIR  # Debian's containernetworking-plugins: real binaries, never modified


def script_plugin(label: str, exit_code: int = 0, answer: str = None) -> bytes:
    """A tiny executable "plugin" answering CNI_COMMAND=VERSION; *label* makes its bytes unique."""
    if answer is None:
        answer = '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}'
    return ("#!/bin/sh\n# fake CNI plugin %s\necho '%s'\nexit %d\n" % (label, answer, exit_code)).encode("utf-8")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path) -> str:
    with open(path, "rb") as handle:
        return sha256_bytes(handle.read())


def release_files(label: str, plugins=("bridge", "host-local", "loopback", "portmap")) -> dict:
    """Files of a fake release: script plugins unique to *label*, plus LICENSE and README.md."""
    files = dict((name, script_plugin("%s %s" % (name, label))) for name in plugins)
    files["LICENSE"] = ("license text of %s\n" % label).encode("utf-8")
    files["README.md"] = ("# release %s\n" % label).encode("utf-8")
    return files


def real_release_files(plugins=("bridge", "host-local", "loopback", "portmap")) -> dict:
    files = {}
    for name in plugins:
        with open(os.path.join(REAL_PLUGIN_DIR, name), "rb") as handle:
            files[name] = handle.read()
    files["LICENSE"] = b"Apache License 2.0 (test copy)\n"
    return files


# A fake node and its release tarballs, for the cni_install / cni_info tests ---------------------

VERSION_A, VERSION_B, VERSION_C, VERSION_REAL = "1.0.0", "1.1.0", "1.2.0", "9.0.0"
RELEASE_PLUGINS = ["bridge", "host-local", "loopback", "portmap"]


class Release:
    def __init__(self, version, path, files):
        self.version = version
        self.path = path
        self.files = files


def build_releases(cache) -> dict:
    """Release tarballs under *cache* (outside any node root, like a download cache):
    A/B/C with script plugins, REAL with Debian's plugin binaries, and three broken ones."""
    built = {}
    for version in (VERSION_A, VERSION_B, VERSION_C):
        files = release_files(version)
        built[version] = Release(version, build_tarball(os.path.join(str(cache), "cni-plugins-linux-amd64-v%s.tgz" % version), files), files)
    files = real_release_files()
    built[VERSION_REAL] = Release(VERSION_REAL, build_tarball(os.path.join(str(cache), "cni-plugins-linux-amd64-v%s.tgz" % VERSION_REAL), files), files)

    hostile = release_files("2.0.0")
    built["hostile"] = Release("2.0.0", build_tarball(
        os.path.join(str(cache), "hostile.tgz"), hostile,
        extra_members=[member("../evil", b"#!/bin/sh\necho owned\n")]), hostile)

    with open(built[VERSION_REAL].path, "rb") as handle:
        whole = handle.read()
    truncated = os.path.join(str(cache), "truncated.tgz")
    with open(truncated, "wb") as handle:
        handle.write(whole[: len(whole) // 2])
    built["truncated"] = Release("2.0.0", truncated, None)

    failing = release_files("2.0.0")
    failing["bridge"] = script_plugin("broken bridge", exit_code=1)
    built["probe-fails"] = Release("2.0.0", build_tarball(os.path.join(str(cache), "probe-fails.tgz"), failing), failing)
    return built


class FakeRoot:
    """A node's filesystem under a test directory; every module call is pointed at it.

    ``testbed_lib.tree.snapshot(root)`` pictures it; a real, booted node is a ``BootedNode``."""

    def __init__(self, root):
        self.root = str(root)
        self.versions_dir = os.path.join(self.root, "opt", "cni", "versions")
        self.bin_dir = os.path.join(self.root, "opt", "cni", "bin")
        self.k3s_dir = os.path.join(self.root, "var", "lib", "rancher", "k3s", "data", "cni")
        self.conf_dir = os.path.join(self.root, "etc", "cni", "net.d")

    @property
    def link_dirs(self):
        return [self.bin_dir, self.k3s_dir]

    def args(self, **extra) -> dict:
        args = {"versions_dir": self.versions_dir, "bin_dir": self.bin_dir, "link_dirs": [self.k3s_dir],
                "lock_timeout": 5, "probe_timeout": 10}
        args.update(extra)
        return args

    def info_args(self, **extra) -> dict:
        args = {"versions_dir": self.versions_dir, "bin_dir": self.bin_dir, "link_dirs": [self.k3s_dir]}
        args.update(extra)
        return args

    def version_dir(self, version) -> str:
        return os.path.join(self.versions_dir, "v" + version)

    def put(self, relpath, data: bytes, mode=0o755) -> str:
        path = os.path.join(self.root, relpath)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(data)
        os.chmod(path, mode)
        return path


_CHILD = """
import importlib, json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from testbed_lib.in_process import run_module_in_process
module = importlib.import_module("ansible_collections.nodeprep.cni.plugins.modules." + sys.argv[3])
print(json.dumps(run_module_in_process(module, json.loads(sys.argv[4]))))
"""


def start_module_process(module_name: str, args: dict, collections_root: str):
    """Run a module in a child Python (for tests that need two runs at once); read the result
    with ``finish_module_process``."""
    return subprocess.Popen([sys.executable, "-c", _CHILD, collections_root, REPO, module_name, json.dumps(args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish_module_process(proc, timeout: float = 30) -> dict:
    out, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise ModuleExit("child exited %s: %s" % (proc.returncode, err.decode("utf-8", "replace")[-2000:]))
    return json.loads(out.decode("utf-8").strip().splitlines()[-1])


def real_run_command():
    """``run_command`` of a real AnsibleModule, as a module would pass it to module_utils."""
    from ansible.module_utils.basic import AnsibleModule

    _reset_global_warnings()
    with module_args({}):
        module = AnsibleModule(argument_spec={})
    return module.run_command
