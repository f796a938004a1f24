"""Hostile CNI configs and NetworkAttachmentDefinitions against the real multus coverage step.

The step runs as the role runs it (include_role tasks_from coverage.yml, the real cni_info module),
on the controller over scratch dirs, each run in a process group of its own with a deadline and a
memory cap, so a case that would run for hours or eat the machine fails instead of hanging the suite.
Every case ends with the same questions: did it end in bounded time, was each input named, and is
every file the user had still there, byte for byte.
"""
from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from testbed_lib import ansible_runner

REAL_PLUGIN_DIR = "/usr/lib/cni"
DEADLINE = 120
MEMORY_CAP = 3 << 30

# 510 bytes: nine levels of nine aliases stand for 9**9 (387 million) strings.
BILLION_LAUGHS = "\n".join([
    "apiVersion: k8s.cni.cncf.io/v1",
    "kind: NetworkAttachmentDefinition",
    "metadata: {name: lol, namespace: default}",
    "spec:",
    "  config: '{\"cniVersion\": \"0.3.1\", \"type\": \"bridge\"}'",
    "  a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]",
] + ["  %s: &%s [%s]" % (cur, cur, ",".join(["*" + prev] * 9)) for prev, cur in zip("abcdefgh", "bcdefghi")]) + "\n"


class Controller:
    """The controller as a "node" for user_files: its paths are the paths."""

    @staticmethod
    def path(inside: str) -> Path:
        return Path(inside)


def process_tree(pid: int) -> list:
    """``pid`` and its descendants (Ansible's workers start sessions of their own, so a process
    group does not hold them)."""
    children: dict = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/stat" % entry) as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry))
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        pending.extend(children.get(current, []))
    return tree


