"""containerd_state: absent on real nodes running real containerd, one node per config dialect.

Debian's 1.6 with its package file (version 2), 1.7 with a user's file that has no CRI table at
all (version 2), 2.2.9 with its ``config default`` (version 3) and 2.3.7 with its own (version 4,
importing conf.d, so our settings go to a drop-in): the containerd role converges (containerd's
own ``config dump`` names our dir), check mode predicts the undo and writes nothing, the undo
gives back the user's file byte for byte (sha256), removes everything of ours (record, drop-in,
the conf.d dir we made), restarts containerd, whose dump no longer names our dir, and a second
undo changes nothing and restarts nothing. All four nodes share each ansible-playbook run.
"""
from __future__ import annotations

import hashlib

import yaml

from testbed_lib.cri import CRI, searched_dirs
from testbed_lib.tree import snapshot

CONFIG = "/etc/containerd/config.toml"
OURS = "/opt/nodeprep-undo/bin"
UNDO_TASK = "Give containerd's config back the values it had before this collection"
NO_CRI_V2 = '# only the root dirs\nversion = 2\nroot = "/var/lib/containerd"\n\n[debug]\n  level = "info"\n'
NODES = {"bookworm": "v2 package file", "trixie": "v2 without a CRI table", "2.2.9": "v3 config default",
         "2.3.7": "v4 config default"}


def role_playbook(tmp_path, state):
    path = tmp_path / ("containerd_%s.yml" % state)
    path.write_text(yaml.safe_dump([{"name": "The runtime role", "hosts": "nodes", "gather_facts": False,
                                     "vars": {"containerd_state": state, "containerd_cni_bin_dirs": [OURS]},
                                     "roles": ["nodeprep.cni.containerd"]}]))
    return path


def main_pid(node) -> str:
    return node.run(["systemctl", "show", "-p", "MainPID", "--value", "containerd"]).stdout.strip()


def etc(node) -> dict:
    return {rel: entry for rel, entry in snapshot(node.path("/etc/containerd"), owners=True).items()
            if not rel.endswith("~")}


def test_absent_gives_back_each_dialects_file_byte_for_byte(containerd_node, inventory, run_playbook, tmp_path):
    nodes = {suite: containerd_node(suite, name="undo-" + suite.replace(".", "-")) for suite in NODES}
    nodes["trixie"].path(CONFIG).write_text(NO_CRI_V2)
    nodes["trixie"].run(["systemctl", "restart", "containerd"])
    with CRI(nodes["trixie"]) as cri:
        cri.wait_ready()
    before = {suite: (hashlib.sha256(node.path(CONFIG).read_bytes()).hexdigest(), etc(node))
              for suite, node in nodes.items()}
    inv = inventory(list(nodes.values()))

    applied = run_playbook(role_playbook(tmp_path, "present"), inv)
    assert applied.rc == 0, applied.describe()
    configured = {}
    for suite, node in nodes.items():
        assert OURS in searched_dirs(node.run(["containerd", "config", "dump"]).stdout), (suite, NODES[suite])
        configured[suite] = (snapshot(node.path("/etc/containerd"), owners=True), main_pid(node))

    predicted = run_playbook(role_playbook(tmp_path, "absent"), inv, check=True, diff=True)
    assert predicted.rc == 0, predicted.describe()
    for suite, node in nodes.items():
        assert predicted.changed(node.name) > 0, (suite, predicted.describe())
        assert (snapshot(node.path("/etc/containerd"), owners=True), main_pid(node)) == configured[suite], suite

    undone = run_playbook(role_playbook(tmp_path, "absent"), inv)
    assert undone.rc == 0, undone.describe()
    for suite, node in nodes.items():
        report = [task.result for task in undone.task_results(host=node.name) if task.task.endswith(UNDO_TASK)][-1]
        assert report["changed"] and report["left"] == [], (suite, report)
        assert report["restored"] or report["removed"], (suite, report)
        sha, tree = before[suite]
        assert hashlib.sha256(node.path(CONFIG).read_bytes()).hexdigest() == sha, (suite, NODES[suite])
        assert etc(node) == tree, (suite, NODES[suite])
        assert OURS not in node.run(["containerd", "config", "dump"]).stdout, suite
        # Restarted, and serving its CRI again.
        assert main_pid(node) != configured[suite][1], suite
        with CRI(node) as cri:
            cri.wait_ready()
        configured[suite] = main_pid(node)

    again = run_playbook(role_playbook(tmp_path, "absent"), inv)
    assert again.rc == 0, again.describe()
    for suite, node in nodes.items():
        assert again.changed(node.name) == 0 and main_pid(node) == configured[suite], (suite, again.describe())
