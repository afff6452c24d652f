"""Outcome SLOs: each order judged good or bad once its outcome is known, error budgets and
multi-window burn rates over those judgements.

**Judging an order** (`judge`). An SLO counts orders, not polls. From the order's time-to-event
record (`pipeline.analytics.events`, the same records behind `time_to_code`):

- it reached a good outcome (e.g. `code_received`): good if the polls place it within
  `within_s`, bad if they place it after; when the polling interval straddles the limit, it
  counts as good in proportion to the part of the interval inside the limit (the event is
  equally likely anywhere in it);
- it ended otherwise (expired, cancelled, failed, ...): bad;
- it is still open: bad once a poll has seen it open past `within_s` (it can no longer be on
  time); otherwise **undecided**. An open order younger than the limit is never a breach, and an
  SLO without a limit (`no_expiry`) waits for the order to end. Open orders are censored, not
  failures.

An order is judged when the poll that decides it arrives (`decided_at`: the first poll showing
the outcome, or the poll that saw it open past the limit), and is never judged again. Judgements
are kept in `slo_events`, so each evaluation reads only the undecided orders of the last
`lookback_s` and their observations: the cost follows the open orders, not the history.

**Budgets and burn rates** (`slo_windows`). Over a window, the bad share is 1 − good / total and
the burn rate is the bad share over the allowed bad share (1 − objective): 1 spends the budget
exactly over the compliance period. `error_budget_remaining` is 1 − the burn rate over the
compliance period (`budget_period_s`): negative once the budget is overspent. A burn-rate level
fires when both its long and its short window burn faster than its rate (Google SRE workbook,
"multiwindow, multi-burn-rate alerts"); the long window needs `min_events` judged orders, the
short one at least one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import duckdb
import polars as pl

from pipeline.alerts.config import SEVERITY_RANK, BurnLevel, Slo
from pipeline.alerts.verdicts import Verdict, window_name, window_words
from pipeline.analytics import build_status_history, time_to_event_records
from pipeline.analytics.inputs import (
    FAILURE_STATE_VALUES,
    OBSERVATION_FIELDS,
    SUCCESS_STATE_VALUES,
    TERMINAL_STATE_VALUES,
)
from pipeline.analytics.survival import COMPETING, EVENT
from pipeline.model import OrderState
from pipeline.providers.spec import ProviderSpec
from pipeline.warehouse import query
from pipeline.warehouse.store import registered

JUDGEMENT_COLUMNS: dict[str, pl.DataType] = {
    "provider": pl.String(),
    "slo": pl.String(),
    "definition": pl.String(),
    "order_id": pl.String(),
    "decided_at": pl.Datetime("us", "UTC"),
    "good": pl.Float64(),
}
"""Columns of `slo_events`: one judged order per SLO."""

STATUS_COLUMNS: dict[str, pl.DataType] = {
    "provider": pl.String(),
    "slo": pl.String(),
    "objective": pl.Float64(),
    "window_name": pl.String(),
    "window_s": pl.Float64(),
    "good": pl.Float64(),
    "total": pl.Int64(),
    "error_budget_remaining": pl.Float64(),
    "burn_rate": pl.Float64(),
    "evaluated_at": pl.Datetime("us", "UTC"),
}
"""Columns of `slo_status`: the latest figures per provider, SLO and window."""

_CANDIDATES = "_slo_candidates"
_DEFINITIONS = "_slo_definitions"


def applies_to(slo: Slo, spec: ProviderSpec) -> tuple[str, ...]:
    """The order kinds of `spec` that `slo` judges (empty: it does not apply to the provider)."""
    if slo.outcome == "code":
        return tuple(str(kind) for kind in spec.code_kinds)
    if slo.outcome == "no_expiry":
        return tuple(str(window.order_kind) for window in spec.expiry_windows)
    return tuple(str(kind) for kind in spec.order_kinds)


def _good_states(slo: Slo) -> tuple[str, ...]:
    if slo.outcome == "code":
        return (OrderState.CODE_RECEIVED.value,)
    if slo.outcome == "no_expiry":
        return tuple(s for s in TERMINAL_STATE_VALUES if s != OrderState.EXPIRED.value)
    return SUCCESS_STATE_VALUES


def _bad_states(slo: Slo) -> tuple[str, ...]:
    if slo.outcome == "success":
        return FAILURE_STATE_VALUES
    return tuple(s for s in TERMINAL_STATE_VALUES if s not in _good_states(slo))


def _at(seconds: str) -> pl.Expr:
    return pl.col("origin_at") + pl.duration(microseconds=(pl.col(seconds) * 1e6).cast(pl.Int64))


def judge(records: pl.DataFrame, slo: Slo) -> pl.DataFrame:
    """The orders `slo` can judge now (see the module docstring), from time-to-event records
    built with `_good_states(slo)` as the event.

    Returns:
        Columns provider, order_id, decided_at, good (0–1); undecided orders are left out.
    """
    limit = slo.within_s
    after, by = pl.col("event_after_s"), pl.col("event_by_s")
    if limit is None:
        on_time = pl.lit(1.0)
        seen_late = pl.lit(False)
    else:
        on_time = (
            pl.when(by <= limit)
            .then(pl.lit(1.0))
            .when(after >= limit)
            .then(pl.lit(0.0))
            .otherwise((limit - after) / (by - after))
        )
        seen_late = pl.col("follow_up_s") >= limit
    code = pl.col("event_code")
    return (
        records.with_columns(
            pl.when(code == EVENT)
            .then(on_time)
            .when((code == COMPETING) | seen_late)
            .then(pl.lit(0.0))
            .alias("good"),
            pl.when(code.is_in([EVENT, COMPETING]))
            .then(_at("upper_s"))
            .when(seen_late)
            .then(_at("follow_up_s"))
            .alias("decided_at"),
        )
        .filter(pl.col("good").is_not_null())
        .select("provider", "order_id", "decided_at", "good")
    )


@dataclasses.dataclass(frozen=True)
class Applicable:
    """One SLO as it applies to one provider."""

    provider: str
    slo: Slo
    order_kinds: tuple[str, ...]


def applicable(
    slos_by_provider: Mapping[str, Iterable[Slo]], specs: Mapping[str, ProviderSpec]
) -> list[Applicable]:
    """Each provider's SLOs that judge at least one of its order kinds."""
    found = []
    for provider, slos in slos_by_provider.items():
        spec = specs.get(provider)
        if spec is None:
            continue
        for slo in slos:
            if kinds := applies_to(slo, spec):
                found.append(Applicable(provider, slo, kinds))
    return found


