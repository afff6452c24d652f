"""Workload: creates orders on every provider through the create endpoints, as a user would, and
hands them to the pipeline's intake as CSV files dropped in the inbox.

Orders arrive per provider as a Poisson process of `rate_per_minute` (one at once at the start).
What one create call sends is the provider's own (`SandboxProvider.create`, given a `Creator`).
Creates go over HTTP with the sandbox's development credentials; 429 and 5xx answers are retried
(honouring `Retry-After`), anything else is counted as failed. Every `flush_s` seconds the new
orders are written to `<inbox>/sandbox-<UTC time>-<n>.csv` with the header
`provider,order_id,order_kind,created_at,service,country` (`created_at` is when the create call
returned, UTC ISO-8601). A file is written under a temporary name and renamed, so a reader never
sees half of one.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import dataclasses
import io
import logging
import os
import random
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from pipeline.providers.registry import PROVIDERS, REGISTRY
from pipeline.simulator.clock import Clock, SystemClock
from pipeline.simulator.provider import CreatedOrder, CreateError, sandbox_provider

__all__ = [
    "CSV_COLUMNS",
    "CreateError",
    "CreatedOrder",
    "Workload",
    "WorkloadConfig",
    "write_inbox_csv",
]

logger = logging.getLogger(__name__)

CSV_COLUMNS = ("provider", "order_id", "order_kind", "created_at", "service", "country")
DEFAULT_RATE_PER_MINUTE = 6.0
DEFAULT_FLUSH_S = 5.0
MAX_ATTEMPTS = 3
MAX_RETRY_WAIT_S = 30.0
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclasses.dataclass(frozen=True)
class WorkloadConfig:
    """How much to create, for how long, and where to put it.

    Attributes:
        rate_per_minute: orders per minute per provider.
        duration_s: stop after this long (None: until cancelled).
        inbox: directory for CSV files (None: keep the orders in memory only).
        providers: providers to create orders on.
        seed: seeds the choice of services, countries and arrival times.
        flush_s: seconds between inbox files.
        schedule_scale: profile factor for times a request asks for (e.g. scheduled sends).
    """

    rate_per_minute: float = DEFAULT_RATE_PER_MINUTE
    duration_s: float | None = None
    inbox: Path | None = None
    providers: tuple[str, ...] = PROVIDERS
    seed: int = 0
    flush_s: float = DEFAULT_FLUSH_S
    schedule_scale: float = 1.0


def write_inbox_csv(inbox: Path, orders: list[CreatedOrder], *, sequence: int = 0) -> Path:
    """Write `orders` as one CSV file in `inbox`, atomically; returns its path."""
    inbox.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    path = inbox / f"sandbox-{stamp}-{sequence:04d}.csv"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(order.row() for order in orders)
    temporary = inbox / f".{path.name}.tmp"
    temporary.write_text(buffer.getvalue(), encoding="utf-8")
    os.replace(temporary, path)
    return path


class Workload:
    """Creates orders through the sandbox's create endpoints.

    Args:
        client: an HTTP client whose base URL is the sandbox root.
        config: rates, duration, inbox.
        credentials: the credentials to send (default: the sandbox's development ones).
        clock: the client's clock, for times a request asks for (a scheduled send) and when
            an order was created: the sandbox's own clock when that one is not the wall clock.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        config: WorkloadConfig | None = None,
        credentials: Mapping[str, str] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.client = client
        self.config = config or WorkloadConfig()
        self.clock: Clock = clock or SystemClock()
        self.credentials: Mapping[str, str] = (
            credentials if credentials is not None else REGISTRY.sandbox_credentials()
        )
        self.pending: list[CreatedOrder] = []
        self.created = 0
        self.failed = 0
        self.files_written = 0
        self.last_file: Path | None = None
        self._rngs: dict[str, random.Random] = {}

    async def create(self, provider: str) -> CreatedOrder | None:
        """Create one order on `provider`, retrying 429/5xx; None if it could not be created."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                order = await self._create_once(provider)
            except CreateError as error:
                if not error.retryable or attempt == MAX_ATTEMPTS:
                    logger.warning("workload: %s create failed: %s", provider, error)
                    self.failed += 1
                    return None
                wait = error.retry_after_s if error.retry_after_s is not None else attempt
                await asyncio.sleep(min(wait, MAX_RETRY_WAIT_S))
                continue
            self.pending.append(order)
            self.created += 1
            return order
        return None

    async def _create_once(self, provider: str) -> CreatedOrder:
        create = sandbox_provider(provider).create
        if create is None:
            raise CreateError(f"{provider} has no create endpoint", retryable=False)
        return await create(_Creator(self, provider, self._rng(provider)))

    def _rng(self, provider: str) -> random.Random:
        if provider not in self._rngs:
            self._rngs[provider] = random.Random(f"{self.config.seed}:workload:{provider}")
        return self._rngs[provider]

    async def request(
        self, method: str, path: str, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> Any:
        """Send one create request to `path` (from the sandbox root); the decoded JSON answer.

        Raises:
            CreateError: retryable for 429, 5xx and connection problems, else not.
        """
        try:
            response = await self.client.request(method, path, json=body, headers=headers)
        except httpx.HTTPError as error:
            raise CreateError(type(error).__name__, retryable=True) from None
        if response.status_code in RETRY_STATUSES:
            retry_after = response.headers.get("retry-after")
            raise CreateError(
                f"HTTP {response.status_code}",
                retryable=True,
                retry_after_s=float(retry_after) if retry_after and retry_after.isdigit() else None,
            )
        if not 200 <= response.status_code < 300:
            raise CreateError(f"HTTP {response.status_code}", retryable=False)
        try:
            return response.json()
        except ValueError:
            raise CreateError("answer is not JSON", retryable=False) from None

    def flush(self) -> Path | None:
        """Write the orders created since the last flush to the inbox (if any, and if set).

        Without an inbox the orders are dropped, so a long run keeps no per-order memory.
        """
        if not self.pending or self.config.inbox is None:
            self.pending.clear()
            return None
        orders, self.pending = self.pending, []
        try:
            path = write_inbox_csv(self.config.inbox, orders, sequence=self.files_written)
        except OSError:
            logger.exception("workload: could not write the inbox file")
            return None
        self.files_written += 1
        self.last_file = path
        logger.info("workload: %d orders -> %s", len(orders), path)
        return path

    async def _provider_loop(self, provider: str, deadline: float | None) -> None:
        loop = asyncio.get_running_loop()
        rng = random.Random(f"{self.config.seed}:arrivals:{provider}")
        rate_per_s = self.config.rate_per_minute / 60.0
        wait = 0.0
        while True:
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - loop.time()))
            await asyncio.sleep(wait)
            if deadline is not None and loop.time() >= deadline:
                return
            await self.create(provider)
            wait = rng.expovariate(rate_per_s)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.flush_s)
            self.flush()

    async def run(self) -> int:
        """Create orders until `duration_s` has passed or the task is cancelled.

        Returns:
            How many orders were created. Pending orders are flushed to the inbox at the end.
        """
        if self.config.rate_per_minute <= 0:
            return 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.duration_s if self.config.duration_s else None
        creating = [p for p in self.config.providers if sandbox_provider(p).create is not None]
        if skipped := sorted(set(self.config.providers) - set(creating)):
            logger.info("workload: no create endpoint on %s", ", ".join(skipped))
        loops = [asyncio.create_task(self._provider_loop(p, deadline)) for p in creating]
        flusher = asyncio.create_task(self._flush_loop())
        try:
            await asyncio.gather(*loops)
        finally:
            for task in (*loops, flusher):
                task.cancel()
            for task in (*loops, flusher):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self.flush()
        return self.created


class _Creator:
    """A `Creator` for one create call on `slug`: the workload's client, credentials, rng."""

    def __init__(self, workload: Workload, slug: str, rng: random.Random) -> None:
        self._workload = workload
        self.slug = slug
        self.rng = rng
        self.credentials = workload.credentials
        self.schedule_scale = workload.config.schedule_scale
        self.now = workload.clock.now

    async def post(
        self, method: str, path: str, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> Any:
        return await self._workload.request(method, f"/{self.slug}{path}", body, headers)

    def field(self, answer: Any, *path: str) -> str:
        value = answer
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if not isinstance(value, str | int) or isinstance(value, bool) or value == "":
            raise CreateError(f"answer has no {'.'.join(path)}", retryable=False)
        return str(value)

    def order(
        self,
        order_id: str,
        kind: str,
        service: str | None = None,
        country: str | None = None,
    ) -> CreatedOrder:
        return CreatedOrder(self.slug, order_id, kind, self.now(), service, country)
