"""Makes the collection and the test helpers importable in every test.

``ansible_collections.nodeprep.cni`` resolves through <repo>/.cache/collections, where
tools/bootstrap links nodeprep/cni to the repo root; ``tests.testbed`` resolves from the repo.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COLLECTIONS_PATH = REPO / ".cache" / "collections"

for entry in (str(COLLECTIONS_PATH), str(REPO)):
    if entry not in sys.path:
        sys.path.insert(0, entry)

# Ansible run from the tests (ansible-playbook, ansible-doc) finds this collection too.
os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", str(COLLECTIONS_PATH))

# Nodes, the release mirror and the playbook runner, shared by integration and reliability tests.
pytest_plugins = ["tests.testbed.fixtures"]
