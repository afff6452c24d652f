"""Threshold rules over the poll log: availability, quarantine rate, unknown-status rate.

One query counts, per provider and per window every rule needs, the polls, the valid answers, the
unrecognised answers and the quarantined rows; each rule level then compares its share with its
threshold. Only the last `max(window)` of the log is read, so the cost follows the window, not
the history.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

import duckdb
import polars as pl

from pipeline.alerts.config import SEVERITY_RANK, Level, ThresholdRule
from pipeline.alerts.verdicts import Verdict, percent, window_words
from pipeline.warehouse import query

COUNT_COLUMNS = ("polls", "valid", "unrecognised", "quarantined")


def poll_counts(
    con: duckdb.DuckDBPyConnection, windows_s: Iterable[float], now: datetime
) -> pl.DataFrame:
    """Per provider and window: `polls`, `valid` (no error), `unrecognised` (valid but status
    not recognised) and `quarantined` rows, over (now − window, now].

    Returns:
        Columns provider, window_s and `COUNT_COLUMNS`; a provider with nothing in a window has
        no row for it.
    """
    windows = sorted(set(windows_s))
    if not windows:
        return pl.DataFrame(schema={"provider": pl.String, "window_s": pl.Float64})
    since = [now - timedelta(seconds=w) for w in windows]

    def counted(alias: str, column: str, condition: str = "true") -> str:
        return ", ".join(
            f"count(*) FILTER (WHERE {column} > ? AND {condition}) AS {alias}{i}"
            for i in range(len(windows))
        )

    unrecognised = "error_class IS NULL AND (status_unrecognized OR state = 'unknown')"
    polls = query(
        con,
        f"SELECT provider, {counted('p', 'polled_at')}, "
        f"{counted('v', 'polled_at', 'error_class IS NULL')}, "
        f"{counted('u', 'polled_at', unrecognised)} "
        "FROM observations WHERE polled_at > ? AND polled_at <= ? GROUP BY provider",
        [*since, *since, *since, since[-1], now],
    )
    quarantined = query(
        con,
        f"SELECT provider, {counted('q', 'quarantined_at')} "
        "FROM quarantine WHERE quarantined_at > ? AND quarantined_at <= ? GROUP BY provider",
        [*since, since[-1], now],
    )
    rows = []
    for i, window in enumerate(windows):
        answers = polls.select(
            "provider",
            pl.col(f"p{i}").alias("polls"),
            pl.col(f"v{i}").alias("valid"),
            pl.col(f"u{i}").alias("unrecognised"),
        )
        rejected = quarantined.select("provider", pl.col(f"q{i}").alias("quarantined"))
        rows.append(
            answers.join(rejected, on="provider", how="full", coalesce=True).with_columns(
                pl.lit(float(window)).alias("window_s")
            )
        )
    counts = pl.concat(rows).with_columns(pl.col(*COUNT_COLUMNS).fill_null(0).cast(pl.Int64))
    return counts.filter(pl.sum_horizontal(*COUNT_COLUMNS) > 0)


def _reading(rule: ThresholdRule, counts: dict[str, int]) -> tuple[float | None, int, str]:
    """The rule's share in one window, the samples it rests on, and how they are named."""
    if rule.measure == "availability":
        share, samples, noun = _share(counts["valid"], counts["polls"]), counts["polls"], "polls"
    elif rule.measure == "quarantine_rate":
        received = counts["polls"] + counts["quarantined"]
        share, samples, noun = _share(counts["quarantined"], received), received, "answers"
    else:
        share = _share(counts["unrecognised"], counts["valid"])
        samples, noun = counts["valid"], "valid answers"
    return share, samples, noun


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _fires(rule: ThresholdRule, level: Level, value: float) -> bool:
    return value < level.threshold if rule.fires_below else value > level.threshold


def evaluate_rule(rule: ThresholdRule, provider: str, counts: pl.DataFrame) -> Verdict:
    """What `rule` says about `provider` given `poll_counts`.

    A level whose window holds fewer than `rule.min_samples` samples says nothing; the verdict
    is unknown when no level says anything. A level with a short window fires only when the
    short window (one sample is enough) crosses the threshold too.
    """
    mine = counts.filter(pl.col("provider") == provider)
    by_window = {row["window_s"]: row for row in mine.iter_rows(named=True)}
    empty = dict.fromkeys(COUNT_COLUMNS, 0)
    measure = rule.measure.replace("_", " ")
    comparison = "below" if rule.fires_below else "above"
    firing: list[tuple[Level, float, str]] = []
    quiet: list[tuple[Level, float, str]] = []
    for level in sorted(rule.levels, key=lambda lv: -SEVERITY_RANK[lv.severity]):
        value, samples, noun = _reading(rule, by_window.get(float(level.window_s), empty))
        if value is None or samples < rule.min_samples:
            continue
        detail = (
            f"{measure} {percent(value)} over {window_words(level.window_s)} ({samples} {noun})"
        )
        fires = _fires(rule, level, value)
        if level.short_window_s:
            short, _, _ = _reading(rule, by_window.get(float(level.short_window_s), empty))
            fires = fires and short is not None and _fires(rule, level, short)
            detail += f", {percent(short)} over {window_words(level.short_window_s)}"
        detail += f"; {level.severity} {comparison} {percent(level.threshold)}"
        (firing if fires else quiet).append((level, value, detail))
    chosen = firing[0] if firing else (quiet[0] if quiet else None)
    if chosen is None:
        return Verdict(provider, rule.name, None, False, None, None, f"{measure}: not enough data")
    level, value, detail = chosen
    severity = level.severity if firing else None
    return Verdict(provider, rule.name, severity, True, value, level.threshold, detail)


def evaluate_rules(
    con: duckdb.DuckDBPyConnection,
    rules_by_provider: Mapping[str, Sequence[ThresholdRule]],
    now: datetime,
) -> list[Verdict]:
    """Every provider's threshold rules, from one read of the log's recent windows."""
    levels = [lv for rules in rules_by_provider.values() for r in rules for lv in r.levels]
    windows = {lv.window_s for lv in levels} | {
        lv.short_window_s for lv in levels if lv.short_window_s
    }
    counts = poll_counts(con, windows, now)
    return [
        evaluate_rule(rule, provider, counts)
        for provider, rules in rules_by_provider.items()
        for rule in rules
    ]
