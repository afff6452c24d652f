"""Workload: creates orders on every provider through the create endpoints, as a user would, and
hands them to the pipeline's intake as CSV files dropped in the inbox.

Orders arrive per provider as a Poisson process of `rate_per_minute` (one at once at the start).
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from pipeline.model import PROVIDERS, OrderKind, Provider
from pipeline.settings import SANDBOX_CREDENTIALS
from pipeline.simulator import baanx, ordinalsbot, sms4sats, smsonline
from pipeline.simulator.lifecycles import (
    BAANX_PRODUCTS,
    SMS4SATS_COUNTRIES,
    SMS4SATS_SERVICES,
    SMSONLINE_COUNTRIES,
    SMSONLINE_SERVICES,
    choose,
    iso_utc,
)

logger = logging.getLogger(__name__)

CSV_COLUMNS = ("provider", "order_id", "order_kind", "created_at", "service", "country")
DEFAULT_RATE_PER_MINUTE = 6.0
DEFAULT_FLUSH_S = 5.0
MAX_ATTEMPTS = 3
MAX_RETRY_WAIT_S = 30.0
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
P_SMS4SATS_SEND = 0.3
P_ALTINN_SMS = 0.3
P_ALTINN_SCHEDULED = 0.2
ALTINN_SCHEDULE_AHEAD_S = (60.0, 600.0)
"""Scheduled Altinn orders ask for a send time this far ahead (times the profile factor)."""
ORDINALSBOT_FEE_RATES = (5, 11, 20)


class CreateError(Exception):
    """A create call that did not give an order id.

    Attributes:
        retryable: whether trying again may help (429, 5xx, connection problems).
        retry_after_s: the provider's `Retry-After`, if it sent one.
    """

    def __init__(self, message: str, *, retryable: bool, retry_after_s: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after_s = retry_after_s


@dataclasses.dataclass(frozen=True)
class CreatedOrder:
    """An order the workload created: one inbox CSV row."""

    provider: str
    order_id: str
    order_kind: str
    created_at: datetime
    service: str | None = None
    country: str | None = None

    def row(self) -> dict[str, str]:
        """The CSV row."""
        return {
            "provider": self.provider,
            "order_id": self.order_id,
            "order_kind": self.order_kind,
            "created_at": iso_utc(self.created_at),
            "service": self.service or "",
            "country": self.country or "",
        }


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
        schedule_scale: profile factor for Altinn's scheduled send times.
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


def _inverse(table: Mapping[Any, str]) -> dict[str, Any]:
    return {name: code for code, name in table.items()}


class Workload:
    """Creates orders through the sandbox's create endpoints.

    Args:
        client: an HTTP client whose base URL is the sandbox root.
        config: rates, duration, inbox.
        credentials: the credentials to send (default: the sandbox's development ones).
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        config: WorkloadConfig | None = None,
        credentials: Mapping[str, str] = SANDBOX_CREDENTIALS,
    ) -> None:
        self.client = client
        self.config = config or WorkloadConfig()
        self.credentials = credentials
        self.pending: list[CreatedOrder] = []
        self.created = 0
        self.failed = 0
        self.files_written = 0
        self.last_file: Path | None = None
        self._rngs = {p: random.Random(f"{self.config.seed}:workload:{p}") for p in PROVIDERS}

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
        rng = self._rngs[provider]
        builders = {
            Provider.SMS4SATS: self._sms4sats,
            Provider.SMSONLINE: self._smsonline,
            Provider.ORDINALSBOT: self._ordinalsbot,
            Provider.BAANX: self._baanx,
            Provider.ALTINN: self._altinn,
        }
        return await builders[Provider(provider)](rng)

    async def _post(
        self, method: str, path: str, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> Any:
        """Send one create request; the decoded JSON answer, or `CreateError`."""
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

    @staticmethod
    def _field(answer: Any, *path: str) -> str:
        value = answer
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if not isinstance(value, str | int) or isinstance(value, bool) or value == "":
            raise CreateError(f"answer has no {'.'.join(path)}", retryable=False)
        return str(value)

    def _done(
        self,
        provider: str,
        order_id: str,
        kind: str,
        service: str | None = None,
        country: str | None = None,
    ) -> CreatedOrder:
        return CreatedOrder(provider, order_id, kind, datetime.now(UTC), service, country)

    async def _sms4sats(self, rng: random.Random) -> CreatedOrder:
        if rng.random() < P_SMS4SATS_SEND:
            answer = await self._post(
                "POST",
                "/sms4sats/createsendorder",
                {
                    "message": "Your sandbox appointment is confirmed.",
                    "phone": f"+47{rng.randrange(40_000_000, 50_000_000)}",
                },
            )
            order_id = self._field(answer, "orderId")
            return self._done(Provider.SMS4SATS, order_id, OrderKind.SMS_SEND)
        service, country = choose(SMS4SATS_SERVICES, rng), choose(SMS4SATS_COUNTRIES, rng)
        code = _inverse(sms4sats.COUNTRY_CODES)[country]
        answer = await self._post(
            "POST", "/sms4sats/createorder", {"country": code, "service": service}
        )
        order_id = self._field(answer, "orderId")
        return self._done(Provider.SMS4SATS, order_id, OrderKind.SMS_RECEIVE, service, country)

    async def _smsonline(self, rng: random.Random) -> CreatedOrder:
        service, country = choose(SMSONLINE_SERVICES, rng), choose(SMSONLINE_COUNTRIES, rng)
        user_id = self.credentials["SMSONLINE_USER_ID"]
        answer = await self._post(
            "PUT",
            f"/smsonline/v3/numbers/{user_id}/order",
            {
                "apiKey": self.credentials["SMSONLINE_API_KEY"],
                "service": _inverse(smsonline.SERVICE_CODES)[service],
                "country": _inverse(smsonline.COUNTRY_CODES)[country],
            },
        )
        if isinstance(answer, dict) and answer.get("ok") is False:
            raise CreateError(str(answer.get("errorMessage")), retryable=False)
        order_id = self._field(answer, "body", "orderId")
        return self._done(Provider.SMSONLINE, order_id, OrderKind.SMS_RECEIVE, service, country)

    async def _ordinalsbot(self, rng: random.Random) -> CreatedOrder:
        size = rng.randrange(200, 5000)
        answer = await self._post(
            "POST",
            "/ordinalsbot/order",
            {
                "files": [
                    {
                        "name": "note.txt",
                        "size": size,
                        "type": "text/plain",
                        "url": "https://example.com/note.txt",
                    }
                ],
                "receiveAddress": "bc1p" + f"{rng.getrandbits(232):058x}",
                "fee": rng.choice(ORDINALSBOT_FEE_RATES),
            },
            {"x-api-key": self.credentials["ORDINALSBOT_API_KEY"]},
        )
        if isinstance(answer, dict) and answer.get("status") == "error":
            raise CreateError(str(answer.get("error")), retryable=False)
        order_id = self._field(answer, "id")
        return self._done(
            Provider.ORDINALSBOT, order_id, OrderKind.INSCRIPTION, ordinalsbot.ORDER_TYPE
        )

    async def _baanx(self, rng: random.Random) -> CreatedOrder:
        product = choose(BAANX_PRODUCTS, rng)
        answer = await self._post(
            "POST",
            "/baanx/v1/order",
            {"productId": product, "paymentMethod": baanx.PAYMENT_METHOD},
            {
                "Authorization": f"Bearer {self.credentials['BAANX_ACCESS_TOKEN']}",
                "X-Client-ID": self.credentials["BAANX_CLIENT_ID"],
            },
        )
        order_id = self._field(answer, "orderId")
        return self._done(Provider.BAANX, order_id, OrderKind.PRODUCT_ORDER, product)

    async def _altinn(self, rng: random.Random) -> CreatedOrder:
        sms = rng.random() < P_ALTINN_SMS
        count = rng.randint(1, 3)
        recipients = [
            {"mobileNumber": f"+47{rng.randrange(40_000_000, 50_000_000)}"}
            if sms
            else {"emailAddress": f"recipient{rng.randrange(10_000)}@example.com"}
            for _ in range(count)
        ]
        body: dict[str, Any] = {
            "sendersReference": f"sandbox-{rng.getrandbits(32):08x}",
            "recipients": recipients,
        }
        if rng.random() < P_ALTINN_SCHEDULED:
            ahead = rng.uniform(*ALTINN_SCHEDULE_AHEAD_S) * self.config.schedule_scale
            body["requestedSendTime"] = iso_utc(datetime.now(UTC) + timedelta(seconds=ahead))
        answer = await self._post(
            "POST",
            f"/altinn/notifications/api/v1/orders/{'sms' if sms else 'email'}",
            body,
            {"Authorization": f"Bearer {self.credentials['ALTINN_TOKEN']}"},
        )
        order_id = self._field(answer, "orderId")
        channel = "Sms" if sms else "Email"
        return self._done(Provider.ALTINN, order_id, OrderKind.NOTIFICATION_ORDER, channel)

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
        loops = [
            asyncio.create_task(self._provider_loop(p, deadline)) for p in self.config.providers
        ]
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
