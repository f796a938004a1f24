"""Plugin names an OS package owns (kubelet's kubernetes-cni in /opt/cni/bin): refused by default,
taken over on request, and reported by cni_info.

The node's package manager is the edge faked here: a ``dpkg-query`` on PATH that answers ``-S`` from
a list of owned paths, exactly in dpkg's format (owned paths on stdout, the others on stderr, rc 1).
"""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from ansible_collections.nodeprep.cni.plugins.module_utils._package_source import package_owners
from ansible_collections.nodeprep.cni.plugins.modules import cni_info, cni_install
from testbed_lib.in_process import VERSION_A as A, VERSION_B as B, run_module_in_process
from testbed_lib.tree import snapshot

PACKAGE_BRIDGE = b"#!/bin/sh\n# bridge from the kubernetes-cni package\n"
CALICO = b"\x7fELF calico plugin, owned by a calico package but never one of our names\n"

FAKE_DPKG_QUERY = r"""#!/bin/sh
# dpkg-query -S PATH...: "<package>: <path>" per owned path; rc 1 when any path is owned by nothing
[ "$1" = "-S" ] || exit 2
shift
echo "$*" >> "$(dirname "$0")/queries"
rc=0
for path in "$@"; do
  hit=$(grep -F ": $path" "$(dirname "$0")/owned" | grep -E ": $path\$" || true)
  if [ -n "$hit" ]; then echo "$hit"; else echo "dpkg-query: no path found matching pattern $path" >&2; rc=1; fi
done
exit $rc
"""


@pytest.fixture
def dpkg(tmp_path, monkeypatch):
    """``dpkg.own(package, *paths)`` records ownership; ``dpkg.queries`` lists each query's paths."""
    bindir = tmp_path / "fake-dpkg"
    bindir.mkdir()
    script = bindir / "dpkg-query"
    script.write_text(FAKE_DPKG_QUERY)
    script.chmod(0o755)
    (bindir / "owned").write_text("")
    monkeypatch.setenv("PATH", "%s:%s" % (bindir, os.environ["PATH"]))

    class Dpkg:
        @staticmethod
        def own(package, *paths):
            with open(bindir / "owned", "a", encoding="utf-8") as handle:
                for path in paths:
                    handle.write("%s: %s\n" % (package, path))

        @property
        def queries(self):
            queries = bindir / "queries"
            return queries.read_text().splitlines() if queries.exists() else []

    return Dpkg()


def install(node, release, check_mode=False, **extra):
    return run_module_in_process(cni_install, node.args(src=release.path, version=release.version, **extra), check_mode=check_mode)


def kubernetes_cni_node(node, dpkg):
    """/opt/cni/bin as kubelet's package leaves it: bridge and loopback are the package's, calico another's."""
    bridge = node.put("opt/cni/bin/bridge", PACKAGE_BRIDGE, 0o755)
    loopback = node.put("opt/cni/bin/loopback", PACKAGE_BRIDGE.replace(b"bridge", b"loopback"), 0o755)
    calico = node.put("opt/cni/bin/calico", CALICO, 0o755)
    dpkg.own("kubernetes-cni", bridge, loopback)
    dpkg.own("calico-cni", calico)
    return bridge, loopback, calico


def test_package_owners_asks_dpkg_once_for_every_name(dpkg, tmp_path):
    owned, free = str(tmp_path / "bridge"), str(tmp_path / "macvlan")
    dpkg.own("kubernetes-cni", owned)

    def run_command(argv, check_rc=False):
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        return done.returncode, done.stdout, done.stderr

    assert package_owners(run_command, [owned, free, owned]) == {owned: "kubernetes-cni"}
    assert dpkg.queries == [" ".join(sorted([owned, free]))]
    assert package_owners(run_command, []) == {} and len(dpkg.queries) == 1


def test_real_dpkg_names_the_owner_of_its_own_binary():
    # The host's own package database: dpkg owns dpkg-query; a temp path is owned by nothing.
    def run_command(argv, check_rc=False):
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        return done.returncode, done.stdout, done.stderr

    dpkg_query = subprocess.run(["sh", "-c", "command -v dpkg-query"], capture_output=True, text=True, check=True).stdout.strip()
    assert package_owners(run_command, [dpkg_query, "/nonexistent/nodeprep-plugin"]) == {dpkg_query: "dpkg"}


def test_rpm_output_is_read_per_asked_path():
    outputs = []

    def run_command(argv, check_rc=False):
        outputs.append(argv)
        return 1, ("/opt/cni/bin/bridge\tcontainernetworking-plugins\n/opt/cni/bin/macvlan\tcontainernetworking-plugins\n"
                   "file /opt/cni/bin/tap is not owned by any package\n"), ""

    from ansible_collections.nodeprep.cni.plugins.module_utils import _package_source
    assert _package_source._rpm_owners(run_command([])[1], ["/opt/cni/bin/bridge", "/opt/cni/bin/tap"]) == {
        "/opt/cni/bin/bridge": "containernetworking-plugins"}


