"""One polling tick (select due orders, poll them concurrently, write one batch) and a window of
ticks. Ticks are independent and idempotent: a crashed tick is simply followed by the next one.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime

from pipeline.ingest import write_batch
from pipeline.model import Observation, TrackedOrder
from pipeline.polling.client import Poller
from pipeline.polling.schedule import DUE_QUERY, due_orders
from pipeline.warehouse import Warehouse, WarehouseLockedError

logger = logging.getLogger(__name__)

DEFAULT_TICK_S = 5.0
# Orders per provider per tick when the provider documents no rate limit.
UNLIMITED_BUDGET = 2_000


@dataclasses.dataclass
class ProviderTick:
    """What one tick did for one provider."""

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
        """Add another tick's counts to this one (for window totals)."""
        self.due += other.due
        self.polled += other.polled
        self.attempts += other.attempts
        self.ok += other.ok
        self.skipped.update(other.skipped)
        self.errors.update(other.errors)
        self.states.update(other.states)
        self.latencies_ms.extend(other.latencies_ms)


@dataclasses.dataclass
class TickResult:
    """What one tick (or a window of ticks) did."""

    providers: dict[str, ProviderTick]
    written: int = 0
    quarantined: int = 0
    write_errors: list[str] = dataclasses.field(default_factory=list)

    def merge(self, other: TickResult) -> None:
        """Accumulate another tick's result."""
        for slug, tick in other.providers.items():
            self.providers.setdefault(slug, ProviderTick(slug)).merge(tick)
        self.written += other.written
        self.quarantined += other.quarantined
        self.write_errors.extend(other.write_errors)


def tick_budgets(poller: Poller, providers: Iterable[str], tick_s: float) -> dict[str, int]:
    """Orders each provider may be asked about in one tick, from its documented rate limit."""
    budgets = {}
    for slug in providers:
        policy = poller.lanes[slug].adapter.policy
        if policy.rate_limit_per_minute and poller.lanes[slug].bucket is not None:
            per_tick = policy.rate_limit_per_minute * policy.budget_share * tick_s / 60
            budgets[slug] = max(1, int(per_tick))
        else:
            budgets[slug] = UNLIMITED_BUDGET
    return budgets


async def run_tick(
    warehouse: Warehouse,
    poller: Poller,
    *,
    providers: Iterable[str] | None = None,
    tick_s: float = DEFAULT_TICK_S,
    now: datetime | None = None,
) -> TickResult:
    """Poll every due order of `providers` (default: all) once and store what came back."""
    slugs = list(providers or poller.lanes)
    result = TickResult({slug: ProviderTick(slug) for slug in slugs})
    now = now or datetime.now(UTC)
    try:
        candidates = warehouse.read(DUE_QUERY)
    except WarehouseLockedError as error:
        result.write_errors.append(str(error))
        return result
    policies = {slug: poller.lanes[slug].adapter.policy for slug in slugs}
    due = due_orders(candidates, policies, now, tick_budgets(poller, slugs, tick_s))
    poller.start_tick()

    async def poll_one(row: Mapping[str, object]) -> tuple[str, list[Observation], str | None]:
        order = _order(row)
        outcome = await poller.poll(order, row["last_state"])  # type: ignore[arg-type]
        return order.provider, outcome.observations, outcome.skipped

    outcomes = await asyncio.gather(*(poll_one(row) for row in due.iter_rows(named=True)))
    batch: list[Observation] = []
    for slug, observations, skipped in outcomes:
        tick = result.providers[slug]
        tick.due += 1
        if skipped:
            tick.skipped[skipped] += 1
        if observations:
            tick.polled += 1
        _count(tick, observations)
        batch.extend(observations)
    try:
        written = await asyncio.to_thread(write_batch, warehouse, batch)
    except WarehouseLockedError as error:
        # The answers are lost for this tick only; the orders stay due and are asked again.
        result.write_errors.append(str(error))
        logger.error("tick not stored: %s", error)
        return result
    result.written, result.quarantined = written.written, written.quarantined
    return result


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
) -> TickResult:
    """Run ticks every `tick_s` seconds until `duration_s` has passed.

    `before_tick` runs before each tick (e.g. registering orders dropped in the inbox, so they
    are polled within seconds rather than at the next run). With `stop_when_idle`, stop early
    once a tick finds nothing due and no order is still open.
    """
    slugs = list(providers or poller.lanes)
    total = TickResult({slug: ProviderTick(slug) for slug in slugs})
    deadline = time.monotonic() + duration_s
    while True:
        started = time.monotonic()
        if before_tick is not None:
            await asyncio.to_thread(before_tick)
        result = await run_tick(warehouse, poller, providers=slugs, tick_s=tick_s)
        total.merge(result)
        if on_tick is not None:
            on_tick(result)
        idle = not any(t.due for t in result.providers.values())
        if stop_when_idle and idle and not _open_orders(warehouse, slugs):
            break
        next_start = started + tick_s
        if next_start >= deadline:
            break
        await asyncio.sleep(max(0.0, next_start - time.monotonic()))
    return total


def _open_orders(warehouse: Warehouse, providers: list[str]) -> int:
    frame = warehouse.read(
        "SELECT count(*) AS n FROM orders o LEFT JOIN order_tracking t USING (provider, order_id) "
        "WHERE NOT coalesce(t.is_terminal AND t.grace_checked, false) AND o.provider IN "
        f"({', '.join('?' for _ in providers)})",
        providers,
    )
    return int(frame["n"].item())


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


def _count(tick: ProviderTick, observations: list[Observation]) -> None:
    for observation in observations:
        tick.attempts += 1
        if observation.error_class is None:
            tick.ok += 1
            tick.states[observation.state] += 1
        else:
            tick.errors[observation.error_class] += 1
        if observation.latency_ms is not None:
            tick.latencies_ms.append(observation.latency_ms)
