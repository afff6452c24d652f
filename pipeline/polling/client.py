"""Asking providers: one HTTP client per provider, retries within a deadline, no leaks.

Each provider has a lane: its own `httpx.AsyncClient` (so a slow provider's connections never
starve another's), a concurrency limit, a token bucket when the provider documents a rate limit,
a pause honouring `Retry-After` after a 429, and a circuit breaker. Every attempt, failed or not,
becomes an `Observation`; nothing a provider sends makes `poll` raise. An error caused by
configuration (bad credentials) is recorded once per pass; the provider's remaining orders are
skipped rather than hammered with requests bound to fail. No wait (bucket, pause, backoff,
request) outlives the caller's deadline.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from pipeline.model import CONFIG_ERRORS, ErrorClass, Observation, TrackedOrder
from pipeline.polling import redact
from pipeline.polling.http import PollingClient, status_request
from pipeline.polling.limits import CircuitBreaker, TokenBucket
from pipeline.polling.retry import RetryPolicy
from pipeline.polling.transport import PoolTransport
from pipeline.providers.base import ProviderAdapter
from pipeline.providers.common import known_state
from pipeline.settings import Settings

logger = logging.getLogger(__name__)

TIMEOUT = httpx.Timeout(connect=3.0, read=10.0, write=5.0, pool=10.0)
# Shortest request timeout granted near a deadline: below it a request has no real chance.
MIN_REQUEST_TIMEOUT_S = 0.5
# A provider's pool (and its requests in flight) when rate limits are off (benchmarks): enough
# for about 600 polls/s per provider at 100 ms latency, so slow answers leave the CPU, not the
# pool, as the bound. With limits on, a provider's pool is its policy's `max_concurrency`.
MAX_CONNECTIONS = 64
# A 429 without `Retry-After` pauses the provider this long.
DEFAULT_RATE_LIMIT_PAUSE_S = 1.0
# Failures that say the provider is down, as opposed to one order being wrong.
OUTAGE_ERRORS = frozenset(
    {ErrorClass.TIMEOUT, ErrorClass.CONNECTION_ERROR, ErrorClass.SERVER_ERROR}
)


class Skip:
    """Why an order got no request (values of `PollOutcome.skipped`)."""

    CONFIG_ERROR = "config_error"
    CIRCUIT_OPEN = "circuit_open"
    DEADLINE = "deadline"
    """The rate budget, a provider's pause or the backoff would only allow it after the window."""


MAX_LOGGED_STATUSES = 100
"""New unrecognised statuses logged per provider per process (a drifting API stays quiet)."""


@dataclasses.dataclass
class Lane:
    """One provider's request discipline and connection pool."""

    adapter: ProviderAdapter
    semaphore: asyncio.Semaphore
    bucket: TokenBucket | None
    breaker: CircuitBreaker
    concurrency: int
    client: httpx.AsyncClient | None = None
    config_error: str | None = None
    """Set when a pass met a configuration error; cleared by `Poller.start_pass`."""
    paused_until: float = 0.0
    """Monotonic time before which the provider asked us (429) not to send anything."""
    unrecognised: set[str] = dataclasses.field(default_factory=set)
    """Raw statuses this process has met and could not map (each is logged once)."""

    def pause(self, seconds: float) -> None:
        """Hold back every request for `seconds` from now; pauses do not stack."""
        self.paused_until = max(self.paused_until, time.monotonic() + seconds)


@dataclasses.dataclass(frozen=True)
class PollOutcome:
    """What polling one order produced."""

    observations: list[Observation]
    skipped: str | None = None
    """Why no (further) request was sent (a `Skip` value), or None."""


