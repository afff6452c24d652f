"""Garbage collection during polling runs: the youngest generation collected less often.

A poll allocates a few hundred short-lived objects (request, answer, decoded JSON, observation)
that reference counting frees when the poll ends; CPython's default threshold still collects the
youngest generation every 700 net allocations, promotes whatever is in flight at that moment
(answers being parsed, observations waiting for the writer) and so triggers, about once per
1,200-poll pass, a full collection over every object the process holds: the imported libraries'
own (about 140,000 here) and, in a larger process (Dagster, a benchmark beside dlt), far more.
Measured with `bench/poll_vs_dlt.py`, that was about a tenth of a poll's CPU.

During a polling run the youngest generation is collected every `GEN0_THRESHOLD` allocations
instead; the older generations keep their thresholds, and the process's settings come back when
the run ends. Reference cycles created meanwhile are still collected, only later.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

GEN0_THRESHOLD = 50_000
"""Net allocations between collections of the youngest generation during a polling run: one
or two per 1,200-poll pass; the cyclic garbage waiting meanwhile is a few megabytes at most."""

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, int, int] = (0, 0, 0)


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Raise the youngest generation's threshold while the block runs (nested blocks and other
    threads' runs share the outermost setting). A process that disabled the collector keeps it
    disabled."""
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = gc.get_threshold()
            if _saved[0] != 0:
                gc.set_threshold(max(GEN0_THRESHOLD, _saved[0]), _saved[1], _saved[2])
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.set_threshold(*_saved)
