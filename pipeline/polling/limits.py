"""Per-provider request budget (token bucket) and circuit breaker.

Both take an injectable monotonic clock so their behaviour is testable without sleeping.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Callable

Clock = Callable[[], float]


class TokenBucket:
    """Allows `rate_per_s` requests per second on average, with bursts up to `capacity`.

    The bucket starts with a single token rather than a full burst: a fresh process must not
    spend a whole burst on top of what a previous run already spent in the same minute.
    """

    def __init__(
        self,
        rate_per_s: float,
        capacity: float,
        *,
        clock: Clock = time.monotonic,
        initial: float = 1.0,
    ) -> None:
        if rate_per_s <= 0 or capacity < 1:
            raise ValueError("rate must be positive and capacity at least one token")
        self.rate_per_s = rate_per_s
        self.capacity = capacity
        self._clock = clock
        self._tokens = min(initial, capacity)
        self._updated = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate_per_s)
        self._updated = now

    def try_take(self) -> float:
        """Take a token if one is there: returns 0.0, else the seconds until one will be."""
        self._refill()
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate_per_s

    async def take(self, deadline: float | None = None) -> bool:
        """Wait until a token is available and take it (fair: one waiter at a time).

        Returns False, without waiting, when the token would only come after `deadline` (a
        monotonic time): a wait must never outlive the caller's window.
        """
        async with self._lock:
            while (wait := self.try_take()) > 0:
                if deadline is not None and self._clock() + wait > deadline:
                    return False
                await asyncio.sleep(wait)
            return True


class BreakerState(enum.StrEnum):
    """Circuit breaker states."""

    CLOSED = "closed"
    """Requests flow."""
    OPEN = "open"
    """Requests are refused until the cool-down ends."""
    HALF_OPEN = "half_open"
    """One probe request is allowed; its outcome closes or re-opens the circuit."""


class CircuitBreaker:
    """Stops asking a provider that keeps failing, then probes it after a cool-down."""

    def __init__(
        self,
        *,
        failure_threshold: int = 8,
        cooldown_s: float = 30.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> BreakerState:
        """The current state."""
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self.cooldown_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def allow(self) -> bool:
        """Whether a request may be sent now (in half-open state, only one probe)."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._probing:
            self._probing = True
            return True
        return False

    def record_success(self) -> None:
        """A valid answer: close the circuit."""
        self._failures = 0
        self._opened_at = None
        self._probing = False

    def record_failure(self) -> None:
        """A transport-level failure (timeout, connection error, 5xx)."""
        self._failures += 1
        if self._probing or self._failures >= self.failure_threshold:
            self._opened_at = self._clock()
            self._probing = False