def judge_new_orders(
    con: duckdb.DuckDBPyConnection, slos: list[Applicable], now: datetime, lookback_s: float
) -> int:
    """Judge every order of the last `lookback_s` that an SLO has not judged yet, and store the
    judgements in `slo_events`. Returns how many were stored."""
    if not slos:
        return 0
    since = now - timedelta(seconds=lookback_s)
    definitions = pl.DataFrame(
        {
            "provider": [a.provider for a in slos for _ in a.order_kinds],
            "order_kind": [kind for a in slos for kind in a.order_kinds],
            "slo": [a.slo.name for a in slos for _ in a.order_kinds],
            "definition": [a.slo.definition for a in slos for _ in a.order_kinds],
        }
    )
    with registered(con, _DEFINITIONS, definitions):
        # Orders of the window that at least one SLO judging their kind has not judged yet.
        candidates = query(
            con,
            "SELECT DISTINCT o.provider, o.order_id, o.order_kind, o.registered_at, o.created_at,"
            " o.service, o.country FROM orders o"
            f" JOIN {_DEFINITIONS} d USING (provider, order_kind)"
            " WHERE coalesce(o.created_at, o.registered_at) > ? AND o.registered_at <= ?"
            " AND NOT EXISTS (SELECT 1 FROM slo_events e WHERE e.provider = o.provider"
            " AND e.order_id = o.order_id AND e.slo = d.slo AND e.definition = d.definition)",
            [since, now],
        )
    if candidates.is_empty():
        return 0
    columns = ", ".join(f"b.{c}" for c in (*OBSERVATION_FIELDS, "attempt"))
    # No order is polled before it is registered: older polls need not be read.
    first_poll = candidates["registered_at"].min()
    with registered(con, _CANDIDATES, candidates.select("provider", "order_id")):
        observations = query(
            con,
            f"SELECT {columns} FROM observations b JOIN {_CANDIDATES} c USING (provider, order_id)"
            " WHERE b.polled_at >= ? AND b.polled_at <= ?",
            [first_poll, now],
        )
    if observations.is_empty():
        return 0
    history = build_status_history(observations)
    judged = []
    for item in slos:
        records = time_to_event_records(
            history.filter(pl.col("provider") == item.provider),
            candidates.filter(pl.col("provider") == item.provider),
            event_states=_good_states(item.slo),
            competing_states=_bad_states(item.slo),
            order_kinds=item.order_kinds,
        )
        judged.append(
            judge(records, item.slo).with_columns(
                pl.lit(item.slo.name).alias("slo"),
                pl.lit(item.slo.definition).alias("definition"),
            )
        )
    frame = pl.concat(judged).select([pl.col(c).cast(t) for c, t in JUDGEMENT_COLUMNS.items()])
    # Keys already judged are skipped by the insert itself (`INSERT OR IGNORE`).
    return _append_judgements(con, frame)


