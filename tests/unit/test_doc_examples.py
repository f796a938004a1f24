"""Every EXAMPLES snippet of the modules (what the rendered docs show) is a valid play.

Each module's examples run through ``ansible-playbook --syntax-check`` as the tasks of a play,
and every task calling one of our modules uses only documented options, gives every required
one, and picks literal values from an option's documented choices.
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MODULES = sorted((REPO / "plugins/modules").glob("*.py"))


def doc_strings(path: Path) -> dict:
    strings = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) \
                and node.targets[0].id in ("DOCUMENTATION", "EXAMPLES"):
            strings[node.targets[0].id] = yaml.safe_load(node.value.value)
    return strings


def fragment(name: str) -> dict:
    """A doc fragment of the collection (``nodeprep.cni._x`` or ``nodeprep.cni._x.variant``), parsed."""
    parts = name.split(".")
    assert parts[:2] == ["nodeprep", "cni"], "%s is not a fragment of this collection" % name
    attribute = parts[3].upper() if len(parts) > 3 else "DOCUMENTATION"
    for node in ast.walk(ast.parse((REPO / "plugins/doc_fragments" / (parts[2] + ".py")).read_text())):
        if isinstance(node, ast.Assign) and node.targets[0].id == attribute:
            return yaml.safe_load(node.value.value)
    raise AssertionError("fragment %s has no %s" % (name, attribute))


def full_doc(path: Path) -> dict:
    """DOCUMENTATION with its fragments merged as ansible-doc merges them (the module's own keys win)."""
    doc = doc_strings(path)["DOCUMENTATION"]
    options = {}
    for name in doc.get("extends_documentation_fragment", []):
        for key, spec in (fragment(name).get("options") or {}).items():
            options[key] = dict(spec)
    for key, spec in (doc.get("options") or {}).items():
        options[key] = dict(options.get(key, {}), **spec)
    return dict(doc, options=options)


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_examples_use_documented_options(path):
    docs = {p.stem: full_doc(p) for p in MODULES}
    examples = doc_strings(path)["EXAMPLES"]
    assert examples, "%s has no examples" % path.stem
    calls = 0
    for task in examples:
        for name, args in task.items():
            if not name.startswith("nodeprep.cni."):
                continue
            calls += 1
            args = args or {}  # a module called without options
            options = docs[name.rsplit(".", 1)[1]].get("options", {})
            known = {key for key, spec in options.items() for key in [key] + spec.get("aliases", [])}
            assert set(args) <= known, (task["name"], sorted(set(args) - known))
            for key, spec in options.items():
                if spec.get("required"):
                    assert key in args, (task["name"], "missing required option %s" % key)
                value = args.get(key)
                if "choices" in spec and isinstance(value, str) and "{{" not in value:
                    assert value in spec["choices"], (task["name"], key, value)
    assert calls, "%s's examples never call a nodeprep.cni module" % path.stem


def run_examples(name, tasks, tmp_path, *options, env=None):
    """Runs the example tasks as one play against localhost with the given ansible-playbook options."""
    play = [{"name": "Examples of %s" % name, "hosts": "localhost", "gather_facts": False, "tasks": tasks}]
    playbook = tmp_path / "examples.yml"
    playbook.write_text(yaml.safe_dump(play, sort_keys=False))
    ansible_playbook = Path(sys.executable).parent / "ansible-playbook"
    return subprocess.run([str(ansible_playbook), "-i", "localhost,", *options, str(playbook)],
                          capture_output=True, text=True, check=False, env=env or dict(os.environ), timeout=120)


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_examples_pass_the_syntax_check(path, tmp_path):
    completed = run_examples(path.stem, doc_strings(path)["EXAMPLES"], tmp_path, "--syntax-check")
    assert completed.returncode == 0, completed.stdout + completed.stderr


FILTERS = sorted((REPO / "plugins/filter").glob("*.yml"))
# What each filter's example prints.
FILTER_OUTPUTS = {
    "fleet_report": '"node ',
    "fleet_gate": '"skew: 1 (node2): the current version is not the wanted one',
    "verify_fail_on": '"msg": [\n        "skew",\n        "drift",\n        "coverage"\n    ]',
    "fleet_junit": '<failure type=\\"not ready\\" message=\\"netns; coverage\\">',
    "node_metrics": '"nodeprep_cni_problem{reason=\\"netns\\"} 1",',
    "cni_version": '"msg": "/srv/cni/v1.9.1"',
    "network_attachments": '"name": "macvlan",',
    "node_report": '"msg": "current 1.9.1, previous 1.8.0"',
    "cni_plugin_dirs": '"/var/lib/rancher/k3s/data/cni"',
    "systemd_escape_path": '"msg": "run-net\\\\x20ns.mount"',
    "uninstall_summary": '"netns: left /run/netns: still mounted",',
    "systemd_exec_arg": '"msg": "ExecStart=/bin/mount --make-shared \\"/run/net ns$$1\\""',
}


@pytest.mark.parametrize("path", FILTERS, ids=[p.stem for p in FILTERS])
def test_filter_examples_run(path, tmp_path):
    """A filter's example needs no node, so it runs for real on localhost, and must print its result."""
    examples = yaml.safe_load(yaml.safe_load(path.read_text())["EXAMPLES"])
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default", ANSIBLE_NOCOLOR="1")
    completed = run_examples(path.stem, examples, tmp_path, "-c", "local", env=env)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "failed=0" in completed.stdout and FILTER_OUTPUTS[path.stem] in completed.stdout, completed.stdout
