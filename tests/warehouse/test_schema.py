"""Warehouse schema: migrations apply once and are idempotent on every later open."""

from __future__ import annotations

from pipeline.warehouse import Warehouse
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
