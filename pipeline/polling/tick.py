"""Polling runs: a single pass over every provider (`run_tick`) or a window of continuous polling
(`run_window`).

In a window every provider polls on its own `ProviderLoop` and one `BatchWriter` stores what they
get, so a provider's slowness, 429 storm, outage or poison answer stays with that provider. Every
`tick_s` seconds the window registers new orders (`before_tick`) and reports what happened since
the last report (`on_tick`). A window ends within a few seconds of its duration whatever the
providers do: no wait outlives the deadline and requests in flight are cut shortly after it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from pipeline.polling.client import Poller
from pipeline.polling.collection import fewer_collections
from pipeline.polling.due_reader import DueReader
from pipeline.polling.provider_loop import ProviderLoop, ProviderTick
from pipeline.polling.writer import BatchWriter, ObservationStore
from pipeline.warehouse import Warehouse

__all__ = ["DEFAULT_TICK_S", "ProviderTick", "TickResult", "run_tick", "run_window"]

logger = logging.getLogger(__name__)

DEFAULT_TICK_S = 5.0


@dataclasses.dataclass
class TickResult:
    """What one pass, one reporting period or a whole window did."""

    providers: dict[str, ProviderTick]
    written: int = 0
    quarantined: int = 0
    write_errors: list[str] = dataclasses.field(default_factory=list)

    def merge(self, other: TickResult) -> None:
        """Accumulate another period's result."""
        for slug, tick in other.providers.items():
            self.providers.setdefault(slug, ProviderTick(slug)).merge(tick)
        self.written += other.written
        self.quarantined += other.quarantined
        self.write_errors.extend(other.write_errors)


class _Run:
    """The loops and the writer of one run, and the bookkeeping of their reports."""

    def __init__(
        self,
        warehouse: Warehouse,
        poller: Poller,
        slugs: list[str],
        refresh_every_s: float,
        store: ObservationStore | None = None,
    ) -> None:
        self.writer = BatchWriter(warehouse, store=store)
        self.reader = DueReader(warehouse)
        self.loops = {
            slug: ProviderLoop(
                slug,
                warehouse,
                poller,
                self.writer,
                refresh_every_s=refresh_every_s,
                reader=self.reader,
            )
            for slug in slugs
        }
        self._reported = (0, 0, 0)

    def take_period(self) -> TickResult:
        """What happened since the previous call."""
        totals = self.writer.totals
        written, quarantined, errors = self._reported
        result = TickResult(
            {slug: loop.take_period() for slug, loop in self.loops.items()},
            written=totals.written - written,
            quarantined=totals.quarantined - quarantined,
            write_errors=totals.errors[errors:],
        )
        for loop in self.loops.values():
            result.write_errors.extend(loop.read_errors)
            loop.read_errors.clear()
        self._reported = (totals.written, totals.quarantined, len(totals.errors))
        return result


async def run_tick(
    warehouse: Warehouse,
    poller: Poller,
    *,
    providers: Iterable[str] | None = None,
    tick_s: float = DEFAULT_TICK_S,
    now: datetime | None = None,
    store: ObservationStore | None = None,
) -> TickResult:
    """Poll every due order of `providers` (default: all) once and store what came back.

    `now` shifts the clock the due test uses (tests); `tick_s` is accepted for symmetry with
    `run_window` and has no effect on a single pass. `store` replaces the warehouse as where
    answers go (a shard's log); due orders are still read from `warehouse`.
    """
    del tick_s
    run = _Run(warehouse, poller, list(providers or poller.lanes), refresh_every_s=0.0, store=store)
    now = now or datetime.now(UTC)

    async def one_pass(loop: ProviderLoop) -> None:
        if await loop.refresh(now):
            loop.start_due(now, None, slack_s=0.0)
            await loop.wait_in_flight()

    with fewer_collections():
        await asyncio.gather(*(one_pass(loop) for loop in run.loops.values()))
        run.reader.close()
        await run.writer.flush()
    return run.take_period()


async def run_window(
    warehouse: Warehouse,
    poller: Poller,
    *,
    duration_s: float,
    providers: Iterable[str] | None = None,
    tick_s: float = DEFAULT_TICK_S,
    on_tick: Callable[[TickResult], None] | None = None,
    before_tick: Callable[[], None] | None = None,
    stop_when_idle: bool = False,
    store: ObservationStore | None = None,
) -> TickResult:
    """Poll continuously for `duration_s` seconds; returns the window's totals.

    Args:
        duration_s: how long to poll. No request starts after it and requests in flight are
            cut shortly after it (`MIN_REQUEST_TIMEOUT_S`), then the last answers are written.
        providers: provider slugs (default: every lane of the poller).
        tick_s: how often due orders are re-read, `before_tick` runs (in a worker thread, e.g.
            registering orders dropped in the inbox) and `on_tick` is called with what happened
            since its previous call. Orders are polled when due, not on ticks.
        stop_when_idle: end early once no provider has an order left to ask.
        store: where answers go instead of `warehouse` (a shard's log); due orders are still
            read from `warehouse`.
    """
    run = _Run(
        warehouse, poller, list(providers or poller.lanes), refresh_every_s=tick_s, store=store
    )
    total = TickResult({slug: ProviderTick(slug) for slug in run.loops})
    deadline = time.monotonic() + duration_s

    def report() -> None:
        period = run.take_period()
        total.merge(period)
        if on_tick is not None:
            try:
                on_tick(period)
            except Exception as error:  # a reporting problem must not stop the polling
                logger.error("report callback failed: %s", type(error).__name__)

    async def ticks() -> None:
        while True:
            if before_tick is not None:
                try:
                    await asyncio.to_thread(before_tick)
                except Exception as error:
                    logger.error("before-tick step failed: %s", type(error).__name__)
            await asyncio.sleep(tick_s)
            report()

    with fewer_collections():
        stop_writing = asyncio.Event()
        writing = asyncio.create_task(run.writer.run(stop_writing))
        ticking = asyncio.create_task(ticks())
        outcomes = await asyncio.gather(
            *(loop.run(deadline, stop_when_idle=stop_when_idle) for loop in run.loops.values()),
            return_exceptions=True,
        )
        for slug, outcome in zip(run.loops, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                logger.error("%s polling loop ended: %s", slug, type(outcome).__name__)
        ticking.cancel()
        run.reader.close()
        stop_writing.set()
        await asyncio.gather(ticking, writing, return_exceptions=True)
    report()
    return total
