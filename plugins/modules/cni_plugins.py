#!/usr/bin/python
# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the cni_plugins action plugin (it orchestrates cni_install and cni_release)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cni_plugins
short_description: Settle a node's CNI plugins in one task, fetching the release only when the node lacks it
version_added: 0.1.0
description:
  - The main path of the C(nodeprep.cni.cni_plugins) role, usable on its own.
  - Asks the node first, in one run of M(nodeprep.cni.cni_install) (O(nodeprep.cni.cni_install#module:on_missing_src=report)),
    whether O(version) is installed intact. If it is, that run is the whole task - links are repaired when needed,
    no request is made, every file is hashed once and no facts are needed (the node reports its architecture).
  - Otherwise fetches and verifies the release with the logic of M(nodeprep.cni.cni_release). With
    O(download_on=controller) that happens on the controller, once per architecture - every fork and host shares
    O(controller_cache_dir) and its lock - and the verified tarball is copied to the task's temporary directory on the
    node, made only then. The install run checks its sha256 on the node before reading it, moves it into
    O(node_cache_dir) and removes the emptied directory - so a first install over SSH costs four commands per node (ask,
    make the directory, transfer, install), and a node that has the version intact one.
    With O(download_on=node) the node downloads it into O(node_cache_dir).
  - A controller download still running after 10 seconds prints a line every 10 seconds while the task runs (bytes
    so far of the total, rate, which mirror of how many); a fork that waits for another fork's download of the same
    release says so at once and every 30 seconds. While a node downloads (O(download_on=node)) a line every 10 seconds
    says how long it has taken so far (the node's byte count arrives only when it ends).
  - In check mode the release is fetched into O(controller_cache_dir) (not node state) so that a O(plugins) subset
    the release lacks is refused as the real run refuses it.
  - Then runs M(nodeprep.cni.cni_install) with the tarball - versioned directory, manifest, atomic switch, links,
    prune - and fills the distribution's own plugin dir (O(layout)) where names are free.
  - Refuses known-broken releases (O(broken_versions)) and a O(keep) below 2 before touching the node or the network.
  - With O(source=package) the OS package is the source instead of a release. The first run of
    M(nodeprep.cni.cni_install) reads the package's version from the node's package manager (dpkg, else rpm) and, when
    the version directory named after it is intact, settles the node in that one run. Only when the package is not
    installed does the node's package module (the O(os_packages) entry of its OS family - C(ansible.builtin.apt),
    C(ansible.builtin.dnf) or C(community.general.zypper)) install it; then the package's plugin directory is copied,
    validated like a release's members, into C(<versions_dir>/v<package version>/) with a manifest recording the
    package and its version, and switched to exactly as a release is. A later package upgrade (a new package
    version) installs a new version directory and the old one becomes C(previous).
  - The package version names the directory as in M(nodeprep.cni.cni_install) - C(1.1.1+ds1-3+b5) stays as it is,
    C(~) becomes C(-), an epoch C(N:) becomes a C(+epochN) suffix.
author:
  - nodeprep.cni contributors (@nodeprep)
extends_documentation_fragment:
  - nodeprep.cni._release
  - nodeprep.cni._transport
  - nodeprep.cni._dirs
  - nodeprep.cni._install
  - nodeprep.cni._attributes
  - nodeprep.cni._attributes.action
options:
  source:
    description:
      - V(release) fetches and installs upstream's verified release tarball O(version), which is then required.
      - V(package) installs the OS package and links its plugins into the same versioned layout; O(version) is not
        used (the package manager names the version), and download options other than their defaults (O(base_url),
        O(mirrors), O(checksums), O(checksum_algorithm), O(require_pinned), O(download_on), O(headers), O(ca_path))
        are refused, since nothing is downloaded.
    type: str
    choices: [release, package]
    default: release
  package_name:
    description:
      - O(source=package) - the package to install. Empty takes the O(os_packages) entry of the node's OS family.
      - C(kubernetes-cni) from a repository configured on the node works too, with O(package_dir=/opt/cni/bin) and
        O(bin_dir) set to another directory.
    type: str
    default: ""
  package_dir:
    description:
      - O(source=package) - the directory the package puts its plugins in (Debian's C(containernetworking-plugins) -
        C(/usr/lib/cni)). Empty takes the O(os_packages) entry of the node's OS family.
      - It must not be O(bin_dir) or one of O(link_dirs) - links there would replace the package's own files and the
        package's next upgrade would overwrite the links - so that is refused, naming the fix.
    type: str
    default: ""
  package_update_cache:
    description: O(source=package) - refresh the package index before installing (after adding a repository).
    type: bool
    default: false
  os_packages:
    description:
      - O(source=package) - per OS family (V(Debian), V(RedHat), V(Suse), as the node's C(/etc/os-release) C(ID) and
        C(ID_LIKE) say), a dict of C(name) (the package), C(dir) (its plugin directory) and C(module) (the module that
        installs it). The role passes its table from C(vars/main.yml); the node's family is read only when
        O(package_name) or O(package_dir) is empty, or when the package must be installed.
      - The SUSE entry's C(community.general.zypper) comes from the C(community.general) collection, an optional
        dependency that only this path needs; when a package must be installed with a module that is not installed on
        the controller, the task fails before the node is changed, naming the collection to install.
    type: dict
    default: {}
  download_on:
    description:
      - Where the release is downloaded and verified.
      - V(controller) - once per architecture on the controller, then pushed to each node that needs it; nodes need no
        route to a mirror.
      - V(node) - each node that needs the release downloads it from O(base_url) or O(mirrors) into O(node_cache_dir),
        verified against the digest the controller decides once - the pinned or O(checksums) value without any request,
        else the release checksum file read once (from a local directory or when the controller cannot read it, each
        node reads it itself). No tarball passes through the controller - for large fleets whose nodes reach a mirror
        near them better than the controller reaches the nodes.
      - In check mode nothing is downloaded on the node; where the real run could refuse the release (a O(plugins) name
        it lacks, package-owned names), the controller fetches it into O(controller_cache_dir) to refuse alike, and
        warns when it cannot.
    type: str
    choices: [controller, node]
    default: controller
  controller_cache_dir:
    description: Release cache on the controller, shared by every fork and host.
    type: path
    default: ~/.cache/nodeprep/cni
  node_cache_dir:
    description: Release cache on the node - where the node downloads (O(download_on=node)) or the controller's copy lands.
    type: path
    default: /var/cache/nodeprep/cni
  state:
    description:
      - V(present) settles O(version) as described above.
      - V(rollback) makes the previous installed version current again, or the installed O(version) when it is given;
        nothing is fetched. O(version) defaults to nothing here - the role passes C(cni_plugins_rollback_version).
      - V(absent) removes every version, pointer and link of the install - in O(bin_dir), O(link_dirs), the layout's
        dir and every dir the install recorded, whatever O(layout) says now - and restores adopted files; nothing is
        fetched. See M(nodeprep.cni.cni_install) for what stays (RV(left)).
    type: str
    choices: [present, rollback, absent]
    default: present
attributes:
  check_mode:
    details:
      - Nothing is written on the node. The controller's cache may be filled (it is not node state), so the plan
        and the refusals are real.
  diff_mode:
    details: The before and after pictures of M(nodeprep.cni.cni_install).
  action:
    details: Orchestrates the node's modules from the controller.
seealso:
  - module: nodeprep.cni.cni_install
  - module: nodeprep.cni.cni_release
"""

EXAMPLES = r"""
- name: Install the plugins, fetching the release on the controller only when the node lacks it
  nodeprep.cni.cni_plugins:
    version: 1.9.1

- name: Download on each node through a private mirror
  nodeprep.cni.cni_plugins:
    version: 1.9.1
    download_on: node
    base_url: https://mirror.example.com/containernetworking/plugins/releases/download
    link_dirs: [/var/lib/rancher/k3s/data/cni]

- name: Use Debian's containernetworking-plugins package, linked into the versioned layout
  nodeprep.cni.cni_plugins:
    source: package
    os_packages:
      Debian: {name: containernetworking-plugins, dir: /usr/lib/cni, module: ansible.builtin.apt}

- name: Make the previous version current again
  nodeprep.cni.cni_plugins:
    state: rollback

- name: Remove the install and restore adopted files
  nodeprep.cni.cni_plugins:
    state: absent

- name: Use kubernetes-cni from the Kubernetes package repository configured on the node
  nodeprep.cni.cni_plugins:
    source: package
    package_name: kubernetes-cni
    package_dir: /opt/cni/bin
    package_update_cache: true
    bin_dir: /opt/cni/nodeprep-bin
    os_packages:
      Debian: {name: kubernetes-cni, dir: /opt/cni/bin, module: ansible.builtin.apt}
"""

RETURN = r"""
version:
  description: Version that C(current) names after the run.
  returned: success
  type: str
  sample: "1.9.1"
arch:
  description: The node's architecture, as the node reported it.
  returned: always
  type: str
  sample: amd64
installed:
  description: Whether version files were written.
  returned: success
  type: bool
actions:
  description: What was done (or would be done, in check mode), in order.
  returned: success
  type: list
  elements: str
links:
  description: Every link path managed, with its target.
  returned: success
  type: dict
layout:
  description: The layout in effect, its plugin dir and the names linked there.
  returned: success
  type: dict
  sample: {name: standard, dir: "", linked: []}
removed:
  description: With O(state=absent), every path taken away (or that would be, in check mode).
  returned: success
  type: list
  elements: str
restored:
  description: With O(state=absent), the adopted files put back where they were found.
  returned: success
  type: list
  elements: str
left:
  description: With O(state=absent), what stays on the node, each with C(path) and C(why).
  returned: success
  type: list
  elements: dict
release:
  description:
    - The fetched release (C(path), C(sha256), C(url), C(downloaded), C(checksum_source), C(arch), and C(where) it was
      fetched, V(controller) or V(node)); null when the node had the wanted version intact.
    - Absent with O(source=package).
  returned: with source release
  type: dict
package:
  description: With O(source=package), the installed package - C(name), C(version) as its manager reports it, C(manager).
  returned: with source package
  type: dict
  sample: {name: containernetworking-plugins, version: "1.1.1+ds1-3+b5", manager: dpkg}
package_install:
  description:
    - With O(source=package), the package module's run (C(name), C(module), C(changed), C(os_family)); null when the
      package was installed already.
  returned: with source package
  type: dict
  sample: {name: containernetworking-plugins, module: ansible.builtin.apt, changed: true, os_family: Debian}
"""
