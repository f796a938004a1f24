"""Each role's three declarations of a variable agree: meta/argument_specs.yml, defaults/main.yml, and
the option of the module the role hands it to (as ``ansible-doc --json`` documents that option).

Same keys, same types, same default values: a role default that is a template is documented without
a default in the spec; a role variable passed straight to a module option has the option's type
and default, so calling the module directly behaves as the role does.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLES = sorted(path.name for path in (REPO / "roles").iterdir() if (path / "meta/argument_specs.yml").is_file())
# A task option given exactly one role variable: "{{ var }}", "{{ var | string }}".
PLAIN = re.compile(r"^\{\{\s*([a-z][a-z0-9_]*)\s*(\|\s*string\s*)?\}\}$")
PYTHON_TYPES = {"str": str, "path": str, "int": int, "bool": bool, "list": list, "dict": dict, "raw": object}
# A role's "" or [] means "not set" where the module's option has no default (None): the same thing.
UNSET = ("", [], {}, None)
# Where the role decides what the module leaves to its caller, and why.
ROLE_DECIDES = {
    ("cni_plugins_version", "version"): "the module installs the release it is given; the role picks one",
    ("cni_plugins_broken_versions", "broken_versions"):
        "the role hands its table (one a user can extend) to the module, whose None means the shipped table",
    ("cni_plugins_conf_dirs", "conf_dirs"): "the report checks the runtime's conf dir; the module checks none unless asked",
}


def spec_options(role: str) -> dict:
    """Every entry point's options, merged; entry points share one anchor per role."""
    specs = yaml.safe_load((REPO / "roles" / role / "meta/argument_specs.yml").read_text())["argument_specs"]
    merged = {}
    for entry in specs.values():
        merged.update(entry.get("options") or {})
    return merged


def role_defaults(role: str) -> dict:
    return yaml.safe_load((REPO / "roles" / role / "defaults/main.yml").read_text()) or {}


def module_calls(role: str):
    """(task file, task name, module, option, value) for every option of a nodeprep.cni task of the role."""
    def walk(tasks):
        for task in tasks or []:
            for key in ("block", "rescue", "always"):
                yield from walk(task.get(key))
            for key, args in task.items():
                if key.startswith("nodeprep.cni.") and isinstance(args, dict):
                    yield task.get("name"), key, args

    for path in sorted((REPO / "roles" / role / "tasks").glob("*.yml")):
        for name, module, args in walk(yaml.safe_load(path.read_text())):
            for option, value in args.items():
                yield path.name, name, module, option, value


@pytest.fixture(scope="module")
def module_docs() -> dict:
    modules = sorted({module for role in ROLES for _f, _n, module, _o, _v in module_calls(role)})
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".cache/collections"))
    done = subprocess.run([str(Path(sys.executable).parent / "ansible-doc"), "--json", "-t", "module"] + modules,
                          capture_output=True, text=True, check=True, env=env, timeout=120)
    return {name: entry["doc"]["options"] for name, entry in json.loads(done.stdout).items()}


def templated(value) -> bool:
    return isinstance(value, str) and "{{" in value


@pytest.mark.parametrize("role", ROLES)
def test_argument_specs_and_defaults_name_the_same_variables(role):
    specs, defaults = spec_options(role), role_defaults(role)
    assert sorted(set(specs) - set(defaults)) == [], "in meta/argument_specs.yml, not in defaults/main.yml"
    assert sorted(set(defaults) - set(specs)) == [], "in defaults/main.yml, not in meta/argument_specs.yml"


@pytest.mark.parametrize("role", ROLES)
def test_argument_specs_and_defaults_agree_on_types_and_values(role):
    specs, defaults = spec_options(role), role_defaults(role)
    problems = []
    for name, spec in specs.items():
        value = defaults.get(name)
        if templated(value):
            # Computed at run time: the spec documents it in words, never as a fixed value.
            if "default" in spec:
                problems.append("%s: the default is a template, the spec says %r" % (name, spec["default"]))
            continue
        if spec.get("default") != value and not ("default" not in spec and value is None):
            problems.append("%s: argument_specs default %r, defaults/main.yml %r" % (name, spec.get("default"), value))
        expected = PYTHON_TYPES[spec.get("type", "str")]
        if value is not None and not isinstance(value, expected):
            problems.append("%s: type %s but the default %r is a %s" % (
                name, spec.get("type", "str"), value, type(value).__name__))
        if spec.get("type") == "list" and value:
            element = PYTHON_TYPES[spec.get("elements", "str")]
            problems += ["%s: element %r is not %s" % (name, item, spec.get("elements")) for item in value
                         if not isinstance(item, element)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("role", ROLES)
def test_role_variables_match_the_module_options_they_feed(role, module_docs):
    specs, defaults = spec_options(role), role_defaults(role)
    problems, tied = [], 0
    for task_file, task, module, option, value in module_calls(role):
        plain = PLAIN.match(value) if isinstance(value, str) else None
        if not plain or plain.group(1) not in specs:
            continue
        variable, documented = plain.group(1), module_docs[module].get(option)
        where = "%s (%s, %s): %s -> %s.%s" % (role, task_file, task, variable, module, option)
        if documented is None:
            problems.append("%s: the module documents no such option" % where)
            continue
        tied += 1
        role_type, module_type = specs[variable].get("type", "str"), documented.get("type", "str")
        # `| string` hands a str to the option whatever the variable's type.
        if not plain.group(2) and role_type != module_type:
            problems.append("%s: type %s in the role, %s in the module" % (where, role_type, module_type))
        if role_type == "list" and module_type == "list" and \
                specs[variable].get("elements", "str") != documented.get("elements", "str"):
            problems.append("%s: elements %s in the role, %s in the module" % (
                where, specs[variable].get("elements", "str"), documented.get("elements", "str")))
        role_default = defaults.get(variable)
        if templated(role_default) or documented.get("required"):
            continue
        module_default = documented.get("default")
        if (variable, option) in ROLE_DECIDES:
            # An entry here must still be a difference, or it hides the next drift.
            if role_default == module_default:
                problems.append("%s: now the same default; drop it from ROLE_DECIDES" % where)
            continue
        if role_default != module_default and not (module_default is None and role_default in UNSET):
            problems.append("%s: default %r in the role, %r in the module" % (where, role_default, module_default))
    assert not problems, "\n".join(problems)
    if role in ("cni_plugins", "containerd"):
        assert tied >= 5, "%s passes only %d role variables straight to module options" % (role, tied)
