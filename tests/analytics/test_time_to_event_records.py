"""Per-order time-to-event records: origin, outcome, bounds and the time fed to the estimators.

Pins: the origin is the provider's creation time, else our create time, else registration; the
first outcome decides even if the order later moves; what the estimators get: the event lies in
(`event_after_s`, `event_by_s`], both equal to the provider's own event time (clipped to the
first poll in the outcome) where it gives one, else the polling bounds (last poll before, first
poll in the outcome); open orders are last seen at their last valid poll (`event_by_s` null);
the single `time_s` is the provider's time or the midpoint; orders never answered validly get no
record; order-kind filtering.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
from polars.testing import assert_frame_equal

from pipeline.analytics.events import time_to_event_records
from pipeline.analytics.history import build_status_history

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
UTC_US = pl.Datetime("us", "UTC")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def obs(provider: str, order_id: str, seconds: float, state: str, **extra: Any) -> dict[str, Any]:
    terminal = state in {"code_received", "completed", "expired", "failed", "cancelled"}
    return {
        "provider": provider,
        "order_id": order_id,
        "polled_at": at(seconds),
        "state": state,
        "is_terminal": terminal,
        "error_class": None,
        **extra,
    }


def order(
    provider: str, order_id: str, kind: str, *, created: float | None, registered: float
) -> dict[str, Any]:
    return {
        "provider": provider,
        "order_id": order_id,
        "order_kind": kind,
        "registered_at": at(registered),
        "created_at": None if created is None else at(created),
        "service": "tg",
        "country": "de",
    }


TIMES = {"polled_at": UTC_US, "provider_created_at": UTC_US, "provider_paid_at": UTC_US}

OBSERVATIONS = pl.DataFrame(
    [
        # a: our create time is the origin; code between 25 s and 35 s.
        obs("sms4sats", "a", 5, "pending"),
        obs("sms4sats", "a", 15, "processing"),
        obs("sms4sats", "a", 25, "processing"),
        obs("sms4sats", "a", 35, "code_received"),
        # b: the provider's creation time is the origin; the first poll already has the code.
        obs("smsonline", "b", 20, "code_received", provider_created_at=at(-10)),
        # c: still open: censored at the last valid poll (the error after it does not count).
        obs("smsonline", "c", 10, "processing"),
        obs("smsonline", "c", 100, "processing"),
        obs("smsonline", "c", 110, "processing") | {"error_class": "timeout"},
        # d: expired: a competing event.
        obs("sms4sats", "d", 10, "processing"),
        obs("sms4sats", "d", 1290, "processing"),
        obs("sms4sats", "d", 1310, "expired"),
        # e: the code, then an impossible move back: the first outcome stands.
        obs("sms4sats", "e", 10, "processing"),
        obs("sms4sats", "e", 20, "code_received"),
        obs("sms4sats", "e", 30, "pending"),
        # f: never a valid answer.
        obs("sms4sats", "f", 10, "processing") | {"error_class": "server_error"},
        # p: Baanx gives paidAt; it is used, clipped to the first poll that showed completion.
        obs("baanx", "p", 10, "pending"),
        obs("baanx", "p", 60, "completed", provider_paid_at=at(42)),
        obs("baanx", "q", 10, "pending"),
        obs("baanx", "q", 60, "completed", provider_paid_at=at(75)),
        # s: a send order, excluded from time to code.
        obs("sms4sats", "s", 10, "processing"),
    ],
    schema_overrides=TIMES,
)

ORDERS = pl.DataFrame(
    [
        order("sms4sats", "a", "sms_receive", created=0, registered=2),
        order("smsonline", "b", "sms_receive", created=None, registered=1),
        order("smsonline", "c", "sms_receive", created=None, registered=0),
        order("sms4sats", "d", "sms_receive", created=0, registered=0),
        order("sms4sats", "e", "sms_receive", created=None, registered=4),
        order("sms4sats", "f", "sms_receive", created=0, registered=0),
        order("baanx", "p", "product_order", created=0, registered=0),
        order("baanx", "q", "product_order", created=0, registered=0),
        order("sms4sats", "s", "sms_send", created=0, registered=0),
    ],
    schema_overrides={"registered_at": UTC_US, "created_at": UTC_US},
)

COLUMNS = [
    "order_id",
    "origin_source",
    "outcome_state",
    "event_code",
    "lower_s",
    "upper_s",
    "event_after_s",
    "event_by_s",
    "time_s",
    "time_source",
]


def expected(rows: list[tuple[Any, ...]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "order_id": pl.String(),
            "origin_source": pl.String(),
            "outcome_state": pl.String(),
            "event_code": pl.Int8(),
            "lower_s": pl.Float64(),
            "upper_s": pl.Float64(),
            "event_after_s": pl.Float64(),
            "event_by_s": pl.Float64(),
            "time_s": pl.Float64(),
            "time_source": pl.String(),
        },
        orient="row",
    )


def test_time_to_code_records() -> None:
    records = time_to_event_records(
        build_status_history(OBSERVATIONS),
        ORDERS,
        event_states=["code_received"],
        order_kinds=["sms_receive"],
    )
    assert_frame_equal(
        records.select(COLUMNS),
        expected(
            [
                ("a", "created_at", "code_received", 1, 25.0, 35.0, 25.0, 35.0, 30.0, "midpoint"),
                (
                    "d",
                    "created_at",
                    "expired",
                    2,
                    1290.0,
                    1310.0,
                    1290.0,
                    1310.0,
                    1300.0,
                    "midpoint",
                ),
                ("e", "registered_at", "code_received", 1, 6.0, 16.0, 6.0, 16.0, 11.0, "midpoint"),
                (
                    "b",
                    "provider_created_at",
                    "code_received",
                    1,
                    0.0,
                    30.0,
                    0.0,
                    30.0,
                    15.0,
                    "midpoint",
                ),
                ("c", "registered_at", None, 0, None, None, 100.0, None, 100.0, "last_poll"),
            ]
        ),
    )
    assert records.filter(order_id="c")["follow_up_s"].item() == 100.0
    assert records["service"].unique().to_list() == ["tg"]


def test_provider_event_time_is_used_and_clipped_into_the_bounds() -> None:
    records = time_to_event_records(
        build_status_history(OBSERVATIONS),
        ORDERS,
        event_states=["completed"],
        order_kinds=["product_order"],
    )
    assert_frame_equal(
        records.select(COLUMNS),
        expected(
            [
                ("p", "created_at", "completed", 1, 10.0, 60.0, 42.0, 42.0, 42.0, "provider"),
                ("q", "created_at", "completed", 1, 10.0, 60.0, 60.0, 60.0, 60.0, "provider"),
            ]
        ),
    )


def test_explicit_competing_states_leave_other_terminal_states_open() -> None:
    records = time_to_event_records(
        build_status_history(OBSERVATIONS),
        ORDERS,
        event_states=["code_received"],
        competing_states=["cancelled"],
        order_kinds=["sms_receive"],
    )
    # Expiry is neither the event nor competing here: order d stays open until its last poll.
    assert records.filter(order_id="d").select("event_code", "time_s", "event_after_s").row(0) == (
        0,
        1310.0,
        1310.0,
    )


def test_each_order_is_read_in_interval_order_however_its_rows_arrive() -> None:
    # r: a code, then reopened and expired; a creation time that changes between answers.
    log = pl.DataFrame(
        [
            obs("smsonline", "r", 10, "processing"),
            obs("smsonline", "r", 20, "code_received", provider_created_at=at(-5)),
            obs("smsonline", "r", 30, "processing", provider_created_at=at(-50)),
            obs("smsonline", "r", 40, "expired", provider_created_at=at(-50)),
        ],
        schema_overrides=TIMES,
    )
    orders = pl.DataFrame(
        [order("smsonline", "r", "sms_receive", created=None, registered=0)],
        schema_overrides={"registered_at": UTC_US, "created_at": UTC_US},
    )
    history = build_status_history(log)
    assert history.height == 4

    def records(rows: pl.DataFrame) -> pl.DataFrame:
        return time_to_event_records(rows, orders, event_states=["code_received"])

    in_order = records(history)
    # The first creation time given is the origin, the first outcome decides.
    assert in_order.select(COLUMNS).row(0) == (
        "r", "provider_created_at", "code_received", 1, 15.0, 25.0, 15.0, 25.0, 20.0, "midpoint"
    )  # fmt: skip
    assert_frame_equal(records(history.reverse()), in_order)
    assert_frame_equal(records(history.sample(fraction=1.0, shuffle=True, seed=3)), in_order)
