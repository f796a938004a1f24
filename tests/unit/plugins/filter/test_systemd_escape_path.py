"""systemd_escape_path and systemd_exec_arg against the real systemd-escape and systemd's own parser rules."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.nodeprep.cni.plugins.filter.systemd_escape_path import (
    path_problem,
    systemd_escape_path,
    systemd_exec_arg,
)

HOSTILE = ["/run/netns", "/var/run/netns", "/run/net ns", "/run/net-ns", "/var/run/\u00fc\u6f22", "/run/a\\b",
           "/.hidden/x", "/run/.x", "/run/x:y_z.w", "/run/%n%%", "/run/'q\"", "/run/$(id)`id`", "/run/a~b+c@d,e=f",
           "/run/ lead", "/run/*?[x]", "/run/-dash", "/run/a;b&c|d>e"]


@pytest.mark.parametrize("path", HOSTILE)
def test_unit_names_match_the_real_systemd_escape(path):
    tool = shutil.which("systemd-escape")
    assert tool, "systemd-escape is missing: run tools/bootstrap (Debian package systemd)"
    real = subprocess.run([tool, "--path", "--suffix=mount", "--", path], capture_output=True, text=True, check=True)
    assert systemd_escape_path(path, "netns_dir") == real.stdout.strip()


@pytest.mark.parametrize("path, problem", [
    ("run/netns", "is not an absolute path"),
    ("/run/../netns", "is not a normalised path (write it as /netns)"),
    ("/run//netns", "is not a normalised path (write it as /run/netns)"),
    ("/run/netns/", "is not a normalised path (write it as /run/netns)"),
    ("/run/./netns", "is not a normalised path (write it as /run/netns)"),
    ("//run/netns", "is not a normalised path (write it as /run/netns)"),
    ("/", "is the root directory"),
    ("/run/net\nns", "holds a control character"),
    ("/run/netns ", "ends with white space"),
    ("", "is not a path"),
])
def test_paths_a_unit_cannot_name_are_refused_naming_the_variable_and_the_fix(path, problem):
    assert path_problem(path).startswith(problem)
    with pytest.raises(AnsibleFilterError) as caught:
        systemd_escape_path(path, "netns_dir")
    message = str(caught.value)
    assert message.startswith("netns_dir %r %s" % (path, problem)) and "set netns_dir to an absolute, normalised" in message


def test_the_real_tool_refuses_what_we_refuse():
    tool = shutil.which("systemd-escape")
    for path in ("/run/../netns", "run/netns"):
        real = subprocess.run([tool, "--path", "--", path], capture_output=True, text=True, check=False)
        assert real.returncode != 0 or "not an absolute" in real.stderr


def test_a_name_longer_than_systemd_allows_is_refused():
    with pytest.raises(AnsibleFilterError, match="longer than systemd's 255 characters"):
        systemd_escape_path("/run/" + "\u00fc" * 50, "netns_dir")


@pytest.mark.parametrize("word, line", [
    ("/bin/mount", "/bin/mount"),
    ("/run/net ns", '"/run/net ns"'),
    ("/run/%n", '"/run/%%n"'),
    ("/run/$HOME ${X}", '"/run/$$HOME $${X}"'),
    ('/run/"q"\\x', '"/run/\\"q\\"\\\\x"'),
])
def test_exec_words_are_quoted_so_systemd_reads_them_back(word, line):
    assert systemd_exec_arg(word) == line
