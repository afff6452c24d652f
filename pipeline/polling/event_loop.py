"""The event loop polling runs on: uvloop where it is installed, asyncio's own elsewhere.

Measured by `bench/poll_vs_dlt.py`, uvloop takes about a tenth off the CPU of a poll end to end
(the loop's own bookkeeping per request: callbacks, socket readiness, timers). Nothing in the
poller depends on which loop runs it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """A new-loop function: uvloop's if it is installed (not on Windows), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on the loop `loop_factory` makes."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
