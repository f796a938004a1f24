#!/usr/bin/python
# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What containerd actually uses for CNI (its own config dump) and whether its CRI says the network is ready."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: containerd_info
short_description: Report the CNI dirs containerd uses and its CRI network readiness
version_added: 0.1.0
description:
  - Reads, never writes. Asks the node's containerd for its effective configuration
    (C(containerd --config <config_path> config dump)), so imports, drop-ins and the migration of old config versions are
    already applied, and reports the CNI plugin directories it searches and its CNI config directory.
  - When containerd's CRI socket answers, reports its C(Status) conditions (C(RuntimeReady), C(NetworkReady)) and its
    last CNI load status, through a small built-in gRPC client (no crictl or gRPC library needed on the node).
  - C(NetworkReady) only says that a CNI config was loaded, not that the plugins it names exist; use
    M(nodeprep.cni.cni_info) with the reported directories for that.
author:
  - nodeprep.cni contributors (@nodeprep)
extends_documentation_fragment:
  - nodeprep.cni._attributes.info
options:
  config_path:
    description: containerd's main config file.
    type: path
    default: /etc/containerd/config.toml
  binary:
    description: The containerd binary. When it cannot run (an embedded containerd such as k3s's), O(config_path) is read directly.
    type: str
    default: containerd
  socket:
    description: containerd's gRPC socket, which serves the CRI.
    type: path
    default: /run/containerd/containerd.sock
  timeout:
    description: Seconds to wait for each CRI call.
    type: float
    default: 10
notes:
  - Parsing the config dump needs Python 3.11 (C(tomllib)) on the node; older Pythons fall back to reading the keys line by line.
seealso:
  - module: nodeprep.cni.containerd_cni
  - module: nodeprep.cni.cni_info
"""

EXAMPLES = r"""
- name: Read what containerd uses
  nodeprep.cni.containerd_info:
  register: runtime

- name: Fail unless containerd's network is ready
  ansible.builtin.assert:
    that: runtime.cri.network_ready
    fail_msg: "{{ runtime.cri.conditions.NetworkReady.message | default(runtime.cri.error) }}"
"""

RETURN = r"""
installed:
  description: Whether the containerd binary ran.
  returned: always
  type: bool
version:
  description: containerd's version (from C(containerd --version), else from the CRI).
  returned: always
  type: str
  sample: 1.7.24
source:
  description: Where the directories come from - C(config dump), C(config file) or C(none).
  returned: always
  type: str
dump_error:
  description: Why C(config dump) failed.
  returned: when it failed
  type: str
config_error:
  description:
    - Why the CNI settings could not be read from the config (not valid TOML, or a key of the wrong type), naming
      the file and key; the directories are then empty.
  returned: when the settings could not be read
  type: str
bin_dirs:
  description: The CNI plugin directories containerd searches, in order.
  returned: always
  type: list
  elements: str
  sample: [/opt/cni/bin]
conf_dir:
  description: The CNI config directory containerd loads.
  returned: always
  type: str
  sample: /etc/cni/net.d
use_internal_loopback:
  description:
    - Whether containerd brings C(lo) up itself (C(use_internal_loopback), containerd 2.0 and later) instead of
      running the C(loopback) plugin for every pod; false when the config (or containerd's version) has no such key.
  returned: always
  type: bool
runtime_plugins:
  description: The plugins containerd runs for every pod although no config names them (C(loopback) unless RV(use_internal_loopback)).
  returned: always
  type: list
  elements: str
  sample: [loopback]
cri:
  description: The CRI's answer.
  returned: always
  type: dict
  contains:
    reachable:
      description: Whether the CRI answered.
      type: bool
    error:
      description: Why it did not.
      type: str
    runtime_ready:
      description: The C(RuntimeReady) condition.
      type: bool
    network_ready:
      description: The C(NetworkReady) condition.
      type: bool
    conditions:
      description: Every condition by type, with C(status), C(reason) and C(message).
      type: dict
    last_cni_load_status:
      description: containerd's last CNI config load status (C(OK) or the error).
      type: str
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodeprep.cni.plugins.module_utils import _containerd_cri as cri
from ansible_collections.nodeprep.cni.plugins.module_utils._versions import containerd_version

try:
    import tomllib
except ImportError:  # Python < 3.11 on the node
    tomllib = None

CNI_TABLES = ("io.containerd.cri.v1.runtime", "io.containerd.grpc.v1.cri")
_KEY_RE = re.compile(r"^\s*(bin_dirs|bin_dir|conf_dir)\s*=\s*(.+?)\s*$", re.MULTILINE)
_STRING_RE = re.compile(r"\"([^\"]*)\"|'([^']*)'")
BOM = "\ufeff"


def _table(value, keys):
    """The table at *keys* in parsed TOML, None where missing; a non-table on the way is named."""
    for depth, key in enumerate(keys):
        if not isinstance(value, dict):
            raise ValueError("'%s' is not a table" % ".".join(keys[:depth]))
        value = value.get(key)
        if value is None:
            return None
    if not isinstance(value, dict):
        raise ValueError("'%s' is not a table" % ".".join(keys))
    return value


def cni_settings(text, source="the config"):
    """``(bin_dirs, conf_dir, problem)`` from a containerd config (either dialect), best effort.

    A file containerd cannot load, or one whose CNI settings have the wrong type, gives a
    problem naming the key instead of a crash.
    """
    if text.startswith(BOM):
        text = text[len(BOM):]
    if tomllib is not None:
        try:
            parsed = tomllib.loads(text)
        except ValueError as exc:
            return [], "", "%s is not valid TOML: %s" % (source, exc)
        for name in CNI_TABLES:
            try:
                cni = _table(parsed, ("plugins", name, "cni"))
            except ValueError as exc:
                return [], "", "%s: %s, but containerd reads it as a table: fix that line" % (source, exc)
            if not cni:
                continue
            bin_dirs, bin_dir, conf_dir = cni.get("bin_dirs"), cni.get("bin_dir"), cni.get("conf_dir", "")
            if bin_dirs is not None and not (isinstance(bin_dirs, list) and all(isinstance(d, str) for d in bin_dirs)):
                return [], "", "%s: plugins.%s.cni.bin_dirs is not a list of directories" % (source, name)
            if (bin_dir is not None and not isinstance(bin_dir, str)) or not isinstance(conf_dir, str):
                return [], "", "%s: plugins.%s.cni.bin_dir and conf_dir must be strings" % (source, name)
            dirs = bin_dirs or ([bin_dir] if bin_dir else [])
            return list(dirs), conf_dir, ""
        return [], "", ""
    bin_dirs, conf_dir = [], ""
    for key, value in _KEY_RE.findall(text):
        strings = [a or b for a, b in _STRING_RE.findall(value)]
        if key == "conf_dir" and strings:
            conf_dir = strings[0]
        elif strings and not bin_dirs:
            bin_dirs = strings
    return bin_dirs, conf_dir, ""


_LOOPBACK_RE = re.compile(r"^\s*use_internal_loopback\s*=\s*true\s*$", re.MULTILINE)


def internal_loopback(text):
    """containerd's ``use_internal_loopback`` from a config (dump): without it, every pod runs the loopback plugin."""
    if text.startswith(BOM):
        text = text[len(BOM):]
    if tomllib is None:
        return bool(_LOOPBACK_RE.search(text))
    try:
        parsed = tomllib.loads(text)
    except ValueError:
        return bool(_LOOPBACK_RE.search(text))
    for name in CNI_TABLES:
        try:
            cni = _table(parsed, ("plugins", name, "cni"))
        except ValueError:  # a wrong-typed table: cni_settings names it
            continue
        if cni and cni.get("use_internal_loopback") is True:
            return True
    return False


def main():
    module = AnsibleModule(
        argument_spec={
            "config_path": {"type": "path", "default": "/etc/containerd/config.toml"},
            "binary": {"type": "str", "default": "containerd"},
            "socket": {"type": "path", "default": "/run/containerd/containerd.sock"},
            "timeout": {"type": "float", "default": 10},
        },
        supports_check_mode=True,
    )
    params = module.params
    result = {"changed": False, "installed": False, "version": "", "source": "none", "bin_dirs": [], "conf_dir": "",
              "use_internal_loopback": False}
    binary = module.get_bin_path(params["binary"]) if "/" not in params["binary"] else params["binary"]
    if binary and os.access(binary, os.X_OK):
        rc, out, _err = module.run_command([binary, "--version"])
        if rc == 0:
            result["installed"] = True
            found = containerd_version(out)
            result["version"] = found.text if found else out.strip()
            args = [binary] + (["--config", params["config_path"]] if os.path.exists(params["config_path"]) else [])
            rc, out, err = module.run_command(args + ["config", "dump"])
            if rc == 0:
                result["bin_dirs"], result["conf_dir"], problem = cni_settings(out, "containerd's config dump")
                result["use_internal_loopback"] = internal_loopback(out)
                result["source"] = "config dump"
                if problem:
                    result["config_error"] = problem
            else:
                result["dump_error"] = (err or out).strip()
    if result["source"] == "none" and os.path.isfile(params["config_path"]):
        with open(params["config_path"], encoding="utf-8", errors="replace") as handle:
            text = handle.read()
        result["bin_dirs"], result["conf_dir"], problem = cni_settings(text, params["config_path"])
        result["use_internal_loopback"] = internal_loopback(text)
        result["source"] = "config file"
        if problem:
            result["config_error"] = problem
    result["cri"], cri_version = cri.answer(params["socket"], params["timeout"], "containerd")
    result["version"] = result["version"] or cri_version
    result["runtime_plugins"] = [] if result["use_internal_loopback"] or result["source"] == "none" else ["loopback"]
    module.exit_json(**result)


if __name__ == "__main__":
    main()
