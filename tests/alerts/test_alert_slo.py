"""Outcome SLOs: orders are judged once their outcome is known (censoring-aware: a young open
order is never a breach), burn rates follow the SRE workbook's two windows, an expiry storm
fires once and recovers once, and `slo_status` holds the budget per window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from alert_support import (
    NOW,
    WEBHOOK_TOKEN,
    WebhookReceiver,
    config,
    lifecycle,
    track,
    webhook,
    write,
)

from pipeline.alerts import evaluate_and_notify
from pipeline.alerts.config import Slo
from pipeline.alerts.slo import judge
from pipeline.analytics.survival import CENSORED, COMPETING, EVENT
from pipeline.model import Observation
from pipeline.warehouse import Warehouse

MINUTE = timedelta(minutes=1)
ORIGIN = datetime(2026, 5, 1, 11, 0, tzinfo=UTC)


def _record(order_id: str, code: int, after: float | None, by: float | None, follow: float) -> dict:
    return {
        "provider": "smsonline",
        "order_id": order_id,
        "origin_at": ORIGIN,
        "event_code": code,
        "event_after_s": after,
        "event_by_s": by,
        "upper_s": by,
        "follow_up_s": follow,
    }


def test_judge_counts_only_what_the_polls_decide() -> None:
    slo = Slo("time_to_code", "code", objective=0.95, within_s=120.0)
    records = pl.DataFrame(
        [
            _record("on-time", EVENT, 30.0, 60.0, 60.0),
            _record("late", EVENT, 150.0, 180.0, 180.0),
            _record("straddles", EVENT, 100.0, 140.0, 140.0),  # 20 of its 40 s are in time
            _record("expired", COMPETING, 1190.0, 1210.0, 1210.0),
            _record("young-open", CENSORED, 90.0, None, 90.0),
            _record("old-open", CENSORED, 125.0, None, 125.0),
        ],
        schema_overrides={"origin_at": pl.Datetime("us", "UTC")},
    )
    judged = {row["order_id"]: row for row in judge(records, slo).iter_rows(named=True)}
    assert {k: v["good"] for k, v in judged.items()} == {
        "on-time": 1.0,
        "late": 0.0,
        "straddles": pytest.approx(0.5),
        "expired": 0.0,
        "old-open": 0.0,
    }
    assert "young-open" not in judged
    assert judged["on-time"]["decided_at"] == ORIGIN + timedelta(seconds=60)
    assert judged["old-open"]["decided_at"] == ORIGIN + timedelta(seconds=125)

    no_limit = Slo("expiry", "no_expiry", objective=0.9, within_s=None)
    assert set(judge(records, no_limit)["order_id"]) == {"on-time", "late", "straddles", "expired"}


def _baanx_orders(
    warehouse: Warehouse, prefix: str, starts: list[datetime], *, expire: bool
) -> None:
    observations: list[Observation] = []
    for number, created in enumerate(starts):
        order_id = f"{prefix}-{number}"
        track(warehouse, "baanx", order_id, created, "product_order")
        end = (905.0, "expired", "EXPIRED") if expire else (60.0, "completed", "COMPLETED")
        steps = [(10.0, "pending", "STARTED")]
        steps += [(300.0, "pending", "STARTED"), (600.0, "pending", "STARTED")] if expire else []
        observations += lifecycle("baanx", order_id, "product_order", created, [*steps, end])
    write(warehouse, observations)


def test_expiry_storm_fires_once_and_recovers_once(
    warehouse: Warehouse, receiver: WebhookReceiver, tmp_path: object
) -> None:
    alerting = config(tmp_path, webhook(receiver, "/hook"))
    # 10 orders completed 45–54 min ago, then 40 that were created 25 min ago and expired.
    _baanx_orders(warehouse, "calm", [NOW - (55 - i) * MINUTE for i in range(10)], expire=False)
    storm = [NOW - 25 * MINUTE + timedelta(seconds=10 * i) for i in range(40)]
    _baanx_orders(warehouse, "storm", storm, expire=True)

    first = evaluate_and_notify(warehouse, alerting, NOW)
    again = evaluate_and_notify(warehouse, alerting, NOW + MINUTE)
    assert first.opened == (("baanx", "expiry", "ticket"),)
    assert again.opened == () and again.orders_judged == 0

    status = warehouse.read(
        "SELECT window_name, good, total, burn_rate, error_budget_remaining FROM slo_status "
        "WHERE provider = 'baanx' AND slo = 'expiry' ORDER BY window_s"
    )
    rows = {row["window_name"]: row for row in status.iter_rows(named=True)}
    assert list(rows) == ["5m", "30m", "1h", "6h", "30d"]
    # Over the hour 40 of 50 expired: 80 % bad against 10 % allowed burns the budget 8×; the
    # page needs 9× (90 % of the 10× an SLO of 90 % can reach), the ticket 6× over 6 h and 30 min.
    assert (rows["1h"]["good"], rows["1h"]["total"]) == (10.0, 50)
    assert rows["1h"]["burn_rate"] == pytest.approx(8.0)
    assert rows["30m"]["burn_rate"] == pytest.approx(10.0)
    assert rows["30d"]["error_budget_remaining"] == pytest.approx(1 - 8.0)

    _baanx_orders(warehouse, "after", [NOW + (1 + i) * MINUTE for i in range(30)], expire=False)
    later = [evaluate_and_notify(warehouse, alerting, NOW + m * MINUTE) for m in (10, 20, 30, 40)]
    # At +10 min the 6 h window burns 6.8× (40 bad of 59); at +20 min 5.8× (40 of 69): resolved.
    assert [len(run.resolved) for run in later] == [0, 1, 0, 0]

    bodies = receiver.bodies(f"/hook/{WEBHOOK_TOKEN}")
    assert [(b["state"], b["rule"], b["severity"]) for b in bodies] == [
        ("firing", "expiry", "ticket"),
        ("resolved", "expiry", "ticket"),
    ]
    assert "expire" in bodies[0]["text"]
    assert bodies[0]["value"] > bodies[0]["threshold"] == pytest.approx(6.0)


def _smsonline_waiting(
    warehouse: Warehouse, count: int, created: datetime, at: list[float]
) -> None:
    observations: list[Observation] = []
    for number in range(count):
        order_id = str(7000 + number)
        track(warehouse, "smsonline", order_id, created, "sms_receive")
        steps = [(s, "pending", "STATUS_WAIT_CODE") for s in at]
        observations += lifecycle("smsonline", order_id, "sms_receive", created, steps)
    write(warehouse, observations)


def test_young_open_orders_do_not_breach_the_code_slo(
    warehouse: Warehouse, tmp_path: object
) -> None:
    """30 orders a minute old without a code are not late for a 120 s objective; the same
    orders seen still waiting at 130 s are, and page."""
    alerting = config(tmp_path)
    created = NOW - MINUTE
    _smsonline_waiting(warehouse, 30, created, [5.0, 30.0, 55.0])
    young = evaluate_and_notify(warehouse, alerting, NOW)
    code = next(v for v in young.verdicts if (v.provider, v.rule) == ("smsonline", "time_to_code"))
    assert not code.known and young.firing == ()
    total = warehouse.read(
        "SELECT sum(total) AS n FROM slo_status WHERE provider = 'smsonline' "
        "AND slo = 'time_to_code'"
    )
    assert total["n"][0] == 0

    _smsonline_waiting(warehouse, 30, created, [130.0])
    late = evaluate_and_notify(warehouse, alerting, NOW + 2 * MINUTE)
    assert ("smsonline", "time_to_code", "page") in late.firing
    assert late.orders_judged == 30
