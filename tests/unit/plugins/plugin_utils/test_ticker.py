"""The line every interval while a node's module runs, and none once it has ended."""
from __future__ import annotations

import time

from ansible_collections.nodeprep.cni.plugins.plugin_utils._ticker import ticking


def test_a_line_per_interval_counting_up_and_silence_after_the_block():
    lines = []
    with ticking(lines.append, "the node downloads x.tgz", 0.05):
        time.sleep(0.28)
    said = len(lines)
    time.sleep(0.15)
    assert 3 <= said <= 6 and len(lines) == said, lines
    assert all(line.startswith("the node downloads x.tgz, ") and line.endswith(" s so far") for line in lines)


def test_the_block_that_ends_at_once_says_nothing_and_its_error_passes_through():
    lines = []
    try:
        with ticking(lines.append, "x", 10):
            raise KeyError("boom")
    except KeyError:
        pass
    else:
        raise AssertionError("the block's error was swallowed")
    assert lines == []
