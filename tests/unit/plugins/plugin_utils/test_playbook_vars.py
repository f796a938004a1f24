"""The playbooks' variable check: the spec as shipped, names sorted into checked, left alone and refused."""
from __future__ import annotations

import pytest
import yaml

from ansible_collections.nodeprep.cni.plugins.plugin_utils import _playbook_vars as pv

SPEC = pv.load_spec()


def run(playbook, host_vars, extra=(), own=frozenset()):
    return pv.check(playbook, SPEC, host_vars, set(extra), set(own))


def test_a_typo_is_refused_with_the_closest_name_and_every_valid_one():
    errors, warnings = run("upgrade", {"n1": {"nodeprep_upgrade_batchs": 2}, "n2": {"nodeprep_upgrade_batchs": 2}},
                           extra=["nodeprep_upgrade_batchs"])
    assert errors == ["unknown variable nodeprep_upgrade_batchs (given with -e): did you mean nodeprep_upgrade_batch? "
                      "upgrade.yml reads: nodeprep_hosts, nodeprep_report_dir, nodeprep_upgrade_batch, "
                      "nodeprep_upgrade_cni_add, nodeprep_upgrade_max_fail_percentage."]
    assert warnings == []


def test_an_inventory_typo_names_its_hosts_and_a_name_of_another_playbook():
    errors, dummy = run("site", {"n1": {}, "n2": {"nodeprep_upgrade_batchs": 1}})
    assert errors == ["unknown variable nodeprep_upgrade_batchs (set for n2): did you mean nodeprep_upgrade_batch "
                      "(read by upgrade.yml)? site.yml reads: nodeprep_bake, nodeprep_hosts, nodeprep_runtime."]
    errors, dummy = run("render", {"localhost": {"nodeprep_zzz": 1}})
    assert errors == ["unknown variable nodeprep_zzz (set for localhost): no variable of this collection is close to it. "
                      "render.yml reads: none."]


def test_another_playbooks_variable_and_the_playbooks_own_names_are_left_alone():
    # One inventory serves every playbook, and AWX hands set_stats keys on to the next job of a workflow.
    host = {"nodeprep_upgrade_batch": 2, "nodeprep_fleet": {"summary": "x"}}
    errors, warnings = run("verify", {"n1": host}, extra=["nodeprep_upgrade_batch", "nodeprep_fleet"], own={"nodeprep_fleet"})
    assert errors == []
    assert warnings == ["nodeprep_upgrade_batch is read by upgrade.yml, not by verify.yml, which ignores it."]
    # From the inventory alone it is not even worth a warning.
    assert run("verify", {"n1": host}, own={"nodeprep_fleet"}) == ([], [])


@pytest.mark.parametrize("name, value", [
    ("nodeprep_upgrade_batch", 3), ("nodeprep_upgrade_batch", "25%"), ("nodeprep_upgrade_batch", [1, "10%", "50%"]),
    ("nodeprep_upgrade_batch", "4"), ("nodeprep_upgrade_max_fail_percentage", "10%"),
    ("nodeprep_upgrade_max_fail_percentage", 0), ("nodeprep_upgrade_cni_add", "yes"), ("nodeprep_hosts", "k8s_nodes"),
])
def test_good_values_pass(name, value):
    assert run("upgrade", {"n1": {name: value}}) == ([], [])


