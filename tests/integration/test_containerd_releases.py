"""containerd 2.2, 2.3 (LTS) and 2.4 as built from their release tags, beside Debian's 1.6, 1.7
and 2.1 (test_containerd.py): real nodes, each in its own network namespace, with sid's runc.

From ``containerd config default``'s own file (version 3 on 2.2, version 4 on 2.3 and later, each
importing ``/etc/containerd/conf.d/*.toml``) and from a user's file full of comments: check mode
first predicts changes and writes nothing (the user-config Molecule scenario checks it after a
converge, on 2.3), site.yml converges, a re-run changes nothing, the file keeps every byte but
the CNI keys, containerd's own ``config dump`` names exactly our dirs, the CRI reports
NetworkReady and a real pod sandbox gets an address from bridge + host-local found through our
links. On 2.4, which no longer reads ``bin_dir``, a version-3 file that still holds it ends with
``bin_dirs`` alone.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
import tomllib
from pathlib import Path

import pytest

from testbed_lib.cri import CRI, pod_conflist, run_pod, searched_dirs
from testbed_lib.runtimes import CONTAINERD_VERSIONS

SITE = "playbooks/site.yml"
CONFIG = "/etc/containerd/config.toml"
DROP_IN_DIR = "/etc/containerd/conf.d"
CRI_RUNTIME = "io.containerd.cri.v1.runtime"
SUBNET = "10.88.0."
CONFLIST = pod_conflist(SUBNET, "cni-rel0")
# A second dir the plugins are linked into, so the wanted bin_dirs differ from containerd's default.
LINK_DIR = "/usr/local/lib/cni"
USER_FILES = Path(__file__).resolve().parents[2] / "molecule/user-config/files"
RESULTS = os.environ.get("NODEPREP_RESULTS")
CNI_KEY = re.compile(r"\s*(bin_dirs?|conf_dir)\s*=")


def record(**values):
    """Appends a measurement for the closing note (when NODEPREP_RESULTS names a file)."""
    if RESULTS:
        with open(RESULTS, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(values) + "\n")


def without_cni_keys(text: str) -> str:
    """The file with the CRI CNI table's bin_dir, bin_dirs and conf_dir lines left out."""
    kept, table = [], ""
    for line in text.splitlines(keepends=True):
        if line.strip().startswith("["):
            table = line.strip()
        if table == "[plugins.'%s'.cni]" % CRI_RUNTIME and CNI_KEY.match(line):
            continue
        kept.append(line)
    return "".join(kept)


def cni_table(text: str) -> dict:
    return tomllib.loads(text)["plugins"][CRI_RUNTIME]["cni"]


