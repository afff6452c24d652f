"""One provider's polling loop: its own schedule, its own requests, its own pace.

The loop reads its provider's candidates from the warehouse every `refresh_every_s` (in the
background: a locked warehouse delays only the refresh), keeps in memory what it has seen since
(so it never re-asks an order whose answer is still waiting for the writer), starts a task per
order the moment the order comes due, and sleeps until the next one does. Nothing another
provider does (slowness, 429 storms, outages, poison answers) reaches this loop, and nothing it
does reaches theirs: each provider has its own loop, HTTP pool, budget and deadline.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime

import polars as pl

from pipeline.model import Observation, TrackedOrder
from pipeline.polling.client import Poller, PollOutcome
from pipeline.polling.due_reader import DueReader
from pipeline.polling.schedule import DUE_SLACK_S, candidates_since, pick_due, schedule
from pipeline.polling.writer import BatchWriter
from pipeline.warehouse import Warehouse, WarehouseLockedError

logger = logging.getLogger(__name__)

# A loop never sleeps less (so a crowd of orders due at slightly different times is taken in a
# few passes, not hundreds) nor more (so freshly registered orders are seen soon).
MIN_SLEEP_S = 0.2
MAX_SLEEP_S = 1.0
# Orders in flight at once when the provider documents no rate limit.
UNLIMITED_BUDGET = 2_000
# With a rate limit: as many as its budget allows over this span (a retry honouring a 10 s
# Retry-After keeps its order in flight that long).
IN_FLIGHT_HORIZON_S = 10.0


@dataclasses.dataclass
class ProviderTick:
    """What polling did for one provider over a period (a pass, a minute, a window)."""

    provider: str
    due: int = 0
    polled: int = 0
    attempts: int = 0
    ok: int = 0
    skipped: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    errors: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    states: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    latencies_ms: list[float] = dataclasses.field(default_factory=list)

    def merge(self, other: ProviderTick) -> None:
        """Add another period's counts to this one."""
        self.due += other.due
        self.polled += other.polled
        self.attempts += other.attempts
        self.ok += other.ok
        self.skipped.update(other.skipped)
        self.errors.update(other.errors)
        self.states.update(other.states)
        self.latencies_ms.extend(other.latencies_ms)

    def count(self, outcome: PollOutcome) -> None:
        """Add one order's poll."""
        self.due += 1
        if outcome.skipped:
            self.skipped[outcome.skipped] += 1
        if outcome.observations:
            self.polled += 1
        for observation in outcome.observations:
            self.attempts += 1
            if observation.error_class is None:
                self.ok += 1
                self.states[observation.state] += 1
            else:
                self.errors[observation.error_class] += 1
            if observation.latency_ms is not None:
                self.latencies_ms.append(observation.latency_ms)


@dataclasses.dataclass
class Seen:
    """What this loop learned of one order since its candidates were last read."""

    polled_at: datetime
    state: str | None = None
    is_terminal: bool | None = None
    terminal_at: datetime | None = None
    last_ok_at: datetime | None = None

    def add(self, observation: Observation) -> None:
        """Fold in a newer answer."""
        self.polled_at = max(self.polled_at, observation.polled_at)
        if observation.error_class is None:
            self.state, self.is_terminal = observation.state, observation.is_terminal
            self.last_ok_at = observation.polled_at
            if observation.is_terminal and self.terminal_at is None:
                self.terminal_at = observation.polled_at


SEEN_SCHEMA: dict[str, pl.DataType] = {
    "order_id": pl.String(),
    "seen_polled_at": pl.Datetime("us", "UTC"),
    "seen_state": pl.String(),
    "seen_terminal": pl.Boolean(),
    "seen_terminal_at": pl.Datetime("us", "UTC"),
    "seen_ok_at": pl.Datetime("us", "UTC"),
}


