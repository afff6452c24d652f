"""`pipeline refresh`, for cron users: after `pipeline poll` against the sandbox over loopback TCP
it builds the status history (incrementally on the next run, equal to a full rebuild), every
analytics table, the published read-only copy and the report, and says so; a missing or locked
warehouse ends it with a non-zero exit code and one line saying why."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from daily_orders import daily_orders, store_until
from live_sandbox import live_sandbox, track
from polars.testing import assert_frame_equal

import pipeline.warehouse.publish as publish_module
from pipeline.analytics import build_status_history
from pipeline.commands import refresh
from pipeline.derived import ANALYTICS_OBSERVATION_COLUMNS, HISTORY_TABLE, METRIC_TABLES
from pipeline.providers.registry import PROVIDERS
from pipeline.settings import Settings
from pipeline.warehouse import Warehouse
from pipeline.warehouse.connection import connect
from pipeline.warehouse.order_keys import WITHOUT_KEY

ORDERS_PER_PROVIDER = 2
POLL_S = 4.0
TIMEOUT_S = 180


def _cli(
    data_dir: Path, *args: str, sandbox_url: str | None = None, lock_timeout_s: float = 5.0
) -> subprocess.CompletedProcess[str]:
    """`pipeline ARGS` in a subprocess, with `data_dir` as data directory and working directory."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PIPELINE_DATA_DIR": str(data_dir),
        "PIPELINE_LOCK_TIMEOUT_S": str(lock_timeout_s),
        "MPLCONFIGDIR": str(data_dir / ".mpl"),
    }
    if sandbox_url:
        env["PIPELINE_SANDBOX_URL"] = sandbox_url
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=data_dir,
        env=env,
    )


def _printed_rows(stdout: str) -> dict[str, int]:
    """`table  N rows` lines of the summary."""
    rows = {}
    for line in stdout.splitlines():
        words = line.split()
        if len(words) >= 3 and words[2] == "rows":
            rows[words[0]] = int(words[1].replace(",", ""))
    return rows


def test_refresh_after_poll_builds_everything_the_derived_assets_build(tmp_path: Path) -> None:
    settings = Settings.from_env({"PIPELINE_DATA_DIR": str(tmp_path)})
    warehouse = Warehouse(settings.warehouse_path, lock_timeout_s=5.0)
    with live_sandbox() as live:
        track(warehouse, live.url, dict.fromkeys(PROVIDERS, ORDERS_PER_PROVIDER))
        polled = _cli(tmp_path, "poll", "--duration", str(POLL_S), sandbox_url=live.url)
        assert polled.returncode == 0, polled.stdout + polled.stderr
        first = _cli(tmp_path, "refresh")
        assert first.returncode == 0, first.stdout + first.stderr
        # A second poll and refresh: the history is folded in incrementally, as the asset does.
        polled = _cli(tmp_path, "poll", "--duration", str(POLL_S), sandbox_url=live.url)
        assert polled.returncode == 0, polled.stdout + polled.stderr
        second = _cli(tmp_path, "refresh")
        assert second.returncode == 0, second.stdout + second.stderr

    published = settings.published_path
    report = settings.reports_dir / "report.html"
    for run in (first, second):
        assert f"published  {published}" in run.stdout
        assert f"report     {report}" in run.stdout
    printed = _printed_rows(second.stdout)
    assert set(printed) == {HISTORY_TABLE, *METRIC_TABLES}

    con = connect(published, read_only=True)  # as the notebook and the report open it
    try:
        for table in (HISTORY_TABLE, *METRIC_TABLES):
            stored = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
            assert stored == printed[table], table
            assert stored > 0, table
        providers = {
            row[0] for row in con.execute("SELECT provider FROM provider_reliability").fetchall()
        }
        assert providers == set(PROVIDERS)
        with pytest.raises(duckdb.Error, match=r"read-only|read only"):
            con.execute("DELETE FROM observations")
        observations = con.sql(f"SELECT {ANALYTICS_OBSERVATION_COLUMNS} FROM observations").pl()
        history = con.sql(
            f"SELECT {WITHOUT_KEY} FROM {HISTORY_TABLE} ORDER BY provider, order_id, interval_seq"
        ).pl()
    finally:
        con.close()
    expected = build_status_history(observations).sort("provider", "order_id", "interval_seq")
    as_text = pl.col("state", "previous_state").cast(pl.String)
    assert_frame_equal(
        history.with_columns(as_text), expected.with_columns(as_text), check_dtypes=False
    )

    html = report.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "data:image/svg+xml;base64," in html


def test_refresh_without_a_warehouse_says_so(tmp_path: Path) -> None:
    done = _cli(tmp_path, "refresh")
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no warehouse at" in lines[0] and "pipeline poll" in lines[0]
    assert not (tmp_path / "warehouse.duckdb").exists()  # nothing created by accident
    assert not (tmp_path / "reports").exists()


def test_refresh_of_a_locked_warehouse_fails_with_one_line(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "warehouse.duckdb", lock_timeout_s=5.0)
    warehouse.initialise()
    with warehouse.connect():  # this process holds the only read-write lock
        done = _cli(tmp_path, "refresh", lock_timeout_s=0.5)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "is locked by process PID" in lines[0] and str(os.getpid()) in lines[0]
    assert not (tmp_path / "published").exists()


def test_refresh_opens_the_warehouse_once_and_checkpoints_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every step's connection joins one DuckDB instance, held open through the publish: what
    the derived step committed is still in the write-ahead log when the publish starts (the
    close of the file's last connection would have checkpointed it), and the refresh leaves
    the file checkpointed, with no log beside it, and the copy holding the new rows."""
    settings = Settings.from_env({"PIPELINE_DATA_DIR": str(tmp_path)})
    warehouse = Warehouse(settings.warehouse_path)
    orders, observations = daily_orders()
    newest = observations["polled_at"].max()
    assert isinstance(newest, datetime)
    store_until(warehouse, orders, observations, newest - timedelta(days=2))
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path))
    assert refresh.run(argparse.Namespace(no_alerts=True)) == 0
    store_until(warehouse, orders, observations, newest + timedelta(seconds=1))
    wal = Path(f"{settings.warehouse_path}.wal")
    logged_at_publish: list[bool] = []
    real_publish = publish_module.publish

    def publish_noting_the_log(*args: Any) -> Path:
        logged_at_publish.append(wal.is_file() and wal.stat().st_size > 0)
        return real_publish(*args)

    monkeypatch.setattr(publish_module, "publish", publish_noting_the_log)
    assert refresh.run(argparse.Namespace(no_alerts=True)) == 0, capsys.readouterr().err
    assert logged_at_publish == [True]
    assert not wal.exists()
    history = f"SELECT count(*) FROM {HISTORY_TABLE}"
    in_copy = Warehouse(settings.published_path).read(history, read_only=True)
    assert in_copy.item() == warehouse.read(history).item() > 0
