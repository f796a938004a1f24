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
  - Lists files in the link directories that nodeprep does not manage (other vendors' plugins) and
    files adopted by M(nodeprep.cni.cni_install).
  - A config whose IPAM is C(dhcp) is reported when no CNI dhcp daemon answers on its socket (C(daemonSocketPath),
    default C(/run/cni/dhcp.sock)).
  - Checks coverage of every CNI config in O(conf_dirs) and every NetworkAttachmentDefinition in
    O(network_attachments) - each plugin type it names (C(type), C(ipam.type), each entry of a
    C(.conflist)'s C(plugins), Multus C(delegates)) must resolve in O(plugin_dirs), and one of the
    CNI versions it asks for (C(cniVersion), or C(cniVersions)) must be in that plugin's
    C(CNI_COMMAND=VERSION) C(supportedVersions). Findings are named per config file.
  - A config that is not valid JSON is reported with its parse error; it is never a module failure.
author:
  - nodeprep.cni contributors (@nodeprep)
extends_documentation_fragment:
  - nodeprep.cni._dirs
  - nodeprep.cni._attributes.info
options:
  conf_dirs:
    description:
      - Directories of CNI network configs (C(*.conf), C(*.conflist), C(*.json), not recursive, as
        libcni reads them) whose plugins must be installed, e.g. C(/etc/cni/net.d) and the Multus
        dirs.
    type: list
    elements: path
    default: []
  plugin_dirs:
    description:
      - The runtime's plugin directories, searched in order as libcni does.
      - Empty means O(bin_dir) followed by O(link_dirs).
    type: list
    elements: path
    default: []
  network_attachments:
    description:
      - NetworkAttachmentDefinitions to check, already decoded from YAML (the role reads files and
        inline YAML on the controller, so the node needs no YAML library).
      - Read them with the P(nodeprep.cni.network_attachments#filter) filter, which refuses YAML aliases
        (a few hundred bytes of nested aliases can stand for billions of values) and keeps only what
        this check reads of each definition (kind, name, namespace and C(spec.config)).
    type: list
    elements: dict
    default: []
    suboptions:
      source:
        description: Where the definition came from (a file name, or a label for inline YAML); findings name it.
        type: str
        required: true
      definition:
        description:
          - The NetworkAttachmentDefinition object, a C(List) of them, a list of YAML documents, or
            its JSON text.
        type: raw
        required: true
  required_plugins:
    description:
      - Plugin types that must resolve in O(plugin_dirs) even before a config names them, such as
        the delegates Multus users attach. Only their presence is checked.
    type: list
    elements: str
    default: []
  probe_versions:
    description:
      - Run each resolved plugin once with C(CNI_COMMAND=VERSION) and compare its C(supportedVersions)
        with the versions the configs ask for. Without it only presence is checked.
    type: bool
    default: true
  probe_plugins:
    description:
      - Run every plugin of the C(current) version once, through its link in O(bin_dir), with
        C(CNI_COMMAND=VERSION), and report each answer in RV(plugin_probes). This is the check that a
        plugin the runtime will call actually runs on this node (a C(noexec) mount, a wrong
        architecture or a corrupt file fails it).
    type: bool
    default: false
  runtime_plugins:
    description:
      - Plugin types the runtime itself runs for every pod although no config names them - containerd runs
        C(loopback) unless its C(use_internal_loopback) is set (M(nodeprep.cni.containerd_info) reads that
        from containerd's own config dump). They count for coverage like any config's types.
    type: list
    elements: str
    default: []
  runtime_name:
    description: How findings about O(runtime_plugins) name the runtime.
    type: str
    default: the runtime
  cni_status:
    description:
      - Ask every covered C(.conflist) of CNI version 1.1.0 or later for its C(STATUS) as a runtime does (each
        plugin in turn, with C(CNI_COMMAND=STATUS) and its config on stdin) and report the answers in
        RV(cni_status). A plugin answering an error (code 50 or 51 - not available) means pods cannot be added.
    type: bool
    default: false
  package_owners:
    description:
      - Ask the node's package manager once (C(dpkg-query -S), else C(rpm -qf)) which names in O(bin_dir) and
        O(link_dirs) an OS package owns, report them in RV(package_owned) and warn about the ones the package's
        next upgrade will overwrite (our links over its names) or has overwritten (its files where our links belong).
    type: bool
    default: true
  views:
    description:
      - Further checks answered from the same reading of the node, each reported in RV(views) under its O(views[].name)
        exactly as a run of this module with those options would report it. Within one run each installed file is
        hashed once, each version's manifest checked once and each plugin asked C(CNI_COMMAND=VERSION) once, however
        many views name them.
      - A view shares O(versions_dir); each other option has the default it has at the top level, except O(views[].bin_dir)
        and O(views[].link_dirs), which default to the top level's.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The key of this view's answer in RV(views); names must be distinct.
        type: str
        required: true
      bin_dir:
        description: As O(bin_dir), for this view; default the top level's.
        type: path
      link_dirs:
        description: As O(link_dirs), for this view; default the top level's.
        type: list
        elements: path
      conf_dirs:
        description: As O(conf_dirs), for this view.
        type: list
        elements: path
        default: []
      plugin_dirs:
        description: As O(plugin_dirs), for this view.
        type: list
        elements: path
        default: []
      network_attachments:
        description: As O(network_attachments), for this view.
        type: list
        elements: dict
        default: []
        suboptions:
          source:
            description: As O(network_attachments[].source).
            type: str
            required: true
          definition:
            description: As O(network_attachments[].definition).
            type: raw
            required: true
      required_plugins:
        description: As O(required_plugins), for this view.
        type: list
        elements: str
        default: []
      probe_versions:
        description: As O(probe_versions), for this view.
        type: bool
        default: true
      probe_plugins:
        description: As O(probe_plugins), for this view.
        type: bool
        default: false
      runtime_plugins:
        description: As O(runtime_plugins), for this view.
        type: list
        elements: str
        default: []
      runtime_name:
        description: As O(runtime_name), for this view.
        type: str
        default: the runtime
      cni_status:
        description: As O(cni_status), for this view.
        type: bool
        default: false
      package_owners:
        description: As O(package_owners), for this view.
        type: bool
        default: true
notes:
  - containerd watches its C(conf_dir) for write, rename and remove events but not for create, so a
    conflist that appeared there by a rename alone may not be loaded until containerd restarts.
    This module reads the files themselves, so it reports what is on disk, which may be ahead of
    what containerd has loaded.
  - Readiness (C(NetworkReady)) only checks that a config exists, never that its plugins do; this
    check is what finds a missing delegate before a pod does.
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
    that: cni.coverage.ok
    fail_msg: "{{ cni.coverage.problems }}"

- name: Check Multus dirs and a NetworkAttachmentDefinition against containerd's plugin dirs
  nodeprep.cni.cni_info:
    conf_dirs: [/etc/cni/net.d, /etc/cni/multus/net.d]
    plugin_dirs: [/opt/cni/bin, /usr/lib/cni]
    network_attachments:
      - source: nads/macvlan.yaml
        definition: "{{ lookup('ansible.builtin.file', 'nads/macvlan.yaml') | nodeprep.cni.network_attachments('nads/macvlan.yaml') }}"
  register: cni

- name: Read the node once for the plugin report and for the dirs containerd searches
  nodeprep.cni.cni_info:
    conf_dirs: [/etc/cni/net.d]
    views:
      - name: runtime
        bin_dir: /usr/lib/cni
        link_dirs: []
        conf_dirs: [/etc/cni/net.d]
        runtime_plugins: [loopback]
        runtime_name: containerd 2.1.9
        package_owners: false
  register: cni
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
current_source:
  description:
    - Where the C(current) version came from - V(release) with its URL, or V(package) with the package's name,
      its version as the package manager reports it, the manager and the directory copied. Null without C(current).
  returned: always
  type: dict
  sample: {type: package, package: containernetworking-plugins, package_version: "1.1.1+ds1-3+b5", manager: dpkg, dir: /usr/lib/cni}
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
      source: {type: release, url: https://github.com/containernetworking/plugins/releases/download/v1.9.1/cni-plugins-linux-amd64-v1.9.1.tgz}
      installed_at: "2026-11-21T10:00:00Z"
    - version: "1.1.1+ds1-3+b5"
      path: /opt/cni/versions/v1.1.1+ds1-3+b5
      intact: true
      missing: []
      drifted: []
      plugins: [bridge, host-local]
      source_url: file:///usr/lib/cni
      tarball_sha256: null
      source: {type: package, package: containernetworking-plugins, package_version: "1.1.1+ds1-3+b5", manager: dpkg, dir: /usr/lib/cni}
      installed_at: "2026-11-22T10:00:00Z"
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
  description:
    - Each CNI config read from O(conf_dirs) or O(network_attachments) (C(kind) V(conf), V(conflist)
      or V(nad)), plus one V(required) entry for O(required_plugins); the plugins each uses, and
      what is not covered.
    - C(path) is the file (for a NAD, C(<source>#<namespace>/<name>)); C(error) says why the runtime
      would refuse it, naming the file, as its loader (libcni) does - not valid JSON (JSON nested
      deeper than the runtime's 10000 levels included), a field of the wrong type, a plugin without
      C(type), a conflist without C(name) or without plugins - or why it cannot be read at all (a
      dangling symlink, a symlink loop, a FIFO, which is never opened).
    - A conf dir that cannot be listed (a file, a symlink loop) is one entry of C(kind) V(conf_dir)
      with its C(error); a missing conf dir holds no configs.
  returned: always
  type: list
  elements: dict
  sample:
    - path: /etc/cni/net.d/10-macvlan.conflist
      kind: conflist
      name: pods
      cni_versions: ["1.0.0"]
      types: [host-local, macvlan]
      missing_types: [macvlan]
      version_mismatches: []
      probe_errors: []
      error: null
      covered: false
missing_types:
  description: Plugin types referenced by any config but found in no plugin directory.
  returned: always
  type: list
  elements: str
coverage:
  description: The verdict over all configs; C(problems) names each finding with its file.
  returned: always
  type: dict
  sample:
    ok: false
    configs: 2
    missing_types: [macvlan]
    version_mismatches: 0
    errors: []
    problems: ["/etc/cni/net.d/10-macvlan.conflist: plugin type(s) not installed in any plugin dir: macvlan"]
plugin_dirs:
  description: The directories searched for plugin types, in order.
  returned: always
  type: list
  elements: str
ownership:
  description:
    - Who each plugin file in the link directories belongs to. C(kind) is V(ours) (our link, intact),
      V(adopted) (a file another installer had put there, which an install moved to C(kept_at) under
      C(.adopted/) and replaced by our link; M(nodeprep.cni.cni_install) with C(state=absent) gives it back), V(dropped)
      (a file we did not make at a plugin's name, put there since; the role's next run adopts it) or
      V(drifted) (our link, but the file behind it was overwritten through it, as calico's install-cni
      does; the role's next run repairs it).
    - C(addon) names the add-on where its marks are on the node (its own binary in a link directory, its
      config in O(conf_dirs), or kube-router's set of four plugins), else null.
  returned: always
  type: list
  elements: dict
  sample:
    - {path: /opt/cni/bin/portmap, dir: /opt/cni/bin, name: portmap, kind: dropped, addon: kube-router, kept_at: null}
    - {path: /opt/cni/bin/tuning, dir: /opt/cni/bin, name: tuning, kind: drifted, addon: calico, kept_at: null}
ownership_summary:
  description: Count of RV(ownership) entries per kind.
  returned: always
  type: dict
  sample: {ours: 18, adopted: 1, dropped: 4, drifted: 0}
plugin_probes:
  description:
    - With O(probe_plugins), one entry per plugin of the current version, run through O(bin_dir);
      C(ok) is false with the reason in C(error) when it did not answer C(CNI_COMMAND=VERSION).
    - Empty without O(probe_plugins).
  returned: always
  type: list
  elements: dict
  sample:
    - {name: bridge, path: /opt/cni/bin/bridge, ok: true, error: null, supported_versions: ["0.3.1", "1.0.0"]}
cni_status:
  description:
    - With O(cni_status), one answer per conflist - C(path), C(ran) (false for conflists before CNI 1.1.0 and
      uncovered ones, with the reason in C(message)), C(ok), and C(message) (V(ok) or the failing plugin's error).
  returned: always
  type: list
  elements: dict
  sample: [{path: /etc/cni/net.d/10-bridge.conflist, ran: true, ok: true, message: ok}]
package_owned:
  description:
    - Each name in the plugin dirs that an OS package owns, with its C(package) and C(status) - V(linked) (our
      link over the package's name, taken over with C(adopt_package_files); the package's next upgrade overwrites
      it), V(package file) (the package's own file where our link belongs, e.g. after a package upgrade), or
      V(unmanaged) (a package's file at a name we do not link).
  returned: always
  type: list
  elements: dict
  sample: [{path: /opt/cni/bin/bridge, package: kubernetes-cni, status: linked}]
package_warnings:
  description: The warnings about RV(package_owned) names, also shown as warnings.
  returned: always
  type: list
  elements: str
views:
  description:
    - Per name in O(views), the keys this module returns (all but RV(views)) for that view's options.
  returned: always
  type: dict
  sample: {runtime: {bin_dir: /opt/cni/bin, link_dirs: [], coverage: {ok: true, configs: 1}, healthy: true}}
healthy:
  description:
    - True when a current version is set and intact, every link is ok and every config is covered,
      and with O(probe_plugins), every plugin answered.
  returned: always
  type: bool
"""

import copy
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodeprep.cni.plugins.module_utils._addons import ADDON_CONF_DIRS, ADOPTED, DRIFTED, DROPPED, OURS, classify
from ansible_collections.nodeprep.cni.plugins.module_utils._cniconf import (
    Coverage,
    cni_status,
    dhcp_daemon_problem,
    nad_entries,
    read_conf_dir,
    required_entry,
    runtime_entry,
    summarize,
)

from ansible_collections.nodeprep.cni.plugins.module_utils._install_tree import LINK_OK, InstallTree
from ansible_collections.nodeprep.cni.plugins.module_utils._manifest import plugin_names, read_manifest, verify_version_dir
from ansible_collections.nodeprep.cni.plugins.module_utils._options import DIRS, compose
from ansible_collections.nodeprep.cni.plugins.module_utils._package_source import package_owners
from ansible_collections.nodeprep.cni.plugins.module_utils._probe import ProbeFailed, probe_plugin, status_invoker
from ansible_collections.nodeprep.cni.plugins.module_utils._release import public_url

LINK_STATUSES = ("ok", "missing", "foreign", "dangling", "drifted", "stale")


def version_report(tree: InstallTree, digests: dict) -> list:
    report = []
    for version in tree.installed_versions():
        path = tree.version_dir(version)
        verdict = verify_version_dir(path, digests)
        manifest = verdict["manifest"] or {}
        report.append({
            "version": version,
            "path": path,
            "intact": verdict["intact"],
            "missing": verdict["missing"],
            "drifted": verdict["drifted"],
            "managed": verdict["manifest"] is not None,
            "plugins": plugin_names(manifest) if manifest else [],
            # A manifest written before URLs were stripped of their userinfo must not pass a password on.
            "source_url": public_url(manifest.get("source_url")),
            "tarball_sha256": manifest.get("tarball_sha256"),
            # Manifests written before sources were recorded all came from a release.
            "source": _public_source(manifest.get("source") or ({"type": "release", "url": manifest.get("source_url")} if manifest else None)),
            "installed_at": manifest.get("installed_at"),
        })
    return report


def _public_source(source):
    if isinstance(source, dict) and source.get("url"):
        return dict(source, url=public_url(source["url"]))
    return source


def link_report(tree: InstallTree, current_entry, digests: dict):
    """Each expected link's status, and the files in link dirs that are none of ours."""
    # cni_install records the plugins it linked (a subset when `plugins` was given).
    manifest_plugins = tree.read_state().get("plugins") or (current_entry["plugins"] if current_entry else [])
    manifest = read_manifest(current_entry["path"]) if current_entry else None
    links, unmanaged = [], {}
    for directory in tree.link_dirs:
        try:
            present = sorted(os.listdir(directory))
        except OSError:
            present = []
        linked = [name for name in present if tree.is_ours(os.path.join(directory, name))]
        # A plugin subset may be linked; report the links that exist plus every plugin of the
        # version in the main bin dir, where all of them are expected by default.
        expected = sorted(set(linked) | (set(manifest_plugins) if directory == tree.bin_dir else set()))
        for name in expected:
            links.append(tree.classify_link(directory, name, manifest, digests))
        others = [name for name in present if name not in expected and not name.startswith(".")]
        if others:
            unmanaged[directory] = others
    return links, unmanaged


def coverage_report(module: AnsibleModule, params: dict, plugin_dirs: list, reading) -> list:
    entries = []
    for directory in params["conf_dirs"]:
        entries.extend(read_conf_dir(directory))
    for attachment in params["network_attachments"]:
        entries.extend(nad_entries(attachment["source"], attachment["definition"]))
    if params["required_plugins"]:
        entries.append(required_entry("required_plugins", params["required_plugins"]))
    if params["runtime_plugins"]:
        entries.append(runtime_entry(params["runtime_name"], params["runtime_plugins"]))
    probe = reading.probe if params["probe_versions"] else None
    checker = Coverage(plugin_dirs, probe, dhcp_daemon_problem)
    return [checker.check(entry) for entry in entries]


def probe_report(reading, tree: InstallTree, current_entry) -> list:
    """Each current plugin's answer to CNI_COMMAND=VERSION, run the way a runtime runs it."""
    probes = []
    # Only the plugins that were linked (a subset when cni_install was given `plugins`).
    linked = tree.read_state().get("plugins") or (current_entry["plugins"] if current_entry else [])
    for name in (linked if current_entry else []):
        path = os.path.join(tree.bin_dir, name)
        entry = {"name": name, "path": path, "ok": True, "error": None, "supported_versions": []}
        try:
            answer = reading.probe(path)
        except ProbeFailed as exc:
            entry.update(ok=False, error=str(exc))
        else:
            entry["supported_versions"] = answer.get("supportedVersions") or [answer.get("cniVersion")]
        probes.append(entry)
    return probes


PACKAGE_LINKED = "linked"
PACKAGE_FILE = "package file"
PACKAGE_UNMANAGED = "unmanaged"


def package_report(module: AnsibleModule, tree: InstallTree, links: list) -> tuple:
    """Names in the plugin dirs that a package owns, and what that means for our links."""
    paths = []
    for directory in tree.link_dirs:
        try:
            paths.extend(os.path.join(directory, name) for name in os.listdir(directory) if not name.startswith("."))
        except OSError:
            continue
    owners = package_owners(module.run_command, paths)
    expected = set(link["path"] for link in links)
    found = []
    for path in sorted(owners):
        if tree.is_ours(path):
            status = PACKAGE_LINKED
        elif path in expected:
            status = PACKAGE_FILE
        else:
            status = PACKAGE_UNMANAGED
        found.append({"path": path, "package": owners[path], "status": status})
    warnings = []
    for status, text in ((PACKAGE_LINKED, "nodeprep's links at %s take over names that package %s owns "
                                          "(adopt_package_files): the package's next upgrade overwrites them; give nodeprep a "
                                          "bin dir of its own (cni_plugins_bin_dir) or use cni_plugins_source: package"),
                         (PACKAGE_FILE, "package %s's own files are where nodeprep's links belong, at %s (the package was "
                                        "installed or upgraded since): the runtime now runs the package's plugins; re-run "
                                        "site.yml with cni_plugins_adopt_package_files to take them back, or give nodeprep a "
                                        "bin dir of its own (cni_plugins_bin_dir)")):
        for package in sorted(set(entry["package"] for entry in found if entry["status"] == status)):
            hits = ", ".join(entry["path"] for entry in found if entry["status"] == status and entry["package"] == package)
            warnings.append(text % ((hits, package) if status == PACKAGE_LINKED else (package, hits)))
    return found, warnings


class Reading:
    """What one run reads once, whatever number of views asks for it: each file's hash (a link's target is a
    file of `current`, already checked against its manifest), the versions' manifest checks, each plugin's
    answer to CNI_COMMAND=VERSION."""

    def __init__(self, module: AnsibleModule):
        self.module = module
        self.digests = {}
        self.versions = {}
        self.answers = {}

    def version_report(self, tree: InstallTree) -> list:
        if tree.versions_dir not in self.versions:
            self.versions[tree.versions_dir] = version_report(tree, self.digests)
        return copy.deepcopy(self.versions[tree.versions_dir])

    def probe(self, path: str) -> dict:
        # A failed probe is asked again: its error names the run that saw it.
        if path not in self.answers:
            self.answers[path] = probe_plugin(self.module.run_command, path)
        return copy.deepcopy(self.answers[path])


def view_params(params: dict, view: dict) -> dict:
    """One view's options: its own, the install tree's dirs where it names none."""
    merged = dict(view)
    merged["versions_dir"] = params["versions_dir"]
    for key in ("bin_dir", "link_dirs"):
        if merged.get(key) is None:
            merged[key] = params[key]
    return merged


def gather(module: AnsibleModule, params: dict = None, reading: Reading = None) -> dict:
    params = module.params if params is None else params
    reading = reading or Reading(module)
    tree = InstallTree(params["versions_dir"], params["bin_dir"], params["link_dirs"])
    digests = reading.digests
    versions = reading.version_report(tree)
    current = tree.pointer("current")
    current_entry = next((v for v in versions if v["version"] == current), None)
    links, unmanaged = link_report(tree, current_entry, digests)
    summary = dict((status, 0) for status in LINK_STATUSES)
    for link in links:
        summary[link["status"]] = summary.get(link["status"], 0) + 1
    plugin_dirs = params["plugin_dirs"] or tree.link_dirs
    configs = coverage_report(module, params, plugin_dirs, reading)
    coverage = summarize(configs)
    invoke = status_invoker(module.run_command)
    statuses = [cni_status(entry, plugin_dirs, invoke) for entry in configs if entry["kind"] == "conflist"] \
        if params["cni_status"] else []
    for entry in configs:
        del entry["uses"]
        entry.pop("config", None)
    probes = probe_report(reading, tree, current_entry) if params["probe_plugins"] else []
    package_owned, package_warnings = package_report(module, tree, links) if params["package_owners"] else ([], [])
    for warning in package_warnings:
        module.warn(warning)
    adopted = tree.read_adopted()
    ownership = classify(links, adopted, tree.link_dirs, params["conf_dirs"] or ADDON_CONF_DIRS)
    ownership_summary = dict((kind, 0) for kind in (OURS, ADOPTED, DROPPED, DRIFTED))
    for entry in ownership:
        ownership_summary[entry["kind"]] += 1
    healthy = bool(
        current_entry and current_entry["intact"] and links
        and all(link["status"] == LINK_OK for link in links)
        and coverage["ok"]
        and all(probe["ok"] for probe in probes)
    )
    return {
        "changed": False,
        "versions_dir": tree.versions_dir,
        "bin_dir": tree.bin_dir,
        "link_dirs": tree.link_dirs,
        "current": current,
        "previous": tree.pointer("previous"),
        "current_source": current_entry["source"] if current_entry else None,
        "versions": versions,
        "links": links,
        "link_summary": summary,
        "unmanaged": unmanaged,
        "adopted": adopted,
        "ownership": ownership,
        "ownership_summary": ownership_summary,
        "plugin_dirs": plugin_dirs,
        "configs": configs,
        "missing_types": coverage["missing_types"],
        "coverage": coverage,
        "plugin_probes": probes,
        "cni_status": statuses,
        "package_owned": package_owned,
        "package_warnings": package_warnings,
        "healthy": healthy,
    }


def check_spec():
    """The options of one check, at the top level and in each of O(views)."""
    return dict(
        conf_dirs=dict(type="list", elements="path", default=[]),
        plugin_dirs=dict(type="list", elements="path", default=[]),
        network_attachments=dict(type="list", elements="dict", default=[], options=dict(
            source=dict(type="str", required=True),
            definition=dict(type="raw", required=True),
        )),
        required_plugins=dict(type="list", elements="str", default=[]),
        probe_versions=dict(type="bool", default=True),
        probe_plugins=dict(type="bool", default=False),
        package_owners=dict(type="bool", default=True),
        runtime_plugins=dict(type="list", elements="str", default=[]),
        runtime_name=dict(type="str", default="the runtime"),
        cni_status=dict(type="bool", default=False),
    )


def argument_spec():
    view = check_spec()
    view.update(
        name=dict(type="str", required=True),
        bin_dir=dict(type="path"),
        link_dirs=dict(type="list", elements="path"),
    )
    return compose(DIRS, check_spec(), {"views": dict(type="list", elements="dict", default=[], options=view)})


def run(module: AnsibleModule) -> dict:
    """The top-level check and each view, from one reading of the node."""
    reading = Reading(module)
    result = gather(module, reading=reading)
    names = [view["name"] for view in module.params["views"]]
    repeated = sorted(set(name for name in names if names.count(name) > 1))
    if repeated:
        module.fail_json(msg="cni_info: views must have distinct names; repeated: %s" % ", ".join(repeated))
    result["views"] = dict(
        (view["name"], gather(module, view_params(module.params, view), reading)) for view in module.params["views"])
    return result


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    module.exit_json(**run(module))


if __name__ == "__main__":
    main()
