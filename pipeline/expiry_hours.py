"""Expiry rates by hour of order creation, recomputed only for the hours whose orders changed.

`expiry_rates_over_time` holds one estimate per provider, order kind and hour of creation: a
year and a half is 13,000 hours per provider, and estimating every one of them on each refresh
cost 1.5 s at 1.7 M orders. A refresh changes the orders of a few recent hours, and an hour's
estimate depends on its own orders only. So each hour's cells are summarised by a fingerprint
(`FINGERPRINTS`), and only the hours whose fingerprint changed are estimated again; the others
keep their stored rows.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from pipeline.analytics import metrics, survival
from pipeline.analytics.metrics import EXPIRY_KEYS, expiry_over_time
from pipeline.analytics.survival import WEIGHT
from pipeline.records import records_state
from pipeline.warehouse import query, replace_table
from pipeline.warehouse.store import tables_exist

TABLE = "expiry_rates_over_time"
FINGERPRINTS = "_expiry_hour_fingerprints"
"""Per provider, order kind and hour: the fingerprint of the cells its stored row came from."""
HOUR = "bucket_start"
_KEYS = [*EXPIRY_KEYS, HOUR]
ESTIMATOR_MODULES = (metrics, survival)
"""The code an hour's row is computed by: a change to it (or to polars or numpy, or to the
records' rules) gives every hour a new fingerprint, and every hour is estimated again."""


def expiry_rates_by_hour(con: duckdb.DuckDBPyConnection, cells: pl.DataFrame) -> pl.DataFrame:
    """`expiry_rates_over_time` from the expiry cells (`pipeline.cells`), reusing the stored
    rows of every hour whose cells are as when they were computed; the fingerprints of this
    result are stored for the next refresh (in `con`'s transaction)."""
    # What an hour's estimate reads: its cells without the registration window (it moves with
    # the refresh time, the estimate does not).
    hours = (
        cells.with_columns(pl.col("origin_at").alias(HOUR))
        .drop("origin_at", "registered_at")
        .group_by(pl.all().exclude(WEIGHT))
        .agg(pl.col(WEIGHT).sum())
    )
    fingerprints = hours.group_by(_KEYS).agg(
        pl.struct(pl.all().exclude(_KEYS))
        .hash(seed=_seed(hours.columns))
        .sum()
        .alias("fingerprint")
    )
    stored = _stored(con)
    changed = fingerprints
    if stored is not None:
        changed = fingerprints.join(stored[1], on=[*_KEYS, "fingerprint"], how="anti")
    fresh = expiry_over_time(hours.join(changed, on=_KEYS, how="semi").rename({HOUR: "origin_at"}))
    kept = _kept(stored, fingerprints, changed, fresh.schema)
    if kept is None and stored is not None:  # stored by another release: every hour afresh
        fresh = expiry_over_time(hours.rename({HOUR: "origin_at"}))
    replace_table(con, FINGERPRINTS, fingerprints)
    return (fresh if kept is None else pl.concat([kept, fresh])).sort(_KEYS)


def _seed(columns: list[str]) -> int:
    """The fingerprints' seed: the estimator's code and libraries, the records' rules and the
    cells' column names (the row hash covers their values and types)."""
    digest = hashlib.blake2b(digest_size=8)
    for module in ESTIMATOR_MODULES:
        digest.update(Path(str(module.__file__)).read_bytes())
    for part in (pl.__version__, np.__version__, records_state(), *columns):
        digest.update(part.encode())
    return int.from_bytes(digest.digest(), "little")


def _kept(
    stored: tuple[pl.DataFrame, pl.DataFrame] | None,
    fingerprints: pl.DataFrame,
    changed: pl.DataFrame,
    schema: pl.Schema,
) -> pl.DataFrame | None:
    """The stored rows of the hours that are still there and did not change; None when
    nothing is stored or the stored rows are not of `schema`."""
    if stored is None or set(stored[0].columns) != set(schema):
        return None
    rows = stored[0].select(list(schema))
    if rows.schema != schema:
        return None
    return rows.join(fingerprints, on=_KEYS, how="semi").join(changed, on=_KEYS, how="anti")


def _stored(con: duckdb.DuckDBPyConnection) -> tuple[pl.DataFrame, pl.DataFrame] | None:
    """The stored table and the fingerprints it was computed from; None when either is
    missing."""
    if not tables_exist(con, [TABLE, FINGERPRINTS]):
        return None
    return query(con, f"SELECT * FROM {TABLE}"), query(con, f"SELECT * FROM {FINGERPRINTS}")
