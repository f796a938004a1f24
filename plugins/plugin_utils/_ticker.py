# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A line every interval while a node's module runs: its own output reaches the controller only when it ends."""

from __future__ import annotations

import contextlib
import threading
import time


@contextlib.contextmanager
def ticking(say, what, interval, clock=time.monotonic):
    """Call ``say("<what>, <n> s so far")`` every *interval* seconds until the block ends."""
    done = threading.Event()
    started = clock()

    def tick():
        while not done.wait(interval):
            say("%s, %d s so far" % (what, clock() - started))
    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        yield
    finally:
        done.set()
        ticker.join()
