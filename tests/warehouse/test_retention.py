"""Retention in real warehouses: pruning polls older than a cutoff moves exactly those rows (and
the payload bodies only they pointed at) to the Parquet archive, never past what the derived
tables have folded in, and changes no published figure, then or after later polls; a full
rebuild of a pruned log is refused with a way out."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import polars as pl
import pytest
from analytics.synthetic import SmsReceiveLifecycle, observation_log
from polars.testing import assert_frame_equal

from pipeline.assets.analytics import observation_archive, poll_rollups, status_history
from pipeline.assets.resources import ProvidersResource, WarehouseResource
from pipeline.derived import (
    HISTORY_TABLE,
    LATE_OBSERVATIONS_S,
    METRIC_TABLES,
    ROLLUP_TABLES,
    PrunedLogError,
    refresh_derived,
)
from pipeline.retention import OBSERVATION_ARCHIVE, prune, pruned_before
from pipeline.warehouse import Warehouse, append
from pipeline.warehouse.schema import OBSERVATION_COLUMNS, ORDER_COLUMNS, PAYLOAD_COLUMNS

DERIVED_TABLES = (HISTORY_TABLE, *ROLLUP_TABLES, *METRIC_TABLES)
DAY = timedelta(days=1)


def _conform(frame: pl.DataFrame, columns: dict[str, pl.DataType]) -> pl.DataFrame:
    return frame.select(
        [
            (pl.col(c) if c in frame.columns else pl.lit(None)).cast(t).alias(c)
            for c, t in columns.items()
        ]
    )


def _log() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Orders created over two days, polled to their end with errors and unknown answers; one
    payload body per order."""
    log = observation_log(
        SmsReceiveLifecycle(),
        n_orders=400,
        rng=np.random.default_rng(11),
        creation_span_s=2 * 86_400,
        error_rate=0.05,
        unknown_rate=0.02,
    )
    observations = log.observations.with_columns(
        observation_id=pl.format("{}-{}-{}", "order_id", "polled_at", "attempt"),
        payload_sha256=pl.format("sha-{}", "order_id"),
    )
    payloads = observations.group_by("provider", "order_id").agg(
        pl.col("payload_sha256").first(),
        pl.col("polled_at").min().alias("first_seen_at"),
        pl.concat_str(pl.lit("body of "), pl.col("order_id").first()).alias("body_redacted"),
    )
    return (
        _conform(log.orders, ORDER_COLUMNS),
        _conform(observations, OBSERVATION_COLUMNS),
        _conform(payloads.with_columns(size_bytes=pl.lit(20)), PAYLOAD_COLUMNS),
    )


def _add(warehouse: Warehouse, **frames: pl.DataFrame) -> None:
    with warehouse.transaction() as con:
        for table, frame in frames.items():
            append(con, table, frame)


def _tables(warehouse: Warehouse) -> dict[str, pl.DataFrame]:
    """Every derived table, rows sorted, float columns rounded (sums in another order)."""
    out = {}
    for table in DERIVED_TABLES:
        frame = warehouse.read(f"SELECT * FROM {table}")
        frame = frame.with_columns(pl.col(pl.Float64).round(9)).with_columns(
            pl.col(pl.Categorical, pl.Enum).cast(pl.String)
        )
        out[table] = frame.sort(frame.columns, nulls_last=True)
    return out


def _assert_same(left: dict[str, pl.DataFrame], right: dict[str, pl.DataFrame]) -> None:
    for table in DERIVED_TABLES:
        if table in ROLLUP_TABLES:  # a minute may sit in one row or in two that add up
            keys = [c for c in left[table].columns if left[table][c].dtype != pl.Int64]
            left[table], right[table] = (
                frame.group_by(keys).agg(pl.exclude(keys).sum()).sort(keys, nulls_last=True)
                for frame in (left[table], right[table])
            )
        assert_frame_equal(left[table], right[table], check_row_order=True), table


def test_pruning_moves_old_polls_to_the_archive_and_changes_no_figure(tmp_path: Path) -> None:
    orders, observations, payloads = _log()
    start = observations["polled_at"].min()
    assert isinstance(start, datetime)
    first_batch = observations.filter(pl.col("polled_at") < start + 1.5 * DAY)
    second_batch = observations.filter(pl.col("polled_at") >= start + 1.5 * DAY)
    as_of = observations["polled_at"].max() + timedelta(hours=1)  # type: ignore[operator]

    whole = Warehouse(tmp_path / "whole.duckdb")
    pruned = Warehouse(tmp_path / "pruned.duckdb")
    for warehouse in (whole, pruned):
        _add(warehouse, orders=orders, observations=first_batch, payloads=payloads)
        refresh_derived(warehouse, as_of=as_of)
    before_prune = _tables(pruned)

    archive = tmp_path / "archive"
    result = prune(pruned, start + DAY, archive)
    cutoff = start + DAY
    old = first_batch.filter(pl.col("polled_at") < cutoff)
    assert (result.cutoff, result.observations) == (cutoff, old.height)
    kept = pruned.read("SELECT observation_id, polled_at FROM observations")
    assert kept.height == first_batch.height - old.height
    assert kept["polled_at"].min() >= cutoff  # type: ignore[operator]
    archived = duckdb.sql(
        f"SELECT * EXCLUDE (day) FROM read_parquet('{archive}/observations/**/*.parquet', "
        "hive_partitioning = true)"
    ).pl()
    archived = archived.with_columns(
        pl.col(pl.Datetime("us", "Etc/UTC")).dt.replace_time_zone("UTC")
    )
    assert_frame_equal(
        archived.select(old.columns).sort("observation_id"),
        old.sort("observation_id"),
        check_dtypes=False,
    )
    # A body goes once no kept poll points at it: orders polled only before the cutoff.
    gone = set(old["payload_sha256"]) - set(
        first_batch.filter(pl.col("polled_at") >= cutoff)["payload_sha256"]
    )
    assert result.payloads == len(gone) > 0
    stored = set(pruned.read("SELECT payload_sha256 FROM payloads")["payload_sha256"])
    assert stored == set(payloads["payload_sha256"]) - gone

    refresh_derived(pruned, as_of=as_of)
    _assert_same(_tables(pruned), before_prune)

    for warehouse in (whole, pruned):
        _add(warehouse, observations=second_batch)
        refresh_derived(warehouse, as_of=as_of)
    _assert_same(_tables(pruned), _tables(whole))


