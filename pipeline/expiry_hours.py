"""Expiry rates by hour of order creation, kept up to date in place: only the hours whose
orders changed are estimated and written again.

`expiry_rates_over_time` holds one estimate per provider, order kind and hour of creation: a
year and a half is 13,000 hours per provider, and estimating every one of them on each refresh
cost 1.5 s at 1.7 M orders. A refresh changes the orders of a few recent hours, and an hour's
estimate depends on its own orders only. So each hour's cells (`pipeline.cells`) are summed
into a fingerprint in SQL (`FINGERPRINTS`), and only the hours whose fingerprint changed (or
that have no orders any more) have their rows deleted and, estimated again, inserted. Reading
the whole table, re-hashing every cell in polars and rewriting the table took 0.25–0.3 s of a
refresh at 8.3 M orders; the fingerprints in SQL take 0.05 s.

An hour's fingerprint is Σ orders × hash(cell), over its cells without their registration
time: a sum, so it does not change when the cells of one hour are split or merged by
registration time (as aging does), only when what the estimate reads does.
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
from pipeline.cells import cell_columns, cells_relation
from pipeline.records import records_state
from pipeline.warehouse import query, replace_table
from pipeline.warehouse.store import (
    declare_table,
    described,
    first_row,
    registered,
    tables_exist,
)

TABLE = "expiry_rates_over_time"
FINGERPRINTS = "_expiry_hour_fingerprints"
"""Per provider, order kind and hour: the fingerprint of the cells its stored row came from."""
HOUR = "bucket_start"
_KEYS = [*EXPIRY_KEYS, HOUR]
_RECORDS = "expiry_records"
ESTIMATOR_MODULES = (metrics, survival)
"""The code an hour's row is computed by: a change to it (or to polars, numpy or DuckDB, or to
the records' rules) gives every hour a new fingerprint, and every hour is estimated again."""
_SAME_HOUR = " AND ".join(f"a.{k} IS NOT DISTINCT FROM b.{k}" for k in _KEYS)


def refresh_expiry_hours(con: duckdb.DuckDBPyConnection) -> int:
    """Bring `expiry_rates_over_time` and its fingerprints up to date with the expiry cells,
    in `con`'s transaction; its row count afterwards."""
    # What the estimate reads of a cell; the hour is the key, the registration time unread.
    unread = (*EXPIRY_KEYS, "origin_at", "registered_at")
    content = [c for c in cell_columns(_RECORDS) if c not in unread]
    cells = cells_relation(con, _RECORDS)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _hour_prints AS "
        f"SELECT {', '.join(EXPIRY_KEYS)}, origin_at AS {HOUR}, "
        f"sum({WEIGHT}::HUGEINT * hash({', '.join(content)}, '{_seed()}')::HUGEINT) "
        f"AS fingerprint FROM {cells} GROUP BY ALL"
    )
    prints_kept = tables_exist(con, [FINGERPRINTS]) and (
        described(con, FINGERPRINTS) == described(con, "_hour_prints")
    )
    if not prints_kept:  # none, or stored by another release: every hour is estimated
        declare_table(con, FINGERPRINTS, "_hour_prints")
    # Hours whose fingerprint differs from the stored one, is new, or has no cells any more.
    either = ", ".join(f"coalesce(a.{k}, b.{k}) AS {k}" for k in _KEYS)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _hours_changed AS SELECT {either} FROM _hour_prints a "
        f"FULL JOIN {FINGERPRINTS} b ON {_SAME_HOUR} "
        "WHERE a.fingerprint IS DISTINCT FROM b.fingerprint"
    )
    fresh = expiry_over_time(_hour_cells(con, cells, _in_hours("_hours_changed")))
    if prints_kept and _stored_schema(con) == fresh.schema:
        for table in (TABLE, FINGERPRINTS):
            con.execute(f"DELETE FROM {table} a USING _hours_changed b WHERE {_SAME_HOUR}")
        with registered(con, "_fresh_hours", fresh):
            con.execute(f"INSERT INTO {TABLE} BY NAME SELECT * FROM _fresh_hours")
        con.execute(
            f"INSERT INTO {FINGERPRINTS} SELECT * FROM _hour_prints a "
            f"WHERE EXISTS (SELECT 1 FROM _hours_changed b WHERE {_SAME_HOUR})"
        )
    else:  # no table, or one stored by another release: every hour afresh
        if prints_kept:  # `fresh` holds the changed hours only
            fresh = expiry_over_time(_hour_cells(con, cells))
        replace_table(con, TABLE, fresh)
        con.execute(f"DELETE FROM {FINGERPRINTS}")
        con.execute(f"INSERT INTO {FINGERPRINTS} SELECT * FROM _hour_prints")
    return int(first_row(con, f"SELECT count(*) FROM {TABLE}")[0])


def _hour_cells(con: duckdb.DuckDBPyConnection, cells: str, where: str = "") -> pl.DataFrame:
    """The expiry cells (`a`, of the relation `cells`) `where` picks, every one without it,
    without their registration time: records with `origin_at` at their hour."""
    columns = [c for c in cell_columns(_RECORDS) if c != "registered_at"]
    return query(
        con,
        f"SELECT {', '.join(columns)}, sum({WEIGHT})::BIGINT AS {WEIGHT} "
        f"FROM {cells} a {where} GROUP BY ALL",
    )


def _in_hours(hours: str) -> str:
    """WHERE clause: the cell's hour is one of the relation `hours` (`_KEYS` columns)."""
    same = [f"a.{k} IS NOT DISTINCT FROM b.{k}" for k in EXPIRY_KEYS]
    same.append(f"a.origin_at IS NOT DISTINCT FROM b.{HOUR}")
    return f"WHERE EXISTS (SELECT 1 FROM {hours} b WHERE {' AND '.join(same)})"


def _seed() -> str:
    """What the fingerprints also hash: the estimator's code and libraries, the records'
    rules and the cells' columns."""
    digest = hashlib.blake2b(digest_size=8)
    for module in ESTIMATOR_MODULES:
        digest.update(Path(str(module.__file__)).read_bytes())
    parts = (pl.__version__, np.__version__, duckdb.__version__, records_state())
    for part in (*parts, *cell_columns(_RECORDS)):
        digest.update(part.encode())
    return digest.hexdigest()


def _stored_schema(con: duckdb.DuckDBPyConnection) -> pl.Schema | None:
    """The stored table's columns and types as polars reads them; None without one."""
    if not tables_exist(con, [TABLE]):
        return None
    return query(con, f"SELECT * FROM {TABLE} LIMIT 0").schema
