"""Fixtures for the report and notebook tests: published warehouses built from synthetic logs.

`report_data_dir` is a data directory (as `PIPELINE_DATA_DIR` names it) whose published warehouse
holds a few hours of synthetic polling of all five providers, with poll errors, unknown statuses,
quarantined rows, a few impossible transitions and a service named like a script (every
smsonline order), refreshed and published by the real `pipeline.derived` functions.
`empty_published` is the same warehouse with every table emptied.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from analytics.synthetic import SimulatorLifecycle, observation_log

from pipeline.derived import refresh_derived
from pipeline.model import OrderState
from pipeline.settings import Settings
from pipeline.validation import split_valid
from pipeline.warehouse import Warehouse, append
from pipeline.warehouse.frames import observation_id
from pipeline.warehouse.publish import publish
from pipeline.warehouse.schema import OBSERVATION_COLUMNS, ORDER_COLUMNS

SEED = 20260105
GENERATED_AT = datetime(2026, 1, 6, 8, 30, tzinfo=UTC)
"""When the report is generated (and the scorecard's windows end)."""
HOURS = 3
# (provider, order kind, orders): altinn gets too few orders to be ranked, on purpose.
WORKLOAD: tuple[tuple[str, str, int], ...] = (
    ("sms4sats", "sms_receive", 70),
    ("sms4sats", "sms_send", 20),
    ("smsonline", "sms_receive", 60),
    ("ordinalsbot", "inscription", 50),
    ("baanx", "product_order", 60),
    ("altinn", "notification_order", 12),
)
UNKNOWN_PROVIDER_STATUS = "ON_HOLD_REVIEW"
HOSTILE_SERVICE = "<script>alert(1)</script>"
"""The service of every smsonline order: enough orders for a row of its own in the report."""
HOSTILE_SERVICE_PROVIDER = "smsonline"
QUARANTINED_ROWS = 6
IMPOSSIBLE_ORDERS = 3


def _conform(frame: pl.DataFrame, columns: dict[str, pl.DataType]) -> pl.DataFrame:
    return frame.select(
        [
            (pl.col(c) if c in frame.columns else pl.lit(None)).cast(t).alias(c)
            for c, t in columns.items()
        ]
    )


def _with_keys(observations: pl.DataFrame) -> pl.DataFrame:
    keys = [
        observation_id(p, o, t, a)
        for p, o, t, a in observations.select(
            "provider", "order_id", "polled_at", "attempt"
        ).iter_rows()
    ]
    return observations.with_columns(pl.Series("observation_id", keys, dtype=pl.String))


def synthetic_tables(seed: int = SEED) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Orders, observations and quarantine rows for every provider in `WORKLOAD`."""
    rng = np.random.default_rng(seed)
    orders, observations = [], []
    span_s = HOURS * 3600.0
    for provider, kind, n in WORKLOAD:
        log = observation_log(
            SimulatorLifecycle(provider, kind, profile="fast"),
            n_orders=n,
            rng=rng,
            provider=provider,
            order_kind=kind,
            creation_span_s=span_s,
            cutoff_s=span_s + 600.0,
            error_rate=0.04 if provider == "smsonline" else 0.015,
            unknown_rate=0.01,
            provider_event_time=provider in {"ordinalsbot", "altinn", "baanx"},
        )
        rename = pl.format("{}-{}", pl.lit(kind), pl.col("order_id")).alias("order_id")
        changes = [rename]
        if provider == HOSTILE_SERVICE_PROVIDER:
            changes.append(pl.lit(HOSTILE_SERVICE).alias("service"))
        orders.append(log.orders.with_columns(changes))
        observations.append(log.observations.with_columns(changes))
    obs = pl.concat(observations).with_columns(
        pl.when(pl.col("state") == OrderState.UNKNOWN.value)
        .then(pl.lit(UNKNOWN_PROVIDER_STATUS))
        .otherwise(pl.col("provider_status"))
        .alias("provider_status")
    )
    obs = pl.concat([obs, _impossible_moves(obs)])
    obs = _with_keys(_conform(obs, OBSERVATION_COLUMNS))
    bad = obs.head(QUARANTINED_ROWS).with_columns(
        pl.col("polled_at") + timedelta(milliseconds=1),
        pl.lit(-5.0).alias("latency_ms"),
        pl.lit("4917012345678").alias("phone_masked"),
    )
    quarantine = split_valid(_with_keys(bad)).quarantine
    return _conform(pl.concat(orders), ORDER_COLUMNS), obs, quarantine


def _impossible_moves(observations: pl.DataFrame) -> pl.DataFrame:
    """A poll back in `pending` one minute after a few completed baanx orders ended."""
    done = (
        observations.filter(
            (pl.col("provider") == "baanx") & (pl.col("state") == OrderState.COMPLETED.value)
        )
        .group_by("order_id")
        .agg(pl.all().sort_by("polled_at").last())
        .sort("order_id")
        .head(IMPOSSIBLE_ORDERS)
    )
    return done.with_columns(
        pl.col("polled_at") + timedelta(minutes=1),
        pl.lit(OrderState.PENDING.value).alias("state"),
        pl.lit(False).alias("is_terminal"),
        pl.lit(None, pl.Datetime("us", "UTC")).alias("provider_updated_at"),
    ).select(observations.columns)


def build_published(data_dir: Path) -> Path:
    """Fill a warehouse under `data_dir`, refresh the derived tables, publish; the copy's path."""
    settings = Settings.from_env({"PIPELINE_DATA_DIR": str(data_dir)})
    warehouse = Warehouse(settings.warehouse_path, lock_timeout_s=5.0)
    orders, observations, quarantine = synthetic_tables()
    with warehouse.transaction() as con:
        append(con, "orders", orders)
        append(con, "observations", observations)
        append(con, "quarantine", quarantine)
    refresh_derived(warehouse, as_of=GENERATED_AT)
    return publish(warehouse, settings.published_path)


@pytest.fixture(scope="module")
def report_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with a published warehouse of a few hours of synthetic polling."""
    data_dir = tmp_path_factory.mktemp("data")
    build_published(data_dir)
    return data_dir


@pytest.fixture(scope="module")
def published(report_data_dir: Path) -> Path:
    """The published warehouse of `report_data_dir`."""
    return Settings.from_env({"PIPELINE_DATA_DIR": str(report_data_dir)}).published_path


@pytest.fixture(scope="module")
def empty_published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A published warehouse with every table present (as the pipeline writes it) but empty."""
    data_dir = tmp_path_factory.mktemp("empty")
    path = build_published(data_dir)
    warehouse = Warehouse(path)
    with warehouse.connect() as con:
        tables = [row[0] for row in con.execute("SHOW TABLES").fetchall()]
        for table in tables:
            con.execute(f"DELETE FROM {table}")
    return path
