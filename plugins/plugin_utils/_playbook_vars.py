# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The playbooks' nodeprep_* variables: their spec (playbooks/vars/argument_specs.yml), the check of
what a run was given, the names the playbooks set for themselves, and the docs page.

The check sorts every ``nodeprep_*`` name a host has (inventory, ``-e``, facts):
- declared for this playbook: its value is checked against the spec;
- declared for another playbook, or set by the collection's own playbooks (a fact, a registered result,
  a ``set_stats`` key that AWX hands on to the next job of a workflow): not this playbook's business,
  since one inventory and one workflow's variables serve every playbook;
- anything else is unknown: refused, with the names this playbook reads and the closest of them.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.validation import check_type_float, check_type_int

PLAYBOOKS_DIR = Path(__file__).resolve().parents[2] / "playbooks"
SPEC_PATH = PLAYBOOKS_DIR / "vars" / "argument_specs.yml"
PREFIX = "nodeprep_"
# Not a file name (".../nodeprep_cni.prom") nor an attribute ("x.nodeprep_y").
NAME = re.compile(r"(?<![/\w.-])nodeprep_[a-z0-9_]+")
# Hosts named in one message line at most; the rest are counted.
HOST_SAMPLE = 5
OPTION_KEYS = {"type", "elements", "choices", "default", "required", "description"}


def _percentage(value):
    """0 to 100, with or without a trailing ``%`` (what the upgrade's failure allowance takes)."""
    text = str(value).strip()
    number = check_type_float(text[:-1] if text.endswith("%") else text)
    if not 0 <= number <= 100:
        raise TypeError("%s is not a percentage from 0 to 100" % value)
    return value


def _serial(value):
    """A batch size as Ansible's ``serial`` takes it: a count, ``N%``, or a list of those."""
    for item in value if isinstance(value, list) else [value]:
        text = str(item).strip()
        if text.endswith("%"):
            _percentage(text)
            continue
        if isinstance(item, bool) or check_type_int(text) < 1:
            raise TypeError("%r is not a count of nodes (1 or more) or a percentage such as 25%%" % (item,))
    return value


# The types this collection adds to Ansible's, with how the docs page names them.
CUSTOM_TYPES = {
    "serial": (_serial, "count, percentage or a list of them"),
    "percentage": (_percentage, "percentage"),
}
ANSIBLE_TYPES = {"str", "bool", "int", "float", "path", "list", "dict", "raw"}


class SpecError(ValueError):
    """The spec file itself is wrong (a name twice, an unknown group, a key Ansible's specs lack)."""


def load_spec(path: Path = SPEC_PATH) -> dict:
    spec = yaml.safe_load(Path(path).read_text())
    for playbook in spec["playbooks"]:
        playbook_options(spec, playbook)
    return spec


def playbook_options(spec: dict, playbook: str) -> dict:
    """Name -> option of everything ``playbook`` reads: its groups' options, then its own."""
    if playbook not in spec["playbooks"]:
        raise SpecError("no playbook %s in %s; the spec knows %s" % (playbook, SPEC_PATH.name, ", ".join(sorted(spec["playbooks"]))))
    entry = spec["playbooks"][playbook]
    options: dict = {}
    for group in entry.get("groups") or []:
        if group not in spec["option_groups"]:
            raise SpecError("playbook %s names the group %s, which the spec lacks" % (playbook, group))
    sources = [spec["option_groups"][group] for group in entry.get("groups") or []] + [entry.get("options") or {}]
    for source in sources:
        for name, option in source.items():
            if name in options:
                raise SpecError("%s is declared twice for playbook %s" % (name, playbook))
            if not name.startswith(PREFIX):
                raise SpecError("%s: a playbook variable's name starts with %s" % (name, PREFIX))
            unknown = set(option) - OPTION_KEYS
            if unknown or option.get("type", "str") not in ANSIBLE_TYPES | set(CUSTOM_TYPES) or not option.get("description"):
                raise SpecError("%s: needs a description and a known type, and takes only %s" % (name, ", ".join(sorted(OPTION_KEYS))))
            options[name] = option
    return options


def declared_by(spec: dict) -> dict:
    """Name -> the playbooks that read it."""
    owners: dict = {}
    for playbook in spec["playbooks"]:
        for name in playbook_options(spec, playbook):
            owners.setdefault(name, []).append(playbook)
    return owners


def _validator_spec(options: dict) -> dict:
    """Ansible's argument spec for the values: the types and choices (defaults are the playbook's to apply)."""
    spec = {}
    for name, option in options.items():
        kind = option.get("type", "str")
        entry = {"type": CUSTOM_TYPES[kind][0] if kind in CUSTOM_TYPES else kind}
        for key in ("elements", "choices"):
            if key in option:
                entry[key] = option[key]
        spec[name] = entry
    return spec