def with_seen(candidates: pl.DataFrame, seen: Mapping[str, Seen]) -> pl.DataFrame:
    """The candidates as they stand once what was seen since their read is written.

    Mirrors the tracking upsert of `pipeline.ingest`: the newest poll time, the newest valid
    state, the first terminal sighting; an order whose grace re-check was answered drops out.
    """
    if not seen or candidates.is_empty():
        return candidates
    overlay = pl.DataFrame(
        [
            (k, s.polled_at, s.state, s.is_terminal, s.terminal_at, s.last_ok_at)
            for k, s in seen.items()
        ],
        schema=SEEN_SCHEMA,
        orient="row",
    )
    joined = candidates.join(overlay, on="order_id", how="left")
    grace_answered = (pl.col("is_terminal") & pl.col("seen_ok_at").is_not_null()) | (
        pl.col("seen_ok_at") > pl.col("seen_terminal_at")
    )
    return (
        joined.filter(~grace_answered.fill_null(False))
        .with_columns(
            last_polled_at=pl.max_horizontal("last_polled_at", "seen_polled_at"),
            last_state=pl.coalesce("seen_state", "last_state"),
            is_terminal=pl.coalesce("seen_terminal", "is_terminal"),
            terminal_seen_at=pl.coalesce("terminal_seen_at", "seen_terminal_at"),
        )
        .drop(list(SEEN_SCHEMA)[1:])
    )


