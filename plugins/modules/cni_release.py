#!/usr/bin/python
# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fetch a containernetworking/plugins release tarball into a cache and verify it."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cni_release
short_description: Download and verify a CNI plugins release tarball into a cache
version_added: 0.1.0
author:
  - nodeprep.cni contributors (@nodeprep)
description:
  - Downloads C(cni-plugins-<os>-<arch>-v<version>.tgz) of U(https://github.com/containernetworking/plugins)
    into O(cache_dir), verifies it and returns its path and sha256.
  - The expected digest comes from, in order, O(checksum), the user table O(checksums), the table of official
    values shipped with the collection, and finally the release's own C(.sha256) or C(.sha512) file, fetched from the
    same mirror that serves the tarball. O(require_pinned=true) refuses that last fallback.
  - A release verified only against that checksum file (also when the cached file is verified against the record
    of such a check) is trusted on first use - the file comes from the server that serves the tarball, so it proves
    an intact download, not an authentic one - and the module warns each time, naming the version and how to pin it.
  - A cached tarball that still verifies is returned without any network request. For versions verified through a
    release checksum file a sidecar record C(<asset>.verified.json) lets a re-run verify the cache offline.
  - Known-broken upstream releases (O(broken_versions); 1.6.1 and 1.7.0 by default) are refused before any request,
    naming the release to use instead.
  - Parallel runs on one host download an asset once; the others wait on the cache's lock file C(<cache_dir>/.lock)
    and reuse the result. The lock file stays in place for good (removing it would let a waiting run and a newcomer
    both proceed).
  - A downloaded tarball enters the cache only when it verifies and is a well-formed release archive (flat regular
    files with plain names, within size limits); anything else is refused naming the URL, before it reaches the cache.
  - Leftovers of runs that were killed mid-download (C(.<asset>.download), C(..<asset>.download.*.part),
    C(.<asset>.verified.json.*.tmp)) are removed by the next run, under the cache's lock, so never while a
    download that owns them is still running.
  - Uses C(requests) when it is installed, otherwise C(ansible.module_utils.urls); proxy variables from the
    environment (C(https_proxy), C(no_proxy)...) are honoured either way.
  - Redirects are followed, but O(headers) are sent only to the origin (scheme, host and port) of the URL being
    fetched, on both HTTP backends. A redirect to another host, another port or another scheme gets none of them,
    so a token for a private mirror never reaches the storage host it redirects to.
extends_documentation_fragment:
  - nodeprep.cni._release
  - nodeprep.cni._transport
  - nodeprep.cni._attributes
attributes:
  check_mode:
    details: Never downloads or writes; reports O(cache_dir) entries that would be downloaded as changed.
options:
  version:
    required: true
  os:
    description: Operating system part of the asset name.
    type: str
    choices: [linux]
    default: linux
  arch:
    description:
      - Architecture part of the asset name, in Go's GOARCH spelling (V(amd64), V(arm), V(arm64),
        V(ppc64le), V(s390x), V(riscv64), V(mips64le)) or as the kernel reports it
        (C(ansible_facts.architecture), for example V(x86_64) or V(aarch64)), which is mapped.
      - Defaults to the architecture of the host the module runs on.
    type: str
  checksum:
    description:
      - Expected digest of the tarball as V(sha256:<hex>) or V(sha512:<hex>). Overrides every table.
    type: str
  cache_dir:
    description: Directory holding verified tarballs, created when missing.
    type: path
    default: /var/cache/nodeprep/cni
  checksum_files:
    description:
      - Also write C(<asset>.sha256) and C(<asset>.sha512) next to the verified tarball, as C(<hex>  <asset>)
        lines computed from its verified bytes, so O(cache_dir) laid out as C(<mirror>/v<version>/) is an
        upstream-layout release mirror (see C(playbooks/mirror.yml)). A file already holding the right line
        is left alone.
    type: bool
    default: false
