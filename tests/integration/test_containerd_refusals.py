"""Bad containerd configs change nothing; CRI-O gets its drop-in (structure only: no CRI-O here).

On a bookworm node running Debian's containerd 1.6.
"""
from __future__ import annotations

import tomllib

import pytest

SITE = "playbooks/site.yml"
CONFIG = "/etc/containerd/config.toml"


@pytest.fixture
def ctrd(containerd_node):
    return containerd_node("bookworm", name="ctrd-refusals")


def converge(run_playbook, inventory, role_vars, booted, **extra):
    return run_playbook(SITE, inventory([booted]), extra_vars=role_vars("9.0.0", cni_plugins_link_dirs=[], **extra))


def failure(result, host):
    failed = [t for t in result.tasks if t.host == host and t.failed]
    assert failed, result.describe()
    return failed[-1].result.get("msg", "")


def files_next_to_config(node):
    return sorted(p.name for p in node.path("/etc/containerd").iterdir())


def test_malformed_config_fails_naming_file_and_line_and_changes_nothing(ctrd, mirror, inventory, run_playbook, role_vars):
    broken = 'version = 2\n[plugins."io.containerd.grpc.v1.cri".cni\n  bin_dir = "/usr/lib/cni"\n'
    ctrd.path(CONFIG).write_text(broken)
    before = files_next_to_config(ctrd)
    result = converge(run_playbook, inventory, role_vars, ctrd)
    assert result.rc != 0
    message = failure(result, ctrd.name)
    assert "%s is not valid TOML" % CONFIG in message and "line 2" in message, message
    assert ctrd.path(CONFIG).read_text() == broken
    assert files_next_to_config(ctrd) == before


def test_config_containerd_rejects_is_not_written(ctrd, mirror, inventory, run_playbook, role_vars):
    # Valid TOML, but oom_score must be a number: containerd's own load fails.
    bad = 'version = 2\noom_score = "high"\n[plugins."io.containerd.grpc.v1.cri".cni]\n  bin_dir = "/usr/lib/cni"\n'
    ctrd.path(CONFIG).write_text(bad)
    before = files_next_to_config(ctrd)
    result = converge(run_playbook, inventory, role_vars, ctrd)
    assert result.rc != 0
    message = failure(result, ctrd.name)
    assert "containerd refused the new %s, which was therefore not written" % CONFIG in message, message
    assert "oom_score" in message or "high" in message, message
    assert ctrd.path(CONFIG).read_text() == bad
    assert files_next_to_config(ctrd) == before


def test_version_3_file_on_containerd_1_is_refused(ctrd, mirror, inventory, run_playbook, role_vars):
    v3 = 'version = 3\n[plugins."io.containerd.cri.v1.runtime".cni]\n  bin_dir = "/usr/lib/cni"\n'
    ctrd.path(CONFIG).write_text(v3)
    result = converge(run_playbook, inventory, role_vars, ctrd)
    assert result.rc != 0
    assert "never converts a config between versions" in failure(result, ctrd.name)
    assert ctrd.path(CONFIG).read_text() == v3


def test_missing_config_is_written_for_the_nodes_containerd(ctrd, mirror, inventory, run_playbook, role_vars):
    ctrd.path(CONFIG).unlink()
    result = converge(run_playbook, inventory, role_vars, ctrd)
    assert result.rc == 0, result.describe()
    written = tomllib.loads(ctrd.path(CONFIG).read_text())
    assert written == {"version": 2, "plugins": {"io.containerd.grpc.v1.cri": {
        "cni": {"bin_dir": "/opt/cni/bin", "conf_dir": "/etc/cni/net.d"}}}}
    dump = tomllib.loads(ctrd.run(["containerd", "config", "dump"]).stdout)
    assert dump["plugins"]["io.containerd.grpc.v1.cri"]["cni"]["bin_dir"] == "/opt/cni/bin"


def test_check_mode_reports_the_diff_and_writes_nothing(ctrd, mirror, inventory, run_playbook, role_vars):
    # The plugins first, so that check mode only has the containerd edit left to report.
    installed = converge(run_playbook, inventory, role_vars, ctrd, nodeprep_runtime="none")
    assert installed.rc == 0, installed.describe()
    package = ctrd.path(CONFIG).read_text()
    before = files_next_to_config(ctrd)
    result = run_playbook(SITE, inventory([ctrd]), check=True, diff=True,
                          extra_vars=role_vars("9.0.0", cni_plugins_link_dirs=[]))
    assert result.rc == 0, result.describe()
    edit = [t.result for t in result.task_results(host=ctrd.name)
            if t.task.endswith("Point containerd at the CNI plugin and config directories")][-1]
    assert edit["changed"] and 'bin_dir = "/opt/cni/bin"' in edit["diff"]["after"]
    assert 'bin_dir = "/usr/lib/cni"' in edit["diff"]["before"]
    assert ctrd.path(CONFIG).read_text() == package
    assert files_next_to_config(ctrd) == before


def test_crio_drop_in_structure(node, mirror, inventory, run_playbook, role_vars):
    plain = node("crio-dropin")
    extra = role_vars("9.0.0", containerd_runtime="crio", containerd_cni_bin_dirs=["/opt/cni/bin", "/usr/libexec/cni"])
    first = run_playbook(SITE, inventory([plain]), extra_vars=extra)
    assert first.rc == 0, first.describe()
    again = run_playbook(SITE, inventory([plain]), extra_vars=extra)
    assert again.changed(plain.name) == 0, again.describe()
    drop_in = tomllib.loads(plain.path("/etc/crio/crio.conf.d/10-nodeprep-cni.conf").read_text())
    assert drop_in == {"crio": {"network": {"network_dir": "/etc/cni/net.d",
                                            "plugin_dirs": ["/opt/cni/bin", "/usr/libexec/cni"]}}}
