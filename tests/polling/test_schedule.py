"""Cadence policy: who is due, terminal grace re-checks, tracking age, priority under a budget."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import polars as pl

from pipeline.polling.schedule import (
    DUE_SLACK_S,
    UNKNOWN_MAX_CADENCE_S,
    due_orders,
    schedule,
)
from pipeline.providers.base import PollingPolicy
from pipeline.warehouse.schema import UTC_TIME

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
POLICY = PollingPolicy(
    cadence_s={"pending": 10.0, "processing": 5.0},
    default_cadence_s=20.0,
    terminal_grace_s=60.0,
    max_tracking_age_s=3600.0,
)


def _candidates(rows: list[dict[str, object]]) -> pl.DataFrame:
    base: dict[str, object] = {
        "provider": "baanx",
        "order_kind": "product_order",
        "registered_at": NOW - timedelta(minutes=5),
        "created_at": None,
        "service": None,
        "country": None,
        "last_polled_at": None,
        "last_state": None,
        "is_terminal": False,
        "terminal_seen_at": None,
        "last_ok_at": None,
    }
    schema = {
        "provider": pl.String,
        "order_id": pl.String,
        "order_kind": pl.String,
        "registered_at": UTC_TIME,
        "created_at": UTC_TIME,
        "service": pl.String,
        "country": pl.String,
        "last_polled_at": UTC_TIME,
        "last_state": pl.String,
        "is_terminal": pl.Boolean,
        "terminal_seen_at": UTC_TIME,
        "last_ok_at": UTC_TIME,
    }
    return pl.DataFrame([{**base, **row} for row in rows], schema=schema)


def _ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def test_due_follows_the_cadence_of_the_last_state() -> None:
    frame = _candidates(
        [
            {"order_id": "never"},
            {"order_id": "pending-due", "last_polled_at": _ago(11), "last_state": "pending"},
            {"order_id": "pending-early", "last_polled_at": _ago(9), "last_state": "pending"},
            {"order_id": "processing-due", "last_polled_at": _ago(6), "last_state": "processing"},
            {"order_id": "unknown-early", "last_polled_at": _ago(19), "last_state": "unknown"},
        ]
    )
    due = due_orders(frame, {"baanx": POLICY}, NOW)
    assert set(due["order_id"]) == {"never", "pending-due", "processing-due"}


def test_orders_answered_only_in_unrecognised_statuses_back_off_until_the_tracking_age() -> None:
    # Registered 30 min ago: backed-off cadence min(0.1 * 1800 s, ceiling) = 180 s, not 20 s.
    answered = {"registered_at": _ago(1800), "last_state": "unknown", "last_ok_at": _ago(1)}
    frame = _candidates(
        [
            {"order_id": "unmapped-recent", **answered, "last_polled_at": _ago(100)},
            {"order_id": "unmapped-due", **answered, "last_polled_at": _ago(181)},
            # Never a valid answer (errors only): the retry policy handles it, cadence as usual.
            {"order_id": "erroring", "last_state": "unknown", "last_polled_at": _ago(21)},
            {
                "order_id": "unmapped-too-old",
                **answered,
                "registered_at": _ago(3601),
                "last_polled_at": _ago(900),
            },
        ]
    )
    scheduled = schedule(frame, {"baanx": POLICY}, NOW)
    cadence = dict(zip(scheduled["order_id"], scheduled["cadence_s"], strict=True))
    assert cadence["unmapped-recent"] == cadence["unmapped-due"] == 180.0
    assert cadence["erroring"] == POLICY.default_cadence_s
    assert "unmapped-too-old" not in cadence
    due = due_orders(frame, {"baanx": POLICY}, NOW)
    assert set(due["order_id"]) == {"unmapped-due", "erroring"}
    ceiling = schedule(
        _candidates([{"order_id": "a", **answered, "registered_at": _ago(3500)}]),
        {"baanx": dataclasses.replace(POLICY, max_tracking_age_s=10 * 3600.0)},
        NOW,
    )
    assert ceiling["cadence_s"].to_list() == [min(350.0, UNKNOWN_MAX_CADENCE_S)]


def test_terminal_orders_get_one_grace_recheck() -> None:
    frame = _candidates(
        [
            {
                "order_id": "fresh-terminal",
                "last_polled_at": _ago(5),
                "last_state": "completed",
                "is_terminal": True,
                "terminal_seen_at": _ago(5),
            },
            {
                "order_id": "grace-due",
                "last_polled_at": _ago(61),
                "last_state": "completed",
                "is_terminal": True,
                "terminal_seen_at": _ago(61),
            },
        ]
    )
    due = due_orders(frame, {"baanx": POLICY}, NOW)
    assert due["order_id"].to_list() == ["grace-due"]


def test_orders_past_the_tracking_age_are_left_alone() -> None:
    frame = _candidates(
        [
            {
                "order_id": "old",
                "registered_at": _ago(3601),
                "last_polled_at": _ago(100),
                "last_state": "pending",
            }
        ]
    )
    assert due_orders(frame, {"baanx": POLICY}, NOW).is_empty()


def test_budget_keeps_the_most_overdue_and_most_changeable_first() -> None:
    frame = _candidates(
        [
            {"order_id": "pending-slightly", "last_polled_at": _ago(11), "last_state": "pending"},
            {"order_id": "pending-very", "last_polled_at": _ago(60), "last_state": "pending"},
            {"order_id": "processing", "last_polled_at": _ago(11), "last_state": "processing"},
            {"order_id": "never"},
        ]
    )
    due = due_orders(frame, {"baanx": POLICY}, NOW, budgets={"baanx": 2})
    assert due["order_id"].to_list() == ["never", "pending-very"]
    everything = due_orders(frame, {"baanx": POLICY}, NOW)
    assert everything["order_id"].to_list()[-1] == "pending-slightly"


def _next_due(frame: pl.DataFrame) -> dict[str, datetime]:
    scheduled = schedule(frame, {"baanx": POLICY}, NOW)
    return dict(zip(scheduled["order_id"], scheduled["next_due"], strict=True))


def test_each_order_polls_at_its_own_phase_after_the_first_poll() -> None:
    """New orders are asked at once; their second poll falls at a fraction of the cadence after
    registration that differs between orders, so orders registered together never poll in step."""
    registered = NOW - timedelta(seconds=0.5)
    ids = [f"o{i}" for i in range(50)]
    never = _candidates([{"order_id": i, "registered_at": registered} for i in ids])
    assert set(_next_due(never).values()) == {registered}  # at once
    polled = _candidates(
        [
            {
                "order_id": i,
                "registered_at": registered,
                "last_polled_at": registered,
                "last_state": "pending",
            }
            for i in ids
        ]
    )
    phases = [(due - registered).total_seconds() for due in _next_due(polled).values()]
    assert all(0 <= p <= 10.0 for p in phases)  # within one pending cadence
    assert len({round(p, 1) for p in phases}) > 25  # spread, not in step


def test_a_poll_taken_a_moment_before_the_phase_is_the_phases_poll() -> None:
    """A loop picks orders due within DUE_SLACK_S; such a slightly early poll must not make the
    order due again at its phase a fraction of a second later."""
    registered = NOW - timedelta(seconds=30)
    first = _candidates(
        [
            {
                "order_id": "o",
                "registered_at": registered,
                "last_polled_at": registered,
                "last_state": "pending",
            }
        ]
    )
    anchor = _next_due(first)["o"]
    early = anchor - timedelta(seconds=DUE_SLACK_S)
    again = _candidates(
        [
            {
                "order_id": "o",
                "registered_at": registered,
                "last_polled_at": early,
                "last_state": "pending",
            }
        ]
    )
    assert _next_due(again)["o"] == early + timedelta(seconds=10.0)
