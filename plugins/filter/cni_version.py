# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A release version as cni_release reads it, for playbooks that build paths from it."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.nodeprep.cni.plugins.module_utils._release import normalize_version


def cni_version(version, variable="version"):
    try:
        return normalize_version(version)
    except ValueError as exc:
        raise AnsibleFilterError("%s: %s" % (variable, exc))


class FilterModule:
    """nodeprep.cni's version filter."""

    def filters(self):
        return {"cni_version": cni_version}
