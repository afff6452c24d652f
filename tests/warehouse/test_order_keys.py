"""Order keys: rowid ranges that bound a lookup by key without losing any row."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from pipeline.warehouse import order_keys
from pipeline.warehouse.order_keys import ROW_GROUP_ROWS, keyed_orders, rowid_spans

G = ROW_GROUP_ROWS


def _table(con: duckdb.DuckDBPyConnection, row_groups: int) -> None:
    """Table `rows` of `row_groups` full row groups, an order per row: order `o<i>` at rowid i."""
    con.execute(
        "CREATE TABLE rows AS SELECT 'p' AS provider, 'o' || i AS order_id, "
        f"hash('p', 'o' || i) AS order_key, i FROM range({row_groups * G}) t(i)"
    )


def _ask(con: duckdb.DuckDBPyConnection, rowids: list[int]) -> str:
    """The ranges of the orders at `rowids` (keyed as a refresh keys them), checked to find
    exactly their rows."""
    ids = ", ".join(f"('o{i}')" for i in rowids)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE asked AS "
        + keyed_orders(f"(SELECT 'p' AS provider, order_id FROM (VALUES {ids}) v(order_id))")
    )
    condition = rowid_spans(con, "rows", "asked")
    found = con.execute(
        f"SELECT list(i ORDER BY i) FROM rows t SEMI JOIN asked USING (order_key) WHERE {condition}"
    ).fetchone()
    assert found == (sorted(rowids),)
    return condition


def _ranges(condition: str) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in re.findall(r"BETWEEN (\d+) AND (\d+)", condition)]


def test_each_run_of_row_groups_holding_the_orders_asked_for_gets_one_range() -> None:
    """Orders in row groups 0, 2 and 3 (neighbours: one range) and 5 of six: three ranges,
    each from the first to the last row asked for, none over row groups 1 and 4."""
    con = duckdb.connect()
    _table(con, 6)
    condition = _ask(con, [5, 2 * G + 10, 3 * G + 5, 6 * G - 1])
    assert _ranges(condition) == [(5, 5), (2 * G + 10, 3 * G + 5), (6 * G - 1, 6 * G - 1)]


def test_orders_in_every_row_group_span_the_table() -> None:
    con = duckdb.connect()
    _table(con, 3)
    assert _ranges(_ask(con, [7, G + 1, 2 * G + 3, 3 * G - 2])) == [(7, 3 * G - 2)]


def test_past_the_most_ranges_the_closest_are_joined(monkeypatch: pytest.MonkeyPatch) -> None:
    """Three runs (row groups 0, 3 and 5) with two ranges allowed: the two runs with the
    smaller gap between them (the last two) become one range; every row is still found."""
    monkeypatch.setattr(order_keys, "MAX_SPANS", 2)
    con = duckdb.connect()
    _table(con, 6)
    condition = _ask(con, [5, 4 * G - 1, 5 * G + 3])
    assert _ranges(condition) == [(5, 5), (4 * G - 1, 5 * G + 3)]


def test_orders_without_rows_match_nothing() -> None:
    con = duckdb.connect()
    _table(con, 1)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE asked AS "
        + keyed_orders("(SELECT 'p' AS provider, 'nowhere' AS order_id)")
    )
    assert rowid_spans(con, "rows", "asked") == "false"


@pytest.mark.parametrize("sampled", [2000, 3])
def test_a_lookup_bounded_by_its_ranges_is_exact_after_deletes_and_inserts(
    tmp_path: Path, sampled: int
) -> None:
    """The ranges are a literal condition, so DuckDB 2.0's wrong rows for `rowid IN (subquery)`
    on a table its transaction has changed do not reach it: on a file table of several row
    groups, after scattered deletes and appended inserts in the same transaction, a lookup
    and a `DELETE ... RETURNING` bounded by the ranges give the rows the unbounded ones do;
    with orders in every row group (one range) and with three orders (several ranges)."""
    con = duckdb.connect(str(tmp_path / "span.duckdb"))
    con.execute(
        "CREATE TABLE h AS SELECT 'p' || (i % 4) AS provider, 'o' || (hash(i // 8) % 1000003) "
        "AS order_id, (i % 8)::INT AS seq, i AS v, repeat('z', (i % 40)::INT) AS pad "
        "FROM range(600000) t(i)"
    )
    con.execute("ALTER TABLE h ADD COLUMN order_key UBIGINT")
    con.execute("UPDATE h SET order_key = hash(provider, order_id)")
    con.execute("CHECKPOINT")
    con.execute("BEGIN")
    con.execute(
        "CREATE TEMP TABLE d AS SELECT DISTINCT provider, order_id, order_key, 3 AS first_seq "
        f"FROM h USING SAMPLE {sampled} ROWS (reservoir, 1)"
    )
    con.execute("DELETE FROM h USING d WHERE h.order_key = d.order_key AND h.seq >= d.first_seq")
    con.execute("DELETE FROM h WHERE v % 11 = 3")
    con.execute(
        "INSERT INTO h SELECT provider, order_id, first_seq + j, 9000000 + j, 'new', order_key "
        "FROM d, range(3) r(j)"
    )
    con.execute("CREATE TEMP TABLE k AS SELECT DISTINCT order_key FROM d")
    expected = sorted(con.execute("SELECT * FROM h t SEMI JOIN k USING (order_key)").fetchall())
    spans = rowid_spans(con, "h", "k")
    # The rows this transaction inserted have rowids from 2**62 until it commits: a range
    # of their own. Three orders' stored rows lie in a few row groups, not over the table.
    stored = sum(high - low + 1 for low, high in _ranges(spans) if high < 2**62)
    assert stored < 100_000 if sampled == 3 else stored > 500_000
    bounded = f"SELECT * FROM h t SEMI JOIN k USING (order_key) WHERE {spans}"
    assert sorted(con.execute(bounded).fetchall()) == expected
    con.execute(
        "CREATE TEMP TABLE gone AS WITH x AS (DELETE FROM h t USING k "
        f"WHERE t.order_key = k.order_key AND {spans} RETURNING t.*) SELECT * FROM x"
    )
    assert sorted(con.execute("SELECT * FROM gone").fetchall()) == expected
    assert con.execute("SELECT count(*) FROM h SEMI JOIN k USING (order_key)").fetchone() == (0,)
    con.execute("ROLLBACK")
