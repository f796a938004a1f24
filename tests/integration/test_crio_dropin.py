"""The containerd role's CRI-O side on a real node whose /usr is read-only (an immutable OS's shape).

CRI-O creates every ``plugin_dirs`` entry when it starts and does not start when it cannot, so an
entry that does not exist on a read-only filesystem is refused before anything is written, naming
the variable and the fix; entries that exist (even read-only) or can be created are written into
the ``crio.conf.d`` drop-in.
"""
from __future__ import annotations

import yaml

from testbed_lib.tree import snapshot

DROP_IN = "/etc/crio/crio.conf.d/10-nodeprep-cni.conf"


def role_playbook(tmp_path):
    path = tmp_path / "crio_role.yml"
    path.write_text(yaml.safe_dump([{"name": "The runtime role for CRI-O", "hosts": "nodes", "gather_facts": False,
                                     "roles": ["nodeprep.cni.containerd"]}]))
    return path


def test_a_plugin_dir_crio_cannot_create_is_refused_before_any_change(node, inventory, run_playbook, tmp_path):
    booted = node("crio-ro", readonly_usr=True)
    inv = inventory([booted])
    playbook = role_playbook(tmp_path)
    assert booted.run("touch /usr/.probe", check=False).returncode != 0, "/usr must be read-only"
    before = snapshot(booted.path("/etc"))
    wanted = {"containerd_runtime": "crio", "containerd_cni_bin_dirs": ["/opt/cni/bin", "/usr/libexec/cni"]}
    for check in (True, False):
        refused = run_playbook(playbook, inv, extra_vars=wanted, check=check)
        assert refused.rc != 0, refused.describe()
        message = " ".join(str(t.result.get("msg", "")) for t in refused.task_results(host=booted.name) if t.failed)
        assert "could not create /usr/libexec/cni (nearest existing: /usr/libexec)" in message, message
        assert "containerd_cni_bin_dirs" in message and "Nothing was changed" in message, message
        assert "/opt/cni/bin" not in message.split("could not create")[1].split("(read-only")[0]
        assert snapshot(booted.path("/etc")) == before

    # An existing read-only dir is fine (CRI-O only creates missing ones), as is one it can create.
    accepted = dict(wanted, containerd_cni_bin_dirs=["/opt/cni/bin", "/usr/lib", "/var/lib/cni/extra"])
    written = run_playbook(playbook, inv, extra_vars=accepted)
    assert written.rc == 0, written.describe()
    text = booted.path(DROP_IN).read_text()
    assert 'network_dir = "/etc/cni/net.d"' in text
    assert '"/opt/cni/bin",\n  "/usr/lib",\n  "/var/lib/cni/extra",\n]' in text, text
    again = run_playbook(playbook, inv, extra_vars=accepted)
    assert again.rc == 0 and again.changed(booted.name) == 0, again.describe()

    # An earlier release kept a backup beside the drop-in, which CRI-O reads as one more drop-in.
    booted.path(DROP_IN + ".123.2026-01-01@00:00:00~").write_text(text.replace("/var/lib/cni/extra", "/srv/old"))
    # containerd_state: absent takes the drop-in (and such backups) back: /etc's files are as before.
    undo = dict(accepted, containerd_state="absent")
    predicted = run_playbook(playbook, inv, extra_vars=undo, check=True)
    assert predicted.rc == 0 and predicted.changed(booted.name) > 0, predicted.describe()
    assert booted.path(DROP_IN).is_file()
    undone = run_playbook(playbook, inv, extra_vars=undo)
    assert undone.rc == 0 and undone.changed(booted.name) > 0, undone.describe()
    assert files(snapshot(booted.path("/etc"))) == files(before)
    settled = run_playbook(playbook, inv, extra_vars=undo)
    assert settled.rc == 0 and settled.changed(booted.name) == 0, settled.describe()


def files(tree: dict) -> dict:
    """The files of a snapshot: the role leaves crio.conf.d, which CRI-O's packages ship, in place."""
    return {rel: entry for rel, entry in tree.items() if entry[0] != "dir"}