def test_dpkg_output_with_diversions_and_several_owners():
    from ansible_collections.nodeprep.cni.plugins.module_utils import _package_source
    output = ("diversion by local-cni from: /opt/cni/bin/bridge\n"
              "kubernetes-cni, other-cni: /opt/cni/bin/bridge\nkubernetes-cni: /opt/cni/bin/loopback\n")
    assert _package_source._dpkg_owners(output, ["/opt/cni/bin/bridge"]) == {"/opt/cni/bin/bridge": "kubernetes-cni, other-cni"}


def test_a_package_owned_name_is_refused_naming_package_and_fixes_and_nothing_changes(node, releases, dpkg):
    bridge, loopback, calico = kubernetes_cni_node(node, dpkg)
    before = snapshot(node.root)
    for check_mode in (True, False):
        result = install(node, releases[A], check_mode=check_mode)
        assert result["rc"] == 1 and result["failed"], result
        msg = result["msg"]
        assert "%s, %s owned by package kubernetes-cni" % (bridge, loopback) in msg, msg
        assert "calico" not in msg  # a package's file at a name we do not link is never our business
        for fix in ("cni_plugins_bin_dir", "cni_plugins_source: package", "cni_plugins_package_name: kubernetes-cni",
                    "cni_plugins_adopt_package_files: true", "nothing was changed"):
            assert fix in msg, (fix, msg)
        assert snapshot(node.root) == before, check_mode
    # One query per run, of the foreign files in the link dirs only.
    assert dpkg.queries[-1].split() == sorted([bridge, calico, loopback])


def test_the_ask_first_run_hands_the_owners_to_its_caller_and_refuses_a_known_plugin_set(node, releases, dpkg):
    bridge, loopback, dummy = kubernetes_cni_node(node, dpkg)
    asked = run_module_in_process(cni_install, node.args(version=A, on_missing_src="report"))
    assert asked["rc"] == 0 and asked["src_needed"] is True
    assert asked["package_owned"][bridge] == "kubernetes-cni" and asked["package_owned"][loopback] == "kubernetes-cni"
    # A plugin subset says which names will be linked: refused at once, before any release is fetched.
    subset = run_module_in_process(cni_install, node.args(version=A, on_missing_src="report", plugins=["bridge", "portmap"]))
    assert subset["rc"] == 1 and "%s owned by package kubernetes-cni" % bridge in subset["msg"], subset
    assert loopback not in subset["msg"]


def test_opt_in_takes_the_names_over_records_the_package_and_cni_info_warns(node, releases, dpkg):
    bridge, loopback, calico = kubernetes_cni_node(node, dpkg)
    result = install(node, releases[A], adopt_package_files=True)
    assert result["rc"] == 0 and not result.get("failed"), result.get("msg")
    assert os.readlink(bridge) == os.path.join(node.versions_dir, "current", "bridge")
    assert result["package_owned"] == {bridge: "kubernetes-cni", loopback: "kubernetes-cni"}
    assert "adopt %s (owned by package kubernetes-cni)" % bridge in result["actions"]
    kept = [record for record in result["adopted"] if record["original"] == bridge][0]["stored"]
    assert open(kept, "rb").read() == PACKAGE_BRIDGE
    assert open(calico, "rb").read() == CALICO and not os.path.islink(calico)

    info = run_module_in_process(cni_info, node.info_args())
    assert info["rc"] == 0
    statuses = dict((entry["path"], (entry["package"], entry["status"])) for entry in info["package_owned"])
    assert statuses[bridge] == statuses[loopback] == ("kubernetes-cni", "linked")
    assert statuses[calico] == ("calico-cni", "unmanaged")
    assert any(bridge in w and "next upgrade overwrites them" in w for w in info["package_warnings"]), info["package_warnings"]

    # A re-run with the names taken over changes nothing (our links are not foreign any more).
    again = install(node, releases[A], adopt_package_files=True)
    assert again["rc"] == 0 and again["changed"] is False and again["package_owned"] == {}

    # The package is upgraded: dpkg writes its file over our link. cni_info says so.
    os.unlink(bridge)
    with open(bridge, "wb") as handle:
        handle.write(PACKAGE_BRIDGE + b"# 1.1\n")
    os.chmod(bridge, stat.S_IMODE(0o755))
    info = run_module_in_process(cni_info, node.info_args())
    statuses = dict((entry["path"], entry["status"]) for entry in info["package_owned"])
    assert statuses[bridge] == "package file" and statuses[loopback] == "linked"
    assert any("package kubernetes-cni's own files are where nodeprep's links belong, at %s" % bridge in w
               for w in info["package_warnings"]), info["package_warnings"]
    assert info["healthy"] is False

    # Without the opt-in the next run refuses the name the package took back.
    refused = install(node, releases[B])
    assert refused["rc"] == 1 and "%s owned by package kubernetes-cni" % bridge in refused["msg"]


def test_cni_info_can_leave_the_package_manager_alone(node, releases, dpkg):
    kubernetes_cni_node(node, dpkg)
    info = run_module_in_process(cni_info, node.info_args(package_owners=False))
    assert info["rc"] == 0 and info["package_owned"] == [] and dpkg.queries == []
