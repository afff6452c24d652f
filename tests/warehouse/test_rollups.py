"""Poll rollups in a real warehouse: a full build, incremental refreshes, late observations and
compaction to hour grain all give the same sums as rolling up the whole log at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pipeline import derived
from pipeline.analytics.rollups import latency_rollups, poll_rollups
from pipeline.derived import refresh_rollups
from pipeline.warehouse import Warehouse, append
from pipeline.warehouse.schema import OBSERVATION_COLUMNS

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def _log(start: datetime, minutes: int, seed: int, prefix: str) -> pl.DataFrame:
    """About ten polls a minute over two providers, with errors, 429s and unknown states."""
    rng = np.random.default_rng(seed)
    n = minutes * 10
    offsets = np.sort(rng.uniform(0, minutes * 60, n))
    error = rng.choice(["", "server_error", "rate_limited"], n, p=[0.9, 0.06, 0.04])
    state = rng.choice(["pending", "processing", "unknown"], n, p=[0.5, 0.45, 0.05])
    frame = pl.DataFrame(
        {
            "observation_id": [f"{prefix}-{i}" for i in range(n)],
            "provider": rng.choice(["sms4sats", "baanx"], n),
            "order_id": [f"o{i % 50}" for i in range(n)],
            "polled_at": [start + timedelta(seconds=float(s)) for s in offsets],
            "attempt": 1,
            "http_status": np.where(error == "rate_limited", 429, 200),
            "latency_ms": rng.lognormal(4.5, 0.6, n),
            "error_class": pl.Series(error).replace("", None),
            "state": state,
            "status_unrecognized": state == "unknown",
        }
    )
    return frame.cast({c: OBSERVATION_COLUMNS[c] for c in frame.columns})  # type: ignore[arg-type]


def _sums(frame: pl.DataFrame, keys: list[str], hourly: bool = False) -> pl.DataFrame:
    if hourly:
        frame = frame.with_columns(pl.col("minute").dt.truncate("1h"))
    counts = [c for c in frame.columns if c not in keys]
    return frame.group_by(keys).agg(pl.col(counts).sum()).sort(keys, nulls_last=True)


POLL_KEYS = ["provider", "minute", "error_class"]
LATENCY_KEYS = ["provider", "minute", "latency_bucket"]


def _stored(warehouse: Warehouse, hourly: bool = False) -> tuple[pl.DataFrame, pl.DataFrame]:
    polls = warehouse.read("SELECT * FROM poll_rollups")
    latency = warehouse.read("SELECT * FROM latency_rollups")
    return _sums(polls, POLL_KEYS, hourly), _sums(latency, LATENCY_KEYS, hourly)


def _expected(log: pl.DataFrame, hourly: bool = False) -> tuple[pl.DataFrame, pl.DataFrame]:
    return (
        _sums(poll_rollups(log), POLL_KEYS, hourly),
        _sums(latency_rollups(log), LATENCY_KEYS, hourly),
    )


def _add(warehouse: Warehouse, log: pl.DataFrame) -> None:
    with warehouse.transaction() as con:
        append(con, "observations", log)


def test_a_chunked_full_build_equals_the_rollup_of_the_whole_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(derived, "FULL_BUILD_ROWS", 97)  # many row ranges, minutes split
    warehouse = Warehouse(tmp_path / "w.duckdb")
    log = _log(T0, 30, seed=1, prefix="a")
    _add(warehouse, log)
    with warehouse.transaction() as con:
        update = refresh_rollups(con)
    assert (update.mode, update.observations_read) == ("full", log.height)
    for stored, expected in zip(_stored(warehouse), _expected(log), strict=True):
        assert_frame_equal(stored, expected)


def test_incremental_refreshes_count_new_and_late_polls_once(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    first = _log(T0, 20, seed=2, prefix="a")
    _add(warehouse, first)
    with warehouse.transaction() as con:
        refresh_rollups(con)
    # A tick's polls, then a poll written late (five minutes before the newest one seen).
    tick = _log(T0 + timedelta(minutes=20), 2, seed=3, prefix="b")
    late = _log(T0 + timedelta(minutes=17), 1, seed=4, prefix="c")
    _add(warehouse, tick)
    with warehouse.transaction() as con:
        update = refresh_rollups(con)
    assert update.mode == "incremental"
    assert update.observations_read < first.height  # only the trailing minutes were read
    _add(warehouse, late)
    with warehouse.transaction() as con:
        refresh_rollups(con)
        refresh_rollups(con)  # nothing new: nothing changes
    log = pl.concat([first, tick, late])
    for stored, expected in zip(_stored(warehouse), _expected(log), strict=True):
        assert_frame_equal(stored, expected)


def test_old_minutes_fold_into_hours_without_changing_any_sum(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    old = _log(T0, 180, seed=5, prefix="a")
    _add(warehouse, old)
    with warehouse.transaction() as con:
        refresh_rollups(con)
    recent = _log(T0 + timedelta(days=3), 5, seed=6, prefix="b")
    _add(warehouse, recent)
    with warehouse.transaction() as con:
        refresh_rollups(con)
    polls, _ = _stored(warehouse)
    old_minutes = polls.filter(pl.col("minute") < T0 + timedelta(days=1))["minute"].unique()
    assert all(m.minute == 0 for m in old_minutes)  # hour grain
    log = pl.concat([old, recent])
    for stored, expected in zip(_stored(warehouse, True), _expected(log, True), strict=True):
        assert_frame_equal(stored, expected)


def test_a_full_build_cut_short_is_built_again_without_counting_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full build commits part by part (to bound memory); one that dies half way leaves
    rows but no watermark, and the next build must start from empty tables."""
    monkeypatch.setattr(derived, "FULL_BUILD_ROWS", 97)
    warehouse = Warehouse(tmp_path / "w.duckdb")
    log = _log(T0, 30, seed=7, prefix="a")
    _add(warehouse, log)
    calls = 0
    real_append = derived._append_rollups

    def dies_on_the_third_part(con: object, part: pl.DataFrame, **options: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt
        real_append(con, part, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(derived, "_append_rollups", dies_on_the_third_part)
    with pytest.raises(KeyboardInterrupt), warehouse.transaction() as con:
        refresh_rollups(con)
    assert warehouse.read("SELECT count(*) AS n FROM poll_rollups")["n"][0] > 0  # committed
    monkeypatch.setattr(derived, "_append_rollups", real_append)
    with warehouse.transaction() as con:
        assert refresh_rollups(con).mode == "full"
    for stored, expected in zip(_stored(warehouse), _expected(log), strict=True):
        assert_frame_equal(stored, expected)


def test_a_full_build_rolls_up_the_polls_compaction_would_fold_by_the_hour(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(derived, "FULL_BUILD_ROWS", 97)
    warehouse = Warehouse(tmp_path / "w.duckdb")
    log = pl.concat(
        [_log(T0, 180, seed=8, prefix="a"), _log(T0 + timedelta(days=3), 30, seed=9, prefix="b")]
    )
    _add(warehouse, log)
    with warehouse.transaction() as con:
        assert refresh_rollups(con).mode == "full"
    newest = log["polled_at"].max()
    assert isinstance(newest, datetime)
    cutoff = (newest - timedelta(seconds=derived.MINUTE_GRAIN_S)).replace(
        minute=0, second=0, microsecond=0
    )

    def at_their_grain(frame: pl.DataFrame) -> pl.DataFrame:
        minute = pl.col("minute")
        return frame.with_columns(
            pl.when(minute < cutoff).then(minute.dt.truncate("1h")).otherwise(minute)
        )

    expected = (
        _sums(at_their_grain(poll_rollups(log)), POLL_KEYS),
        _sums(at_their_grain(latency_rollups(log)), LATENCY_KEYS),
    )
    for stored, wanted in zip(_stored(warehouse), expected, strict=True):
        assert_frame_equal(stored, wanted)
        old = stored.filter(pl.col("minute") < cutoff)["minute"]
        assert old.len() > 0 and (old.dt.minute() == 0).all()
        assert (stored.filter(pl.col("minute") >= cutoff)["minute"].dt.minute() != 0).any()
    rows_before = warehouse.read("SELECT count(*) AS n FROM latency_rollups")["n"][0]
    with warehouse.transaction() as con:  # nothing new, nothing left to fold
        refresh_rollups(con)
    assert warehouse.read("SELECT count(*) AS n FROM latency_rollups")["n"][0] == rows_before