def _append_judgements(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame) -> int:
    if frame.is_empty():
        return 0
    with registered(con, "_slo_judged", frame):
        rows = con.execute(
            "INSERT OR IGNORE INTO slo_events BY NAME SELECT * FROM _slo_judged"
        ).fetchall()
    return int(rows[0][0]) if rows else 0


def prune(con: duckdb.DuckDBPyConnection, now: datetime, keep_s: float) -> None:
    """Drop judgements older than `keep_s`: no window reaches them any more."""
    con.execute("DELETE FROM slo_events WHERE decided_at < ?", [now - timedelta(seconds=keep_s)])


def slo_windows(
    con: duckdb.DuckDBPyConnection,
    slos: list[Applicable],
    now: datetime,
    budget_period_s: float,
) -> pl.DataFrame:
    """Good and total judged orders per provider, SLO and window (every burn-rate window and the
    compliance period), with burn rates and the budget left: the rows of `slo_status`."""
    if not slos:
        return pl.DataFrame(schema=STATUS_COLUMNS)
    windows = sorted(
        {budget_period_s}
        | {s for a in slos for lv in a.slo.levels for s in (lv.long_s, lv.short_s)}
    )
    since = [now - timedelta(seconds=w) for w in windows]
    sums = ", ".join(
        f"coalesce(sum(good) FILTER (WHERE decided_at > ?), 0) AS g{i}, "
        f"count(*) FILTER (WHERE decided_at > ?) AS n{i}"
        for i in range(len(windows))
    )
    params = [moment for moment in since for _ in range(2)]
    definitions = pl.DataFrame(
        {
            "provider": [a.provider for a in slos],
            "slo": [a.slo.name for a in slos],
            "definition": [a.slo.definition for a in slos],
        }
    )
    with registered(con, _DEFINITIONS, definitions):
        counts = query(
            con,
            f"SELECT d.provider, d.slo, {sums} FROM {_DEFINITIONS} d LEFT JOIN slo_events e"
            " ON e.provider = d.provider AND e.slo = d.slo AND e.definition = d.definition"
            " AND e.decided_at > ? AND e.decided_at <= ? GROUP BY d.provider, d.slo",
            [*params, since[-1], now],
        )
    objectives = pl.DataFrame(
        {
            "provider": [a.provider for a in slos],
            "slo": [a.slo.name for a in slos],
            "objective": [a.slo.objective for a in slos],
        }
    )
    parts = [
        counts.select(
            "provider",
            "slo",
            pl.lit(window_name(w)).alias("window_name"),
            pl.lit(float(w)).alias("window_s"),
            pl.col(f"g{i}").cast(pl.Float64).alias("good"),
            pl.col(f"n{i}").cast(pl.Int64).alias("total"),
        )
        for i, w in enumerate(windows)
    ]
    rows = pl.concat(parts).join(objectives, on=["provider", "slo"])
    burn = pl.when(pl.col("total") > 0).then(
        (1.0 - pl.col("good") / pl.col("total")) / (1.0 - pl.col("objective"))
    )
    rows = rows.with_columns(burn.alias("burn_rate"))
    period = rows.filter(pl.col("window_s") == float(budget_period_s)).select(
        "provider", "slo", (1.0 - pl.col("burn_rate")).alias("error_budget_remaining")
    )
    return (
        rows.join(period, on=["provider", "slo"], how="left")
        .with_columns(pl.lit(now).cast(pl.Datetime("us", "UTC")).alias("evaluated_at"))
        .select([pl.col(c).cast(t) for c, t in STATUS_COLUMNS.items()])
        .sort("provider", "slo", "window_s")
    )


