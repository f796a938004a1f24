"""Reliability suite: failures, kills, concurrency and hostile input against real nodes.

Every case ends with the same questions: did the node's files end up as promised, and was any of
the user's data lost? ``user_files`` records the user's files before a case and counts the bytes
that can no longer be found afterwards (at their place, or kept under ``.adopted/``); the session
ends with one figures line: cases tried, cases held, bytes of user data lost. A test that walks
many cases (every kill point of a run) counts each through the ``cases`` fixture; any other test
is one case.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

_FIGURES = {"tried": 0, "held": 0, "lost_bytes": 0}
# Cases of the test now running: a test that walks many cases (kill points, inputs) counts each.
_CURRENT = {"tried": 0, "held": 0}


class Cases:
    """``tried()`` when a case starts, ``held()`` once every promise of it was checked."""

    @staticmethod
    def tried() -> None:
        _CURRENT["tried"] += 1

    @staticmethod
    def held() -> None:
        _CURRENT["held"] += 1


@pytest.fixture
def cases() -> Cases:
    return Cases()


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


def _ours(nodeid: str) -> bool:
    # Hooks of this conftest see every test of the session: count only this suite's.
    return nodeid.startswith("tests/reliability/")


def pytest_runtest_setup(item):
    _CURRENT.update(tried=0, held=0)


def pytest_runtest_logreport(report):
    if not _ours(report.nodeid):
        return
    if report.when == "call":
        if _CURRENT["tried"]:
            _FIGURES["tried"] += _CURRENT["tried"]
            _FIGURES["held"] += _CURRENT["held"]
        else:
            _FIGURES["tried"] += 1
            _FIGURES["held"] += int(report.passed)
    elif report.when == "setup" and report.failed:
        _FIGURES["tried"] += 1


def pytest_terminal_summary(terminalreporter):
    if _FIGURES["tried"]:
        terminalreporter.write_line(
            "reliability figures: %(tried)d cases tried, %(held)d held, %(lost_bytes)d bytes of user data lost" % _FIGURES)
