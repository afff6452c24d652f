"""Connection settings: DuckDB's memory held lower for a block, then set back."""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipeline.warehouse.connection import close, connect, memory_limit

GIB = 2**30


def _limit_gib(con: duckdb.DuckDBPyConnection) -> float:
    shown = str(con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])
    value, unit = shown.split()
    return float(value) * {"GiB": 1.0, "MiB": 1 / 1024}[unit]


def test_memory_limit_holds_within_the_block_and_is_set_after_as_asked(tmp_path: Path) -> None:
    con = connect(tmp_path / "warehouse.duckdb", memory_limit="2GB")
    try:
        with memory_limit(con, "300MB", then="2GB"):
            inside = _limit_gib(con)
        after = _limit_gib(con)
        with memory_limit(con, "300MB"):
            pass
        default = _limit_gib(con)
    finally:
        close(con)
    assert abs(inside - 300e6 / GIB) < 0.01
    assert abs(after - 2e9 / GIB) < 0.1  # shown rounded down to a tenth of a GiB
    assert abs(default - 4e9 / GIB) < 0.1  # `connect`'s own limit


def test_memory_limit_is_set_after_a_failed_statement_too(tmp_path: Path) -> None:
    con = connect(tmp_path / "warehouse.duckdb")
    try:
        con.execute("CREATE TABLE t (x INTEGER)")
        try:
            with memory_limit(con, "300MB"):
                con.execute("INSERT INTO t VALUES ('not a number')")
        except duckdb.Error:
            pass
        after = _limit_gib(con)
    finally:
        close(con)
    assert abs(after - 4e9 / GIB) < 0.1
