"""When a failed poll is worth another attempt, and how long to wait before it."""

from __future__ import annotations

import dataclasses
import random

from pipeline.model import ErrorClass

# Transient failures: the same request may well succeed a moment later.
RETRYABLE = frozenset(
    {
        ErrorClass.TIMEOUT,
        ErrorClass.CONNECTION_ERROR,
        ErrorClass.SERVER_ERROR,
        ErrorClass.RATE_LIMITED,
    }
)


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Jittered exponential backoff with a bound on attempts and on any single wait.

    Attributes:
        max_attempts: attempts per order per tick, the first one included.
        base_delay_s: the first backoff ceiling; doubled per attempt.
        max_delay_s: ceiling of any backoff.
        max_retry_after_s: longest `Retry-After` we honour inside a tick; a longer one ends
            the order's attempts for this tick (it is retried at a later tick).
    """

    max_attempts: int = 3
    base_delay_s: float = 0.25
    max_delay_s: float = 4.0
    max_retry_after_s: float = 10.0

    def should_retry(self, error_class: str | None, attempt: int) -> bool:
        """Whether attempt `attempt` (1-based), which failed with `error_class`, is retried."""
        return error_class in RETRYABLE and attempt < self.max_attempts

    def delay_s(
        self, attempt: int, retry_after_s: float | None, rng: random.Random
    ) -> float | None:
        """Seconds to wait before the next attempt, or None to give up for this tick."""
        if retry_after_s is not None:
            if retry_after_s > self.max_retry_after_s:
                return None
            # Honour the provider's wait, plus a little jitter so waiters don't return in step.
            return retry_after_s + rng.uniform(0, self.base_delay_s)
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return rng.uniform(0, ceiling)  # "full jitter"
