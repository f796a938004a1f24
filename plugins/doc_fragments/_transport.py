# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options of how a release download talks to its servers (module_utils._options.TRANSPORT)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  headers:
    description:
      - Extra HTTP headers for requests to O(base_url) and O(mirrors), for example an C(Authorization) header for
        a private mirror.
      - Sent only to the origin (scheme, host, port) of the mirror being fetched from, never to the host a redirect
        points to.
      - Values are treated as secrets and never appear in output or error messages.
    type: dict
    default: {}
  validate_certs:
    description: Verify TLS certificates. Set O(ca_path) instead of disabling this for a private CA.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file of CA certificates to trust for HTTPS, on the host that downloads. Omitted or empty, the system's CAs.
    type: path
  timeout:
    description:
      - Seconds to wait for a connection or for the next data before an attempt fails (and is retried). More than 0.
    type: int
    default: 30
  deadline:
    description:
      - Seconds one mirror gets for the whole download (checksum file and tarball, every retry and redirect
        included). A server that trickles bytes or stalls is abandoned at the deadline and the next mirror is tried.
        More than 0.
      - Bounds how long the release cache's lock is held, so parallel runs never wait forever.
    type: int
    default: 600
  retries:
    description:
      - Extra attempts per URL after connection errors, timeouts, truncated bodies, HTTP 5xx and 429, with
        exponential backoff. HTTP 403 and 404 are not retried (the next mirror is tried instead). 0 or more.
    type: int
    default: 3
"""
