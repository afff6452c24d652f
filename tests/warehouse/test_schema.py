"""Warehouse schema: migrations apply once and are idempotent on every later open."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from pipeline.warehouse import Warehouse, append
from pipeline.warehouse.schema import LATEST_VERSION, MIGRATIONS, migrate


def test_migrations_apply_in_order_and_record_versions(warehouse: Warehouse) -> None:
    versions = warehouse.read("SELECT version FROM schema_migrations ORDER BY version")
    assert versions["version"].to_list() == [m.version for m in MIGRATIONS]
    tables = set(warehouse.read("SELECT table_name FROM information_schema.tables")["table_name"])
    assert {"orders", "observations", "payloads", "quarantine", "order_tracking"} <= tables


def test_migrating_again_changes_nothing(warehouse: Warehouse) -> None:
    with warehouse.connect() as con:
        assert migrate(con) == []
        assert migrate(con) == []
    with warehouse.connect() as con:  # every open migrates; still nothing to do
        count = con.execute("SELECT count(*), max(version) FROM schema_migrations").fetchone()
    assert count == (len(MIGRATIONS), LATEST_VERSION)


def test_observations_lose_their_key_index_and_keep_every_row(tmp_path: Path) -> None:
    """A warehouse made before migration 7 keeps its observations, in `polled_at` order, in a
    table without a primary key; appending them again still stores nothing twice."""
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    for migration in MIGRATIONS[:6]:
        con.execute(migration.sql)
    rows = pl.DataFrame(
        {
            "observation_id": ["b", "a"],
            "provider": "baanx",
            "order_id": "o1",
            "polled_at": [datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)],
            "state": "pending",
        }
    )
    con.register("old_rows", rows.to_arrow())
    con.execute("INSERT INTO observations BY NAME SELECT * FROM old_rows")
    con.execute(
        "CREATE TABLE schema_migrations (version INTEGER, name VARCHAR, applied_at TIMESTAMPTZ)"
    )
    con.executemany(
        "INSERT INTO schema_migrations VALUES (?, ?, now())",
        [(m.version, m.name) for m in MIGRATIONS[:6]],
    )
    assert migrate(con) == [7, 8]
    constraints = con.execute(
        "SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'observations' "
        "AND constraint_type = 'PRIMARY KEY'"
    ).fetchone()
    assert constraints == (0,)
    assert con.execute("SELECT observation_id FROM observations").fetchall() == [("a",), ("b",)]
    con.close()
    warehouse = Warehouse(path)
    with warehouse.transaction() as write:
        assert (
            append(write, "observations", rows.cast({"polled_at": pl.Datetime("us", "UTC")})) == 0
        )
    assert warehouse.read("SELECT count(*) AS n FROM observations")["n"].item() == 2
