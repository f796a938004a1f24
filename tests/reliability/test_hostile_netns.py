"""The netns role on a real systemd node, given netns_dir values that are hostile, not absolute, or
that name a symlink or a file: refused before any change, or mounted by real systemd exactly where
asked, with no part of the path run as code. report.ok needs a writable mount."""
from __future__ import annotations

import json
import subprocess

import yaml

from testbed_lib.tree import snapshot

# Valid, absolute and normalised, yet shell code, a specifier and a variable: each payload, if it
# ever ran, would leave a file in /srv/m.
HOSTILE = "/srv/net ns'$(touch /srv/m/1)'\"`touch /srv/m/2`\";touch /srv/m/3;%n$HOME\\x-y"


def playbook(tmp_path, tasks_from=None):
    role = {"ansible.builtin.include_role": {"name": "nodeprep.cni.netns"}, "name": "The netns role"}
    if tasks_from:
        role["ansible.builtin.include_role"]["tasks_from"] = tasks_from
    path = tmp_path / ("netns-%s.yml" % (tasks_from or "main").replace(".yml", ""))
    path.write_text(yaml.safe_dump([{"name": "netns", "hosts": "nodes", "gather_facts": False, "tasks": [
        role, {"name": "Show the report", "ansible.builtin.debug": {"var": "netns_report"}}]}]))
    return path


def failure(result) -> str:
    return " ".join(str(item.get("msg", "")) for task in result.task_results() if task.failed
                    for item in task.result.get("results", [task.result]))


def report(result, host) -> dict:
    [shown] = [t for t in result.task_results() if t.task == "Show the report" and t.host == host]
    return shown.result["netns_report"]


def test_netns_dir_refusals_change_nothing_and_a_hostile_dir_is_mounted_as_named(
        node, inventory, run_playbook, tmp_path, user_files):
    booted = node("netns-hostile")
    inv = inventory([booted])
    booted.run("mkdir -p /srv/m /srv/elsewhere && echo mine > /srv/ns-file && ln -s /srv/elsewhere /srv/ns-link")
    user_files.protect(booted, "/srv/ns-file")
    before = snapshot(booted.path("/etc"))

    for value, fragment in (
            ("/srv/ns-link", "netns_dir /srv/ns-link is a symlink on this node"),
            ("/srv/ns-file", "netns_dir /srv/ns-file is a file, not a directory on this node"),
            ("srv/netns", "netns_dir 'srv/netns' is not an absolute path; set netns_dir to an absolute, normalised"),
            ("/srv/../run/netns", "netns_dir '/srv/../run/netns' is not a normalised path (write it as /run/netns)")):
        refused = run_playbook(playbook(tmp_path), inv, extra_vars={"netns_dir": value})
        assert refused.rc != 0, refused.describe()
        assert fragment in failure(refused), failure(refused)
        assert snapshot(booted.path("/etc")) == before
        assert booted.run(["findmnt", "--mountpoint", value], check=False).returncode != 0
    assert booted.run("readlink /srv/ns-link").stdout.strip() == "/srv/elsewhere"
    assert user_files.lost() == 0

    # The legacy path is the dir itself (/var/run is a link to /run here, and the dir is elsewhere).
    hostile = {"netns_dir": HOSTILE, "netns_var_run_dir": HOSTILE}
    done = run_playbook(playbook(tmp_path), inv, extra_vars=hostile)
    assert done.rc == 0, done.describe()
    unit = subprocess.run(["systemd-escape", "--path", "--suffix=mount", "--", HOSTILE],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert booted.run(["systemctl", "is-active", unit, "nodeprep-netns-propagation.service"]).stdout.split() == ["active"] * 2
    [mount] = json.loads(booted.run(["findmnt", "--json", "-o", "TARGET,FSTYPE,PROPAGATION,OPTIONS",
                                     "--mountpoint", HOSTILE]).stdout)["filesystems"]
    assert (mount["target"], mount["fstype"], mount["propagation"]) == (HOSTILE, "tmpfs", "shared")
    assert booted.run("ls -A /srv/m").stdout == "", "a part of netns_dir ran as shell code"
    first = report(done, booted.name)
    assert first["ok"] is True and first["writable"] is True and first["dir"] == HOSTILE, first

    # The same tmpfs made read-only: mounted, shared, persistent, yet no namespace can be made there.
    booted.run(["mount", "-o", "remount,ro", HOSTILE])
    checked = run_playbook(playbook(tmp_path, "report.yml"), inv, extra_vars=hostile)
    assert checked.rc == 0, checked.describe()
    second = report(checked, booted.name)
    assert second["mounted"] is True and second["shared"] is True and second["persistent"] is True
    assert second["writable"] is False and second["ok"] is False, second