def tree_digest(node, *paths: str) -> dict[str, str]:
    """sha256 of every file under the given node paths, to prove a run wrote nothing."""
    found = {}
    for inside in paths:
        root = node.path(inside)
        for path in sorted(root.rglob("*")) if root.is_dir() else ([root] if root.exists() else []):
            if path.is_file() and not path.is_symlink():
                found[str(path.relative_to(node.rootfs))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def site(run_playbook, inventory, role_vars, booted, link_dirs, check=False):
    started = time.monotonic()
    result = run_playbook(SITE, inventory([booted]), check=check,
                          extra_vars=role_vars("9.0.0", cni_plugins_link_dirs=link_dirs))
    return result, round(time.monotonic() - started, 1)


def dump(node) -> str:
    return node.run(["containerd", "config", "dump"]).stdout


def restart_containerd(node) -> None:
    node.run(["systemctl", "restart", "containerd"])
    with CRI(node) as cri:
        cri.wait_ready()


@pytest.mark.parametrize("version", CONTAINERD_VERSIONS)
def test_config_default(version, containerd_node, mirror, inventory, run_playbook, role_vars):
    booted = containerd_node(version)
    default = booted.run(["containerd", "config", "default"]).stdout
    assert booted.path(CONFIG).read_text() == default
    assert booted.run(["containerd", "--version"]).stdout.split()[2] == version
    dialect = tomllib.loads(default)["version"]
    assert dialect == (3 if version.startswith("2.2.") else 4)
    wanted = ["/opt/cni/bin", LINK_DIR]
    assert searched_dirs(dump(booted)) != wanted

    before = tree_digest(booted, "/etc/containerd", "/opt/cni", LINK_DIR)
    predicted, _seconds = site(run_playbook, inventory, role_vars, booted, [LINK_DIR], check=True)
    assert predicted.rc == 0 and predicted.changed(booted.name) > 0, predicted.describe()
    assert tree_digest(booted, "/etc/containerd", "/opt/cni", LINK_DIR) == before

    first, seconds = site(run_playbook, inventory, role_vars, booted, [LINK_DIR])
    assert first.rc == 0, first.describe()
    again, _again_seconds = site(run_playbook, inventory, role_vars, booted, [LINK_DIR])
    assert again.rc == 0 and again.changed(booted.name) == 0, again.describe()

    dirs = searched_dirs(dump(booted))
    assert dirs == wanted
    written = booted.path(CONFIG).read_text()
    assert without_cni_keys(written) == without_cni_keys(default)
    # The default file imports conf.d: our keys may go to a drop-in there, and then the main
    # file keeps every byte.
    drop_ins = sorted(p.name for p in booted.path(DROP_IN_DIR).glob("*.toml"))
    for name in drop_ins:
        assert cni_table(booted.path(DROP_IN_DIR).joinpath(name).read_text())["bin_dirs"] == wanted
    if drop_ins:
        assert written == default

    version_reply, status, sandbox = run_pod(booted, CONFLIST, "pod-default")
    assert version_reply == "containerd %s" % version
    assert status["conditions"]["NetworkReady"]["status"], status
    assert sandbox.ip.startswith(SUBNET), sandbox
    record(containerd=version, config="config default (version %d)" % dialect, converge_seconds=seconds,
           rerun_changed=again.changed(booted.name), sandbox_ip=sandbox.ip, dump_bin_dirs=dirs,
           written_to=[DROP_IN_DIR + "/" + name for name in drop_ins] or [CONFIG])


# A user's own file in the dialect each release writes, and on 2.4 one that still names bin_dir.
USER_CASES = [
    ("2.2.9", "config-v3.toml"),
    ("2.3.7", "config-v4.toml"),
    ("2.4.2", "config-v4.toml"),
    ("2.4.2", "config-v3.toml"),
]


@pytest.mark.parametrize(("version", "user_file"), USER_CASES, ids=["-".join(case) for case in USER_CASES])
def test_user_file(version, user_file, containerd_node, mirror, inventory, run_playbook, role_vars):
    assert version in CONTAINERD_VERSIONS
    user = (USER_FILES / user_file).read_text()
    old_dirs = [cni_table(user).get("bin_dir")] if "bin_dir" in cni_table(user) else cni_table(user)["bin_dirs"]
    booted = containerd_node(version, name="ctrd-%s-%s" % (version, user_file.split(".")[0]))
    booted.path(CONFIG).write_text(user)
    restart_containerd(booted)

    first, seconds = site(run_playbook, inventory, role_vars, booted, [])
    assert first.rc == 0, first.describe()
    again, _again_seconds = site(run_playbook, inventory, role_vars, booted, [])
    assert again.rc == 0 and again.changed(booted.name) == 0, again.describe()

    written = booted.path(CONFIG).read_text()
    # Our dir first, the dirs the user named kept after it; bin_dir, which 2.1 and later no
    # longer need (and 2.4 no longer reads), is gone.
    wanted = ["/opt/cni/bin"] + [d for d in old_dirs if d != "/opt/cni/bin"]
    table = cni_table(written)
    assert table["bin_dirs"] == wanted and "bin_dir" not in table, written
    assert without_cni_keys(written) == without_cni_keys(user)
    dirs = searched_dirs(dump(booted))
    assert dirs == wanted

    _version, status, sandbox = run_pod(booted, CONFLIST, "pod-user")
    assert status["conditions"]["NetworkReady"]["status"], status
    assert sandbox.ip.startswith(SUBNET), sandbox
    record(containerd=version, config="user file %s" % user_file, converge_seconds=seconds,
           rerun_changed=again.changed(booted.name), sandbox_ip=sandbox.ip, dump_bin_dirs=dirs)
