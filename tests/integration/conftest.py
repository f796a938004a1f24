"""The integration files run longest first.

``make test`` runs them on two pytest-xdist workers that take one file at a time (``--dist loadfile``)
as they come free; a long file picked up last would run alone on one CPU while the other idles, so
the order comes from each file's measured time in ``durations.json`` (a file not in it starts early,
as if it were the longest: its time is unknown). Every run writes what it measured per file to
``.cache/integration-durations.json``; copy that over ``durations.json`` when the order drifts.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DURATIONS = HERE / "durations.json"
MEASURED = REPO / ".cache" / "integration-durations.json"

_measured: defaultdict[str, float] = defaultdict(float)


def _test_file(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def _is_integration(nodeid: str) -> bool:
    return _test_file(nodeid).startswith("tests/integration/")


def pytest_collection_modifyitems(items):
    known = json.loads(DURATIONS.read_text(encoding="utf-8"))
    unknown = max(known.values(), default=0.0)
    # A stable sort: each file's tests keep their order and stay together.
    items.sort(key=lambda item: (-known.get(_test_file(item.nodeid), unknown), _test_file(item.nodeid))
               if _is_integration(item.nodeid) else (0.0, ""))


def pytest_runtest_logreport(report):
    if _is_integration(report.nodeid):
        _measured[_test_file(report.nodeid)] += report.duration


def pytest_sessionfinish(session):
    # Under pytest-xdist the controller sees every worker's reports; a worker writes nothing.
    if getattr(session.config, "workeroutput", None) is not None or not _measured:
        return
    MEASURED.parent.mkdir(parents=True, exist_ok=True)
    MEASURED.write_text(json.dumps({name: round(seconds) for name, seconds in sorted(_measured.items())},
                                   indent=1) + "\n", encoding="utf-8")