def test_the_cutoff_never_passes_what_the_derived_tables_folded_in(warehouse: Warehouse) -> None:
    orders, observations, payloads = _log()
    _add(warehouse, orders=orders, observations=observations, payloads=payloads)
    assert prune(warehouse, observations["polled_at"].max(), Path("unused")).cutoff is None

    refresh_derived(warehouse)
    newest = observations["polled_at"].max()
    result = prune(warehouse, newest + DAY, warehouse.path.parent / "archive")  # type: ignore[operator]
    assert result.cutoff == newest - timedelta(seconds=LATE_OBSERVATIONS_S)  # type: ignore[operator]
    left = warehouse.read("SELECT min(polled_at) AS first FROM observations")["first"].item()
    assert left >= result.cutoff


def test_a_pruned_log_is_not_rebuilt_from_what_is_left(warehouse: Warehouse) -> None:
    orders, observations, payloads = _log()
    _add(warehouse, orders=orders, observations=observations, payloads=payloads)
    refresh_derived(warehouse)
    result = prune(warehouse, observations["polled_at"].min() + DAY, Path(), keep_archive=False)  # type: ignore[operator]
    assert result.archive_dir is None and result.observations > 0
    with warehouse.connect() as con:
        assert pruned_before(con) == result.cutoff
        con.execute(f"DROP TABLE {HISTORY_TABLE}")
    with pytest.raises(PrunedLogError, match="archive"):
        refresh_derived(warehouse)


def _cli(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`pipeline ARGS` in a subprocess with `data_dir` as data and working directory."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=data_dir,
        env={
            "PATH": os.environ.get("PATH", ""),
            "PIPELINE_DATA_DIR": str(data_dir),
            "MPLCONFIGDIR": str(data_dir / ".mpl"),
            **env,
        },
    )


def test_the_prune_command_and_a_refresh_with_a_retention_age(tmp_path: Path) -> None:
    orders, observations, payloads = _log()
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    _add(warehouse, orders=orders, observations=observations, payloads=payloads)

    unsaid = _cli(tmp_path, "prune")
    assert unsaid.returncode != 0 and "PIPELINE_KEEP_POLLS_DAYS" in unsaid.stderr
    early = _cli(tmp_path, "prune", "--older-than-days", "1")
    assert early.returncode == 0 and "run `pipeline refresh` first" in early.stdout
    assert warehouse.read("SELECT count(*) AS n FROM observations")["n"].item() == len(observations)

    # The log is months old: a day's retention keeps what the refresh may still re-read.
    done = _cli(tmp_path, "refresh", "--no-alerts", PIPELINE_KEEP_POLLS_DAYS="1")
    assert done.returncode == 0, done.stdout + done.stderr
    cutoff = observations["polled_at"].max() - timedelta(seconds=LATE_OBSERVATIONS_S)  # type: ignore[operator]
    moved = observations.filter(pl.col("polled_at") < cutoff).height
    line = next(line for line in done.stdout.splitlines() if line.startswith("prune:"))
    assert f"{moved:,} observations" in line and str(tmp_path / "archive") in line
    assert warehouse.read("SELECT count(*) AS n FROM observations")["n"].item() == (
        len(observations) - moved
    )
    assert any((tmp_path / "archive" / "observations").rglob("*.parquet"))


def test_the_dagster_asset_prunes_after_the_history_and_rollups(tmp_path: Path) -> None:
    orders, observations, _ = _log()
    _add(Warehouse(tmp_path / "warehouse.duckdb"), orders=orders, observations=observations)
    resources = {
        "warehouse": WarehouseResource(data_dir=str(tmp_path), keep_polls_days=1.0),
        "providers": ProvidersResource(),
    }
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [status_history, poll_rollups, observation_archive],
            resources=resources,
            instance=instance,
        )
    assert result.success
    [event] = [
        e
        for e in result.asset_materializations_for_node(OBSERVATION_ARCHIVE)
        if e.asset_key.path[-1] == OBSERVATION_ARCHIVE
    ]
    cutoff = observations["polled_at"].max() - timedelta(seconds=LATE_OBSERVATIONS_S)  # type: ignore[operator]
    moved = observations.filter(pl.col("polled_at") < cutoff).height
    assert event.metadata["observations_moved"].value == moved > 0
    assert any((tmp_path / "archive" / "observations").rglob("*.parquet"))
