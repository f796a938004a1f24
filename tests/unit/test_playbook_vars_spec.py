"""The playbooks and their variable spec (playbooks/vars/argument_specs.yml) cannot drift apart.

Every playbook has an entry and checks its variables in its first task; every nodeprep_* name a
playbook reads (itself or in the task files it imports) is declared for it unless the playbook sets
it itself; every declared name is read by the playbook or a role it runs; a literal default in a
playbook is the spec's; and the docs page is the spec's rendering.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from ansible_collections.nodeprep.cni.plugins.plugin_utils import _playbook_vars as pv

REPO = Path(__file__).resolve().parents[2]
SPEC = pv.load_spec()
FILES = pv.playbook_files(REPO / "playbooks")
PLAYBOOKS = sorted(FILES)
# A default written as a literal in a playbook: a quoted string, a number, a boolean or an empty list.
LITERAL_DEFAULT = re.compile(r"""\b(nodeprep_[a-z0-9_]+)\s*\|\s*default\(\s*('[^']*'|"[^"]*"|-?\d+|true|false|\[\])\s*[,)]""")


def test_every_playbook_has_an_entry_and_every_entry_a_playbook():
    assert sorted(SPEC["playbooks"]) == PLAYBOOKS


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_the_first_task_checks_the_playbooks_variables_whatever_the_tags(playbook):
    plays = yaml.safe_load(FILES[playbook][0].read_text())
    first = plays[0]
    # pre_tasks run before the play's roles and tasks: nothing of the play comes first.
    check = first["pre_tasks"][0]
    assert check["nodeprep.cni.playbook_vars"] == {"playbook": playbook}, check
    assert check["run_once"] is True and check["tags"] == ["always"], check
    assert not {"when", "check_mode", "ignore_errors", "failed_when", "delegate_to"} & set(check), check


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_every_name_a_playbook_reads_is_declared_for_it_or_set_by_it(playbook):
    read = pv.read_names(FILES[playbook])
    undeclared = sorted(read - set(pv.playbook_options(SPEC, playbook)) - pv.set_names(FILES[playbook]))
    assert not undeclared, ("%s.yml reads %s, which playbooks/vars/argument_specs.yml does not declare for it: declare "
                            "them (type, default, description) so the playbook checks them" % (playbook, undeclared))


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_every_declared_name_is_read_by_the_playbook_or_a_role_it_runs(playbook):
    text = FILES[playbook][0].read_text()
    roles = set(re.findall(r"\bnodeprep\.cni\.(\w+)", text)) & {p.name for p in (REPO / "roles").iterdir()}
    role_files = [path for role in roles for path in (REPO / "roles" / role).rglob("*.yml") if "molecule" not in path.parts]
    read = pv.read_names(FILES[playbook]) | pv.read_names(role_files)
    unread = sorted(set(pv.playbook_options(SPEC, playbook)) - read)
    assert not unread, "%s.yml declares %s but neither it nor its roles read them" % (playbook, unread)


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_a_literal_default_in_a_playbook_is_the_specs(playbook):
    options = pv.playbook_options(SPEC, playbook)
    seen = 0
    for path in FILES[playbook]:
        text = path.read_text()
        for name, literal in LITERAL_DEFAULT.findall(text):
            if name in options:
                assert yaml.safe_load(literal) == options[name]["default"], (path.name, name, literal)
                seen += 1
        for play in yaml.safe_load(text) if path == FILES[playbook][0] else []:
            for name, value in (play.get("vars") or {}).items():
                if name in options and "{{" not in str(value) and not options[name].get("required"):
                    assert value == options[name]["default"], (path.name, name, value)
                    seen += 1
    # site, verify, upgrade, bake and mirror each write at least one default; render reads no variable.
    assert seen or not options, "%s.yml: no default of its variables found to compare" % playbook


def test_the_defaults_compared_include_the_ones_users_meet_first():
    text = (REPO / "playbooks" / "upgrade.yml").read_text()
    found = dict(LITERAL_DEFAULT.findall(text))
    assert found["nodeprep_upgrade_batch"] == "1" and found["nodeprep_hosts"] == "'all'", found


def test_the_docs_page_is_the_specs_rendering():
    page = (REPO / "docs" / "docsite" / "rst" / "playbook_variables.rst").read_text()
    assert page == pv.render_rst(SPEC), "docs/docsite/rst/playbook_variables.rst is out of date: run tools/gen_playbook_vars_doc.py"
    for name, playbooks in pv.declared_by(SPEC).items():
        assert page.count("   * - ``%s``" % name) == len(playbooks), name
