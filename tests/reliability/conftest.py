"""Reliability suite: failures, kills, concurrency and hostile input against real nodes.

Every case ends with the same questions: did the node's files end up as promised, and was any of
the user's data lost? ``user_files`` records the user's files before a case and counts the bytes
that can no longer be found afterwards (at their place, or kept under ``.adopted/``); the session
ends with one figures line: cases tried, passed, bytes of user data lost.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

_FIGURES = {"tried": 0, "passed": 0, "lost_bytes": 0}


class UserFiles:
    """The user's files on one node, by content: ``protect(node, path)`` then ``lost()``."""

    def __init__(self):
        self._protected: list[tuple[object, str, str, int]] = []

    def protect(self, node, inside: str) -> None:
        data = node.path(inside).read_bytes()
        self._protected.append((node, inside, hashlib.sha256(data).hexdigest(), len(data)))

    def lost(self, adopted_dir: str = "/opt/cni/versions/.adopted") -> int:
        """Bytes of protected files found neither at their path nor anywhere under adopted_dir."""
        lost = 0
        for node, inside, digest, size in self._protected:
            candidates = [node.path(inside)]
            adopted = node.path(adopted_dir)
            if adopted.is_dir():
                candidates += [Path(d) / f for d, _dirs, files in os.walk(adopted) for f in files]
            if not any(_digest(path) == digest for path in candidates):
                lost += size
        _FIGURES["lost_bytes"] += lost
        return lost


def _digest(path: Path) -> str | None:
    try:
        if path.is_symlink() or not path.is_file():
            return None
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


@pytest.fixture
def user_files() -> UserFiles:
    return UserFiles()


def pytest_runtest_logreport(report):
    if report.when == "call":
        _FIGURES["tried"] += 1
        _FIGURES["passed"] += int(report.passed)
    elif report.when == "setup" and report.failed:
        _FIGURES["tried"] += 1


def pytest_terminal_summary(terminalreporter):
    if _FIGURES["tried"]:
        terminalreporter.write_line(
            "reliability figures: %(tried)d cases tried, %(passed)d passed, %(lost_bytes)d bytes of user data lost"
            % _FIGURES)
