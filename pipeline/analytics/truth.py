"""The true medians of tracked orders, from the sandbox's ground truth (exact transition times).

On sandbox data the estimate from polling can be checked: the same estimator, fed the
sandbox's recorded transition times instead of poll brackets, gives the median the estimate
should land on. `pipeline demo`'s summary and the report (`pipeline.report`) show it beside the
estimate; the truth benchmark (`bench/truth.py`) scores against it. The truth file is read with
`pipeline.simulator.truth.read_truth`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

import polars as pl

from pipeline.analytics.curves import MEASURE_CODE, MEASURE_COMPLETION
from pipeline.analytics.survival import cif_quantiles, event_table
from pipeline.model import SUCCESS_STATES, TERMINAL_STATES, OrderState
from pipeline.providers.registry import REGISTRY

__all__ = [
    "MEASURE_CODE",
    "MEASURE_COMPLETION",
    "exact_outcomes",
    "measures_code",
    "missing_truth",
    "true_medians",
]


def measures_code(provider: str) -> bool:
    """Whether the provider's headline figure is time to code (it sells code kinds)."""
    return provider in REGISTRY and bool(REGISTRY.spec(provider).code_kinds)


def true_medians(
    truth: Mapping[tuple[str, str], Mapping[str, Any]],
    tracked: Collection[tuple[str, str]],
    measure: str | None = None,
) -> dict[str, float | None]:
    """Per provider, the median time to code or to completion of the tracked orders, from their
    true transition times: Aalen–Johansen on exact times, orders still open when the sandbox
    stopped censored then, other outcomes competing. None: fewer than half reached it.

    Args:
        truth: the sandbox's records by (provider, order_id) (`read_truth`).
        tracked: the (provider, order_id) of the orders the estimate is from; those without a
            record are left out (see `missing_truth`).
        measure: `MEASURE_CODE` (the code, orders of the provider's code kinds, providers that
            sell none left out), `MEASURE_COMPLETION` (success: code received or completed,
            every order), or None for each provider's headline figure (the code where it sells
            code kinds, else completion).
    """
    records = exact_outcomes(truth, tracked, measure)
    if records.is_empty():
        return {}
    medians = cif_quantiles(event_table(records, ["provider"]), ["provider"], 0.5)
    return dict(zip(medians["provider"], medians["quantile_s"], strict=True))


def exact_outcomes(
    truth: Mapping[tuple[str, str], Mapping[str, Any]],
    tracked: Collection[tuple[str, str]],
    measure: str | None = None,
) -> pl.DataFrame:
    """One row per tracked order that counts for `measure` (as in `true_medians`), in
    `tracked`'s order: `provider`, `order_id`, `time_s` (from creation to the event, another
    outcome, or the sandbox's stop) and `event_code` (1 the event, 2 another outcome, 0 open)."""
    if measure not in (None, MEASURE_CODE, MEASURE_COMPLETION):
        raise ValueError(f"unknown measure {measure!r}")
    rows = []
    for key in tracked:
        record = truth.get(key)
        if record is None:
            continue
        provider = key[0]
        code = measures_code(provider) if measure is None else measure == MEASURE_CODE
        if code and record.get("order_kind") not in _code_kinds(provider):
            continue
        events = {OrderState.CODE_RECEIVED.value} if code else {s.value for s in SUCCESS_STATES}
        rows.append({"provider": provider, "order_id": key[1], **_exact_outcome(record, events)})
    return pl.DataFrame(rows, schema={"provider": pl.String, "order_id": pl.String,
                                      "time_s": pl.Float64, "event_code": pl.Int64})  # fmt: skip


def missing_truth(
    truth: Mapping[tuple[str, str], Mapping[str, Any]], tracked: Collection[tuple[str, str]]
) -> dict[str, int]:
    """Per provider, the tracked orders the truth has no record of (none: every one is there).

    A running sandbox writes an order's truth once the order ends and the rest when it stops,
    so until then the truth lacks the slow orders and a median from it would be too short.
    """
    return dict(Counter(key[0] for key in tracked if key not in truth))


def _code_kinds(provider: str) -> tuple[str, ...]:
    return tuple(REGISTRY.spec(provider).code_kinds) if provider in REGISTRY else ()


def _exact_outcome(record: Mapping[str, Any], events: Collection[str]) -> dict[str, Any]:
    """`time_s` and `event_code` (1 the event, 2 another outcome, 0 still open) of one order."""
    origin = datetime.fromisoformat(record["created_at"])
    terminal = {s.value for s in TERMINAL_STATES}
    for transition in record.get("transitions", []):
        state = transition["state"]
        if state in events or state in terminal:
            at = datetime.fromisoformat(transition["at"])
            code = 1 if state in events else 2
            return {"time_s": max(0.0, (at - origin).total_seconds()), "event_code": code}
    stopped = datetime.fromisoformat(record["recorded_at"])
    return {"time_s": max(0.0, (stopped - origin).total_seconds()), "event_code": 0}
