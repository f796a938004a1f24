"""The AWX objects as code (examples/awx/) hold together and keep the upgrade one rollout.

Every awx.awx task uses only options the module documents (suboptions and choices included); the
workflow's nodes name job templates of the same file and run verify, upgrade, verify in that order;
no job template or workflow node slices playbooks/upgrade.yml (each slice would run its own rollout,
with its own batches, failure allowance and rollback decision); and the mirror credential type
injects cni_plugins_headers from a secret input, which no template or survey carries.
`make awx` runs this file after `ansible-playbook --syntax-check` of controller.yml.
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import jinja2
import jinja2.nativetypes
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples/awx"
UPGRADE = "playbooks/upgrade.yml"


class _Loader(yaml.SafeLoader):  # pylint: disable=too-many-ancestors
    """YAML as Ansible reads it, as far as these files go: ``!unsafe`` is a plain string."""


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def load(path: Path):
    return yaml.load(path.read_text(), Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def controller_play() -> dict:
    play = load(EXAMPLES / "controller.yml")[0]
    variables = {}
    for name in play.get("vars_files", []):
        variables.update(load(EXAMPLES / name))
    variables.update(play.get("vars", {}))
    return {"tasks": play["tasks"], "vars": variables}


def render(value, variables: dict):
    """A task argument as Ansible would pass it: templates resolved against the play's variables,
    AWX's own templates (marked !unsafe in the files) left alone."""
    if isinstance(value, dict):
        return {key: render(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, variables) for item in value]
    environment = jinja2.nativetypes.NativeEnvironment(undefined=jinja2.StrictUndefined)
    for _depth in range(10):
        if not isinstance(value, str) or "{{" not in value or value.strip() == "{{ authorization }}":
            return value
        value = environment.from_string(value).render(variables)
    raise AssertionError("template does not settle: %r" % value)


def awx_tasks(play: dict) -> list[tuple[str, str, dict]]:
    """(task name, module, rendered arguments) of every awx.awx task."""
    found = []
    for task in play["tasks"]:
        module = next((key for key in task if key.startswith("awx.awx.")), None)
        if module:
            found.append((task["name"], module, render(task[module], play["vars"])))
    return found


@pytest.fixture(scope="module")
def module_docs() -> dict:
    """The options of every awx.awx module controller.yml uses, from the installed collection."""
    modules = sorted({module for _name, module, _arguments in awx_tasks(controller_play())})
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".cache/collections"))
    done = subprocess.run([str(Path(sys.executable).parent / "ansible-doc"), "--json", "-t", "module", *modules],
                          capture_output=True, text=True, env=env, check=True)
    docs = json.loads(done.stdout)
    missing = [name for name in modules if name not in docs]
    assert not missing, "awx.awx modules not found (tools/bootstrap installs the collection): %s" % missing
    return {name: docs[name]["doc"]["options"] for name in modules}


def option_problems(where: str, arguments: dict, options: dict) -> list[str]:
    problems = []
    names = {alias: name for name, spec in options.items() for alias in [name, *spec.get("aliases", [])]}
    for key, value in arguments.items():
        if key not in names:
            problems.append("%s: unknown option %r" % (where, key))
            continue
        spec = options[names[key]]
        if spec.get("choices") and not isinstance(value, (list, dict)) and value not in spec["choices"]:
            problems.append("%s.%s: %r is not one of %s" % (where, key, value, spec["choices"]))
        sub = spec.get("suboptions")
        if sub and isinstance(value, dict):
            problems += option_problems("%s.%s" % (where, key), value, sub)
        elif sub and isinstance(value, list):
            for index, item in enumerate(value):
                problems += option_problems("%s.%s[%d]" % (where, key, index), item, sub)
    return problems


def slicing_problems(play: dict) -> list[str]:
    """Every way controller.yml could slice an upgrade job."""
    problems = []
    upgrade_templates = set()
    for _name, module, arguments in awx_tasks(play):
        if module == "awx.awx.job_template" and arguments.get("playbook") == UPGRADE:
            upgrade_templates.add(arguments["name"])
            if int(arguments.get("job_slice_count", 1)) > 1:
                problems.append("job template %r slices %s into %s jobs: each would run its own rollout" % (
                    arguments["name"], UPGRADE, arguments["job_slice_count"]))
            if arguments.get("ask_job_slice_count_on_launch"):
                problems.append("job template %r lets a launch slice %s" % (arguments["name"], UPGRADE))
    for _name, module, arguments in awx_tasks(play):
        if module == "awx.awx.workflow_job_template":
            for node in arguments.get("workflow_nodes", []):
                if node["unified_job_template"]["name"] in upgrade_templates and int(node.get("job_slice_count", 1)) > 1:
                    problems.append("workflow %r node %r slices %s" % (arguments["name"], node["identifier"], UPGRADE))
    return problems


def test_every_awx_task_uses_documented_options(module_docs):
    play = controller_play()
    problems = []
    for name, module, arguments in awx_tasks(play):
        problems += option_problems("%s (%s)" % (name, module), arguments, module_docs[module])
    assert problems == []


def test_the_upgrade_is_never_sliced_and_site_and_verify_are():
    play = controller_play()
    assert slicing_problems(play) == []
    sliced = {arguments["playbook"]: int(arguments.get("job_slice_count", 1))
              for _name, module, arguments in awx_tasks(play) if module == "awx.awx.job_template"}
    assert sliced[UPGRADE] == 1
    assert sliced["playbooks/site.yml"] > 1 and sliced["playbooks/verify.yml"] > 1, sliced


