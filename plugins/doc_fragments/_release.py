# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options of where a CNI plugins release comes from and what verifies it (module_utils._options.RELEASE)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  version:
    description:
      - Release version, with or without a leading C(v) (V(1.4.1) or V(v1.4.1)).
      - Versions before 0.7.0 used other asset names and are not supported.
    type: str
  base_url:
    description:
      - Where releases are published, in upstream's layout; the tarball is fetched from C({base_url}/v{version}/{asset}).
      - An C(http://) or C(https://) URL, a C(file://) URL or an absolute directory path (an air-gapped host without a
        web server). A local directory is read on the machine that downloads (the controller, or the node with the
        C(cni_plugins) action's O(nodeprep.cni.cni_plugins#module:download_on=node)) and is verified exactly as a download is,
        against a pinned checksum or else the C(.sha256) file beside the tarball.
      - Give a private mirror's credentials in O(headers) (an C(Authorization) header), not in the URL. A user and
        password in the URL (C(https://user:pass@host/...)) are used for the request, but the URL is stored and
        returned without them (the returned C(url), the cache's record, the node's manifest, the verify report).
    type: str
    default: https://github.com/containernetworking/plugins/releases/download
  mirrors:
    description:
      - Further base URLs with the same layout and forms as O(base_url) (a local directory among them), tried in order
        when O(base_url) fails.
      - A checksum mismatch is not a reason to try the next mirror; it fails at once.
      - Credentials as for O(base_url) - in O(headers), not in the URL.
    type: list
    elements: str
    default: []
  checksums:
    description:
      - User checksum table, a dictionary of architecture to a dictionary of version to checksum, that extends and
        overrides the one shipped with the collection. A value
        is a hex digest (sha256 or sha512, told apart by length), V(sha256:<hex>), V(sha512:<hex>) or a list of such
        values of one algorithm, any of which verifies.
      - 'For example C({amd64: {"9.0.0": "sha256:<hex>"}}).'
      - Useful for locally built or repacked releases, such as a version label upstream never used.
    type: dict
    default: {}
  checksum_algorithm:
    description:
      - Which release checksum file (C(<asset>.sha256) or C(<asset>.sha512)) verifies a version that has no pinned or
        user-given checksum.
    type: str
    choices: [sha256, sha512]
    default: sha256
  require_pinned:
    description:
      - Fail, before any request, when neither a given checksum, O(checksums) nor the shipped table has a digest for
        the version and architecture, instead of trusting the release's checksum file.
    type: bool
    default: false
  broken_versions:
    description:
      - Releases refused before any request, each mapped to the release to use instead.
      - Omitted, the shipped table, which maps 1.6.1 to 1.6.2 and 1.7.0 to 1.7.1. A dictionary replaces it; an empty
        one refuses none.
    type: dict
"""
