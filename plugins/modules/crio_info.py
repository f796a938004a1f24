#!/usr/bin/python
# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What CRI-O actually uses for CNI (its own ``crio config``) and whether its CRI says the network is ready."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: crio_info
short_description: Report the CNI dirs CRI-O uses and its CRI network readiness
version_added: 0.2.0
description:
  - Reads, never writes. Asks the node's CRI-O for the configuration it would run with (C(crio config), with its main
    file and every C(crio.conf.d) drop-in applied) and reports the CNI plugin directories it searches
    (C(plugin_dirs) of C([crio.network])) and its CNI config directory (C(network_dir)).
  - When CRI-O's CRI socket answers, reports its C(Status) conditions (C(RuntimeReady), C(NetworkReady)) through the
    same small built-in gRPC client as M(nodeprep.cni.containerd_info).
  - The result has the shape of M(nodeprep.cni.containerd_info)'s, with RV(runtime) naming C(crio), so
    C(playbooks/verify.yml) reports either runtime alike.
author:
  - nodeprep.cni contributors (@nodeprep)
extends_documentation_fragment:
  - nodeprep.cni._attributes.info
options:
  binary:
    description:
      - The crio binary (found on the node's C(PATH) when not a path). When it cannot run, O(config_path) and the
        drop-ins in O(config_dir) are read directly.
    type: str
    default: crio
  config_path:
    description: CRI-O's main config file.
    type: path
    default: /etc/crio/crio.conf
  config_dir:
    description: CRI-O's drop-in dir, read in name order after O(config_path) when the binary cannot run.
    type: path
    default: /etc/crio/crio.conf.d
  socket:
    description: CRI-O's CRI socket.
    type: path
    default: /var/run/crio/crio.sock
  timeout:
    description: Seconds to wait for each CRI call.
    type: float
    default: 10
notes:
  - CRI-O brings each pod's C(lo) up itself, so unlike containerd it runs no C(loopback) plugin (RV(runtime_plugins) is empty).
  - Parsing needs Python 3.11 (C(tomllib)) on the node; older Pythons read the two keys line by line.
seealso:
  - module: nodeprep.cni.containerd_info
  - module: nodeprep.cni.cni_info
"""

EXAMPLES = r"""
- name: Read what CRI-O uses
  nodeprep.cni.crio_info:
  register: runtime

- name: Check the dirs CRI-O searches
  nodeprep.cni.cni_info:
    bin_dir: "{{ runtime.bin_dirs[0] }}"
    link_dirs: "{{ runtime.bin_dirs[1:] }}"
    conf_dirs: ["{{ runtime.conf_dir }}"]
"""

RETURN = r"""
runtime:
  description: The runtime read, always C(crio).
  returned: always
  type: str
  sample: crio
installed:
  description: Whether the crio binary ran.
  returned: always
  type: bool
version:
  description: CRI-O's version (from C(crio --version), else from the CRI).
  returned: always
  type: str
  sample: 1.36.3
source:
  description: Where the directories come from - C(crio config), C(config file) or C(none).
  returned: always
  type: str
dump_error:
  description: Why C(crio config) failed.
  returned: when it failed
  type: str
config_error:
  description: Why the settings could not be read (not valid TOML, or a key of the wrong type), naming the file.
  returned: when the settings could not be read
  type: str
bin_dirs:
  description: The CNI plugin directories CRI-O searches, in order (C(plugin_dirs)).
  returned: always
  type: list
  elements: str
  sample: [/opt/cni/bin]
conf_dir:
  description: The CNI config directory CRI-O loads (C(network_dir)).
  returned: always
  type: str
  sample: /etc/cni/net.d
use_internal_loopback:
  description: Always true - CRI-O brings C(lo) up itself.
  returned: always
  type: bool
runtime_plugins:
  description: The plugins CRI-O runs for every pod although no config names them (none).
  returned: always
  type: list
  elements: str
  sample: []
cri:
  description: The CRI's answer, as M(nodeprep.cni.containerd_info) returns it.
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
      description: Empty - CRI-O's status has no such field.
      type: str
"""

import glob
import os
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodeprep.cni.plugins.module_utils import _containerd_cri as cri

try:
    import tomllib
except ImportError:  # Python < 3.11 on the node
    tomllib = None

# CRI-O's own defaults (pkg/config), which hold where no file sets the keys.
DEFAULT_PLUGIN_DIRS = ["/opt/cni/bin/"]
DEFAULT_NETWORK_DIR = "/etc/cni/net.d/"
_SECTION_RE = re.compile(r"^\s*\[([^\]]+)\]\s*$")
# `crio config` prints a key that holds its default value commented out, with the value it holds.
_COMMENTED_RE = re.compile(r"^#\s?((?:network_dir|plugin_dirs)\s*=.*|\s+\".*\",?\s*|\]\s*)$")
_VERSION_RE = re.compile(r"^(?:Version:\s*|crio version\s+)(\S+)", re.MULTILINE)
_STRING_RE = re.compile(r"\"([^\"]*)\"|'([^']*)'")


def network_section(text, uncomment=False):
    """The ``[crio.network]`` table's lines; with ``uncomment`` the defaults `crio config` comments out are kept."""
    lines, inside = [], False
    for line in text.splitlines():
        section = _SECTION_RE.match(line)
        if section:
            inside = section.group(1).strip() == "crio.network"
            continue
        if not inside:
            continue
        commented = _COMMENTED_RE.match(line) if uncomment else None
        lines.append(commented.group(1) if commented else line)
    return "\n".join(lines)


def network_settings(text, source, uncomment=False):
    """``(plugin_dirs or None, network_dir or None, problem)`` from a CRI-O config; None where it sets no value."""
    body = network_section(text, uncomment)
    if tomllib is None:
        found = {}
        for key, value in re.findall(r"^\s*(plugin_dirs|network_dir)\s*=\s*(.+?)(?=^\s*\w+\s*=|\Z)", body, re.M | re.S):
            strings = [a or b for a, b in _STRING_RE.findall(value)]
            found[key] = strings if key == "plugin_dirs" else (strings[0] if strings else None)
        return found.get("plugin_dirs"), found.get("network_dir"), ""
    try:
        parsed = tomllib.loads(body)
    except ValueError as exc:
        return None, None, "%s: [crio.network] is not valid TOML: %s" % (source, exc)
    plugin_dirs, network_dir = parsed.get("plugin_dirs"), parsed.get("network_dir")
    if plugin_dirs is not None and not (isinstance(plugin_dirs, list) and all(isinstance(d, str) for d in plugin_dirs)):
        return None, None, "%s: [crio.network] plugin_dirs is not a list of directories" % source
    if network_dir is not None and not isinstance(network_dir, str):
        return None, None, "%s: [crio.network] network_dir is not a string" % source
    return plugin_dirs, network_dir, ""


def read_files(paths):
    """plugin_dirs and network_dir from the main file then each drop-in, a later file's key winning."""
    plugin_dirs, network_dir = list(DEFAULT_PLUGIN_DIRS), DEFAULT_NETWORK_DIR
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as handle:
            dirs, conf, problem = network_settings(handle.read(), path)
        if problem:
            return [], "", problem
        plugin_dirs = dirs if dirs is not None else plugin_dirs
        network_dir = conf if conf is not None else network_dir
    return plugin_dirs, network_dir, ""


def main():
    module = AnsibleModule(
        argument_spec={
            "binary": {"type": "str", "default": "crio"},
            "config_path": {"type": "path", "default": "/etc/crio/crio.conf"},
            "config_dir": {"type": "path", "default": "/etc/crio/crio.conf.d"},
            "socket": {"type": "path", "default": "/var/run/crio/crio.sock"},
            "timeout": {"type": "float", "default": 10},
        },
        supports_check_mode=True,
    )
    params = module.params
    result = {"changed": False, "runtime": "crio", "installed": False, "version": "", "source": "none", "bin_dirs": [],
              "conf_dir": "", "use_internal_loopback": True, "runtime_plugins": []}
    binary = module.get_bin_path(params["binary"]) if "/" not in params["binary"] else params["binary"]
    if binary and os.access(binary, os.X_OK):
        rc, out, _err = module.run_command([binary, "--version"])
        if rc == 0:
            result["installed"] = True
            found = _VERSION_RE.search(out)
            result["version"] = found.group(1) if found else out.strip()
            args = [binary, "--log-level", "error"]
            if os.path.isfile(params["config_path"]):
                args += ["--config", params["config_path"]]
            if os.path.isdir(params["config_dir"]):
                args += ["--config-dir", params["config_dir"]]
            rc, out, err = module.run_command(args + ["config"])
            if rc == 0:
                dirs, conf, problem = network_settings(out, "crio config", uncomment=True)
                result["bin_dirs"] = list(dirs if dirs is not None else DEFAULT_PLUGIN_DIRS)
                result["conf_dir"] = conf if conf is not None else DEFAULT_NETWORK_DIR
                result["source"] = "crio config"
                if problem:
                    result["config_error"], result["bin_dirs"], result["conf_dir"] = problem, [], ""
            else:
                result["dump_error"] = (err or out).strip()
    if result["source"] == "none" and (os.path.isfile(params["config_path"]) or os.path.isdir(params["config_dir"])):
        paths = ([params["config_path"]] if os.path.isfile(params["config_path"]) else []) + sorted(
            glob.glob(os.path.join(params["config_dir"], "*.conf")))
        result["bin_dirs"], result["conf_dir"], problem = read_files(paths)
        result["source"] = "config file"
        if problem:
            result["config_error"] = problem
    result["cri"], cri_version = cri.answer(params["socket"], params["timeout"], "CRI-O")
    result["version"] = result["version"] or cri_version
    # CRI-O's defaults end in a slash; the dirs are compared with the other roles' as paths.
    result["bin_dirs"] = [os.path.normpath(d) for d in result["bin_dirs"]]
    result["conf_dir"] = os.path.normpath(result["conf_dir"]) if result["conf_dir"] else ""
    module.exit_json(**result)


if __name__ == "__main__":
    main()