def _walk_set_names(node, names: set) -> None:
    """Collect the variable names a parsed playbook or task file sets for itself."""
    if isinstance(node, list):
        for item in node:
            _walk_set_names(item, names)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key == "vars" and isinstance(value, dict):
            names.update(value)
        elif key == "register" and isinstance(value, str):
            names.add(value)
        elif key in ("ansible.builtin.set_fact", "set_fact") and isinstance(value, dict):
            names.update(k for k in value if k != "cacheable")
        elif key in ("ansible.builtin.set_stats", "set_stats") and isinstance(value, dict):
            names.update(value.get("data") or {})
        elif key == "loop_control" and isinstance(value, dict) and "loop_var" in value:
            names.add(value["loop_var"])
        _walk_set_names(value, names)


def playbook_files(playbooks_dir: Path = PLAYBOOKS_DIR) -> dict:
    """Playbook name -> its file and the task files it imports, from playbooks/."""
    files = {}
    for playbook in sorted(playbooks_dir.glob("*.yml")):
        text = playbook.read_text()
        imported = [playbooks_dir / "tasks" / name for name in re.findall(r"\btasks/([\w-]+\.ya?ml)\b", text)]
        files[playbook.stem] = [playbook] + [path for path in imported if path.is_file()]
    return files


def set_names(paths) -> set:
    """The ``nodeprep_*`` names the given playbook and task files set themselves."""
    names: set = set()
    for path in paths:
        _walk_set_names(yaml.safe_load(Path(path).read_text()), names)
    return {name for name in names if name.startswith(PREFIX)}


def read_names(paths) -> set:
    """Every ``nodeprep_*`` name the files mention outside comments."""
    names: set = set()
    for path in paths:
        for line in Path(path).read_text().splitlines():
            if not line.lstrip().startswith("#"):
                names.update(NAME.findall(line))
    return names


def collection_set_names(playbooks_dir: Path = PLAYBOOKS_DIR) -> set:
    """The names the collection's playbooks set for themselves (facts, results, play variables, stats)."""
    return set_names(path for paths in playbook_files(playbooks_dir).values() for path in paths)


def _closest(name: str, names) -> str:
    """The valid name closest to ``name``, compared without the prefix they all share, or ""."""
    stems = {candidate[len(PREFIX):]: candidate for candidate in names}
    close = difflib.get_close_matches(name[len(PREFIX):], list(stems), n=1, cutoff=0.7)
    return stems[close[0]] if close else ""


def _playbooks_text(playbooks: list) -> str:
    return ", ".join("%s.yml" % playbook for playbook in playbooks)


def _plain_text(text) -> str:
    lines = text if isinstance(text, list) else [text]
    return " ".join(re.sub(r"\bC\(([^)]*)\)", r"\1", line) for line in lines)


def _hosts_text(hosts: list) -> str:
    shown = ", ".join(hosts[:HOST_SAMPLE])
    return shown + (" and %d more" % (len(hosts) - HOST_SAMPLE) if len(hosts) > HOST_SAMPLE else "")


def _where(name: str, hosts: list, all_hosts: int, extra_vars: set) -> str:
    if name in extra_vars:
        return "given with -e"
    if len(hosts) == all_hosts and all_hosts > 1:
        return "set for every host"
    return "set for " + _hosts_text(hosts)


def check(playbook: str, spec: dict, host_vars: dict, extra_vars: set, own_names: set) -> tuple[list, list]:
    """``(errors, warnings)`` for the ``nodeprep_*`` variables of each host.

    ``host_vars``: host -> {name: value}, only ``nodeprep_*`` names, values templated (an exception
    stands for a value that cannot be templated yet; its type is then left to the playbook).
    ``extra_vars``: names given with ``-e``. ``own_names``: names the collection's playbooks set.
    """
    options = playbook_options(spec, playbook)
    owners = declared_by(spec)
    unknown: dict = {}
    elsewhere: set = set()
    bad: dict = {}
    validators = {name: ArgumentSpecValidator({name: spec}) for name, spec in _validator_spec(options).items()}
    for host, values in host_vars.items():
        for name, value in values.items():
            if name in options:
                if not isinstance(value, Exception) and validators[name].validate({name: value}).error_messages:
                    bad.setdefault((name, _value_text(value)), []).append(host)
            elif name in owners:
                elsewhere.add(name)
            elif name not in own_names:
                unknown.setdefault(name, []).append(host)
        for name in sorted(options):
            if options[name].get("required") and name not in values:
                bad.setdefault((name, None), []).append(host)
    valid = ", ".join(sorted(options)) or "none"
    errors = []
    for name, hosts in sorted(unknown.items()):
        close = _closest(name, options)
        if close:
            hint = "did you mean %s?" % close
        else:
            close = _closest(name, owners)
            hint = ("did you mean %s (read by %s)?" % (close, _playbooks_text(owners[close]))) if close else "no variable of this collection is close to it."
        errors.append("unknown variable %s (%s): %s %s.yml reads: %s." % (name, _where(name, hosts, len(host_vars), extra_vars), hint, playbook, valid))
    for (name, value), hosts in sorted(bad.items(), key=lambda item: (item[0][0], str(item[0][1]))):
        where = "" if len(hosts) == len(host_vars) else " (%s)" % _hosts_text(hosts)
        if value is None:
            errors.append("%s is required%s: %s" % (name, where, _plain_text(options[name]["description"])))
        else:
            errors.append("%s: %s is not valid%s. %s" % (name, value, where, describe_valid(options[name])))
    warnings = ["%s is read by %s, not by %s.yml, which ignores it." % (name, _playbooks_text(owners[name]), playbook)
                for name in sorted(elsewhere & extra_vars)]
    return errors, warnings


