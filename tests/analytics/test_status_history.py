"""Status history: observation logs folded into state intervals with polling bounds.

Pins: errors and `unknown` answers never open or split intervals; `entered_after` is the last
poll still in the previous state and `entered_by` the first poll in the new one; the provider's
own event time is carried only where the provider contract says it means one; impossible moves
are flagged, not dropped; and the incremental update equals a full rebuild, replays included.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import pytest
from analytics.synthetic import PollCadence, SmsReceiveLifecycle, observation_log
from polars.testing import assert_frame_equal

from pipeline.analytics.history import (
    HISTORY_COLUMNS,
    build_status_history,
    empty_history,
    late_observations,
    status_history_delta,
    update_status_history,
)
from pipeline.analytics.inputs import STATE

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
UTC_US = pl.Datetime("us", "UTC")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def obs(
    order_id: str,
    seconds: float,
    state: str,
    *,
    provider: str = "sms4sats",
    terminal: bool = False,
    error: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "provider": provider,
        "order_id": order_id,
        "order_kind": "sms_receive",
        "polled_at": at(seconds),
        "state": state,
        "is_terminal": terminal,
        "error_class": error,
        **extra,
    }


def frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema_overrides={
            "polled_at": UTC_US,
            "provider_updated_at": UTC_US,
            "provider_paid_at": UTC_US,
            "provider_created_at": UTC_US,
        },
    )


def test_intervals_carry_both_polling_bounds_and_skip_errors_and_unknown() -> None:
    log = frame(
        [
            obs("a", 0, "pending"),
            obs("a", 5, "pending"),
            obs("a", 10, "pending", error="server_error"),
            obs("a", 15, "unknown"),
            obs("a", 20, "processing"),
            obs("a", 25, "processing"),
            obs("a", 30, "processing", error="timeout"),
            obs("a", 35, "code_received", terminal=True),
        ]
    )
    history = build_status_history(log)
    expected = pl.DataFrame(
        {
            "interval_seq": [0, 1, 2],
            "state": ["pending", "processing", "code_received"],
            "previous_state": [None, "pending", "processing"],
            "entered_after": [None, at(5), at(25)],
            "entered_by": [at(0), at(20), at(35)],
            "last_seen_at": [at(5), at(25), at(35)],
            "exited_by": [at(20), at(35), None],
            "is_current": [False, False, True],
            "n_polls": [2, 2, 1],
            "min_duration_s": [5.0, 5.0, 0.0],
            "max_duration_s": [None, 30.0, None],
        },
        schema={
            "interval_seq": pl.Int32(),
            "state": STATE,
            "previous_state": STATE,
            "entered_after": UTC_US,
            "entered_by": UTC_US,
            "last_seen_at": UTC_US,
            "exited_by": UTC_US,
            "is_current": pl.Boolean(),
            "n_polls": pl.Int32(),
            "min_duration_s": pl.Float64(),
            "max_duration_s": pl.Float64(),
        },
    )
    assert history.columns == list(HISTORY_COLUMNS)
    assert_frame_equal(history.select(expected.columns), expected)


def test_a_state_outside_the_canonical_ones_is_no_evidence_and_breaks_nothing() -> None:
    """Rows written by plain SQL can hold any text as their state (the writer never does): such
    a poll says nothing about the order, as `unknown` says nothing, in a build and in an update."""
    log = frame(
        [
            obs("a", 0, "pending"),
            obs("a", 5, "Delivered!"),
            obs("a", 10, "processing"),
            obs("b", 0, "weird", terminal=True),
        ]
    )
    history = build_status_history(log)
    assert history["order_id"].to_list() == ["a", "a"]
    assert history["state"].cast(pl.String).to_list() == ["pending", "processing"]
    assert history["entered_after"].to_list() == [None, at(0)]
    update = frame([obs("a", 15, "no such state"), obs("a", 20, "code_received", terminal=True)])
    updated = update_status_history(history, update)
    assert updated["state"].cast(pl.String).to_list() == ["pending", "processing", "code_received"]
    assert updated["entered_after"].to_list() == [None, at(0), at(10)]
    assert late_observations(history, frame([obs("a", 1, "bogus")])).is_empty()


def test_orders_are_keyed_by_provider_and_order_id() -> None:
    log = frame(
        [
            obs("same", 0, "pending", provider="baanx"),
            obs("same", 1, "processing", provider="sms4sats"),
            obs("same", 2, "completed", provider="baanx", terminal=True),
        ]
    )
    history = build_status_history(log)
    assert history.select("provider", "interval_seq", pl.col("state").cast(pl.String)).rows() == [
        ("baanx", 0, "pending"),
        ("baanx", 1, "completed"),
        ("sms4sats", 0, "processing"),
    ]


def test_provider_event_time_is_taken_only_where_the_contract_defines_one() -> None:
    paid = at(40)
    updated = at(41)
    log = frame(
        [
            obs("b", 0, "pending", provider="baanx"),
            obs("b", 60, "completed", provider="baanx", terminal=True, provider_paid_at=paid),
            obs("o", 0, "processing", provider="ordinalsbot", provider_updated_at=at(-5)),
            obs("o", 60, "completed", provider="ordinalsbot", terminal=True),
            obs(
                "o",
                70,
                "completed",
                provider="ordinalsbot",
                terminal=True,
                provider_updated_at=updated,
            ),
            # SMSOnline's provider_updated_at is lastCheckedAt: not an event time.
            obs("s", 0, "processing", provider="smsonline"),
            obs(
                "s",
                60,
                "code_received",
                provider="smsonline",
                terminal=True,
                provider_updated_at=at(59),
            ),
        ]
    )
    history = build_status_history(log)
    event_at = {
        (p, str(s)): e
        for p, s, e in history.select("provider", "state", "provider_event_at").iter_rows()
    }
    assert event_at[("baanx", "completed")] == paid
    assert event_at[("baanx", "pending")] is None
    # The first non-null value within the interval, not the last poll's.
    assert event_at[("ordinalsbot", "completed")] == updated
    assert event_at[("ordinalsbot", "processing")] is None
    assert event_at[("smsonline", "code_received")] is None


@pytest.mark.parametrize(
    ("states", "issue"),
    [
        (["processing", "code_received", "pending"], "left_terminal"),
        (["processing", "completed", "failed"], "left_terminal"),
        (["processing", "pending"], "backwards"),
        (["pending", "processing", "expired", "refunded"], None),
    ],
)
def test_impossible_transitions_are_flagged_and_kept(states: list[str], issue: str | None) -> None:
    terminal = {"code_received", "completed", "failed", "expired", "refunded"}
    log = frame([obs("x", 10 * i, s, terminal=s in terminal) for i, s in enumerate(states)])
    history = build_status_history(log)
    assert history.height == len(states)
    last = history.row(-1, named=True)
    assert last["transition_issue"] == issue
    assert last["is_impossible_transition"] is (issue is not None)
    assert not history["is_impossible_transition"][:-1].any()


def test_state_read_back_as_text_is_accepted_for_the_update() -> None:
    log = frame([obs("a", 0, "pending"), obs("a", 5, "processing")])
    stored = build_status_history(log[:1]).with_columns(
        pl.col("state").cast(pl.String), pl.col("previous_state").cast(pl.String)
    )
    assert_frame_equal(update_status_history(stored, log[1:]), build_status_history(log))


def test_update_continues_the_open_interval_and_numbers_new_ones_after_it() -> None:
    log = frame(
        [
            obs("a", 0, "pending"),
            obs("a", 5, "pending"),
            obs("a", 10, "pending"),
            obs("a", 15, "processing"),
            obs("b", 0, "processing"),
            obs("b", 7, "code_received", terminal=True),
            obs("c", 3, "pending"),
        ]
    )
    first_tick, second_tick = (
        log.filter(pl.col("polled_at") < at(8)),
        log.filter(pl.col("polled_at") >= at(8)),
    )
    before = build_status_history(first_tick)
    after = update_status_history(before, second_tick)
    assert_frame_equal(after, build_status_history(log))
    row = after.filter(order_id="a", interval_seq=0).row(0, named=True)
    assert (row["n_polls"], row["last_seen_at"], row["exited_by"]) == (3, at(10), at(15))
    # Order b was not touched by the second tick: its rows are carried over unchanged.
    assert_frame_equal(after.filter(order_id="b"), before.filter(order_id="b"))


def test_delta_needs_only_the_touched_orders_current_intervals() -> None:
    log = frame(
        [
            obs("a", 0, "pending"),
            obs("a", 5, "processing"),
            obs("b", 1, "pending"),
            obs("a", 9, "processing"),
            obs("a", 12, "code_received", terminal=True),
        ]
    )
    stored = build_status_history(log[:3])
    tick = log[3:]
    delta = status_history_delta(stored.filter(pl.col("is_current"), order_id="a"), tick)
    assert delta.select("order_id", "interval_seq").rows() == [("a", 1), ("a", 2)]
    upserted = pl.concat(
        [stored.filter(~((pl.col("order_id") == "a") & (pl.col("interval_seq") >= 1))), delta]
    ).sort("provider", "order_id", "interval_seq")
    assert_frame_equal(upserted, build_status_history(log))


def test_replaying_a_tick_changes_nothing() -> None:
    log = frame([obs("a", 0, "pending"), obs("a", 5, "processing"), obs("a", 9, "processing")])
    history = build_status_history(log)
    assert_frame_equal(update_status_history(history, log), history)
    assert late_observations(history, log).is_empty()


def test_late_observations_are_reported() -> None:
    history = build_status_history(frame([obs("a", 0, "pending"), obs("a", 20, "processing")]))
    late = late_observations(
        history,
        frame(
            [
                obs("a", 10, "pending"),  # older than the current interval
                obs("a", 20, "pending"),  # same instant as the last poll, other state
                obs("a", 30, "processing"),  # on time
            ]
        ),
    )
    assert late["polled_at"].to_list() == [at(10), at(20)]


def test_update_from_an_empty_history_is_a_full_build() -> None:
    log = frame([obs("a", 0, "pending"), obs("a", 5, "expired", terminal=True)])
    assert_frame_equal(update_status_history(empty_history(), log), build_status_history(log))


@pytest.mark.parametrize("ticks", [2, 7, 40])
def test_incremental_updates_equal_a_full_rebuild(ticks: int) -> None:
    log = observation_log(
        SmsReceiveLifecycle(),
        n_orders=400,
        rng=np.random.default_rng(ticks),
        creation_span_s=1800.0,
        cutoff_s=2400.0,
        cadence=PollCadence(fast_s=5.0, slow_s=10.0, jitter_s=2.0),
        error_rate=0.1,
        unknown_rate=0.05,
    ).observations
    bounds = np.linspace(0.0, 1.0, ticks + 1)
    start, end = log["polled_at"].min(), log["polled_at"].max()
    assert isinstance(start, datetime) and isinstance(end, datetime)
    history = empty_history()
    for low, high in itertools.pairwise(bounds):
        tick = log.filter(
            pl.col("polled_at") > start + (end - start) * float(low) if low > 0 else pl.lit(True),
            pl.col("polled_at") <= start + (end - start) * float(high),
        )
        assert late_observations(history, tick).is_empty()
        history = update_status_history(history, tick)
    assert_frame_equal(history, build_status_history(log))
    assert history.height > 1000
