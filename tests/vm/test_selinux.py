"""SELinux enforcing on Debian's reference policy: our labels, a real pod sandbox, a real denial.

One VM booted enforcing from the SELinux image (testbed_lib/vm_selinux.py) serves every test of
this file, in order: the cni_plugins role over SSH, the labels it left, a pod sandbox through our links with
the audit log read around it, one plugin mislabelled (denied to a confined domain, with the audit
lines; containerd is unconfined on this policy), check mode predicting the relabel the next run
makes, and a full relabel's dry run. Figures and labels are printed (``pytest -rA`` shows them).
"""
from __future__ import annotations

import json
import os
import time

import pytest
import yaml

from testbed_lib import ansible_runner, cri, vm, vm_selinux
from tests.vm.images import require_image

VERSIONS_DIR = "/opt/cni/versions"
BIN_DIR = "/opt/cni/bin"
SUBNET = "10.88.7."
# A type the policy gives temporary files: a confined domain may not execute it.
FORBIDDEN_TYPE = "tmp_t"


def label_type(context: str) -> str:
    return context.split(":")[2]


@pytest.fixture(scope="module")
def selinux_vm(tmp_path_factory):
    require_image(vm_selinux.SELINUX_IMAGE, "SELinux VM image")
    node = vm_selinux.selinux_node("selinux", tmp_path_factory.mktemp("vm-selinux") / "vm")
    try:
        node.start()
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="module")
def site(selinux_vm, mirror, tmp_path_factory):
    """The cni_plugins and containerd roles run once over SSH (Debian's containerd package searches
    /usr/lib/cni until the containerd role points it at our bin dir); returns the inventory, the
    variables and the cni_plugins install result."""
    work = tmp_path_factory.mktemp("selinux-site")
    inventory = ansible_runner.write_inventory(work / "inventory.yml", [selinux_vm])
    version = "9.1.0"
    playbook = work / "cni_plugins.yml"
    playbook.write_text(yaml.safe_dump([{"name": "CNI plugins", "hosts": "nodes", "gather_facts": False,
                                         "roles": [{"role": "nodeprep.cni.cni_plugins"},
                                                   {"role": "nodeprep.cni.containerd"}]}]))
    variables = {
        "cni_plugins_version": version,
        "cni_plugins_base_url": mirror.base_url,
        "cni_plugins_checksums": {"amd64": {v: "sha256:" + r.sha256 for v, r in mirror.releases.items()}},
        "cni_plugins_controller_cache_dir": str(work / "controller-cache"),
    }
    started = time.monotonic()
    result = ansible_runner.run_playbook(playbook, inventory, extra_vars=variables, cwd=work, timeout=1800)
    assert result.rc == 0, result.describe()
    seconds = round(time.monotonic() - started, 1)
    installed = [task.result for task in result.task_results(host=selinux_vm.name) if "selinux" in task.result]
    assert installed, result.describe()
    return {"inventory": inventory, "vars": variables, "version": version, "result": installed[-1],
            "seconds": seconds, "work": work}


def cni_install(site, check: bool = False, diff: bool = False):
    """One cni_install task with the role's directories (the installed version needs no tarball)."""
    play = [{"name": "cni_install", "hosts": "nodes", "gather_facts": False,
             "tasks": [{"name": "Run cni_install", "nodeprep.cni.cni_install": {
                 "versions_dir": VERSIONS_DIR, "bin_dir": BIN_DIR, "version": site["version"]}}]}]
    playbook = site["work"] / "cni_install.yml"
    playbook.write_text(yaml.safe_dump(play))
    result = ansible_runner.run_playbook(playbook, site["inventory"], check=check, diff=diff, cwd=site["work"])
    assert result.rc == 0, result.describe()
    [task] = result.task_results()
    return task.result


def expected_label(node, kind: str, name: str = "") -> str:
    path = BIN_DIR if kind == "dir" else "%s/%s" % (BIN_DIR, name)
    return node.run(["matchpathcon", "-n", "-m", kind, path]).stdout.strip()


def our_entries(node, site) -> dict:
    """Every entry under the versions dir and every link of ours in the bin dir: context and class."""
    found = vm_selinux.labels(node, VERSIONS_DIR)
    links = set(site["result"]["links"])
    found.update((path, entry) for path, entry in vm_selinux.labels(node, BIN_DIR).items() if path in links)
    return found


def run_sandbox(node, name: str):
    with vm_selinux.ForwardedSocket(node, cri.SOCKET) as socket, cri.CRI(socket, timeout=120) as client:
        client.wait_ready(60)
        status = client.wait_network_ready(60)
        sandbox = client.run_pod_sandbox(name)
        client.remove_pod_sandbox(sandbox.id)
        return status, sandbox


def test_the_vm_boots_enforcing_and_containerd_runs_unconfined_on_debians_policy(selinux_vm):
    node = selinux_vm
    assert node.run(["getenforce"]).stdout.strip() == "Enforcing"
    assert "enforcing=1" in node.read_file("/proc/cmdline").split()
    domain = node.run("ps -C containerd -o label=").stdout.strip()
    print("containerd runs as %s; /usr/bin/containerd is %s; the OS plugin dir %s is %s; boot to SSH %s s, "
          "to running %s s, image build %s s" % (
              domain, node.run(["stat", "-c", "%C", "/usr/bin/containerd"]).stdout.strip(), BIN_DIR,
              expected_label(node, "dir"), node.timings["boot_to_ssh"], node.timings["boot_to_running"],
              vm.image_info(vm_selinux.SELINUX_IMAGE)["seconds"]))
    # Debian's reference policy has no container module: /usr/bin/containerd is plain bin_t and
    # systemd starts it in initrc_t, a domain the policy leaves unconfined.
    assert label_type(domain) == "initrc_t", domain


