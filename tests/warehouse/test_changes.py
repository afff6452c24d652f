"""The change notes a refresh leaves for the publish (`pipeline.warehouse.changes`)."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest

from pipeline.warehouse import changes
from pipeline.warehouse.changes import (
    CHANGES_TABLE,
    NO_NOTE,
    Note,
    newest_note,
    note_changed_orders,
    note_rewritten,
    noted_since,
)


def _orders(*ids: str) -> pl.DataFrame:
    return pl.DataFrame({"provider": ["p"] * len(ids), "order_id": list(ids)})


def _noted(con: duckdb.DuckDBPyConnection, table: str, mark: Note) -> set[str] | None:
    query = noted_since(con, "memory", table, mark)
    return None if query is None else {row[1] for row in con.execute(query).fetchall()}


def _newest(con: duckdb.DuckDBPyConnection) -> Note:
    return newest_note(con, "memory")


def test_notes_say_which_orders_changed_since_a_mark() -> None:
    con = duckdb.connect()
    assert _newest(con) == NO_NOTE
    note_changed_orders(con, ["history"], _orders("a", "b"))
    first = _newest(con)
    note_changed_orders(con, ["history", "records"], _orders("c", "c"))
    second = _newest(con)
    note_changed_orders(con, ["history"], _orders())  # nothing changed: no note
    assert (first.seq, second.seq) == (1, 2) and _newest(con) == second
    assert _noted(con, "history", first) == {"c"}
    assert _noted(con, "history", second) == set()
    assert _noted(con, "history", NO_NOTE) is None, "before the first note, the notes cannot say"
    assert _noted(con, "records", first) is None, "the records' notes start at the second"
    assert _noted(con, "records", second) == set()
    assert _noted(con, "orders", second) is None, "a table nobody notes"

    note_rewritten(con, ["history"])
    assert _noted(con, "history", second) is None, "rewritten whole after the mark"
    assert _noted(con, "history", _newest(con)) == set()
    assert _noted(con, "records", second) == set(), "another table's rebuild is not its own"


def test_a_mark_from_another_log_is_not_taken_for_one_of_these_notes() -> None:
    """A warehouse restored from a backup, or whose log was dropped, numbers its notes again:
    a copy's mark then names a note this log does not hold, and the log cannot say."""
    con = duckdb.connect()
    for order in ("a", "b", "c"):
        note_changed_orders(con, ["history"], _orders(order))
    mark = _newest(con)
    con.execute(f"DROP TABLE {CHANGES_TABLE}")
    for order in ("x", "y", "z", "w"):
        note_changed_orders(con, ["history"], _orders(order))
    assert _newest(con).seq > mark.seq
    assert _noted(con, "history", mark) is None
    assert _noted(con, "history", Note(mark.seq, _newest(con).token)) is None


def test_old_notes_are_trimmed_to_a_whole_table_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(changes, "KEEP_NOTES", 2)
    con = duckdb.connect()
    marks = []
    for n in range(5):
        note_changed_orders(con, ["history"], _orders(f"o{n}"))
        marks.append(_newest(con))
    assert _noted(con, "history", marks[2]) == {"o3", "o4"}, "a mark at the cut"
    assert _noted(con, "history", marks[1]) is None, "a mark older than the kept notes"
    rows = con.execute(f"SELECT count(*) FROM {CHANGES_TABLE}").fetchall()[0][0]
    assert rows == 3  # o3, o4 and the whole-table row where the trimmed notes were
    note_rewritten(con, ["records"])  # another table's row does not stop the trim
    note_changed_orders(con, ["history"], _orders("o6"))
    assert _noted(con, "history", marks[4]) == {"o6"}
    assert _noted(con, "history", marks[3]) is None


def test_a_log_written_by_another_release_is_not_read_and_starts_afresh() -> None:
    con = duckdb.connect()
    con.execute(
        f"CREATE TABLE {CHANGES_TABLE} (seq BIGINT, table_name VARCHAR, provider VARCHAR, "
        "order_id VARCHAR)"
    )
    con.execute(f"INSERT INTO {CHANGES_TABLE} VALUES (7, 'history', NULL, NULL)")
    assert _newest(con) == NO_NOTE
    assert _noted(con, "history", Note(7, "")) is None
    note_changed_orders(con, ["history"], _orders("a"))
    assert _newest(con).seq == 1
    assert _noted(con, "history", _newest(con)) == set()
