"""The planner reads a node tree and returns operations; it never writes."""

from __future__ import annotations

import os

import pytest

from ansible_collections.nodeprep.cni.plugins.module_utils._install_plan import NodeView, PlanError, Wish, plan_absent, plan_present
from ansible_collections.nodeprep.cni.plugins.module_utils._install_tree import InstallTree
from testbed_lib.in_process import RELEASE_PLUGINS, run_module_in_process
from testbed_lib.tree import snapshot
from ansible_collections.nodeprep.cni.plugins.modules import cni_install


def install_tree(node, **extra):
    return InstallTree(node.versions_dir, node.bin_dir, extra.get("link_dirs", [node.k3s_dir]))


def wish(version, src_plugins=None, check_mode=False, **params):
    values = {"src": "/release.tgz" if src_plugins else None, "plugins": None, "keep": 3, "adopt": True}
    values.update(params)
    return Wish(values, version, src_plugins, check_mode)


def test_a_fresh_install_plans_pointer_before_links_and_writes_nothing(node):
    before = snapshot(node.root)
    plan = plan_present(NodeView.read(install_tree(node)), wish("1.0.0", RELEASE_PLUGINS))
    kinds = [op["op"] for op in plan.ops]
    assert kinds.index("install") < kinds.index("point") < kinds.index("link")
    assert len([k for k in kinds if k == "link"]) == 2 * len(RELEASE_PLUGINS)
    assert snapshot(node.root) == before


def test_check_mode_without_a_tarball_keeps_the_recorded_plugin_set(node, releases):
    args = node.args(src=releases["1.0.0"].path, version="1.0.0")
    assert run_module_in_process(cni_install, args)["rc"] == 0
    plan = plan_present(NodeView.read(install_tree(node)), wish("1.1.0", None, check_mode=True))
    assert not [op for op in plan.ops if op["op"] == "unlink"]
    assert plan.plugins == RELEASE_PLUGINS


def test_a_link_dir_inside_versions_dir_is_refused(node):
    inside = os.path.join(node.versions_dir, "current")
    with pytest.raises(PlanError, match="inside versions_dir"):
        plan_present(NodeView.read(install_tree(node, link_dirs=[inside])), wish("1.0.0", RELEASE_PLUGINS))


def test_two_spellings_of_one_link_dir_are_refused(node, tmp_path):
    os.makedirs(node.k3s_dir)
    alias = str(tmp_path / "alias")
    os.symlink(node.k3s_dir, alias)
    with pytest.raises(PlanError, match="same directory"):
        plan_present(NodeView.read(install_tree(node, link_dirs=[node.k3s_dir, alias])), wish("1.0.0", RELEASE_PLUGINS))


def test_a_fifo_with_a_plugin_name_is_refused(node):
    os.makedirs(node.bin_dir)
    os.mkfifo(os.path.join(node.bin_dir, "portmap"))
    with pytest.raises(PlanError, match="portmap"):
        plan_present(NodeView.read(install_tree(node)), wish("1.0.0", RELEASE_PLUGINS))


def test_absent_gives_files_back_over_our_links_without_unlinking_first(node, releases):
    node.put("opt/cni/bin/bridge", b"user bridge\n")
    assert run_module_in_process(cni_install, node.args(src=releases["1.0.0"].path, version="1.0.0"))["rc"] == 0
    plan = plan_absent(NodeView.read(install_tree(node)))
    bridge = os.path.join(node.bin_dir, "bridge")
    assert [op["op"] for op in plan.ops if op.get("path") == bridge] == ["restore"]
    kinds = [op["op"] for op in plan.ops]
    assert max(i for i, k in enumerate(kinds) if k in ("unlink", "restore")) < kinds.index("point") < kinds.index("remove_version")