def stop_tree(pid: int) -> None:
    for member in process_tree(pid):
        try:
            os.kill(member, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def coverage_step(tmp_path: Path, **role_vars) -> tuple[ansible_runner.PlaybookResult, float]:
    """The multus role's coverage step on localhost; (result, seconds). A run past the deadline is
    stopped with every process it started and fails the case."""
    playbook = tmp_path / "coverage.yml"
    playbook.write_text(yaml.safe_dump([{"name": "Coverage step", "hosts": "localhost", "gather_facts": False,
                                         "tasks": [{"name": "Run the multus coverage step",
                                                    "ansible.builtin.include_role": {"name": "nodeprep.cni.multus",
                                                                                     "tasks_from": "coverage.yml"}}]}]))
    inventory = tmp_path / "localhost.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    values = {"multus_versions_dir": str(tmp_path / "versions"), "cni_plugins_bin_dir": str(tmp_path / "bin"),
              "multus_coverage_plugin_dirs": [REAL_PLUGIN_DIR], "multus_coverage_conf_dirs": []}
    values.update(role_vars)
    command = ansible_runner.playbook_command(playbook, inventory, values)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ansible-local-") as local_temp:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(tmp_path),
                                   env=ansible_runner.ansible_env(None, True, local_temp), start_new_session=True,
                                   preexec_fn=_limit_memory)  # pylint: disable=subprocess-popen-preexec-fn
        try:
            stdout, stderr = process.communicate(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            stop_tree(process.pid)
            process.communicate()
            pytest.fail("the coverage step still ran after %d s" % DEADLINE)
    result = ansible_runner.PlaybookResult(process.returncode, stdout, stderr, command)
    ansible_runner.parse_json_output(result)
    return result, time.monotonic() - started


def failure_messages(result) -> str:
    return " ".join(str(item.get("msg", "")) for task in result.task_results() if task.failed
                    for item in task.result.get("results", [task.result]))


def task(result, name: str):
    [found] = [t for t in result.task_results() if t.task.split(" : ")[-1] == name]
    return found


def test_a_billion_laughs_nad_is_refused_in_seconds_naming_the_file(tmp_path, user_files):
    nad = tmp_path / "nads" / "lol.yaml"
    nad.parent.mkdir()
    nad.write_text(BILLION_LAUGHS)
    assert len(BILLION_LAUGHS.encode()) < 520
    user_files.protect(Controller, str(nad))
    result, seconds = coverage_step(tmp_path, multus_network_attachment_files=[str(nad)])
    message = failure_messages(result)
    print("refused in %.1f s: %s" % (seconds, message))
    assert result.rc != 0, result.describe()
    assert ("%s: YAML aliases are refused in a NetworkAttachmentDefinition (found an alias (*a) at line 7, column 10):"
            " nested aliases can stand for billions of values; write the definition out in full" % nad) in message
    assert seconds < 60
    assert user_files.lost() == 0


def test_only_spec_config_of_a_nad_reaches_the_node(tmp_path):
    """Whatever else a definition carries (here 5000 annotations) never reaches the module."""
    nad = tmp_path / "big.yaml"
    nad.write_text(yaml.safe_dump({
        "apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": "big", "namespace": "apps", "annotations": {"a%d" % i: "x" * 50 for i in range(5000)}},
        "spec": {"config": json.dumps({"cniVersion": "0.3.1", "type": "macvlan", "ipam": {"type": "static"}})}}))
    result, _seconds = coverage_step(tmp_path, multus_network_attachment_files=[str(nad)], multus_coverage_report_only=True)
    assert result.rc == 0, result.describe()
    checked = task(result, "Check that every plugin type a config names is installed at a CNI version it accepts")
    [attachment] = checked.result["invocation"]["module_args"]["network_attachments"]
    assert attachment["definition"] == [{"kind": "NetworkAttachmentDefinition",
                                         "metadata": {"name": "big", "namespace": "apps"},
                                         "spec": {"config": yaml.safe_load(nad.read_text())["spec"]["config"]}}]
    [entry] = checked.result["configs"]
    assert entry["path"] == "%s#apps/big" % nad and entry["types"] == ["macvlan", "static"]


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_a_hostile_conf_dir_is_named_file_by_file_in_bounded_time(tmp_path, user_files):
    conf = tmp_path / "net.d"
    conf.mkdir()
    files = {
        # Go's decoder reads 10000 levels; this one is valid and covered.
        "10-deep.conflist": '{"cniVersion": "0.4.0", "name": "deep", "plugins": [{"type": "bridge", "x": %s}]}' % nested(5000),
        "20-plugins-object.conflist": json.dumps({"cniVersion": "0.4.0", "name": "o", "plugins": {"type": "bridge"}}),
        "30-no-plugins.conflist": json.dumps({"cniVersion": "0.4.0", "name": "n"}),
        "40-type-number.conf": json.dumps({"cniVersion": "0.4.0", "name": "t", "type": 7}),
        "50-no-type.conf": json.dumps({"cniVersion": "0.4.0", "name": "u"}),
    }
    for name, text in files.items():
        (conf / name).write_text(text)
        user_files.protect(Controller, str(conf / name))
    os.symlink(str(tmp_path / "gone.conflist"), str(conf / "60-dangling.conflist"))
    os.symlink("70-loop.conf", str(conf / "70-loop.conf"))
    os.mkfifo(str(conf / "80-fifo.conflist"))
    not_a_dir = tmp_path / "file.d"
    not_a_dir.write_text("a file")
    user_files.protect(Controller, str(not_a_dir))

    result, seconds = coverage_step(tmp_path, multus_coverage_conf_dirs=[str(conf), str(not_a_dir)])
    assert result.rc != 0, result.describe()
    checked = task(result, "Check that every plugin type a config names is installed at a CNI version it accepts")
    errors = dict((entry["path"], entry["error"]) for entry in checked.result["configs"])
    print("named in %.1f s:" % seconds, json.dumps(errors, indent=2))
    assert errors == {
        str(conf / "10-deep.conflist"): None,
        str(conf / "20-plugins-object.conflist"): "%s: 'plugins' is an object, not a list" % (conf / "20-plugins-object.conflist"),
        str(conf / "30-no-plugins.conflist"):
            "%s has no plugins: no 'plugins' list (and no .conf files in %s)" % (conf / "30-no-plugins.conflist", conf / "n"),
        str(conf / "40-type-number.conf"): "%s.type is a number, not a string" % (conf / "40-type-number.conf"),
        str(conf / "50-no-type.conf"): "%s has no plugin 'type'" % (conf / "50-no-type.conf"),
        str(conf / "60-dangling.conflist"): "%s is a dangling symlink (to %s)" % (conf / "60-dangling.conflist", tmp_path / "gone.conflist"),
        str(conf / "70-loop.conf"): "%s is a symlink loop" % (conf / "70-loop.conf"),
        str(conf / "80-fifo.conflist"): "%s is a FIFO (the runtime would block reading it)" % (conf / "80-fifo.conflist"),
        str(not_a_dir): "conf dir %s is not a directory" % not_a_dir,
    }
    message = failure_messages(result)
    assert all(error in message for error in errors.values() if error)
    assert checked.result["coverage"]["configs"] == 9
    assert user_files.lost() == 0