def write_status(con: duckdb.DuckDBPyConnection, status: pl.DataFrame) -> None:
    """Replace `slo_status` with the latest figures."""
    con.execute("DELETE FROM slo_status")
    with registered(con, "_slo_status", status):
        con.execute("INSERT INTO slo_status BY NAME SELECT * FROM _slo_status")


@dataclasses.dataclass(frozen=True)
class _BurnReading:
    level: BurnLevel
    fires: bool
    burn_rate: float
    fires_above: float
    detail: str


def _burn_reading(
    slo: Slo, level: BurnLevel, windows: Mapping[float, dict[str, Any]], budget: str
) -> _BurnReading | None:
    """One burn-rate level over its two windows; None when the long window has too few orders."""
    long, short = windows.get(float(level.long_s)), windows.get(float(level.short_s))
    if long is None or short is None or long["total"] < slo.min_events:
        return None
    rate = slo.fires_at(level)
    long_burn, short_burn = long["burn_rate"], short["burn_rate"]
    fires = short_burn is not None and long_burn > rate and short_burn > rate
    good = 100 * long["good"] / long["total"]
    short_text = (
        f"{short_burn:.1f}× over {window_words(level.short_s)}"
        if short_burn is not None
        else f"no orders judged in the last {window_words(level.short_s)}"
    )
    detail = (
        f"{slo.describe()}: burning the error budget {long_burn:.1f}× over "
        f"{window_words(level.long_s)} ({long['total']} orders, {good:.1f} % good) and "
        f"{short_text}; {level.severity} above {rate:.1f}×; {budget}"
    )
    return _BurnReading(level, fires, long_burn, rate, detail)


def burn_verdicts(status: pl.DataFrame, slos: list[Applicable]) -> list[Verdict]:
    """Each SLO's burn-rate alert for its provider, from `slo_windows`: the most urgent level
    that fires, else the most urgent level with enough orders, else unknown."""
    verdicts = []
    for item in slos:
        slo = item.slo
        mine = status.filter((pl.col("provider") == item.provider) & (pl.col("slo") == slo.name))
        windows = {row["window_s"]: row for row in mine.iter_rows(named=True)}
        left = next(iter(mine["error_budget_remaining"].to_list()), None)
        budget = (
            "no orders judged in the budget period"
            if left is None
            else f"{100 * left:.0f} % of the error budget left"
        )
        by_urgency = sorted(slo.levels, key=lambda lv: -SEVERITY_RANK[lv.severity])
        readings = [r for lv in by_urgency if (r := _burn_reading(slo, lv, windows, budget))]
        chosen = next((r for r in readings if r.fires), readings[0] if readings else None)
        if chosen is None:
            detail = f"{slo.describe()}: not enough judged orders yet; {budget}"
            verdicts.append(Verdict(item.provider, slo.name, None, False, None, None, detail))
            continue
        severity = chosen.level.severity if chosen.fires else None
        verdicts.append(
            Verdict(
                item.provider,
                slo.name,
                severity,
                True,
                chosen.burn_rate,
                chosen.fires_above,
                chosen.detail,
            )
        )
    return verdicts