def test_the_role_labels_every_file_and_link_as_the_policy_labels_the_os_plugin_dir(selinux_vm, site):
    node = selinux_vm
    labels = our_entries(node, site)
    links = set(site["result"]["links"])
    assert links and links <= set(labels)
    print("labels after the role: %s" % json.dumps(sorted({(e["kind"], e["context"]) for e in labels.values()})))
    policy = {}
    for path, entry in sorted(labels.items()):
        key = (entry["kind"], "" if entry["kind"] == "dir" else os.path.basename(path))
        if key not in policy:
            policy[key] = expected_label(node, *key)
        assert entry["context"] == policy[key], (path, entry)
    relabelled = site["result"]["selinux"]["relabelled"]
    print("cni_plugins and containerd roles %s s; %d entries relabelled, e.g. %s" % (site["seconds"], len(relabelled), json.dumps(relabelled[:4])))
    assert site["result"]["selinux"]["enabled"] is True
    equivalence = node.run(["semanage", "fcontext", "-l", "-C"]).stdout
    assert "%s = %s" % (VERSIONS_DIR, BIN_DIR) in equivalence, equivalence
    again = cni_install(site)
    assert again["changed"] is False and again["selinux"]["relabelled"] == [], again["selinux"]


def test_a_pod_sandbox_runs_through_our_links_without_a_denial(selinux_vm, site):
    node = selinux_vm
    node.write_file("/etc/cni/net.d/10-podnet.conflist", json.dumps(cri.pod_conflist(SUBNET, "cni-se0")))
    offset = vm_selinux.audit_position(node)
    sandbox = run_sandbox(node, "labelled")[1]
    assert sandbox.ip.startswith(SUBNET), sandbox
    assert vm_selinux.denials_since(node, offset) == []


def test_a_mislabelled_plugin_is_denied_to_a_confined_domain_and_the_next_run_relabels_it(selinux_vm, site):
    node = selinux_vm
    link = "%s/bridge" % BIN_DIR
    real = node.run(["readlink", "-f", link]).stdout.strip()
    vm_selinux.install_confined_exec(node)
    version = {"CNI_COMMAND": "VERSION"}
    offset = vm_selinux.audit_position(node)
    # (dhcpc_t may not write to the SSH session's pipe, so the plugin's answer is not seen: its exit status is.)
    ran = vm_selinux.run_confined(node, link, env=version)
    assert ran.returncode == 0, ran
    assert [line for line in vm_selinux.denials_since(node, offset) if 'name="bridge"' in line] == []

    node.run(["chcon", "-t", FORBIDDEN_TYPE, real])
    offset = vm_selinux.audit_position(node)
    refused = vm_selinux.run_confined(node, link, env=version)
    denials = [line for line in vm_selinux.denials_since(node, offset) if 'name="bridge"' in line]
    print("mislabelled %s (%s): confined run exited %d (%s)\naudit log:\n%s" % (
        real, FORBIDDEN_TYPE, refused.returncode, refused.stderr.strip(), "\n".join(denials)))
    assert refused.returncode != 0
    assert any("{ execute }" in line and "scontext=system_u:system_r:%s" % vm_selinux.CONFINED_DOMAIN in line
               and ":%s:" % FORBIDDEN_TYPE in line for line in denials), denials
    # containerd itself, unconfined here, still runs the mislabelled plugin: on Debian's policy the
    # label decides nothing for it (on a policy that confines the runtime it would).
    offset = vm_selinux.audit_position(node)
    sandbox = run_sandbox(node, "mislabelled")[1]
    assert sandbox.ip.startswith(SUBNET) and vm_selinux.denials_since(node, offset) == []

    predicted = cni_install(site, check=True, diff=True)
    assert predicted["changed"] is True
    [change] = predicted["selinux"]["relabelled"]
    assert (change["path"], label_type(change["before"])) == (real, FORBIDDEN_TYPE)
    assert predicted["diff"]["before"]["selinux"] == {real: change["before"]}
    assert predicted["diff"]["after"]["selinux"] == {real: change["after"]}
    assert label_type(node.run(["stat", "-c", "%C", real]).stdout.strip()) == FORBIDDEN_TYPE  # check mode wrote nothing
    done = cni_install(site)
    assert done["selinux"]["relabelled"] == predicted["selinux"]["relabelled"]
    offset = vm_selinux.audit_position(node)
    assert vm_selinux.run_confined(node, link, env=version).returncode == 0
    assert [line for line in vm_selinux.denials_since(node, offset) if 'name="bridge"' in line] == []


def test_a_full_relabel_changes_nothing_we_installed(selinux_vm, site):
    node = selinux_vm
    would = node.run(["restorecon", "-R", "-n", "-v", VERSIONS_DIR, BIN_DIR]).stdout
    ours = set(our_entries(node, site))
    assert [line for line in would.splitlines() if any(path in line for path in ours)] == [], would
