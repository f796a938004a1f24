"""The option groups: one declaration per option, the docs ansible-doc shows equal to the specs the
plugins validate with, and the defaults a module gets when called on its own equal to the role's."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ansible_collections.nodeprep.cni.plugins.action import cni_plugins as cni_plugins_action
from ansible_collections.nodeprep.cni.plugins.action import containerd_cni as containerd_cni_action
from ansible_collections.nodeprep.cni.plugins.module_utils import _options
from ansible_collections.nodeprep.cni.plugins.module_utils._release_backend import argument_spec as release_spec
from ansible_collections.nodeprep.cni.plugins.modules import cni_info, cni_install

REPO = Path(__file__).resolve().parents[3]
SPECS = {
    "cni_release": release_spec(),
    "cni_install": cni_install.argument_spec(),
    "cni_info": cni_info.argument_spec(),
    "cni_plugins": cni_plugins_action.ARGUMENT_SPEC,
}
# Keys that say what an option is; `required` may differ by module (cni_release needs version).
SHAPE = ("type", "default", "choices", "elements", "no_log", "aliases", "options")


def shape(option: dict) -> dict:
    return {key: option.get(key) for key in SHAPE}


def test_an_option_shared_by_several_plugins_has_one_shape_everywhere():
    by_name = {}
    for plugin, spec in SPECS.items():
        for name, option in spec.items():
            by_name.setdefault(name, {})[plugin] = shape(option)
    # cni_install's version names a version directory (a package's label, a rollback target), not a release.
    by_name["version"].pop("cni_install")
    for name, shapes in sorted(by_name.items()):
        assert len({json.dumps(s, sort_keys=True) for s in shapes.values()}) == 1, (name, shapes)
    # The drifts the groups ended: one type for ca_path, one default for plugins and layout.
    assert {plugin: shapes["type"] for plugin, shapes in by_name["ca_path"].items()} == \
        {"cni_release": "path", "cni_plugins": "path"}
    assert {json.dumps(s["default"]) for s in by_name["plugins"].values()} == {"[]"}
    assert {s["default"] for s in by_name["layout"].values()} == {"auto"}


def test_a_module_called_on_its_own_gets_the_role_defaults():
    role = yaml.safe_load((REPO / "roles/cni_plugins/defaults/main.yml").read_text())
    install = cni_install.argument_spec()
    assert install["layout"]["default"] == role["cni_plugins_layout"]
    assert install["plugins"]["default"] == role["cni_plugins_list"]
    assert install["keep"]["default"] == role["cni_plugins_keep"]


def test_compose_refuses_an_option_of_two_groups_and_copies_each_group():
    with pytest.raises(ValueError, match="keep"):
        _options.compose(_options.INSTALL, {"keep": {"type": "int"}})
    spec = _options.compose(_options.RELEASE, version={"required": True})
    assert spec["version"] == {"type": "str", "required": True}
    assert "required" not in _options.RELEASE["version"]
    spec["mirrors"]["default"].append("https://changed.example")
    assert _options.RELEASE["mirrors"]["default"] == []


def test_pick_hands_on_exactly_a_groups_options():
    args = dict(versions_dir="/v", bin_dir="/b", link_dirs=[], keep=2, base_url="https://x", download_on="node")
    assert _options.pick(args, _options.DIRS) == {"versions_dir": "/v", "bin_dir": "/b", "link_dirs": []}


@pytest.mark.parametrize("values, fragment", [
    ({"retries": -1, "timeout": 30, "deadline": 600}, "retries=-1"),
    ({"retries": 3, "timeout": 0, "deadline": 600}, "timeout=0"),
    ({"retries": 3, "timeout": 30, "deadline": 0}, "deadline=0"),
])
def test_transport_checks_name_the_value(values, fragment):
    assert fragment in _options.transport_problem(values)


def test_install_check_names_keep_and_the_fix():
    assert _options.install_problem({"keep": 2}) is None
    message = _options.install_problem({"keep": 1})
    assert "keep is 1" in message and "at least 2" in message and "cni_plugins_keep" in message


def ansible_doc(*modules) -> dict:
    ansible_doc_bin = Path(sys.executable).parent / "ansible-doc"
    done = subprocess.run([str(ansible_doc_bin), "--json"] + ["nodeprep.cni." + m for m in modules],
                          capture_output=True, text=True, check=True, env=dict(os.environ), timeout=120)
    return {name.rsplit(".", 1)[1]: entry["doc"] for name, entry in json.loads(done.stdout).items()}


def doc_shape(option: dict) -> dict:
    spec = {key: option.get(key) for key in ("type", "default", "choices", "elements", "aliases")}
    spec["required"] = bool(option.get("required"))
    return spec


def spec_shape(option: dict) -> dict:
    spec = {key: option.get(key) for key in ("type", "default", "choices", "elements", "aliases")}
    spec["type"] = spec["type"] or "str"
    spec["required"] = bool(option.get("required"))
    return spec


def test_the_action_plugins_docs_match_the_specs_they_validate_with():
    """validate-modules compares a module's docs with its spec; an action's stub it cannot, so here."""
    docs = ansible_doc("cni_plugins", "containerd_cni")
    for name, spec in (("cni_plugins", cni_plugins_action.ARGUMENT_SPEC), ("containerd_cni", containerd_cni_action.ARGUMENT_SPEC)):
        documented = docs[name]["options"]
        assert sorted(documented) == sorted(spec), name
        for option, declared in spec.items():
            assert doc_shape(documented[option]) == spec_shape(declared), (name, option)


def test_every_module_declares_its_attributes():
    modules = sorted(p.stem for p in (REPO / "plugins/modules").glob("*.py"))
    for name, doc in ansible_doc(*modules).items():
        attributes = doc.get("attributes") or {}
        assert {"check_mode", "diff_mode", "platform"} <= set(attributes), name
        assert attributes["check_mode"]["support"] == "full", name
