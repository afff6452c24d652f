"""The change notes a refresh leaves for the publish (`pipeline.warehouse.changes`)."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest

from pipeline.warehouse import changes
from pipeline.warehouse.changes import (
    CHANGES_TABLE,
    newest_seq,
    note_changed_orders,
    note_rewritten,
    noted_since,
)


def _orders(*ids: str) -> pl.DataFrame:
    return pl.DataFrame({"provider": ["p"] * len(ids), "order_id": list(ids)})


def _noted(con: duckdb.DuckDBPyConnection, table: str, mark: int) -> set[str] | None:
    query = noted_since(con, "memory", table, mark)
    return None if query is None else {row[1] for row in con.execute(query).fetchall()}


def test_notes_say_which_orders_changed_since_a_mark() -> None:
    con = duckdb.connect()
    assert newest_seq(con, "memory") == 0
    note_changed_orders(con, ["history"], _orders("a", "b"))
    note_changed_orders(con, ["history", "records"], _orders("c", "c"))
    note_changed_orders(con, ["history"], _orders())  # nothing changed: no note
    assert newest_seq(con, "memory") == 2
    assert _noted(con, "history", 1) == {"c"}
    assert _noted(con, "history", 2) == set()
    assert _noted(con, "history", 0) is None, "before the first note, the notes cannot say"
    assert _noted(con, "records", 1) is None, "the records' notes start at 2"
    assert _noted(con, "records", 2) == set()
    assert _noted(con, "orders", 2) is None, "a table nobody notes"

    note_rewritten(con, ["history"])
    assert _noted(con, "history", 2) is None, "rewritten whole after the mark"
    assert _noted(con, "history", 3) == set()
    assert _noted(con, "records", 2) == set(), "another table's rebuild is not its own"


def test_old_notes_are_trimmed_to_a_whole_table_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(changes, "KEEP_NOTES", 2)
    con = duckdb.connect()
    for n in range(5):
        note_changed_orders(con, ["history"], _orders(f"o{n}"))
    assert _noted(con, "history", 3) == {"o3", "o4"}
    assert _noted(con, "history", 2) is None, "a mark older than the kept notes"
    rows = con.execute(f"SELECT count(*) FROM {CHANGES_TABLE}").fetchall()[0][0]
    assert rows == 3  # o3, o4 and the whole-table row where the trimmed notes were
    note_rewritten(con, ["records"])  # another table's row does not stop the trim
    note_changed_orders(con, ["history"], _orders("o6"))
    assert _noted(con, "history", 5) == {"o6"}
    assert _noted(con, "history", 4) is None
