#!/usr/bin/python
# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only facts about a node's CNI plugin install and the configs that use it."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cni_info
short_description: Report installed CNI plugin versions, link health and config coverage
version_added: 0.1.0
description:
  - Reads, never writes. Reports the versions under O(versions_dir), which ones C(current) and
    C(previous) name, whether every file still matches its install manifest, and the status of each
    plugin link in O(bin_dir) and O(link_dirs) (V(ok), V(missing), V(foreign), V(dangling),
    V(drifted), V(stale)).
  - Lists files in the link directories that nodeprep does not manage (other vendors' plugins),
    files adopted by M(nodeprep.cni.cni_install), and every plugin type that a CNI config in
    O(conf_dirs) references (C(type), C(ipam.type), each entry of a C(.conflist)'s C(plugins), and
    Multus C(delegates)) but that no link directory provides.
author:
  - nodeprep.cni contributors (@nodeprep)
options:
  versions_dir:
    description: Directory holding the versioned installs.
    type: path
    default: /opt/cni/versions
  bin_dir:
    description: The main plugin directory.
    type: path
    default: /opt/cni/bin
  link_dirs:
    description: Further plugin directories to check.
    type: list
    elements: path
    default: []
  conf_dirs:
    description: Directories of CNI network configs (C(*.conf), C(*.conflist), C(*.json)) whose plugin types must be installed.
    type: list
    elements: path
    default: []
notes:
  - Supports C(check_mode); it never changes anything, so there is never a diff.
seealso:
  - module: nodeprep.cni.cni_install
"""

EXAMPLES = r"""
- name: Read the node's CNI state
  nodeprep.cni.cni_info:
    conf_dirs:
      - /etc/cni/net.d
  register: cni

- name: Fail when a config needs a plugin the node lacks
  ansible.builtin.assert:
    that: cni.missing_types | length == 0
    fail_msg: "missing CNI plugins: {{ cni.missing_types | join(', ') }}"
"""

RETURN = r"""
current:
  description: Version C(current) names, or null.
  returned: always
  type: str
  sample: "1.9.1"
previous:
  description: Version C(previous) names, or null.
  returned: always
  type: str
  sample: "1.8.0"
versions:
  description: Every installed version with its manifest check.
  returned: always
  type: list
  elements: dict
  sample:
    - version: "1.9.1"
      path: /opt/cni/versions/v1.9.1
      intact: true
      missing: []
      drifted: []
      plugins: [bridge, host-local]
      source_url: https://github.com/containernetworking/plugins/releases/download/v1.9.1/cni-plugins-linux-amd64-v1.9.1.tgz
      tarball_sha256: b98f74a0f8522f0a83867178729c1aa70f2158f90c45a2ca8fa791db1c76b303
      installed_at: "2026-11-21T10:00:00Z"
links:
  description: Status of each plugin of the current version in each link directory.
  returned: always
  type: list
  elements: dict
  sample:
    - {dir: /opt/cni/bin, name: bridge, path: /opt/cni/bin/bridge, status: ok, target: /opt/cni/versions/current/bridge}
link_summary:
  description: Count of links per status.
  returned: always
  type: dict
  sample: {ok: 20, missing: 0, foreign: 0, dangling: 0, drifted: 0, stale: 0}
unmanaged:
  description: Per link directory, files nodeprep does not install and never touches.
  returned: always
  type: dict
  sample: {/opt/cni/bin: [calico, calico-ipam]}
adopted:
  description: Same-name files adopted by an install, kept for restore.
  returned: always
  type: list
  elements: dict
configs:
  description: Each CNI config read from O(conf_dirs), the plugin types it uses and those not installed.
  returned: always
  type: list
  elements: dict
  sample:
    - {path: /etc/cni/net.d/10-bridge.conflist, name: pods, types: [bridge, host-local, portmap], missing_types: [], error: null}
missing_types:
  description: Plugin types referenced by any config but found in no link directory.
  returned: always
  type: list
  elements: str
healthy:
  description: True when a current version is set and intact, every link is ok and no config misses a plugin.
  returned: always
  type: bool
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodeprep.cni.plugins.module_utils._layout import LINK_OK, Layout
from ansible_collections.nodeprep.cni.plugins.module_utils._manifest import plugin_names, read_manifest, verify_version_dir

LINK_STATUSES = ("ok", "missing", "foreign", "dangling", "drifted", "stale")
CONFIG_SUFFIXES = (".conf", ".conflist", ".json")


def version_report(layout: Layout) -> list:
    report = []
    for version in layout.installed_versions():
        path = layout.version_dir(version)
        verdict = verify_version_dir(path)
        manifest = verdict["manifest"] or {}
        report.append({
            "version": version,
            "path": path,
            "intact": verdict["intact"],
            "missing": verdict["missing"],
            "drifted": verdict["drifted"],
            "managed": verdict["manifest"] is not None,
            "plugins": plugin_names(manifest) if manifest else [],
            "source_url": manifest.get("source_url"),
            "tarball_sha256": manifest.get("tarball_sha256"),
            "installed_at": manifest.get("installed_at"),
        })
    return report


def link_report(layout: Layout, current_entry):
    """Each expected link's status, and the files in link dirs that are none of ours."""
    # cni_install records the plugins it linked (a subset when `plugins` was given).
    manifest_plugins = layout.read_state().get("plugins") or (current_entry["plugins"] if current_entry else [])
    manifest = read_manifest(current_entry["path"]) if current_entry else None
    links, unmanaged, digests = [], {}, {}
    for directory in layout.link_dirs:
        try:
            present = sorted(os.listdir(directory))
        except OSError:
            present = []
        linked = [name for name in present if layout.is_ours(os.path.join(directory, name))]
        # A plugin subset may be linked; report the links that exist plus every plugin of the
        # version in the main bin dir, where all of them are expected by default.
        expected = sorted(set(linked) | (set(manifest_plugins) if directory == layout.bin_dir else set()))
        for name in expected:
            links.append(layout.classify_link(directory, name, manifest, digests))
        others = [name for name in present if name not in expected and not name.startswith(".")]
        if others:
            unmanaged[directory] = others
    return links, unmanaged


def types_in(config) -> list:
    """Plugin types a CNI config references: its own, its IPAM's, a conflist's plugins, Multus delegates."""
    found = []
    if not isinstance(config, dict):
        return found
    if isinstance(config.get("type"), str) and config["type"]:
        found.append(config["type"])
    ipam = config.get("ipam")
    if isinstance(ipam, dict) and isinstance(ipam.get("type"), str) and ipam["type"]:
        found.append(ipam["type"])
    for key in ("plugins", "delegates"):
        for child in config.get(key) or []:
            found.extend(types_in(child))
    return found


def installed_types(layout: Layout) -> set:
    names = set()
    for directory in layout.link_dirs:
        try:
            entries = os.listdir(directory)
        except OSError:
            continue
        for name in entries:
            path = os.path.join(directory, name)
            if os.path.isfile(path) and os.access(path, os.X_OK):
                names.add(name)
    return names


def config_report(conf_dirs, available: set) -> list:
    report = []
    for directory in conf_dirs:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            path = os.path.join(directory, name)
            if not name.endswith(CONFIG_SUFFIXES) or not os.path.isfile(path):
                continue
            entry = {"path": path, "name": None, "types": [], "missing_types": [], "error": None}
            try:
                with open(path, "rb") as handle:
                    config = json.loads(handle.read().decode("utf-8"))
            except (OSError, ValueError) as exc:
                entry["error"] = "cannot parse %s: %s" % (path, exc)
                report.append(entry)
                continue
            types = sorted(set(types_in(config)))
            entry["name"] = config.get("name") if isinstance(config, dict) else None
            entry["types"] = types
            entry["missing_types"] = [t for t in types if t not in available]
            report.append(entry)
    return report


def gather(params: dict) -> dict:
    layout = Layout(params["versions_dir"], params["bin_dir"], params["link_dirs"])
    versions = version_report(layout)
    current = layout.pointer("current")
    current_entry = next((v for v in versions if v["version"] == current), None)
    links, unmanaged = link_report(layout, current_entry)
    summary = dict((status, 0) for status in LINK_STATUSES)
    for link in links:
        summary[link["status"]] = summary.get(link["status"], 0) + 1
    configs = config_report(params["conf_dirs"], installed_types(layout))
    missing_types = sorted(set(t for c in configs for t in c["missing_types"]))
    healthy = bool(
        current_entry and current_entry["intact"] and links
        and all(link["status"] == LINK_OK for link in links)
        and not missing_types and not any(c["error"] for c in configs)
    )
    return {
        "changed": False,
        "versions_dir": layout.versions_dir,
        "bin_dir": layout.bin_dir,
        "link_dirs": layout.link_dirs,
        "current": current,
        "previous": layout.pointer("previous"),
        "versions": versions,
        "links": links,
        "link_summary": summary,
        "unmanaged": unmanaged,
        "adopted": layout.read_adopted(),
        "configs": configs,
        "missing_types": missing_types,
        "healthy": healthy,
    }


def main():
    module = AnsibleModule(
        argument_spec=dict(
            versions_dir=dict(type="path", default="/opt/cni/versions"),
            bin_dir=dict(type="path", default="/opt/cni/bin"),
            link_dirs=dict(type="list", elements="path", default=[]),
            conf_dirs=dict(type="list", elements="path", default=[]),
        ),
        supports_check_mode=True,
    )
    module.exit_json(**gather(module.params))


if __name__ == "__main__":
    main()