@pytest.mark.parametrize("change", [{"job_slice_count": "{{ nodeprep_awx_slices }}"}, {"ask_job_slice_count_on_launch": True}])
def test_a_sliced_upgrade_fails_the_check(change):
    play = copy.deepcopy(controller_play())
    task = next(t for t in play["tasks"] if t.get("awx.awx.job_template", {}).get("playbook") == UPGRADE)
    task["awx.awx.job_template"].update(change)
    problems = slicing_problems(play)
    assert len(problems) == 1 and "nodeprep.cni upgrade" in problems[0], problems


def test_a_sliced_upgrade_node_in_the_workflow_fails_the_check():
    play = copy.deepcopy(controller_play())
    workflow = next(t["awx.awx.workflow_job_template"] for t in play["tasks"] if "awx.awx.workflow_job_template" in t)
    next(n for n in workflow["workflow_nodes"] if n["identifier"] == "upgrade")["job_slice_count"] = 4
    assert [p for p in slicing_problems(play) if "node 'upgrade'" in p], slicing_problems(play)


def test_the_workflow_runs_verify_upgrade_verify():
    play = controller_play()
    tasks = awx_tasks(play)
    playbooks = {arguments["name"]: arguments["playbook"] for _n, module, arguments in tasks if module == "awx.awx.job_template"}
    workflows = [arguments for _n, module, arguments in tasks if module == "awx.awx.workflow_job_template"]
    assert len(workflows) == 1
    nodes = {node["identifier"]: node for node in workflows[0]["workflow_nodes"]}
    children = {ident: [child["identifier"] for kind in ("success_nodes", "failure_nodes", "always_nodes")
                        for child in node.get("related", {}).get(kind, [])] for ident, node in nodes.items()}
    for ident, node in nodes.items():
        assert node["unified_job_template"]["name"] in playbooks, "%s runs no job template of this file" % ident
        assert set(children[ident]) <= set(nodes), "%s points at a node that does not exist" % ident
        # Only success leads on: a failed verify or upgrade ends the workflow.
        assert set(node.get("related", {})) <= {"success_nodes"}, ident
    roots = [ident for ident in nodes if not any(ident in kids for kids in children.values())]
    assert len(roots) == 1, roots
    chain = [roots[0]]
    while children[chain[-1]]:
        assert len(children[chain[-1]]) == 1, chain
        chain.append(children[chain[-1]][0])
    assert len(chain) == len(nodes)
    assert [playbooks[nodes[ident]["unified_job_template"]["name"]] for ident in chain] == [
        "playbooks/verify.yml", UPGRADE, "playbooks/verify.yml"]
    # Node variables reach a job only when its template prompts for them.
    for ident in chain:
        if nodes[ident].get("extra_data"):
            template = next(a for _n, m, a in tasks if m == "awx.awx.job_template"
                            and a["name"] == nodes[ident]["unified_job_template"]["name"])
            assert template.get("ask_variables_on_launch") is True, ident


def test_every_playbook_variable_given_is_one_the_playbook_reads():
    """What a survey or a workflow node hands a job passes the playbook's own check of its
    nodeprep_* variables (playbooks/vars/argument_specs.yml): unknown names would fail the job."""
    tasks = awx_tasks(controller_play())
    spec = yaml.safe_load((REPO / "playbooks/vars/argument_specs.yml").read_text())
    reads = {}
    for name, entry in spec["playbooks"].items():
        reads["playbooks/%s.yml" % name] = set((entry.get("options") or {})) | {
            option for group in entry.get("groups") or [] for option in spec["option_groups"][group]}
    playbooks = {a["name"]: a["playbook"] for _n, m, a in tasks if m == "awx.awx.job_template"}
    problems = []

    def given(where, names, readers):
        for variable in names:
            if variable.startswith("nodeprep_") and not any(variable in reads[p] for p in readers):
                problems.append("%s gives %s, which %s do not read" % (where, variable, ", ".join(readers)))

    for _name, module, arguments in tasks:
        survey = [q["variable"] for q in (arguments.get("survey_spec") or {}).get("spec", [])]
        if module == "awx.awx.job_template":
            given(arguments["name"], survey, [arguments["playbook"]])
        elif module == "awx.awx.workflow_job_template":
            runs = [playbooks[n["unified_job_template"]["name"]] for n in arguments["workflow_nodes"]]
            given(arguments["name"], survey, runs)
            for node in arguments["workflow_nodes"]:
                given(node["identifier"], node.get("extra_data", {}), [playbooks[node["unified_job_template"]["name"]]])
    assert problems == []


def test_the_mirror_header_comes_from_a_secret_credential_input_only():
    play = controller_play()
    credential_type = play["vars"]["nodeprep_awx_mirror_credential_type"]
    secrets = {field["id"] for field in credential_type["inputs"]["fields"] if field.get("secret")}
    injected = credential_type["injectors"]["extra_vars"]["cni_plugins_headers"]
    assert injected == {"Authorization": "{{ authorization }}"} and "authorization" in secrets
    for _name, module, arguments in awx_tasks(dict(play, vars=dict(play["vars"], nodeprep_awx_mirror_credential="Mirror"))):
        if module in ("awx.awx.job_template", "awx.awx.workflow_job_template"):
            text = json.dumps(arguments)
            assert "cni_plugins_headers" not in text and "Authorization" not in text, arguments["name"]
            if module == "awx.awx.job_template":
                assert "Mirror" in arguments["credentials"], arguments["name"]
