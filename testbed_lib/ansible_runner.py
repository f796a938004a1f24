"""Runs ansible-playbook against test nodes and turns its output into data tests can assert on."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
COLLECTIONS_PATH = REPO / ".cache" / "collections"
STAT_KEYS = ("ok", "changed", "failures", "unreachable", "skipped", "rescued", "ignored")


def ansible_bin(tool: str) -> str:
    """The tool from the running venv, else the repo's venv (tests may run from either)."""
    for directory in (Path(sys.executable).parent, REPO / ".venv" / "bin"):
        if (directory / tool).is_file():
            return str(directory / tool)
    return tool


def write_inventory(path: str | os.PathLike, nodes, group: str = "nodes",
                    host_vars: dict | None = None, group_vars: dict | None = None) -> Path:
    """Writes a YAML inventory with every node in ``group``, keyed by node.name.

    ``host_vars`` maps a node name to extra variables for that host.
    """
    hosts = {}
    for node in nodes:
        variables = dict(node.inventory_vars())
        variables.update((host_vars or {}).get(node.name, {}))
        hosts[node.name] = variables
    inventory = {"all": {"children": {group: {"hosts": hosts, "vars": dict(group_vars or {})}}}}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(inventory, sort_keys=True))
    return path


@dataclass
class TaskResult:
    play: str
    task: str
    host: str
    result: dict

    @property
    def changed(self) -> bool:
        return bool(self.result.get("changed"))

    @property
    def failed(self) -> bool:
        return bool(self.result.get("failed")) or bool(self.result.get("unreachable"))

    @property
    def skipped(self) -> bool:
        return bool(self.result.get("skipped"))


@dataclass
class PlaybookResult:
    rc: int
    stdout: str
    stderr: str
    command: list[str]
    stats: dict[str, dict[str, int]] = field(default_factory=dict)
    tasks: list[TaskResult] = field(default_factory=list)
    output: dict | None = None  # the whole json callback document, when used

    def host_stats(self, host: str) -> dict[str, int]:
        return self.stats[host]

    def changed(self, host: str) -> int:
        return self.stats[host]["changed"]

    def failed(self, host: str) -> int:
        return self.stats[host]["failed"]

    def task_results(self, task: str | None = None, host: str | None = None) -> list[TaskResult]:
        return [t for t in self.tasks if (task is None or t.task == task) and (host is None or t.host == host)]

    def result(self, task: str, host: str) -> dict:
        """The result of the last run of ``task`` on ``host``."""
        matches = self.task_results(task, host)
        if not matches:
            raise KeyError("no result for task %r on %r" % (task, host))
        return matches[-1].result

    def describe(self) -> str:
        """Everything worth seeing when an assertion on this run fails."""
        return "rc=%d\ncommand: %s\nstats: %s\nstdout:\n%s\nstderr:\n%s" % (
            self.rc, " ".join(self.command), self.stats, self.stdout[-20000:], self.stderr[-5000:])


def ansible_env(extra: dict | None = None, json_output: bool = True, local_temp: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_PATH),
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        # The chroot connection pipelines modules over stdin: no temp files in the node.
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_LOCAL_TEMP": local_temp or tempfile.gettempdir(),
        "ANSIBLE_REMOTE_TEMP": "/tmp/.ansible-remote",
        "ANSIBLE_INTERPRETER_PYTHON": "/usr/bin/python3",
        "PYTHONUNBUFFERED": "1",
    })
    if json_output:
        env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.builtin.json"
    if extra:
        env.update({k: str(v) for k, v in extra.items()})
    return env


def playbook_command(playbook, inventory, extra_vars=None, check=False, diff=False, limit=None,
                     verbosity: int = 0, args: list[str] | None = None) -> list[str]:
    command = [ansible_bin("ansible-playbook"), "-i", str(inventory), str(playbook)]
    if extra_vars:
        command += ["-e", json.dumps(extra_vars)]
    if check:
        command.append("--check")
    if diff:
        command.append("--diff")
    if limit:
        command += ["--limit", limit]
    if verbosity:
        command.append("-" + "v" * verbosity)
    return command + list(args or [])


def run_playbook(playbook, inventory, extra_vars: dict | None = None, check: bool = False,
                 diff: bool = False, limit: str | None = None, env: dict | None = None,
                 json_output: bool = True, cwd=None, timeout: float = 900,
                 verbosity: int = 0, args: list[str] | None = None) -> PlaybookResult:
    """Runs ansible-playbook; never raises on a failed play (assert on rc/stats instead)."""
    command = playbook_command(playbook, inventory, extra_vars, check, diff, limit, verbosity, args)
    with tempfile.TemporaryDirectory(prefix="ansible-local-") as local_temp:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False,
                                   env=ansible_env(env, json_output, local_temp), cwd=str(cwd or REPO))
    result = PlaybookResult(completed.returncode, completed.stdout, completed.stderr, command)
    if json_output:
        parse_json_output(result)
    else:
        result.stats = parse_recap(completed.stdout)
    return result


def _normalise_stats(raw: dict) -> dict[str, int]:
    stats = {key: int(raw.get(key, 0)) for key in STAT_KEYS}
    stats["failed"] = stats["failures"]
    return stats


def parse_json_output(result: PlaybookResult) -> None:
    start = result.stdout.find("{")
    if start < 0:
        return
    try:
        document = json.loads(result.stdout[start:])
    except json.JSONDecodeError:
        return
    result.output = document
    result.stats = {host: _normalise_stats(raw) for host, raw in document.get("stats", {}).items()}
    for play in document.get("plays", []):
        play_name = play.get("play", {}).get("name", "")
        for task in play.get("tasks", []):
            task_name = task.get("task", {}).get("name", "")
            for host, host_result in task.get("hosts", {}).items():
                result.tasks.append(TaskResult(play_name, task_name, host, host_result))


def parse_recap(stdout: str) -> dict[str, dict[str, int]]:
    """Parses the PLAY RECAP of the default callback: ``host : ok=1 changed=0 ...``."""
    stats = {}
    in_recap = False
    for line in stdout.splitlines():
        if line.startswith("PLAY RECAP"):
            in_recap = True
            continue
        if in_recap and " : " in line:
            host, counters = line.split(" : ", 1)
            raw = dict(item.split("=", 1) for item in counters.split() if "=" in item)
            stats[host.strip()] = _normalise_stats(raw)
    return stats


def run_adhoc(inventory, module: str, module_args: dict | None = None, pattern: str = "all",
              env: dict | None = None, cwd=None, timeout: float = 600) -> PlaybookResult:
    """Runs one module with ``ansible`` (no playbook) and parses its JSON output like run_playbook;
    ``result.tasks`` then holds one result per host. Never raises on a failed run."""
    command = [ansible_bin("ansible"), pattern, "-i", str(inventory), "-m", module]
    if module_args:
        command += ["-a", json.dumps(module_args)]
    # The ad-hoc command loads no stdout callback but the default unless told to.
    extra = dict(env or {}, ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
    with tempfile.TemporaryDirectory(prefix="ansible-local-") as local_temp:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False,
                                   env=ansible_env(extra, True, local_temp), cwd=str(cwd or REPO))
    result = PlaybookResult(completed.returncode, completed.stdout, completed.stderr, command)
    parse_json_output(result)
    return result