@pytest.mark.parametrize("playbook, name, value, valid", [
    ("upgrade", "nodeprep_upgrade_batch", 0, "It takes a count, percentage or a list of them (default 1)."),
    ("upgrade", "nodeprep_upgrade_batch", [1, "x"], "It takes a count, percentage or a list of them (default 1)."),
    ("upgrade", "nodeprep_upgrade_batch", True, "It takes a count, percentage or a list of them (default 1)."),
    ("upgrade", "nodeprep_upgrade_max_fail_percentage", "120%", "It takes a percentage (default 0)."),
    ("upgrade", "nodeprep_upgrade_cni_add", "maybe", "It takes a bool (default false)."),
    ("site", "nodeprep_runtime", "crio", "It takes one of containerd, none (default containerd)."),
    ("mirror", "nodeprep_mirror_archs", ["amd64", "x86_64"],
     "It takes a list of str, one of amd64, arm, arm64, ppc64le, s390x, riscv64, mips64le (default [amd64, arm64])."),
])
def test_bad_values_are_refused_with_what_they_may_be(playbook, name, value, valid):
    extra = {"nodeprep_mirror_dir": "/srv/mirror"} if playbook == "mirror" else {}
    errors, dummy = run(playbook, {"n1": {name: value, **extra}, "n2": extra})
    assert errors == ["%s: %s is not valid (n1). %s" % (name, pv._value_text(value), valid)]


def test_a_required_variable_is_asked_for_and_a_value_not_templated_yet_is_left_to_the_playbook():
    errors, dummy = run("mirror", {"localhost": {}})
    assert errors == ["nodeprep_mirror_dir is required: The absolute directory on the controller that receives the mirror "
                      "tree (v<version>/cni-plugins-linux-<arch>-v<version>.tgz with its checksum files, and SHA256SUMS)."]
    assert run("site", {"n1": {"nodeprep_runtime": Exception("undefined")}}) == ([], [])


def test_many_hosts_are_named_by_a_sample():
    host_vars = {"n%03d" % i: {"nodeprep_runtime": "crio" if i % 2 else "none"} for i in range(500)}
    errors, dummy = run("site", host_vars)
    assert errors == ["nodeprep_runtime: crio is not valid (n001, n003, n005, n007, n009 and 245 more). "
                      "It takes one of containerd, none (default containerd)."]


def test_the_spec_file_is_refused_when_it_declares_a_name_twice_or_without_docs(tmp_path):
    spec = yaml.safe_load(pv.SPEC_PATH.read_text())
    spec["playbooks"]["site"]["options"]["nodeprep_hosts"] = {"type": "str", "description": "again"}
    with pytest.raises(pv.SpecError, match="nodeprep_hosts is declared twice for playbook site"):
        pv.playbook_options(spec, "site")
    spec = yaml.safe_load(pv.SPEC_PATH.read_text())
    spec["playbooks"]["site"]["options"]["nodeprep_x"] = {"type": "text"}
    with pytest.raises(pv.SpecError, match="nodeprep_x: needs a description and a known type"):
        pv.playbook_options(spec, "site")
    with pytest.raises(pv.SpecError, match="no playbook sight"):
        pv.playbook_options(SPEC, "sight")


def test_the_names_the_playbooks_set_themselves_are_found(tmp_path):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "publish.yml").write_text(yaml.safe_dump([
        {"name": "a", "ansible.builtin.stat": {"path": "/"}, "register": "nodeprep_stat"},
        {"name": "b", "ansible.builtin.debug": {"msg": "{{ nodeprep_input }}"}, "loop": [1],
         "loop_control": {"loop_var": "nodeprep_item"}}]))
    (tmp_path / "play.yml").write_text(yaml.safe_dump([{
        "hosts": "all", "vars": {"nodeprep_internal": 1},
        "tasks": [{"ansible.builtin.set_fact": {"nodeprep_fact": 1, "cacheable": False}},
                  {"ansible.builtin.set_stats": {"data": {"nodeprep_stat_key": 1}}},
                  {"ansible.builtin.import_tasks": "tasks/publish.yml"}]}]))
    files = pv.playbook_files(tmp_path)
    assert list(files) == ["play"] and files["play"][1].name == "publish.yml"
    assert pv.set_names(files["play"]) == {"nodeprep_internal", "nodeprep_fact", "nodeprep_stat_key", "nodeprep_stat",
                                           "nodeprep_item"}
    assert pv.read_names(files["play"]) >= {"nodeprep_input", "nodeprep_internal"}
