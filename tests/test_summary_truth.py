"""The demo summary's truth column: the median the estimator gives on the sandbox's exact
transition times, for the tracked orders only, with other outcomes competing and open orders
censored when the sandbox stopped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.analytics.truth import MEASURE_COMPLETION, exact_outcomes, true_medians

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _record(
    provider: str,
    order_id: str,
    steps: list[tuple[str, float]],
    *,
    kind: str = "x",
    open_s: float = 0,
) -> dict[str, Any]:
    def at(seconds: float) -> str:
        return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")

    return {
        "provider": provider,
        "order_id": order_id,
        "order_kind": kind,
        "created_at": at(0),
        "transitions": [{"state": state, "at": at(s)} for state, s in steps],
        "recorded_at": at(max([open_s, *(s for _, s in steps)])),
    }


def test_true_median_counts_failures_as_competing_and_ignores_untracked_orders() -> None:
    records = [
        _record("baanx", "a", [("pending", 0), ("failed", 5)]),
        _record("baanx", "b", [("pending", 0), ("completed", 10)]),
        _record("baanx", "c", [("pending", 0), ("completed", 20)]),
        _record("baanx", "untracked", [("pending", 0), ("completed", 1)]),
        # SMS: the code is the event; a send order has no code to wait for.
        _record("smsonline", "1", [("processing", 0), ("code_received", 8)], kind="sms_receive"),
        _record("smsonline", "2", [("processing", 0)], kind="sms_receive", open_s=30),
        _record("smsonline", "3", [("processing", 0), ("code_received", 3)], kind="sms_send"),
    ]
    truth = {(r["provider"], r["order_id"]): r for r in records}
    tracked = {("baanx", "a"), ("baanx", "b"), ("baanx", "c"), ("smsonline", "1"),
               ("smsonline", "2"), ("smsonline", "3")}  # fmt: skip
    medians = true_medians(truth, tracked)
    # Failure at 5 s leaves 2/3 at risk; completions at 10 s and 20 s bring the cumulative
    # incidence to 1/3 and then 2/3: the median is 20 s (not 15 s, as if the failure were dropped).
    assert medians["baanx"] == 20.0
    # One code at 8 s, one order still waiting at 30 s: half had the code by 8 s.
    assert medians["smsonline"] == 8.0


def test_exact_outcomes_give_each_counted_order_its_time_and_outcome_in_tracked_order() -> None:
    records = [
        _record("smsonline", "1", [("processing", 0), ("code_received", 8)], kind="sms_receive"),
        _record("smsonline", "2", [("processing", 0), ("expired", 1200)], kind="sms_receive"),
        _record("smsonline", "3", [("processing", 0)], kind="sms_receive", open_s=30),
        _record("smsonline", "4", [("processing", 0), ("code_received", 3)], kind="sms_send"),
        _record("baanx", "b", [("pending", 0), ("completed", 10)]),
    ]
    truth = {(r["provider"], r["order_id"]): r for r in records}
    tracked = [("baanx", "b"), ("smsonline", "3"), ("smsonline", "1"), ("smsonline", "2"),
               ("smsonline", "4"), ("smsonline", "not in the truth")]  # fmt: skip
    rows = exact_outcomes(truth, tracked).rows()
    # The headline figure: completion for Baanx, the code for SMSOnline, whose send orders
    # (no code to wait for) and orders the truth lacks are left out.
    assert rows == [
        ("baanx", "b", 10.0, 1),
        ("smsonline", "3", 30.0, 0),
        ("smsonline", "1", 8.0, 1),
        ("smsonline", "2", 1200.0, 2),
    ]
    assert exact_outcomes(truth, [], MEASURE_COMPLETION).is_empty()
