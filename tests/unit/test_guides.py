"""Every code block of the guides (docs/docsite/rst, shown on Galaxy and in the docs site) is checked.

- a YAML play runs through ``ansible-playbook --syntax-check``, and its calls of our modules and
  roles use documented options and variables;
- a YAML block of variables names only documented variables, with values from their choices;
- a requirements file pins this collection's version; an execution environment is examples/ee's;
- each ``ansible-playbook`` command names a playbook of the collection and documented ``-e``
  variables, and passes the syntax check as written; other commands are from a known list.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCSITE = REPO / "docs" / "docsite"
GUIDES = sorted((DOCSITE / "rst").glob("*.rst"))
GALAXY_VERSION = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
# Commands a guide may show besides ansible-playbook; each is a plain tool call checked by eye.
OTHER_COMMANDS = {"ansible-builder", "sha256sum", "cd", "ansible-galaxy"}


def code_blocks(path: Path) -> list[tuple[str, int, str]]:
    """``(language, line, text)`` of every ``.. code-block::`` in an RST file."""
    lines = path.read_text().splitlines()
    blocks = []
    for number, line in enumerate(lines):
        match = re.match(r"\.\. code-block:: (\S+)$", line)
        if not match:
            continue
        body = []
        for following in lines[number + 1:]:
            if following and not following.startswith(" "):
                break
            body.append(following)
        text = "\n".join(body)
        indent = min(len(b) - len(b.lstrip()) for b in body if b.strip())
        blocks.append((match.group(1), number + 1, "\n".join(b[indent:] for b in body).strip() + "\n"))
    return blocks


def role_options() -> dict:
    """Every role variable the roles' argument specs document, with its spec."""
    options = {}
    for spec_file in (REPO / "roles").glob("*/meta/argument_specs.yml"):
        for entry in yaml.safe_load(spec_file.read_text())["argument_specs"].values():
            options.update(entry.get("options") or {})
    return options


def playbook_variables() -> set:
    """The nodeprep_* variables the collection's playbooks read, as their spec declares them."""
    from ansible_collections.nodeprep.cni.plugins.plugin_utils._playbook_vars import declared_by, load_spec

    return set(declared_by(load_spec()))


def module_options(name: str) -> dict:
    import ast

    source = (REPO / "plugins" / "modules" / (name + ".py")).read_text()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "DOCUMENTATION":
            return yaml.safe_load(node.value.value).get("options") or {}
    raise AssertionError("no DOCUMENTATION in %s" % name)


def check_variables(values: dict, where: str) -> None:
    options = role_options()
    known = set(options) | playbook_variables()
    unknown = sorted(set(values) - known)
    assert not unknown, "%s: variables no role or playbook documents: %s" % (where, unknown)
    for key, value in values.items():
        choices = options.get(key, {}).get("choices")
        if choices and isinstance(value, str):
            assert value in choices, "%s: %s=%r is not one of %s" % (where, key, value, choices)


def check_play(plays: list, where: str) -> None:
    for play in plays:
        for role in play.get("roles", []):
            name = role["role"] if isinstance(role, dict) else role
            assert name.startswith("nodeprep.cni."), (where, name)
            check_variables(role.get("vars", {}) if isinstance(role, dict) else {}, where)
        for task in play.get("tasks", []):
            for key, args in task.items():
                if key.startswith("nodeprep.cni."):
                    options = module_options(key.rsplit(".", 1)[1])
                    unknown = sorted(set(args or {}) - set(options))
                    assert not unknown, "%s: %s has no options %s" % (where, key, unknown)


def ansible_env(tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(REPO / ".cache" / "collections"), ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"),
               ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false", ANSIBLE_NOCOLOR="1")
    return env


def ansible_playbook(args: list, tmp_path: Path) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "--syntax-check", *args]
    return subprocess.run(command, cwd=tmp_path, env=ansible_env(tmp_path), capture_output=True, text=True, check=False,
                          timeout=120)


def check_yaml(text: str, where: str, tmp_path: Path) -> None:
    data = yaml.safe_load(text)
    if isinstance(data, list):
        check_play(data, where)
        playbook = tmp_path / "guide-play.yml"
        playbook.write_text(text)
        done = ansible_playbook(["-i", "localhost,", str(playbook)], tmp_path)
        assert done.returncode == 0, "%s:\n%s%s" % (where, done.stdout, done.stderr)
    elif "collections" in data:
        assert data["collections"] == [{"name": "nodeprep.cni", "version": GALAXY_VERSION}], where
    elif "images" in data:
        example = yaml.safe_load((REPO / "examples/ee/execution-environment.yml").read_text())
        assert data == example, "%s differs from examples/ee/execution-environment.yml" % where
    else:
        check_variables(data, where)


def shell_commands(text: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", text)
    commands = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            commands.extend(part.strip() for part in line.split("&&"))
    return commands


def check_shell(text: str, where: str, tmp_path: Path) -> None:
    for command in shell_commands(text):
        words = shlex.split(command)
        if words[0] != "ansible-playbook":
            assert words[0] in OTHER_COMMANDS, "%s: %s is not a command the guide tests know" % (where, words[0])
            continue
        playbooks = [w for w in words[1:] if w.startswith("nodeprep.cni.")]
        assert len(playbooks) == 1, (where, command)
        assert (REPO / "playbooks" / (playbooks[0].split(".")[-1] + ".yml")).is_file(), (where, playbooks[0])
        extra = {}
        for flag, value in zip(words, words[1:]):
            if flag in ("-e", "--extra-vars"):
                extra.update(json.loads(value) if value.startswith("{") else dict([value.split("=", 1)]))
        check_variables(extra, where)
        done = ansible_playbook(words[1:], tmp_path)
        assert done.returncode == 0, "%s: %s\n%s%s" % (where, command, done.stdout, done.stderr)


def test_every_guide_is_listed_and_labelled():
    listed = [name for section in yaml.safe_load((DOCSITE / "extra-docs.yml").read_text())["sections"]
              for name in section["toctree"]]
    assert sorted(listed) == sorted(p.stem for p in GUIDES) and len(GUIDES) >= 4, listed
    for guide in GUIDES:
        first = guide.read_text().splitlines()[0]
        assert first == ".. _ansible_collections.nodeprep.cni.docsite.%s:" % guide.stem, (guide.name, first)


@pytest.mark.parametrize("guide", GUIDES, ids=[p.stem for p in GUIDES])
def test_guide_snippets(guide, tmp_path):
    blocks = code_blocks(guide)
    assert blocks, "%s has no examples" % guide.name
    for language, line, text in blocks:
        where = "%s:%d" % (guide.name, line)
        if language == "yaml":
            check_yaml(text, where, tmp_path)
        elif language == "shell":
            check_shell(text, where, tmp_path)
        else:
            raise AssertionError("%s: code-block %s has no check; use yaml or shell" % (where, language))