notes:
  - A failure on a host whose O(cache_dir) did not exist leaves that directory with its lock file; nothing else.
  - The collection's own table holds the official sha256 values of upstream releases; version 1.4.1 has two
    genuine values (assets re-uploaded upstream in 2024) and both verify.
seealso:
  - module: nodeprep.cni.cni_install
"""

EXAMPLES = r"""
- name: Fetch the pinned release for the node's architecture
  nodeprep.cni.cni_release:
    version: 1.6.2
  register: cni_tarball

- name: Fetch on the controller for every architecture in the inventory, through a mirror first
  nodeprep.cni.cni_release:
    version: v1.9.1
    arch: "{{ item }}"
    base_url: https://mirror.example.com/containernetworking/plugins/releases/download
    mirrors:
      - https://github.com/containernetworking/plugins/releases/download
    cache_dir: "{{ playbook_dir }}/.cache/cni"
  loop: [amd64, arm64]
  delegate_to: localhost
  run_once: true

- name: Accept only versions whose digest is pinned
  nodeprep.cni.cni_release:
    version: 1.9.1
    require_pinned: true

- name: Use a locally built release from an internal server with a token
  nodeprep.cni.cni_release:
    version: 9.0.0
    base_url: https://artifacts.example.com/cni
    checksums:
      amd64:
        9.0.0: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
    headers:
      Authorization: "Bearer {{ artifacts_token }}"
    ca_path: /etc/pki/internal-ca.pem

- name: Verify a release that is not pinned through its sha512 file
  nodeprep.cni.cni_release:
    version: 1.9.0
    checksum_algorithm: sha512
"""

RETURN = r"""
path:
  description: Path of the verified tarball in O(cache_dir) (where it would be, in check mode).
  returned: always
  type: str
  sample: /var/cache/nodeprep/cni/cni-plugins-linux-amd64-v1.6.2.tgz
sha256:
  description:
    - sha256 of the verified tarball, computed even when it was verified with sha512.
    - In check mode without a cached file, the expected value when exactly one is known, else null.
  returned: always
  type: str
  sample: b8e811578fb66023f90d2e238d80cec3bdfca4b44049af74c374d4fae0f9c090
url:
  description:
    - URL the tarball was (or would be) downloaded from.
    - For a cache hit, the URL recorded when it was verified through a checksum file, else the URL it would be fetched
      from first.
    - Never with a user or password (userinfo), whatever the URL given.
  returned: always
  type: str
  sample: https://github.com/containernetworking/plugins/releases/download/v1.6.2/cni-plugins-linux-amd64-v1.6.2.tgz
version:
  description: Normalized version, without a leading V(v).
  returned: always
  type: str
  sample: 1.6.2
arch:
  description: Architecture of the asset.
  returned: always
  type: str
  sample: amd64
removed_leftovers:
  description: Names of partial files of killed runs that this run removed from O(cache_dir).
  returned: always
  type: list
  elements: str
  sample: [..cni-plugins-linux-amd64-v1.6.2.tgz.download.k2j4h1.part]
downloaded:
  description:
    - Whether the tarball was downloaded in this run. Equal to C(changed) unless O(checksum_files) wrote a
      checksum file.
  returned: always
  type: bool
  sample: true
checksum_files:
  description: Checksum files O(checksum_files) wrote (or would write, in check mode) in this run.
  returned: always
  type: list
  elements: str
  sample: [/srv/cni/v1.6.2/cni-plugins-linux-amd64-v1.6.2.tgz.sha512]
checksum_source:
  description:
    - What the tarball was (or will be) verified against.
    - V(checksum) (the O(checksum) option), V(user_table) (O(checksums)), V(pinned) (the shipped table),
      V(checksum_file) (the release's C(.sha256)/C(.sha512) file) or V(verified_record) (the sidecar record
      written when the cached file was verified through a checksum file).
  returned: always
  type: str
  sample: pinned
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nodeprep.cni.plugins.module_utils._release_backend import argument_spec, release_main


def main():
    release_main(AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True))


if __name__ == "__main__":
    main()