class ProviderLoop:
    """Polls one provider's due orders, continuously or in single passes."""

    def __init__(
        self,
        provider: str,
        warehouse: Warehouse,
        poller: Poller,
        writer: BatchWriter,
        *,
        refresh_every_s: float,
        reader: DueReader | None = None,
    ) -> None:
        """`reader` is shared with the run's other loops (default: one of its own)."""
        self.provider = provider
        self.warehouse = warehouse
        self.reader = reader or DueReader(warehouse)
        self.poller = poller
        self.writer = writer
        self.refresh_every_s = refresh_every_s
        self.policy = poller.lanes[provider].adapter.policy
        self.period = ProviderTick(provider)
        """Counts since the last `take_period`."""
        self.read_errors: list[str] = []
        self._candidates: pl.DataFrame | None = None
        """This provider's rows of `DUE_QUERY` as last read."""
        self._seen: dict[str, Seen] = {}
        """Answers since that read (re-applied to the next read until the writer caught up)."""
        self._fresh: dict[str, Seen] = {}
        """Answers not yet applied to `_frame`."""
        self._frame = pl.DataFrame()
        self._scheduled: pl.DataFrame | None = None
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._held: set[str] = set()
        """Orders skipped (bad credentials, open circuit, budget past the deadline): left alone
        until the next refresh rather than retried in a busy loop."""

    def take_period(self) -> ProviderTick:
        """The counts since the last call, and a fresh period."""
        period, self.period = self.period, ProviderTick(self.provider)
        return period

    async def refresh(self, now: datetime | None = None) -> bool:
        """Re-read this provider's candidates, to be scheduled from `now` on (default: the
        poller's clock); False (and recorded) if that failed."""
        since = candidates_since(self.policy, now or self.poller.now())
        try:
            frame = await self.reader.read(self.provider, since)
        except Exception as error:  # locked or broken: keep polling from what we know
            message = str(error) if isinstance(error, WarehouseLockedError) else repr(error)[:200]
            self.read_errors.append(f"{self.provider}: due orders not read: {message}")
            logger.error("%s: due orders not read: %s", self.provider, type(error).__name__)
            return False
        stored = dict(zip(frame["order_id"], frame["last_polled_at"], strict=True))
        self._seen = {
            order_id: seen
            for order_id, seen in self._seen.items()
            if (last := stored.get(order_id)) is None or last < seen.polled_at
        }
        self._candidates = frame
        self._frame = with_seen(frame, self._seen)
        self._fresh.clear()
        self._scheduled = None
        self._held.clear()
        self.poller.start_pass(self.provider)
        return True

    def scheduled(self, now: datetime) -> pl.DataFrame:
        """Every candidate with its next due time, minus orders in flight or held back."""
        if self._fresh:
            self._frame = with_seen(self._frame, self._fresh)
            self._fresh = {}
            self._scheduled = None
        if self._scheduled is None:
            if self._frame.is_empty():
                return self._frame
            self._scheduled = schedule(self._frame, {self.provider: self.policy}, now)
        busy = [*self._in_flight, *self._held]
        if not busy:
            return self._scheduled
        return self._scheduled.filter(~pl.col("order_id").is_in(busy))

    def start_due(self, now: datetime, deadline: float | None, *, slack_s: float) -> float | None:
        """Start a poll task for every order due at `now` (within the rate budget).

        Returns:
            Seconds until the next order not started now comes due (None: none will).
        """
        scheduled = self.scheduled(now)
        if scheduled.is_empty():
            return None
        budget = self._budget() - len(self._in_flight)
        if budget > 0:
            due = pick_due(scheduled, now, {self.provider: budget}, slack_s=slack_s)
            for row in due.iter_rows(named=True):
                order = _order(row)
                task = asyncio.create_task(self._poll(order, row["last_state"], deadline))
                self._in_flight[order.order_id] = task
            scheduled = scheduled.filter(~pl.col("order_id").is_in(due["order_id"].to_list()))
        earliest = scheduled["next_due"].min()
        if not isinstance(earliest, datetime):
            return None
        return (earliest - now).total_seconds()

    async def wait_in_flight(self) -> None:
        """Wait for every poll started so far."""
        while self._in_flight:
            await asyncio.gather(*self._in_flight.values(), return_exceptions=True)

    def idle(self) -> bool:
        """Nothing left to ask: no candidate, nothing in flight, nothing waiting to be written."""
        return (
            self._candidates is not None
            and self._candidates.is_empty()
            and not self._in_flight
            and not self.writer.pending(self.provider)
        )

    async def run(self, deadline: float, *, stop_when_idle: bool = False) -> None:
        """Poll until the monotonic `deadline` (or until idle, with `stop_when_idle`)."""
        first = asyncio.create_task(self.refresh())
        await asyncio.wait([first], timeout=max(0.0, deadline - time.monotonic()))
        refreshing: asyncio.Task[bool] | None = first
        last_refresh = time.monotonic()
        while (clock := time.monotonic()) < deadline:
            if refreshing is not None and refreshing.done():
                refreshing = None
                if stop_when_idle and self.idle():
                    break
            if refreshing is None and clock - last_refresh >= self.refresh_every_s:
                refreshing = asyncio.create_task(self.refresh())
                last_refresh = clock
            wait = self.start_due(datetime.now(UTC), deadline, slack_s=DUE_SLACK_S)
            sleep = MAX_SLEEP_S if wait is None else min(max(wait, MIN_SLEEP_S), MAX_SLEEP_S)
            await asyncio.sleep(max(0.0, min(sleep, deadline - time.monotonic())))
        await self.wait_in_flight()
        if refreshing is not None and not refreshing.done():
            refreshing.cancel()

    async def _poll(
        self, order: TrackedOrder, last_state: str | None, deadline: float | None
    ) -> None:
        try:
            outcome = await self.poller.poll(order, last_state, deadline=deadline)
            self.period.count(outcome)
            if outcome.skipped:
                self._held.add(order.order_id)
            for observation in outcome.observations:
                for memory in (self._seen, self._fresh):
                    memory.setdefault(order.order_id, Seen(observation.polled_at)).add(observation)
            self.writer.submit(self.provider, outcome.observations)
        except Exception as error:  # never expected; one order's failure must not end the loop
            logger.error("%s: poll of one order failed: %s", self.provider, type(error).__name__)
            self._held.add(order.order_id)
        finally:
            self._in_flight.pop(order.order_id, None)

    def _budget(self) -> int:
        """Orders in flight at once: what the rate budget allows over `IN_FLIGHT_HORIZON_S`, so
        the most urgent orders are asked first, yet orders waiting out a retry don't starve the
        rest."""
        lane = self.poller.lanes[self.provider]
        if lane.bucket is None:
            return UNLIMITED_BUDGET
        return max(lane.concurrency, int(lane.bucket.rate_per_s * IN_FLIGHT_HORIZON_S))


def _order(row: Mapping[str, object]) -> TrackedOrder:
    return TrackedOrder(
        provider=str(row["provider"]),
        order_id=str(row["order_id"]),
        order_kind=str(row["order_kind"]),
        registered_at=row["registered_at"],  # type: ignore[arg-type]
        created_at=row["created_at"],  # type: ignore[arg-type]
        service=row["service"],  # type: ignore[arg-type]
        country=row["country"],  # type: ignore[arg-type]
    )