def describe_valid(option) -> str:
    """What a value of ``option`` may be, for a refusal."""
    if not option:
        return ""
    kind = option.get("type", "str")
    choices = ", ".join(str(choice) for choice in option.get("choices") or [])
    if choices and not option.get("elements"):
        text = "It takes one of " + choices
    else:
        text = "It takes a " + (CUSTOM_TYPES[kind][1] if kind in CUSTOM_TYPES else kind)
        if option.get("elements"):
            text += " of " + option["elements"] + (", one of " + choices if choices else "")
    if "default" in option:
        text += " (default %s)" % _value_text(option["default"])
    return text + "."


def _value_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_value_text(item) for item in value) + "]"
    return '""' if value == "" else str(value)


def _rst_text(text) -> str:
    lines = text if isinstance(text, list) else [text]
    return " ".join(re.sub(r"\bC\(([^)]*)\)", r"``\1``", line) for line in lines)


def render_rst(spec: dict) -> str:
    """The docs page of every playbook's variables, generated from the spec."""
    out = [
        ".. _ansible_collections.nodeprep.cni.docsite.playbook_variables:",
        "",
        "Playbook variables",
        "==================",
        "",
        "Generated from ``playbooks/vars/argument_specs.yml`` by ``tools/gen_playbook_vars_doc.py``; do not edit.",
        "",
        "Every playbook checks its ``nodeprep_*`` variables in its first task (``nodeprep.cni.playbook_vars``), before",
        "any host is touched and whatever tags are given, in ``--check`` too: a name no playbook of the collection",
        "knows is refused with the names the playbook reads and the closest of them, and a value of the wrong type",
        "or outside its choices is refused with what it may be. Names another playbook reads are left alone, so one",
        "inventory serves them all, and so are the names the playbooks set for themselves (facts, registered results,",
        "the ``set_stats`` keys an AWX workflow hands on to its next job). The ``nodeprep_`` prefix belongs to the",
        "collection: name your own variables otherwise. The roles' own variables (``cni_plugins_*``, ``containerd_*``,",
        "``netns_*``, ``multus_*``) are checked by the roles' argument specs.",
        "",
        ".. code-block:: shell",
        "",
        "    ansible-playbook -i inventory nodeprep.cni.upgrade -e cni_plugins_version=1.9.1 -e nodeprep_upgrade_batch=25%",
        "",
    ]
    for playbook, entry in spec["playbooks"].items():
        title = "%s.yml" % playbook
        out += [title, "-" * len(title), "", _rst_text(entry["short_description"]), ""]
        options = playbook_options(spec, playbook)
        if not options:
            out += ["It reads no ``nodeprep_*`` variable; any it is given is refused unless another playbook reads it.", ""]
            continue
        out += [".. list-table::", "   :header-rows: 1", "   :widths: 25 20 15 40", "",
                "   * - Variable", "     - Type", "     - Default", "     - Description"]
        for name, option in options.items():
            kind = option.get("type", "str")
            kind_text = CUSTOM_TYPES[kind][1] if kind in CUSTOM_TYPES else kind
            if option.get("elements"):
                kind_text += " of " + option["elements"]
            if option.get("choices"):
                kind_text += ": " + ", ".join("``%s``" % choice for choice in option["choices"])
            default = "required" if option.get("required") else "``%s``" % _value_text(option.get("default", ""))
            out += ["   * - ``%s``" % name, "     - %s" % kind_text, "     - %s" % default,
                    "     - %s" % _rst_text(option["description"])]
        out.append("")
    return "\n".join(out)