class Poller:
    """Polls tracked orders through their providers' adapters.

    Use as an async context manager; pass `transport` to talk to an in-process app in tests
    (default: a `PoolTransport` per provider, bounded by the provider's concurrency).
    Set `limits=False` to switch off rate limiting (benchmarks against the sandbox); `clock`
    stamps `polled_at` (default: now, UTC; a simulation passes its own).
    """

    def __init__(
        self,
        settings: Settings,
        adapters: Mapping[str, ProviderAdapter],
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout = TIMEOUT,
        limits: bool = True,
        seed: int | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings
        self._clock = clock or _utc_now
        self.retry = retry or RetryPolicy()
        self._rng = random.Random(seed)
        self._transport = transport
        self._timeout = timeout
        self.lanes = {slug: _lane(adapter, limits) for slug, adapter in adapters.items()}
        self._code_key = settings.code_key()
        redact.install()

    async def __aenter__(self) -> Poller:
        for lane in self.lanes.values():
            lane.client = PollingClient(
                transport=self._transport or PoolTransport(max_connections=lane.concurrency),
                timeout=self._timeout,
                follow_redirects=False,
                headers={"Accept": "application/json", "User-Agent": "order-status-history/0.1"},
            )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for lane in self.lanes.values():
            if lane.client is not None:
                await lane.client.aclose()
                lane.client = None

    def now(self) -> datetime:
        """The time this poller stamps its answers with."""
        return self._clock()

    def start_pass(self, provider: str) -> None:
        """Forget a provider's configuration error: its credentials may have been fixed."""
        self.lanes[provider].config_error = None

    def start_tick(self) -> None:
        """`start_pass` for every provider."""
        for slug in self.lanes:
            self.start_pass(slug)

    async def poll(
        self, order: TrackedOrder, previous_state: str | None, *, deadline: float | None = None
    ) -> PollOutcome:
        """Poll one order, retrying transient failures within the retry policy.

        `deadline` (monotonic) bounds every wait: no request starts after it, and a request in
        flight is given only until shortly after it (see `request_timeout`).
        """
        lane = self.lanes[order.provider]
        observations: list[Observation] = []
        for attempt in range(1, self.retry.max_attempts + 1):
            if lane.config_error is not None:
                return PollOutcome(observations, skipped=Skip.CONFIG_ERROR)
            if not lane.breaker.allow():
                if not observations:  # the order was due: say so, or an outage goes unseen
                    observations.append(_circuit_open(order, self._clock(), previous_state))
                return PollOutcome(observations, skipped=Skip.CIRCUIT_OPEN)
            async with lane.semaphore:
                if not await _wait_for_turn(lane, deadline):
                    return PollOutcome(observations, skipped=Skip.DEADLINE)
                observation = await self._attempt(lane, order, previous_state, attempt, deadline)
            observations.append(observation)
            self._account(lane, observation)
            error = observation.error_class
            if error is None or not self.retry.should_retry(error, attempt):
                break
            delay = self.retry.delay_s(attempt, observation.retry_after_s, self._rng)
            if delay is None or (deadline is not None and time.monotonic() + delay > deadline):
                break
            await asyncio.sleep(delay)
        return PollOutcome(observations)

    async def _attempt(
        self,
        lane: Lane,
        order: TrackedOrder,
        previous_state: str | None,
        attempt: int,
        deadline: float | None,
    ) -> Observation:
        assert lane.client is not None, "use Poller as an async context manager"
        spec = lane.adapter.build_request(order, self.settings.provider(order.provider))
        polled_at = self._clock()
        started = time.perf_counter()
        try:
            request = status_request(lane.client, spec, request_timeout(self._timeout, deadline))
            response = await lane.client.send(request)
            body = response.content
        except httpx.TimeoutException as error:
            return _transport_failure(
                order, polled_at, started, attempt, previous_state, ErrorClass.TIMEOUT, error,
                spec.log_url,
            )  # fmt: skip
        except httpx.TransportError as error:
            return _transport_failure(
                order, polled_at, started, attempt, previous_state, ErrorClass.CONNECTION_ERROR,
                error, spec.log_url,
            )  # fmt: skip
        latency_ms = (time.perf_counter() - started) * 1000
        try:
            observation = lane.adapter.parse(
                response.status_code,
                response.headers,
                body,
                order=order,
                polled_at=polled_at,
                previous_state=previous_state,
                code_key=self._code_key,
            )
        except Exception as error:  # adapters never raise; if one does, only this poll suffers
            logger.error("%s adapter raised %s", order.provider, type(error).__name__)
            observation = _unparsed(order, polled_at, response.status_code, previous_state, error)
        return dataclasses.replace(observation, latency_ms=latency_ms, attempt=attempt)

    def _account(self, lane: Lane, observation: Observation) -> None:
        error = observation.error_class
        if error in OUTAGE_ERRORS:
            lane.breaker.record_failure()
        else:
            lane.breaker.record_success()
        if error in CONFIG_ERRORS:
            lane.config_error = error
            logger.warning(
                "%s: %s; skipping its other orders this pass", observation.provider, error
            )
        if error == ErrorClass.RATE_LIMITED:
            lane.pause(observation.retry_after_s or DEFAULT_RATE_LIMIT_PAUSE_S)
        if observation.status_unrecognized:
            _note_unrecognised(lane, observation)


def _note_unrecognised(lane: Lane, observation: Observation) -> None:
    """Log a raw status we cannot map the first time this process meets it."""
    status = observation.provider_status
    if not status or status in lane.unrecognised or len(lane.unrecognised) >= MAX_LOGGED_STATUSES:
        return
    lane.unrecognised.add(status)
    # The status is already scrubbed and bounded by the adapter; the body is never logged.
    logger.warning("%s: new unrecognised status %r", observation.provider, status)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def request_timeout(timeout: httpx.Timeout, deadline: float | None) -> httpx.Timeout:
    """`timeout`, shortened so a request started near `deadline` ends soon after it."""
    if deadline is None:
        return timeout
    remaining = max(MIN_REQUEST_TIMEOUT_S, deadline - time.monotonic())

    def cap(value: float | None) -> float:
        return remaining if value is None else min(value, remaining)

    return httpx.Timeout(
        connect=cap(timeout.connect),
        read=cap(timeout.read),
        write=cap(timeout.write),
        pool=cap(timeout.pool),
    )


async def _wait_for_turn(lane: Lane, deadline: float | None) -> bool:
    """Wait out the provider's 429 pause and the rate budget; False if either ends too late."""
    pause = lane.paused_until - time.monotonic()
    if pause > 0:
        if deadline is not None and time.monotonic() + pause > deadline:
            return False
        await asyncio.sleep(pause)
    return lane.bucket is None or await lane.bucket.take(deadline)


def _lane(adapter: ProviderAdapter, limits: bool) -> Lane:
    policy = adapter.policy
    bucket = None
    if limits and policy.rate_limit_per_minute:
        rate_per_s = policy.rate_limit_per_minute * policy.budget_share / 60
        bucket = TokenBucket(rate_per_s, capacity=max(1.0, rate_per_s))
    concurrency = policy.max_concurrency if limits else max(policy.max_concurrency, MAX_CONNECTIONS)
    return Lane(adapter, asyncio.Semaphore(concurrency), bucket, CircuitBreaker(), concurrency)


def _unparsed(
    order: TrackedOrder,
    polled_at: datetime,
    http_status: int,
    previous_state: str | None,
    error: Exception,
) -> Observation:
    """A `parse_error` for an answer the adapter could not turn into an observation."""
    return _poll_error(
        order,
        polled_at,
        previous_state,
        ErrorClass.PARSE_ERROR,
        f"answer could not be parsed ({type(error).__name__})",
        http_status=http_status if 100 <= http_status <= 599 else None,
    )


def _circuit_open(
    order: TrackedOrder, polled_at: datetime, previous_state: str | None
) -> Observation:
    """A poll not sent because the provider's circuit is open: recorded like a failed attempt,
    so availability, alerts and the report see the outage while the breaker waits it out."""
    return _poll_error(
        order,
        polled_at,
        previous_state,
        ErrorClass.CIRCUIT_OPEN,
        f"not sent: {order.provider} failed repeatedly; circuit open until its next probe",
    )


def _transport_failure(
    order: TrackedOrder,
    polled_at: datetime,
    started: float,
    attempt: int,
    previous_state: str | None,
    error_class: ErrorClass,
    error: Exception,
    log_url: str,
) -> Observation:
    # The exception text can hold the full URL (and a key in its query): keep only its type.
    return _poll_error(
        order,
        polled_at,
        previous_state,
        error_class,
        f"{type(error).__name__} on {order.provider} {log_url}",
        latency_ms=(time.perf_counter() - started) * 1000,
        attempt=attempt,
    )


def _poll_error(
    order: TrackedOrder,
    polled_at: datetime,
    previous_state: str | None,
    error_class: ErrorClass,
    message: str,
    **facts: Any,
) -> Observation:
    """A failed attempt built by the poller itself: the last known state, repeated."""
    state = known_state(previous_state)
    return Observation(
        provider=order.provider,
        order_id=order.order_id,
        order_kind=order.order_kind,
        polled_at=polled_at,
        state=state.value,
        is_terminal=state.is_terminal,
        is_success=state.is_success,
        error_class=error_class.value,
        error_message=message,
        service=order.service,
        country=order.country,
        **facts,
    )
