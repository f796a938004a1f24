"""cni_plugins_source: package on an offline node: Debian's real containernetworking-plugins from a
local flat apt repo, linked into the versioned layout; a package update; then a release and a
rollback to the package's version."""
from __future__ import annotations

import hashlib
import json
import os

import pytest
import yaml

from testbed_lib.apt_repo import PLUGINS_PACKAGE, PLUGINS_VERSION, add_rebuilt_version, build_flat_repo
from testbed_lib.tree import node_state, resolved_links, temp_leftovers

SITE = "playbooks/site.yml"
VERIFY = "playbooks/verify.yml"
TASK = "nodeprep.cni.cni_plugins : Install the wanted release unless the node has it intact, and link it"
# The package's version as a version directory name (see plugins/module_utils/_package_source.py).
LABEL = PLUGINS_VERSION
UPDATED = "1:" + PLUGINS_VERSION
UPDATED_LABEL = PLUGINS_VERSION + "+epoch1"
K3S_DIR = "/var/lib/rancher/k3s/data/cni"
PACKAGE_VARS = {"cni_plugins_source": "package", "cni_plugins_package_update_cache": True, "cni_plugins_link_dirs": [K3S_DIR]}


@pytest.fixture
def offline_node(node, tmp_path):
    """A node without network whose only apt source is a local repo holding Debian's package, with python3-apt."""
    booted = node("pkgsrc", private_network=True)
    build_flat_repo(booted.path("/srv/nodeprep-apt"))
    booted.path("/etc/apt/sources.list").write_text("deb [trusted=yes] file:/srv/nodeprep-apt ./\n")
    assert [line.split(": ")[1] for line in booted.run(["ip", "-o", "link"]).stdout.splitlines()] == ["lo"], "the node must be offline"
    # Ansible's apt module needs python3-apt for check mode (a real run would install it first).
    booted.run("apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-apt >/dev/null", timeout=300)
    return booted


def package_installed(node) -> bool:
    done = node.run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}${Version}", PLUGINS_PACKAGE], check=False)
    return done.returncode == 0 and done.stdout.startswith("ii") and done.stdout.endswith(PLUGINS_VERSION)


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def failure_messages(result) -> str:
    return "\n".join(str(t.result.get("msg", "")) for t in result.task_results() if t.failed)


