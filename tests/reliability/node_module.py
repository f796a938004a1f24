"""Run a collection module as a plain process inside a node, so a test can kill it at any moment.

The node gets the collection's plugins and ansible's module_utils (what AnsiballZ would ship)
under /root/nodeprep-modrun; the module then runs exactly as on a managed node, with its
arguments in a file, and prints its JSON result.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

import ansible

from testbed_lib.node import _descendants

REPO = Path(__file__).resolve().parents[2]
MODRUN = "/root/nodeprep-modrun"
RUNNER = ("import runpy, sys; sys.path.insert(0, %r); name = sys.argv.pop(1); "
          "runpy.run_module('ansible_collections.nodeprep.cni.plugins.modules.' + name, run_name='__main__')" % MODRUN)


def install_runner(node) -> None:
    root = node.path(MODRUN)
    if root.exists():
        return
    ansible_dir = Path(ansible.__file__).parent
    for part in ("module_utils", "_vendor"):
        shutil.copytree(ansible_dir / part, root / "ansible" / part, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("__init__.py", "release.py"):
        shutil.copy2(ansible_dir / name, root / "ansible" / name)
    shutil.copytree(REPO / "plugins", root / "ansible_collections/nodeprep/cni/plugins",
                    ignore=shutil.ignore_patterns("__pycache__"))


# The same run, cut off like a kill -9 (os._exit: no handler, no cleanup) right before its Nth
# change to the filesystem: a directory or name made or removed, a mode set, a file opened for
# writing. In scope "recovery" only the changes made while the journal of an earlier
# run is replayed are counted, so a second kill can land inside the recovery itself.
CUT_RUNNER = ("import os, runpy, sys; sys.path.insert(0, %r); kill_at = int(sys.argv.pop(1)); scope = sys.argv.pop(1)\n"
              "state = {'count': 0, 'active': scope == 'run'}\n"
              "def cut():\n"
              "    if state['active']:\n"
              "        state['count'] += 1\n"
              "        if state['count'] == kill_at:\n"
              "            os._exit(137)\n"
              "def wrap(name):\n"
              "    real = getattr(os, name)\n"
              "    def call(*args, **kwargs):\n"
              "        cut()\n"
              "        return real(*args, **kwargs)\n"
              "    setattr(os, name, call)\n"
              "for name in ('mkdir', 'rmdir', 'rename', 'replace', 'link', 'symlink', 'unlink', 'chmod'):\n"
              "    wrap(name)\n"
              "real_open = os.open\n"
              "def opener(path, flags, *args, **kwargs):\n"
              "    if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):\n"
              "        cut()\n"
              "    return real_open(path, flags, *args, **kwargs)\n"
              "os.open = opener\n"
              "if scope == 'recovery':\n"
              "    from ansible_collections.nodeprep.cni.plugins.module_utils import _journal\n"
              "    real_recover = _journal.recover\n"
              "    def recover(journal):\n"
              "        state['active'] = True\n"
              "        try:\n"
              "            return real_recover(journal)\n"
              "        finally:\n"
              "            state['active'] = False\n"
              "    _journal.recover = recover\n"
              "name = sys.argv.pop(1)\n"
              "runpy.run_module('ansible_collections.nodeprep.cni.plugins.modules.' + name, run_name='__main__')\n" % MODRUN)


def _command(node, module: str, args: dict, check_mode: bool = False, cut: tuple | None = None) -> list:
    install_runner(node)
    name = "args-%s.json" % secrets.token_hex(4)
    payload = dict(args, _ansible_check_mode=check_mode)
    node.path(MODRUN).joinpath(name).write_text(json.dumps({"ANSIBLE_MODULE_ARGS": payload}))
    if cut is not None:
        kill_at, scope = cut
        return node.nsenter_command(["python3", "-I", "-c", CUT_RUNNER, str(kill_at), scope, module, MODRUN + "/" + name])
    return node.nsenter_command(["python3", "-I", "-c", RUNNER, module, MODRUN + "/" + name])


def _result(stdout: str, stderr: str, rc: int) -> dict:
    lines = [line for line in stdout.strip().splitlines() if line.startswith("{")]
    if not lines:
        return {"rc": rc, "failed": True, "msg": "no result: %s %s" % (stdout[-500:], stderr[-1500:])}
    result = json.loads(lines[-1])
    result["rc"] = rc
    return result


def run_module_on_node(node, module: str, args: dict, check_mode: bool = False, timeout: float = 120) -> dict:
    proc = subprocess.run(_command(node, module, args, check_mode), capture_output=True, text=True, timeout=timeout, check=False)
    return _result(proc.stdout, proc.stderr, proc.returncode)


def run_cut(node, module: str, args: dict, kill_at: int, scope: str = "run", timeout: float = 120) -> dict | None:
    """Run *module* killed right before its *kill_at*-th filesystem change (see CUT_RUNNER);
    None when it was killed, its result when it finished before reaching that point."""
    proc = subprocess.run(_command(node, module, args, cut=(kill_at, scope)), capture_output=True, text=True,
                          timeout=timeout, check=False)
    if proc.returncode == 137 and not proc.stdout.strip():
        return None
    return _result(proc.stdout, proc.stderr, proc.returncode)


class Running:
    """A module run in the background: ``finish()`` for its result, ``kill9()`` to cut it off."""

    def __init__(self, node, module: str, args: dict):
        self.proc = subprocess.Popen(_command(node, module, args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finish(self, timeout: float = 120) -> dict:
        out, err = self.proc.communicate(timeout=timeout)
        return _result(out, err, self.proc.returncode)

    def kill9(self) -> None:
        """SIGKILL the module and every process it started (probes), like a power cut for this run."""
        for pid in reversed(_descendants(self.proc.pid)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.kill()
        except ProcessLookupError:
            pass
        self.proc.communicate(timeout=30)


def wait_for(predicate, timeout: float = 30.0, poll: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll)
    return False
