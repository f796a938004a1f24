# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading cni_info's result on the controller, shared by the verify filters."""

from __future__ import annotations


def current_version_entry(cni: dict) -> dict:
    """The entry of cni_info's ``versions`` that is current, or an empty dict when none is."""
    for entry in cni.get("versions") or []:
        if entry.get("version") == cni.get("current"):
            return entry
    return {}