def test_package_source_install_rerun_check_then_release_and_rollback(
        offline_node, mirror, inventory, run_playbook, role_vars, module_playbook, tmp_path):
    node = offline_node
    inv = inventory([node])
    role_only = tmp_path / "cni_plugins_role.yml"
    role_only.write_text(yaml.safe_dump([{"name": "The plugins role alone", "hosts": "nodes", "gather_facts": False,
                                          "roles": ["nodeprep.cni.cni_plugins"]}]))

    # Check mode: the package would be installed and linked, nothing is written.
    before = node_state(node)
    checked = run_playbook(SITE, inv, extra_vars=PACKAGE_VARS, check=True, diff=True)
    assert checked.rc == 0, checked.describe()
    assert checked.result(TASK, node.name)["changed"] is True
    assert node_state(node) == before and not package_installed(node)

    # The real run: apt installs the package, its plugin dir becomes v<package version>.
    applied = run_playbook(SITE, inv, extra_vars=PACKAGE_VARS, diff=True)
    assert applied.rc == 0, applied.describe()
    result = applied.result(TASK, node.name)
    assert result["changed"] and result["version"] == LABEL and result["package_install"]["changed"]
    assert result["package"] == {"name": PLUGINS_PACKAGE, "version": PLUGINS_VERSION, "manager": "dpkg"}
    assert package_installed(node)
    version_dir = node.path("/opt/cni/versions/v" + LABEL)
    package_dir = node.path("/usr/lib/cni")
    plugins = sorted(os.listdir(package_dir))
    assert {"bridge", "host-local", "loopback", "portmap"} <= set(plugins)
    manifest = json.loads((version_dir / ".nodeprep-manifest.json").read_text())
    assert sorted(manifest["files"]) == plugins
    for name in plugins:
        assert sha256(version_dir / name) == sha256(package_dir / name) == manifest["files"][name]["sha256"], name
    assert manifest["source"] == {"type": "package", "package": PLUGINS_PACKAGE, "package_version": PLUGINS_VERSION,
                                  "manager": "dpkg", "dir": "/usr/lib/cni"}
    assert os.readlink(node.path("/opt/cni/versions/current")) == "v" + LABEL
    for directory in ("/opt/cni/bin", K3S_DIR):
        links = resolved_links(node, directory)
        assert all(links[name] == "/opt/cni/versions/v%s/%s" % (LABEL, name) for name in plugins), links
    answer = json.loads(node.run("CNI_COMMAND=VERSION /opt/cni/bin/bridge </dev/null").stdout)
    assert "1.0.0" in answer["supportedVersions"], answer
    assert temp_leftovers(node) == []

    # The report names the package's version and the source.
    report_dir = tmp_path / "reports"
    verified = run_playbook(VERIFY, inv, extra_vars={"nodeprep_report_dir": str(report_dir), "cni_plugins_link_dirs": [K3S_DIR]},
                            verbosity=1)
    assert verified.rc == 0, verified.describe()
    shown = verified.result("Show the node's report", node.name)["msg"]
    assert "current %s, previous -" % LABEL in shown and "source: package %s %s" % (PLUGINS_PACKAGE, PLUGINS_VERSION) in shown, shown
    report = json.loads((report_dir / (node.name + ".json")).read_text())["cni_plugins"]
    assert report["current"] == LABEL and report["healthy"] is True, report
    assert report["current_source"]["type"] == "package" and report["current_source"]["package_version"] == PLUGINS_VERSION

    # Idempotence (one module run, nothing changed), then a check-mode pass on the settled node. The
    # role alone from here on: the other roles of site.yml are not what changes.
    settled = node_state(node)
    rerun = run_playbook(SITE, inv, extra_vars=PACKAGE_VARS)
    assert rerun.rc == 0 and rerun.changed(node.name) == 0, rerun.describe()
    assert rerun.result(TASK, node.name)["package_install"] is None
    rechecked = run_playbook(role_only, inv, extra_vars=PACKAGE_VARS, check=True)
    assert rechecked.rc == 0 and rechecked.changed(node.name) == 0, rechecked.describe()
    assert node_state(node) == settled

    # The distribution updates the package (here: the same files under a version with an epoch, which
    # dpkg takes as newer): the next run installs it as a version of its own, the old one is previous.
    add_rebuilt_version(node.path("/srv/nodeprep-apt"), UPDATED)
    node.run("apt-get update -qq && apt-get install -y -qq containernetworking-plugins >/dev/null", timeout=300)
    updated = run_playbook(role_only, inv, extra_vars=PACKAGE_VARS)
    assert updated.rc == 0, updated.describe()
    assert updated.result(TASK, node.name)["version"] == UPDATED_LABEL
    assert os.readlink(node.path("/opt/cni/versions/current")) == "v" + UPDATED_LABEL
    assert os.readlink(node.path("/opt/cni/versions/previous")) == "v" + LABEL
    assert json.loads(node.path("/opt/cni/versions/v%s/.nodeprep-manifest.json" % UPDATED_LABEL).read_text()
                      )["source"]["package_version"] == UPDATED

    # Back to a release (the test bed's mirror, fetched on the controller): the package's version is previous.
    released = run_playbook(role_only, inv, extra_vars=role_vars("9.0.0"))
    assert released.rc == 0, released.describe()
    assert os.readlink(node.path("/opt/cni/versions/current")) == "v9.0.0"
    assert os.readlink(node.path("/opt/cni/versions/previous")) == "v" + UPDATED_LABEL
    assert resolved_links(node)["bridge"] == "/opt/cni/versions/v9.0.0/bridge"

    # Rollback returns to the package's version, byte for byte.
    rolled = run_playbook(module_playbook(state="rollback"), inv)
    assert rolled.rc == 0, rolled.describe()
    assert os.readlink(node.path("/opt/cni/versions/current")) == "v" + UPDATED_LABEL
    assert resolved_links(node)["bridge"] == "/opt/cni/versions/v%s/bridge" % UPDATED_LABEL
    through_link = node.run(["sha256sum", "/opt/cni/bin/bridge"]).stdout.split()[0]
    assert through_link == sha256(package_dir / "bridge")
    node.run("CNI_COMMAND=VERSION /opt/cni/bin/bridge </dev/null")


def test_unknown_package_and_download_settings_are_refused_and_nothing_changes(offline_node, inventory, run_playbook):
    node = offline_node
    inv = inventory([node])
    before = node_state(node)
    dpkg_before = node.path("/var/lib/dpkg/status").read_bytes()

    def assert_refused(role_vars, *fragments):
        """site.yml with ``role_vars`` fails naming every fragment, and the node (dpkg included) is unchanged."""
        failed = run_playbook(SITE, inv, extra_vars=dict(PACKAGE_VARS, **role_vars))
        assert failed.rc != 0
        message = failure_messages(failed)
        for fragment in fragments:
            assert fragment in message, message
        assert node_state(node) == before
        assert node.path("/var/lib/dpkg/status").read_bytes() == dpkg_before

    assert_refused({"cni_plugins_package_name": "no-such-cni-package"},
                   "cannot install package no-such-cni-package (package_name)",
                   "No package matching 'no-such-cni-package'",
                   "check the name and that a repository configured on the node provides it")
    assert not node.path("/opt/cni/versions").exists()

    # An install module from a collection the controller lacks (SUSE's community.general.zypper is optional):
    # refused before the node is changed, naming the collection.
    absent = {"name": PLUGINS_PACKAGE, "dir": "/usr/lib/cni", "module": "nodeprep.absent.pkg"}
    assert_refused({"cni_plugins_os_packages": {"Debian": absent}},
                   "needs the module nodeprep.absent.pkg, which is not installed on the controller",
                   "ansible-galaxy collection install nodeprep.absent")

    # Download settings mean nothing to a package: refused before the node is asked anything.
    assert_refused({"cni_plugins_base_url": "http://127.0.0.1:9/mirror", "cni_plugins_mirrors": ["http://127.0.0.1:9/other"]},
                   "source is package, so base_url, mirrors would not be used",
                   "leave base_url, mirrors at the default or set source to release")
