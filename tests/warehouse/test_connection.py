"""Connection settings: DuckDB's memory held lower for a block, then set back."""

from __future__ import annotations

from pathlib import Path

from pipeline.warehouse import Warehouse
from pipeline.warehouse.connection import memory_limit


def _limit(con: object) -> str:
    return str(con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])  # type: ignore[attr-defined]


def test_memory_limit_holds_within_the_block_and_is_set_back(tmp_path: Path) -> None:
    with Warehouse(tmp_path / "warehouse.duckdb").connect() as con:
        before = _limit(con)
        with memory_limit(con, "300MB"):
            inside = _limit(con)
        assert _limit(con) == before
    assert inside != before
    assert inside.startswith("286") and "MiB" in inside  # 300 MB as DuckDB shows it
