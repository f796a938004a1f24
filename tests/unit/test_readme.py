"""Every command and YAML block of the README works as written, and the Markdown links resolve.

- the ``ini`` block is the inventory the commands name (``-i inventory.ini``): ansible-inventory
  reads it, and its variables are documented ones;
- each ``ansible-playbook`` command runs with ``--syntax-check`` as written, from a directory
  holding that inventory, with this collection on the collections path; it names a playbook of the
  collection (or a file of the repository) and documented ``-e`` variables;
- each ``ansible-galaxy`` command is parsed by ansible-galaxy's own argument parser and installs
  this collection (by name, or through the README's requirements block);
- ``make`` targets exist in the Makefile, ``packer`` templates and other paths exist in the tree;
- YAML blocks parse: plays pass the syntax check and call documented options, variable files name
  documented variables with values from their choices, a requirements block pins galaxy.yml's version;
- ``.ci/run`` runs exactly the README's test command.
"""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.unit.test_guides import ansible_env, check_play, check_variables, check_yaml, module_options

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
GALAXY_VERSION = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
# Commands besides ansible-playbook, ansible-galaxy, make and packer: plain tools of the recipes.
PLAIN_COMMANDS = {"cd", "sha256sum"}
# The Markdown files whose relative links must resolve.
MARKDOWN = [README, REPO / "CONTRIBUTING.md", REPO / "SECURITY.md", *sorted((REPO / "docs").glob("*.md"))]


def fenced_blocks(path: Path) -> list[tuple[str, int, str]]:
    """``(language, line, text)`` of every fenced code block of a Markdown file."""
    blocks, language, start, body = [], None, 0, []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if language is None and line.startswith("```"):
            language, start, body = line[3:].strip(), number, []
        elif language is not None and line.startswith("```"):
            blocks.append((language, start, "\n".join(body) + "\n"))
            language = None
        elif language is not None:
            body.append(line)
    assert language is None, "%s:%d: code block never closed" % (path.name, start)
    return blocks


def readme_blocks(language: str) -> list[tuple[str, str]]:
    return [("README.md:%d" % line, text) for lang, line, text in fenced_blocks(README) if lang == language]


def shell_commands(text: str) -> list[list[str]]:
    """Each command of a shell block as words: continuations joined, comments and ``&&`` split."""
    commands = []
    for line in re.sub(r"\\\n\s*", " ", text).splitlines():
        words = shlex.split(line, comments=True)
        while words:
            end = words.index("&&") if "&&" in words else len(words)
            commands.append(words[:end])
            words = words[end + 1:]
    return commands


def all_commands() -> list[tuple[str, list[str]]]:
    return [(where, words) for where, text in readme_blocks("sh") for words in shell_commands(text)]


def commands_of(tool: str) -> list[tuple[str, list[str]]]:
    return [(where, words) for where, words in all_commands() if words[0] == tool]


@pytest.fixture(scope="module")
def inventory_dir(tmp_path_factory) -> Path:
    """A directory holding the README's inventory under the name its commands use."""
    (where, text), = readme_blocks("ini")
    name = text.splitlines()[0].lstrip("# ").strip()
    assert name == "inventory.ini", "%s: the inventory block starts with its file name, not %r" % (where, name)
    directory = tmp_path_factory.mktemp("readme")
    (directory / name).write_text(text)
    (directory / "tmp").mkdir()
    return directory


def test_every_block_has_a_checked_language():
    languages = {language for language, _line, _text in fenced_blocks(README)}
    assert languages <= {"sh", "yaml", "ini", "text"}, languages


def test_inventory_parses_with_documented_variables(inventory_dir):
    done = subprocess.run([str(Path(sys.executable).parent / "ansible-inventory"), "-i", "inventory.ini", "--list"],
                          cwd=inventory_dir, env=ansible_env(inventory_dir), capture_output=True, text=True,
                          check=True, timeout=120)
    listed = yaml.safe_load(done.stdout)
    hosts = listed["k8s_nodes"]["hosts"]
    assert len(hosts) >= 1, listed
    host_vars = listed["_meta"]["hostvars"][hosts[0]]
    assert "cni_plugins_version" in host_vars, host_vars
    check_variables(host_vars, "README.md inventory")


@pytest.mark.parametrize("where, words", commands_of("ansible-playbook"), ids=lambda v: v if isinstance(v, str) else "")
def test_playbook_command_passes_syntax_check(where, words, inventory_dir):
    playbooks = [w for w in words[1:] if w.startswith("nodeprep.cni.") or w.endswith(".yml")]
    assert len(playbooks) == 1, (where, words)
    playbook = playbooks[0]
    if playbook.startswith("nodeprep.cni."):
        assert (REPO / "playbooks" / (playbook.split(".")[-1] + ".yml")).is_file(), (where, playbook)
    else:
        assert (REPO / playbook).is_file(), (where, playbook)
    extra = {}
    for flag, value in zip(words, words[1:]):
        if flag in ("-e", "--extra-vars"):
            extra.update(yaml.safe_load(value) if value.startswith("{") else dict([value.split("=", 1)]))
    if playbook.startswith("nodeprep.cni."):
        check_variables(extra, where)
        # The playbook's own first task checks its nodeprep_* values; the same check, before any run.
        from ansible_collections.nodeprep.cni.plugins.plugin_utils import _playbook_vars

        given = {k: v for k, v in extra.items() if k.startswith(_playbook_vars.PREFIX)}
        errors, warnings = _playbook_vars.check(playbook.split(".")[-1], _playbook_vars.load_spec(), {"node": given},
                                                set(given), _playbook_vars.collection_set_names())
        assert not errors and not warnings, (where, errors, warnings)
    # A repository file (examples/awx/...) is named relative to a checkout: run it from one.
    args = [str(REPO / w) if w == playbook and not w.startswith("nodeprep.cni.") else w for w in words[1:]]
    if "-i" not in args:
        args = ["-i", "localhost,", *args]
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "--syntax-check", *args]
    done = subprocess.run(command, cwd=inventory_dir, env=ansible_env(inventory_dir), capture_output=True, text=True,
                          check=False, timeout=120)
    assert done.returncode == 0, "%s: %s\n%s%s" % (where, shlex.join(words), done.stdout, done.stderr)


