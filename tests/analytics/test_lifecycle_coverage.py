"""`bench/lifecycle_coverage.py`: its synthetic polling follows the scheduler's rules, and its
pool's truths are the sandbox's."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import lifecycle_coverage as bench
import truth as truth_bench

from pipeline.analytics import npmle
from pipeline.model import OrderState
from pipeline.providers.registry import REGISTRY

SLUG = "sms4sats"
MEDIAN_S = 100.0


def _pool(code_at: float, paid_at: float = 10.0, counts: bool = True) -> bench.Pool:
    """One order: pending from creation, processing from `paid_at`, its code at `code_at`."""
    names = [OrderState.CODE_RECEIVED.value, OrderState.PENDING.value, OrderState.PROCESSING.value]
    return bench.Pool(
        counts=np.array([counts]),
        time=np.array([code_at]),
        cause=np.array([1]),
        moves=np.array([[0.0, paid_at, code_at]]),
        states=np.array([[1, 2, 0]]),
        state_names=names,
        median_s=MEDIAN_S,
    )


def _cadences(ratio: float) -> tuple[float, float]:
    """sms4sats' pending and processing cadences scaled as the benchmark scales them."""
    policy = REGISTRY.spec(SLUG).policy
    factor = ratio * MEDIAN_S / policy.cadence_for(OrderState.PROCESSING.value)
    return (
        policy.cadence_for(OrderState.PENDING.value) * factor,
        policy.cadence_for(OrderState.PROCESSING.value) * factor,
    )


def test_polls_at_registration_then_at_the_phase_then_every_cadence_of_the_state_seen() -> None:
    pending, processing = _cadences(1.0)
    assert pending > processing  # the case only tells the two apart where they differ
    rng = np.random.default_rng(3)
    records = bench.polled_records(_pool(code_at=400.0), SLUG, rng, 1.0, None)
    assert records.height == truth_bench.ORDERS  # every draw is the one order, all tracked
    after = records[npmle.EVENT_AFTER].to_numpy()
    by = records[npmle.EVENT_BY].to_numpy()
    assert (records["event_code"] == 1).all()
    assert (after < 400.0).all() and (by >= 400.0).all()
    # Seen in processing from the second poll on, the order is asked every processing cadence,
    # so the poll that sees its code comes one processing cadence after the one before.
    late = after > pending
    assert late.any()
    np.testing.assert_allclose(by[late] - after[late], processing, rtol=1e-9)
    # A code at 60 s comes between the first poll, at the refresh after registration, and the
    # order's phase when that is later: spread over the pending cadence, not a cadence after
    # the first poll.
    early = bench.polled_records(_pool(code_at=60.0), SLUG, rng, 1.0, None)
    after = early[npmle.EVENT_AFTER].to_numpy()
    by = early[npmle.EVENT_BY].to_numpy()
    at_phase = after <= truth_bench.REFRESH_S
    assert at_phase.mean() > 0.5
    assert by[at_phase].min() < 70.0 and by[at_phase].max() > pending - 10.0
    assert (by[at_phase] <= pending + truth_bench.REFRESH_S).all()


def test_an_order_still_pending_at_its_phase_waits_its_pending_cadence() -> None:
    pending, processing = _cadences(1.0)
    rng = np.random.default_rng(5)
    # Paid long after the phase: its polls after the phase come a pending cadence apart.
    records = bench.polled_records(_pool(code_at=1000.0, paid_at=900.0), SLUG, rng, 1.0, None)
    after = records[npmle.EVENT_AFTER].to_numpy()
    by = records[npmle.EVENT_BY].to_numpy()
    # The code's bracket starts at a poll seeing the order pending (before 900 s) or
    # processing: it is that state's cadence long.
    gaps = by - after
    was_pending = after < 900.0
    assert was_pending.any() and (~was_pending).any()
    np.testing.assert_allclose(gaps[was_pending], pending, rtol=1e-9)
    np.testing.assert_allclose(gaps[~was_pending], processing, rtol=1e-9)


def test_orders_that_do_not_count_are_left_out_and_the_stop_leaves_orders_open() -> None:
    rng = np.random.default_rng(7)
    assert bench.polled_records(_pool(400.0, counts=False), SLUG, rng, 1.0, None).is_empty()
    # Arrivals over two medians (200 s), the stop half a median (50 s) after the last: the
    # code at 150 s is seen by the orders that arrived early, not by the others.
    records = bench.polled_records(_pool(code_at=150.0), SLUG, rng, 1.0, 0.5)
    still_open = records.filter(records["event_code"] == 0)
    assert 0 < still_open.height < records.height
    # An open order's bound is its last poll, before the code.
    assert (still_open[npmle.EVENT_AFTER] < 150.0).all()


@pytest.mark.slow
def test_the_pool_holds_the_sandbox_timelines_and_their_median() -> None:
    pool = bench.make_pool(SLUG, batches=2)
    counted = pool.counts.sum()
    assert 0 < counted < pool.counts.size  # sms4sats also sells orders without a code
    assert pool.median_s == pytest.approx(
        float(np.median(np.where(pool.cause[pool.counts] == 1, pool.time[pool.counts], np.inf))),
        rel=0.02,
    )
    # Every timeline starts at creation and reaches its outcome at one of its moves.
    assert (pool.moves[:, 0] == 0.0).all()
    resolved = np.isfinite(pool.time)
    assert np.isclose(pool.moves[resolved], pool.time[resolved, None]).any(axis=1).all()
