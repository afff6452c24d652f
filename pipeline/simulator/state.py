"""The sandbox's state: configuration, orders, random streams, limits, faults, truth flushing.

One `Sandbox` lives in `app.state.sandbox`. It is used from a single event loop, so it needs no
locks. Memory stays bounded: beyond `max_orders` the oldest terminal orders are evicted (their
truth written first); past a hard cap the oldest are evicted whatever their state.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import logging
import random
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.simulator.clock import Clock, SystemClock
from pipeline.simulator.faults import NO_FAULTS, FaultEngine, Scenario
from pipeline.simulator.lifecycles import (
    DEFAULT_CONFIG,
    LifecycleConfig,
    OrderTruth,
    Profile,
    draw_order,
    get_profile,
    iso_utc,
    new_order_id,
)
from pipeline.simulator.options import ProviderOptions
from pipeline.simulator.ratelimit import SlidingWindowLimiter
from pipeline.simulator.truth import TruthLog

logger = logging.getLogger(__name__)

DEFAULT_MAX_ORDERS = 50_000
HARD_CAP_FACTOR = 1.2
"""Past `max_orders * HARD_CAP_FACTOR` the oldest orders go even if still open."""
EVICT_TO_SHARE = 0.95
"""Eviction frees down to this share of `max_orders`, so it runs in batches."""

Sleep = Callable[[float], Awaitable[None]]

_REQUEST_OPTIONS: contextvars.ContextVar[tuple[str, Any] | None] = contextvars.ContextVar(
    "sandbox_request_options", default=None
)
"""(slug, options) for the request being served, when a fault switched a variant on."""


@dataclasses.dataclass(frozen=True)
class SandboxConfig:
    """Everything that shapes a sandbox run.

    Attributes:
        profile: `fast`, `realistic` or a `Profile`.
        seed: seeds every random stream (orders, ids, faults).
        faults: the fault scenario.
        options: behaviour the real APIs leave undocumented.
        lifecycle: lifecycle durations and probabilities.
        max_orders: orders kept in memory.
        truth_path: JSONL file for ground truth, None to keep it in memory only.
    """

    profile: str | Profile = "fast"
    seed: int = 0
    faults: Scenario = NO_FAULTS
    options: ProviderOptions = dataclasses.field(default_factory=ProviderOptions)
    lifecycle: LifecycleConfig = DEFAULT_CONFIG
    max_orders: int = DEFAULT_MAX_ORDERS
    truth_path: Path | None = None


@dataclasses.dataclass
class SandboxOrder:
    """An order the sandbox serves.

    Attributes:
        truth: its timeline.
        owner: who may see it (SMSOnline user, Baanx token, Altinn org), if scoped.
        attrs: provider details fixed at creation (request echoes, ids, prices).
    """

    truth: OrderTruth
    owner: str | None = None
    attrs: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        """(provider, order_id)."""
        return self.truth.provider, self.truth.order_id


class Sandbox:
    """The state behind the sandbox app.

    Args:
        config: the run's configuration.
        clock: the time source (a `FakeClock` in tests).
        sleep: how to wait (fault delays); tests may record instead of waiting.
    """

    def __init__(
        self,
        config: SandboxConfig | None = None,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        self.config = config or SandboxConfig()
        self.clock: Clock = clock or SystemClock()
        self.sleep: Sleep = sleep or asyncio.sleep
        self.profile = get_profile(self.config.profile)
        self.options = self.config.options
        self.started_at = self.clock.now()
        self.faults = FaultEngine(self.config.faults, self.config.seed, self.started_at)
        self.orders: OrderedDict[tuple[str, str], SandboxOrder] = OrderedDict()
        self._unwritten: OrderedDict[tuple[str, str], SandboxOrder] = OrderedDict()
        self._rngs: dict[str, random.Random] = {}
        self._limiters: dict[str, SlidingWindowLimiter] = {}
        self.truth_log = TruthLog(self.config.truth_path) if self.config.truth_path else None
        self.requests: dict[str, int] = {}
        self.evicted = 0
        self._stopping: asyncio.Event | None = None

    def _stop_event(self) -> asyncio.Event:
        if self._stopping is None:
            self._stopping = asyncio.Event()
        return self._stopping

    def begin_stop(self) -> None:
        """Cut short every fault delay in progress (the server is shutting down)."""
        self._stop_event().set()

    async def pause(self, seconds: float) -> None:
        """Wait `seconds` (with `sleep`), or less if the sandbox begins to stop."""
        stopping = self._stop_event()
        if stopping.is_set():
            return
        sleeper = asyncio.ensure_future(self.sleep(seconds))
        stopper = asyncio.ensure_future(stopping.wait())
        _, pending = await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()

    def options_of(self, slug: str) -> Any:
        """The options `slug`'s handlers answer with: the configured ones, or for the request
        being served the ones a `variant` fault switched (see `answering_with`)."""
        override = _REQUEST_OPTIONS.get()
        if override is not None and override[0] == slug:
            return override[1]
        return self.options.of(slug)

    @contextlib.contextmanager
    def answering_with(self, slug: str, options: Any) -> Iterator[None]:
        """Serve the current request of `slug` with `options` instead of the configured ones."""
        token = _REQUEST_OPTIONS.set((slug, options))
        try:
            yield
        finally:
            _REQUEST_OPTIONS.reset(token)

    def now(self) -> datetime:
        """The sandbox's current time."""
        return self.clock.now()

    def rng(self, stream: str) -> random.Random:
        """The random stream named `stream`, seeded from the sandbox seed."""
        if stream not in self._rngs:
            self._rngs[stream] = random.Random(f"{self.config.seed}:{stream}")
        return self._rngs[stream]

    def factor(self, provider: str) -> float:
        """The profile's duration factor for `provider`."""
        return self.profile.factor(provider)

    def limiter(self, name: str, limit: int, window_s: float) -> SlidingWindowLimiter:
        """The sliding-window limiter named `name` (created on first use)."""
        if name not in self._limiters:
            self._limiters[name] = SlidingWindowLimiter(limit, window_s)
        return self._limiters[name]

    def reset_limiter(self, name: str) -> None:
        """Forget every request counted by the limiter named `name`."""
        self._limiters.pop(name, None)

    def set_scenario(self, scenario: Scenario) -> None:
        """Switch to another fault scenario (its random streams start afresh)."""
        self.faults = FaultEngine(scenario, self.config.seed, self.started_at)
        logger.info("fault scenario now %r", scenario.name)

    # --- orders -------------------------------------------------------------------------------

    def create_order(
        self,
        provider: str,
        kind: str,
        *,
        service: str | None = None,
        country: str | None = None,
        owner: str | None = None,
        attrs: dict[str, Any] | None = None,
        requested_send_time: datetime | None = None,
        recipients: int | None = None,
    ) -> SandboxOrder:
        """Draw a new order with a fresh id, store it and return it."""
        ids = self.rng(f"{provider}:ids")
        order_id = new_order_id(provider, ids)
        while (provider, order_id) in self.orders:
            order_id = new_order_id(provider, ids)
        truth = draw_order(
            provider,
            kind,
            self.rng(f"{provider}:lifecycle"),
            self.now(),
            self.profile,
            service,
            country,
            order_id=order_id,
            requested_send_time=requested_send_time,
            recipients=recipients,
            config=self.config.lifecycle,
        )
        order = SandboxOrder(truth=truth, owner=owner, attrs=attrs or {})
        self.orders[order.key] = order
        self._unwritten[order.key] = order
        self._evict()
        return order

    def get(self, provider: str, order_id: str) -> SandboxOrder | None:
        """The order, or None if unknown (or evicted)."""
        return self.orders.get((provider, order_id))

    def list_orders(self, provider: str | None = None) -> list[SandboxOrder]:
        """Orders in creation order, optionally of one provider."""
        return [o for o in self.orders.values() if provider is None or o.truth.provider == provider]

    def _evict(self) -> None:
        limit = self.config.max_orders
        if len(self.orders) <= limit:
            return
        target = int(limit * EVICT_TO_SHARE)
        now = self.now()
        for key in [k for k, o in self.orders.items() if o.truth.is_terminal_at(now)]:
            if len(self.orders) <= target:
                break
            self._drop(key, now)
        while len(self.orders) > limit * HARD_CAP_FACTOR:
            self._drop(next(iter(self.orders)), now)

    def _drop(self, key: tuple[str, str], now: datetime) -> None:
        order = self.orders.pop(key)
        self.evicted += 1
        if self._unwritten.pop(key, None) is not None:
            self._write_truth([order], now)

    # --- ground truth -------------------------------------------------------------------------

    def truth_records(
        self, provider: str | None = None, order_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Ground truth of the orders in memory, transitions up to now."""
        now = self.now()
        return [
            o.truth.to_record(until=now)
            for o in self.list_orders(provider)
            if order_id is None or o.truth.order_id == order_id
        ]

    def flush_truth(self, *, closing: bool = False) -> int:
        """Write the truth of orders that became final; with `closing`, of every unwritten one."""
        now = self.now()
        ready = [o for o in self._unwritten.values() if closing or o.truth.is_terminal_at(now)]
        for order in ready:
            del self._unwritten[order.key]
        return self._write_truth(ready, now)

    def _write_truth(self, orders: list[SandboxOrder], now: datetime) -> int:
        if self.truth_log is None or not orders:
            return 0
        records = []
        for order in orders:
            record = order.truth.to_record(until=now)
            record["is_final"] = order.truth.is_terminal_at(now)
            record["recorded_at"] = iso_utc(now)
            records.append(record)
        return self.truth_log.write(records)

    def reopen_truth(self, order: SandboxOrder) -> None:
        """Mark an order's truth as changed (e.g. cancelled) so it is written again."""
        self._unwritten[order.key] = order
