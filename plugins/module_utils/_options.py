# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The option groups every module and action plugin composes, each option declared once.

A group is an argument-spec fragment plus the checks its values need beyond their types. The
documentation of each group is the doc fragment of the same name in plugins/doc_fragments/,
and the role variables that feed a group are tied to it by the role's argument_specs.
"""

from __future__ import annotations

import copy

from ansible_collections.nodeprep.cni.plugins.module_utils._release import DEFAULT_BASE_URL

LAYOUTS = ["auto", "standard", "k3s", "rke2", "image"]

# Where a release comes from and what verifies it (doc fragment nodeprep.cni.release).
RELEASE = {
    "version": {"type": "str"},
    "base_url": {"type": "str", "default": DEFAULT_BASE_URL},
    "mirrors": {"type": "list", "elements": "str", "default": []},
    "checksums": {"type": "dict", "default": {}},
    "checksum_algorithm": {"type": "str", "default": "sha256", "choices": ["sha256", "sha512"]},
    "require_pinned": {"type": "bool", "default": False},
    "broken_versions": {"type": "dict"},
}

# How the download talks to a server (doc fragment nodeprep.cni.transport).
TRANSPORT = {
    "headers": {"type": "dict", "default": {}, "no_log": True},
    "validate_certs": {"type": "bool", "default": True},
    "ca_path": {"type": "path"},
    "timeout": {"type": "int", "default": 30},
    "deadline": {"type": "int", "default": 600},
    "retries": {"type": "int", "default": 3},
}

# The directories of the install tree, read by cni_info as well (doc fragment nodeprep.cni.dirs).
DIRS = {
    "versions_dir": {"type": "path", "default": "/opt/cni/versions"},
    "bin_dir": {"type": "path", "default": "/opt/cni/bin"},
    "link_dirs": {"type": "list", "elements": "path", "default": []},
}

# What an install links and keeps (doc fragment nodeprep.cni.install).
INSTALL = {
    "plugins": {"type": "list", "elements": "str", "default": []},
    "keep": {"type": "int", "default": 3},
    "adopt": {"type": "bool", "default": True},
    "adopt_package_files": {"type": "bool", "default": False},
    "layout": {"type": "str", "default": "auto", "choices": LAYOUTS},
    "image_dir": {"type": "path", "default": "/bin"},
}


def compose(*groups, **overrides) -> dict:
    """One argument spec from *groups* (each a fresh copy); *overrides* change single keys of an
    option, e.g. ``version={"required": True}``."""
    spec = {}
    for group in groups:
        for name, option in group.items():
            if name in spec:
                raise ValueError("option %s is declared by two groups" % name)
            spec[name] = copy.deepcopy(option)
    for name, changes in overrides.items():
        spec[name].update(changes)
    return spec


def pick(params: dict, *groups) -> dict:
    """The values of *params* that belong to *groups*, to hand to a module that composes them."""
    return {name: params[name] for group in groups for name in group if name in params}


def transport_problem(params: dict):
    """Why the transport values cannot work, naming them; None when they can."""
    if params["retries"] < 0 or params["timeout"] <= 0 or params["deadline"] <= 0:
        return ("retries must be 0 or more, timeout and deadline more than 0 (got retries=%s, timeout=%s, deadline=%s)"
                % (params["retries"], params["timeout"], params["deadline"]))
    return None


def install_problem(params: dict):
    """Why the install values cannot work, naming them; None when they can."""
    if params["keep"] < 2:
        return ("keep is %d; it counts current and previous, so it must be at least 2: set keep (role: cni_plugins_keep) "
                "to 2 or more" % params["keep"])
    return None