def test_galaxy_commands_install_this_collection():
    from ansible import context
    from ansible.cli.galaxy import GalaxyCLI

    found = commands_of("ansible-galaxy")
    assert found, "the README has no ansible-galaxy command"
    requirements = [yaml.safe_load(text) for _where, text in readme_blocks("yaml") if "collections:" in text]
    for where, words in found:
        cli = GalaxyCLI(words)
        try:
            cli.parse()  # argparse: an unknown option or sub-command exits
            assert context.CLIARGS["type"] == "collection" and context.CLIARGS["action"] == "install", (where, words)
            if context.CLIARGS["requirements"]:
                assert requirements, "%s: installs from a requirements file the README does not show" % where
                names = [entry["name"] for data in requirements for entry in data["collections"]]
            else:
                names = [re.split(r"[:<>=!]", name, maxsplit=1)[0] for name in context.CLIARGS["args"]]
        finally:
            context.CLIARGS = context.CLIArgs({})
        assert names == ["nodeprep.cni"], (where, names)


def test_make_commands_are_targets_and_ci_runs_the_test_command():
    targets = set(re.findall(r"^([A-Za-z][\w-]*):", (REPO / "Makefile").read_text(), re.M))
    found = commands_of("make")
    assert found, "the README shows no make command"
    for where, words in found:
        assert len(words) == 2 and words[1] in targets, (where, words)
    # The README's set-up: one command for the demo, one that runs every test; CI runs that one.
    developing = README.read_text().split("## Developing", 1)[1]
    shown = re.findall(r"^(make \w+)\s+# (.*)$", developing, re.M)
    assert [command for command, _comment in shown] == ["make demo", "make test"], shown
    ci = [line for line in (REPO / ".ci/run").read_text().splitlines() if line and not line.startswith("#")]
    assert ci[-1] == "exec make test", ci


def test_other_commands_name_files_of_the_tree():
    for where, words in all_commands():
        if words[0] == "packer":
            assert words[1] in ("init", "build", "validate"), (where, words)
            assert (REPO / words[-1]).is_file(), (where, words[-1])
            variables = [w.split("=", 1)[0] for flag, w in zip(words, words[1:]) if flag == "-var"]
            template = (REPO / words[-1]).read_text()
            for name in variables:
                assert 'variable "%s"' % name in template, (where, name)
        elif words[0] not in ("ansible-playbook", "ansible-galaxy", "make"):
            assert words[0] in PLAIN_COMMANDS, "%s: %s is not a command this test knows" % (where, words[0])


@pytest.mark.parametrize("where, text", readme_blocks("yaml"), ids=lambda v: v if v.startswith("README") else "")
def test_yaml_block(where, text, tmp_path):
    data = yaml.safe_load(text)
    if isinstance(data, list):
        check_play(data, where)
        check_module_choices(data, where)
    if isinstance(data, dict) and "collections" in data:
        assert data["collections"] == [{"name": "nodeprep.cni", "version": GALAXY_VERSION}], where
        return
    check_yaml(text, where, tmp_path)


def check_module_choices(plays: list, where: str) -> None:
    for play in plays:
        for task in play.get("tasks", []):
            for key, args in task.items():
                if key.startswith("nodeprep.cni."):
                    options = module_options(key.rsplit(".", 1)[1])
                    for name, value in (args or {}).items():
                        choices = options[name].get("choices")
                        assert not choices or value in choices, "%s: %s %s=%r is not one of %s" % (
                            where, key, name, value, choices)


def test_generic_examples_leave_k3s_dir_to_the_layout():
    # k3s's own dir belongs to the k3s layout (which leaves k3s's links alone), never to link_dirs.
    for where, text in readme_blocks("yaml"):
        data = yaml.safe_load(text)
        if isinstance(data, dict):
            assert not any("rancher" in d for d in data.get("cni_plugins_link_dirs", [])), where


def markdown_links(path: Path) -> list[tuple[int, str]]:
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.M | re.S)
    return [(text[:m.start()].count("\n") + 1, m.group(1)) for m in re.finditer(r"\]\(([^)\s]+)\)", text)]


def anchors(path: Path) -> set:
    """GitHub's heading anchors of a Markdown file."""
    found = set()
    for heading in re.findall(r"^#+ (.*)$", re.sub(r"^```.*?^```", "", path.read_text(), flags=re.M | re.S), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(path):
    for line, target in markdown_links(path):
        if re.match(r"[a-z]+:", target):
            continue
        file_part, _hash, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        assert resolved.exists(), "%s:%d: %s does not exist" % (path.relative_to(REPO), line, target)
        assert REPO in resolved.parents or resolved == REPO, (path, target)
        if anchor and resolved.suffix == ".md":
            assert anchor in anchors(resolved), "%s:%d: no heading #%s in %s" % (path.name, line, anchor, file_part)
