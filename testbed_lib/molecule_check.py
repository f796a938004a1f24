"""Molecule's check-mode step: converge with --check must report changed=0 and touch no node.

Every node's overlay upper dir holds exactly what changed on it since boot, so comparing a
listing of it (type, mode, sha256, link target) before and after the run catches any write.
Paths that a running system rewrites by itself are left out.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

# Run as a script (molecule/shared/check_mode.yml): the package is found from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from testbed_lib.tree import snapshot  # noqa: E402  pylint: disable=wrong-import-position

# Written by the node's own services or by Ansible's connection, never by the roles under test.
VOLATILE = ("root/.ansible", "tmp", "var/tmp", "var/log", "var/lib/systemd", "var/cache/ldconfig", "run")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--inventory", required=True)
    parser.add_argument("--instance-config", required=True)
    parser.add_argument("playbook")
    args = parser.parse_args()
    instances = yaml.safe_load(Path(args.instance_config).read_text()) or []
    uppers = {i["instance"]: Path(i["address"]).parent / "upper" for i in instances}
    before = {name: snapshot(upper, skip=VOLATILE) for name, upper in uppers.items()}
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
    playbook_bin = Path(sys.executable).parent / "ansible-playbook"
    result = subprocess.run([str(playbook_bin), "--check", "--diff", "-i", args.inventory, args.playbook],
                            capture_output=True, text=True, env=env, check=False)
    problems = []
    try:
        output = json.loads(result.stdout)
    except json.JSONDecodeError:
        print(result.stdout[-4000:], result.stderr[-4000:])
        return 1
    for host, stats in output["stats"].items():
        print("%s: %s" % (host, " ".join("%s=%s" % item for item in sorted(stats.items()))))
        if stats.get("changed") or stats.get("failures") or stats.get("unreachable"):
            problems.append("%s: check mode reported %s" % (host, stats))
    for play in output["plays"]:
        for task in play["tasks"]:
            for host, outcome in task["hosts"].items():
                if outcome.get("changed") or outcome.get("failed"):
                    problems.append("%s: task %r %s: %s" % (
                        host, task["task"]["name"], "failed" if outcome.get("failed") else "changed",
                        outcome.get("msg", "")))
    for name, upper in uppers.items():
        after = snapshot(upper, skip=VOLATILE)
        differing = sorted(k for k in set(before[name]) | set(after) if before[name].get(k) != after.get(k))
        if differing:
            problems.append("%s: check mode changed files on the node: %s" % (name, ", ".join(differing)))
    for problem in problems:
        print("FAIL " + problem)
    if result.returncode and not problems:
        problems.append("ansible-playbook exited %d" % result.returncode)
        print(result.stderr[-4000:])
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
