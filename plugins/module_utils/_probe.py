# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prove a plugin binary runs on this node before anything points at it."""

from __future__ import annotations

import json
import os
import subprocess


class ProbeFailed(Exception):
    pass


def _noexec_hint(path: str) -> str:
    try:
        if os.statvfs(path).f_flag & getattr(os, "ST_NOEXEC", 8):
            return " The filesystem holding %s is mounted noexec: remount it exec or choose a versions_dir on an exec mount." % path
    except OSError:
        pass
    return ""


def probe_plugin(path: str, timeout: float = 15.0) -> dict:
    """Run ``CNI_COMMAND=VERSION <plugin>`` and return its JSON answer, or raise ProbeFailed."""
    env = {"CNI_COMMAND": "VERSION", "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}
    name = os.path.basename(path)
    try:
        proc = subprocess.run(
            [path], input=b"", stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise ProbeFailed("plugin %s did not answer CNI_COMMAND=VERSION within %ss" % (name, timeout))
    except OSError as exc:
        raise ProbeFailed("plugin %s cannot be executed on this node: %s.%s" % (name, exc, _noexec_hint(path)))
    output = proc.stdout.decode("utf-8", "replace").strip()
    if proc.returncode != 0:
        detail = (proc.stderr.decode("utf-8", "replace").strip() or output)[:300]
        raise ProbeFailed("plugin %s exited %d on CNI_COMMAND=VERSION: %s.%s" % (name, proc.returncode, detail, _noexec_hint(path)))
    try:
        answer = json.loads(output)
    except ValueError:
        raise ProbeFailed("plugin %s answered CNI_COMMAND=VERSION with something that is not JSON: %r" % (name, output[:200]))
    if not isinstance(answer, dict) or not ("cniVersion" in answer or "supportedVersions" in answer):
        raise ProbeFailed("plugin %s answered CNI_COMMAND=VERSION without cniVersion/supportedVersions: %r" % (name, output[:200]))
    return answer
