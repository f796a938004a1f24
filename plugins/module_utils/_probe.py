# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prove a plugin binary runs on this node before anything points at it."""

from __future__ import annotations

import json
import os
import shlex
import shutil

# Exit codes of coreutils' timeout(1) for a plugin that ran too long, and of timeout(1) or the
# shell for one that could not be started at all.
TIMED_OUT = (124, 137)
NOT_STARTED = (125, 126, 127)


class ProbeFailed(Exception):
    pass


def _noexec_hint(path: str) -> str:
    try:
        if os.statvfs(path).f_flag & getattr(os, "ST_NOEXEC", 8):
            return " The filesystem holding %s is mounted noexec: remount it exec or choose a versions_dir on an exec mount." % path
    except OSError:
        pass
    return ""


def probe_plugin(run_command, path: str, timeout: float = 15.0) -> dict:
    """Run ``CNI_COMMAND=VERSION <plugin>`` and return its JSON answer, or raise ProbeFailed.

    *run_command* is the module's ``AnsibleModule.run_command``; coreutils' ``timeout`` bounds the
    plugin's run where the node has it. The plugin's stdin is empty (/dev/null): plugins read it
    to its end, and one that never reads must not make the probe fail on a broken pipe.
    """
    name = os.path.basename(path)
    limiter = shutil.which("timeout")
    argv = [limiter, "--kill-after=2", "%g" % timeout, path] if limiter else [path]
    command = "exec %s </dev/null" % " ".join(shlex.quote(arg) for arg in argv)
    try:
        rc, output, errors = run_command(command, use_unsafe_shell=True, check_rc=False,
                                         environ_update={"CNI_COMMAND": "VERSION"}, handle_exceptions=False)
    except OSError as exc:
        raise ProbeFailed("plugin %s cannot be executed on this node: %s.%s" % (name, exc, _noexec_hint(path)))
    output = output.strip()
    if limiter and rc in TIMED_OUT:
        raise ProbeFailed("plugin %s did not answer CNI_COMMAND=VERSION within %ss" % (name, timeout))
    if rc in NOT_STARTED and not output:
        raise ProbeFailed("plugin %s cannot be executed on this node: %s.%s" % (name, errors.strip()[:300], _noexec_hint(path)))
    if rc != 0:
        detail = (errors.strip() or output)[:300]
        raise ProbeFailed("plugin %s exited %d on CNI_COMMAND=VERSION: %s.%s" % (name, rc, detail, _noexec_hint(path)))
    try:
        answer = json.loads(output)
    except ValueError:
        raise ProbeFailed("plugin %s answered CNI_COMMAND=VERSION with something that is not JSON: %r" % (name, output[:200]))
    if not isinstance(answer, dict) or not ("cniVersion" in answer or "supportedVersions" in answer):
        raise ProbeFailed("plugin %s answered CNI_COMMAND=VERSION without cniVersion/supportedVersions: %r" % (name, output[:200]))
    return answer


def status_invoker(run_command, timeout: float = 15.0):
    """``invoke(path, stdin_bytes, cni_path) -> (rc, stdout, stderr)`` running a plugin with ``CNI_COMMAND=STATUS``.

    STATUS reads only the plugin's config on stdin, like a runtime sends it; a plugin that cannot
    be started or runs too long is an answer (rc and message), never an exception.
    """
    limiter = shutil.which("timeout")

    def invoke(path, data, cni_path):
        argv = [limiter, "--kill-after=2", "%g" % timeout, path] if limiter else [path]
        try:
            rc, out, err = run_command(argv, data=data, binary_data=True, check_rc=False, handle_exceptions=False,
                                       environ_update={"CNI_COMMAND": "STATUS", "CNI_PATH": cni_path})
        except OSError as exc:
            return 127, "", "cannot execute %s: %s.%s" % (path, exc, _noexec_hint(path))
        if limiter and rc in TIMED_OUT:
            return rc, "", "%s did not answer CNI_COMMAND=STATUS within %ss" % (os.path.basename(path), timeout)
        return rc, out, err

    return invoke
