"""Fixtures for every scenario's testinfra verifier (pytest loads this conftest for molecule/*/tests).

``testbed_node(name)`` gives the test bed's own handle on a platform's node: ``run()`` (nsenter,
much faster than testinfra's Ansible backend), ``path()`` (the node's files seen from the host)
and ``restart()`` (a clean shutdown and a boot on the same files).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(PROJECT))

from testbed_lib.node import BootedNode  # noqa: E402  (needs the project on sys.path)


class TestbedNode(BootedNode):
    """A Molecule platform's node, restored from the state tools/testbed.py node-up wrote."""

    state_file: Path

    @classmethod
    def load(cls, name: str) -> "TestbedNode":
        state_file = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "nodes" / name / "node.json"
        node = cls.from_state(json.loads(state_file.read_text()))
        node.state_file = state_file
        return node

    def restart(self) -> "TestbedNode":
        super().restart()
        self.state_file.write_text(json.dumps(self.state()))
        return self


@pytest.fixture
def testbed_node():
    return TestbedNode.load
