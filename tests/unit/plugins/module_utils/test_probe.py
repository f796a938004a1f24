"""The CNI_COMMAND=VERSION probe against a real plugin binary and tiny script plugins."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from ansible_collections.nodeprep.cni.plugins.module_utils._probe import ProbeFailed, probe_plugin
from testbed_lib.in_process import REAL_PLUGIN_DIR, real_run_command, script_plugin

RUN = real_run_command()


def _script(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    os.chmod(path, 0o755)
    return str(path)


def test_real_bridge_answers_with_its_versions():
    answer = probe_plugin(RUN, os.path.join(REAL_PLUGIN_DIR, "bridge"))
    assert "1.0.0" in answer["supportedVersions"]
    assert answer["cniVersion"]


def test_probe_passes_cni_command_in_the_environment(tmp_path):
    # Answers only when CNI_COMMAND=VERSION is set, like a real plugin.
    path = _script(tmp_path, "picky", b'#!/bin/sh\n[ "$CNI_COMMAND" = VERSION ] || exit 3\necho \'{"cniVersion":"0.4.0"}\'\n')
    assert probe_plugin(RUN, path) == {"cniVersion": "0.4.0"}


def test_non_json_answer_fails_naming_the_plugin(tmp_path):
    path = _script(tmp_path, "chatty-bridge", b"#!/bin/sh\necho 'CNI bridge plugin v1'\n")
    with pytest.raises(ProbeFailed) as info:
        probe_plugin(RUN, path)
    assert "chatty-bridge" in str(info.value)
    assert "not JSON" in str(info.value)


def test_json_without_versions_fails(tmp_path):
    path = _script(tmp_path, "odd", script_plugin("odd", answer='{"hello":"world"}'))
    with pytest.raises(ProbeFailed, match="odd.*cniVersion"):
        probe_plugin(RUN, path)


def test_exit_1_fails_naming_plugin_code_and_stderr(tmp_path):
    path = _script(tmp_path, "broken-bridge", b"#!/bin/sh\necho 'exec format trouble' >&2\nexit 1\n")
    with pytest.raises(ProbeFailed) as info:
        probe_plugin(RUN, path)
    message = str(info.value)
    assert "broken-bridge" in message
    assert "exited 1" in message
    assert "exec format trouble" in message


def test_hanging_plugin_times_out(tmp_path):
    path = _script(tmp_path, "sleepy", b"#!/bin/sh\nexec sleep 5\n")
    with pytest.raises(ProbeFailed, match="sleepy.*within"):
        probe_plugin(RUN, path, timeout=0.3)


def test_file_that_cannot_execute_fails_naming_it(tmp_path):
    path = tmp_path / "not-executable"
    path.write_bytes(script_plugin("x"))
    os.chmod(path, 0o644)
    with pytest.raises(ProbeFailed, match="not-executable cannot be executed"):
        probe_plugin(RUN, str(path))


NOEXEC_CHILD = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, sys.argv[2])
    from ansible_collections.nodeprep.cni.plugins.module_utils._probe import ProbeFailed, probe_plugin
    from testbed_lib.in_process import real_run_command
    RUN = real_run_command()
    plugin = os.path.join(sys.argv[1], "bridge")
    with open(plugin, "w") as handle:
        handle.write("#!/bin/sh\\necho '{\\"cniVersion\\":\\"1.0.0\\"}'\\n")
    os.chmod(plugin, 0o755)
    try:
        probe_plugin(RUN, plugin)
    except ProbeFailed as exc:
        print(exc)
        sys.exit(0)
    print("probe unexpectedly succeeded")
    sys.exit(1)
""")


def _unshare_available() -> bool:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        return False
    try:
        return subprocess.run(["unshare", "-m", "--propagation", "private", "true"], check=False,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.skipif(not _unshare_available(),
                    reason="needs root and `unshare -m` to mount a noexec tmpfs in a private mount namespace; "
                           "without them the host's mounts would have to change, which tests must not do")
def test_noexec_mount_gives_the_remount_hint(tmp_path):
    # The tmpfs exists only inside the child's private mount namespace: the host never sees it.
    mountpoint = tmp_path / "noexec"
    mountpoint.mkdir()
    collections = [p for p in sys.path if p.endswith(os.path.join(".cache", "collections"))][0]
    script = 'mount -t tmpfs -o noexec,size=1m tmpfs "$1" && exec "$2" -c "$3" "$1" "$4"'
    proc = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
         str(mountpoint), sys.executable, NOEXEC_CHILD, collections],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60, check=False,
    )
    output = proc.stdout.decode()
    assert proc.returncode == 0, output + proc.stderr.decode()
    assert "bridge cannot be executed" in output
    assert "mounted noexec" in output
    assert os.listdir(mountpoint) == []  # the file lived on the namespace's tmpfs only
