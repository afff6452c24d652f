"""Token bucket and circuit breaker: budgets respected, outages stop traffic, probes reopen it."""

from __future__ import annotations

import asyncio
import random

from pipeline.polling.limits import BreakerState, CircuitBreaker, TokenBucket
from pipeline.polling.retry import RetryPolicy


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_bucket_grants_at_most_rate_times_time_plus_capacity() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=4.0, capacity=4.0, clock=clock)
    granted = 0
    for _ in range(6000):  # 60 simulated seconds in 10 ms steps
        if bucket.try_take() == 0.0:
            granted += 1
        clock.now += 0.01
    assert granted <= 4.0 * 60 + 4
    assert granted >= 4.0 * 60 - 4


def test_bucket_reports_the_wait_until_the_next_token() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=2.0, capacity=1.0, clock=clock)
    assert bucket.try_take() == 0.0
    assert abs(bucket.try_take() - 0.5) < 1e-9


def test_take_gives_up_rather_than_wait_past_the_deadline() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=0.5, capacity=1.0, clock=clock)
    assert asyncio.run(bucket.take(deadline=clock.now + 0.1))  # the initial token
    # The next token is 2 s away: a caller whose window ends in 1 s is told so at once.
    assert not asyncio.run(bucket.take(deadline=clock.now + 1.0))
    assert clock.now == 0.0  # and it did not sleep


def test_breaker_opens_after_sustained_failures_and_probes_after_cooldown() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, cooldown_s=10.0, clock=clock)
    for _ in range(3):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    clock.now += 10.0
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()  # one probe
    assert not breaker.allow()  # and only one
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    clock.now += 10.0
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED and breaker.allow()


def test_retry_policy_retries_transient_errors_only_and_within_bounds() -> None:
    policy = RetryPolicy(max_attempts=3, base_delay_s=0.5, max_delay_s=2.0, max_retry_after_s=5)
    assert policy.should_retry("server_error", 1)
    assert policy.should_retry("rate_limited", 2)
    assert not policy.should_retry("server_error", 3)
    assert not policy.should_retry("auth_invalid", 1)
    assert not policy.should_retry("not_found", 1)
    assert not policy.should_retry(None, 1)
    rng = random.Random(1)
    delays = [policy.delay_s(attempt, None, rng) for attempt in (1, 2, 3, 4) for _ in range(200)]
    assert all(d is not None and 0 <= d <= 2.0 for d in delays)
    honoured = policy.delay_s(1, 3.0, rng)
    assert honoured is not None and 3.0 <= honoured <= 3.5
    assert policy.delay_s(1, 60.0, rng) is None  # too long to wait inside a tick
