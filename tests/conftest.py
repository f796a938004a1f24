"""Makes the collection and the test helpers importable in every test.

``ansible_collections.nodeprep.cni`` resolves through <repo>/.cache/collections, where
tools/bootstrap links nodeprep/cni to the repo root; ``testbed_lib`` resolves from the repo.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
COLLECTIONS_PATH = REPO / ".cache" / "collections"

for entry in (str(COLLECTIONS_PATH), str(REPO)):
    if entry not in sys.path:
        sys.path.insert(0, entry)

# Ansible run from the tests (ansible-playbook, ansible-doc) finds this collection too.
os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", str(COLLECTIONS_PATH))

# Nodes, the release mirror and the playbook runner, shared by integration and reliability tests.
pytest_plugins = ["tests.fixtures"]


# The repository stands alone: no test reads a file that sits next to the clone (a sibling checkout,
# shared data of a workspace) rather than inside it. Python's audit hook sees every file this test
# process opens; the machine's own dirs (home, temp, system paths) are not siblings and stay allowed.
def _sibling_root() -> str | None:
    parent = REPO.parent
    allowed = {Path("/"), Path.home().resolve(), Path(tempfile.gettempdir()).resolve()}
    if parent in allowed or any(parent in a.parents for a in allowed):
        return None
    return str(parent) + os.sep


_SIBLINGS = _sibling_root()
_REPO_PREFIX = str(REPO) + os.sep
_READS_OUTSIDE: list[str] = []


def _watch_opens(event: str, args: tuple) -> None:
    if event != "open" or _SIBLINGS is None or not isinstance(args[0], (str, bytes, os.PathLike)):
        return
    path = os.path.realpath(os.fsdecode(args[0]))
    if path.startswith(_SIBLINGS) and not path.startswith(_REPO_PREFIX) and path not in _READS_OUTSIDE:
        _READS_OUTSIDE.append(path)


sys.addaudithook(_watch_opens)


def pytest_sessionfinish(session, exitstatus):  # pylint: disable=unused-argument
    worker_output = getattr(session.config, "workeroutput", None)
    if worker_output is not None:
        # A pytest-xdist worker (the integration lane runs two): its exit status is not the run's, so
        # what it read goes to the controller, which fails the run below.
        worker_output["reads_outside"] = _READS_OUTSIDE
        return
    if _READS_OUTSIDE:
        session.exitstatus = 1
        sys.stderr.write("tests read files outside the repository, next to it: %s\n" % ", ".join(_READS_OUTSIDE))


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):  # pylint: disable=unused-argument
    """pytest-xdist: a worker ended; keep what it read outside the repository."""
    for path in getattr(node, "workeroutput", {}).get("reads_outside", []):
        if path not in _READS_OUTSIDE:
            _READS_OUTSIDE.append(path)
