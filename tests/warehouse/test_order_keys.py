"""Order keys: a span of rowids that bounds a lookup by key without losing any row."""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipeline.warehouse.order_keys import keyed_orders, rowid_span


def _table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "CREATE TABLE rows AS SELECT 'p' AS provider, 'o' || (i % 5000) AS order_id, "
        "hash('p', 'o' || (i % 5000)) AS order_key, i FROM range(20000) t(i)"
    )


def test_the_span_holds_every_row_of_the_orders_asked_for_and_bounds_the_rest() -> None:
    """Orders written last sit in the last rows: their span covers them and nothing before;
    orders with rows spread over the table span it; orders without rows span nothing."""
    con = duckdb.connect()
    _table(con)
    con.execute(
        "INSERT INTO rows SELECT 'p', 'late' || i, hash('p', 'late' || i), i FROM range(3) t(i)"
    )
    for asked, expect_rows in (("('late0'), ('late2')", 2), ("('o7'), ('o4999')", 8)):
        con.execute(
            "CREATE OR REPLACE TEMP TABLE asked AS "
            + keyed_orders(f"(SELECT 'p' AS provider, order_id FROM (VALUES {asked}) v(order_id))")
        )
        span = rowid_span(con, "rows", "asked")
        found = con.execute(
            f"SELECT count(*) FROM rows t SEMI JOIN asked USING (order_key) WHERE {span}"
        ).fetchone()
        assert found == (expect_rows,)
        low, high = (int(v) for v in span.removeprefix("t.rowid BETWEEN ").split(" AND "))
        if expect_rows == 2:
            assert low >= 20000  # only the late rows' row group
        else:
            assert low <= 7 and high >= 19999 - 1
    con.execute(
        "CREATE OR REPLACE TEMP TABLE asked AS "
        + keyed_orders("(SELECT 'p' AS provider, 'nowhere' AS order_id)")
    )
    assert rowid_span(con, "rows", "asked") == "false"


def test_a_lookup_bounded_by_its_span_is_exact_after_deletes_and_inserts(tmp_path: Path) -> None:
    """The span is a literal condition, so DuckDB 2.0's wrong rows for `rowid IN (subquery)`
    on a table its transaction has changed do not reach it: on a file table of several row
    groups, after scattered deletes and appended inserts in the same transaction, a lookup
    and a `DELETE ... RETURNING` bounded by the span give the rows the unbounded ones do."""
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
        "FROM h USING SAMPLE 2000 ROWS (reservoir, 1)"
    )
    con.execute("DELETE FROM h USING d WHERE h.order_key = d.order_key AND h.seq >= d.first_seq")
    con.execute("DELETE FROM h WHERE v % 11 = 3")
    con.execute(
        "INSERT INTO h SELECT provider, order_id, first_seq + j, 9000000 + j, 'new', order_key "
        "FROM d, range(3) r(j)"
    )
    con.execute("CREATE TEMP TABLE k AS SELECT DISTINCT order_key FROM d")
    expected = sorted(con.execute("SELECT * FROM h t SEMI JOIN k USING (order_key)").fetchall())
    span = rowid_span(con, "h", "k")
    bounded = f"SELECT * FROM h t SEMI JOIN k USING (order_key) WHERE {span}"
    assert sorted(con.execute(bounded).fetchall()) == expected
    con.execute(
        "CREATE TEMP TABLE gone AS WITH x AS (DELETE FROM h t USING k "
        f"WHERE t.order_key = k.order_key AND {span} RETURNING t.*) SELECT * FROM x"
    )
    assert sorted(con.execute("SELECT * FROM gone").fetchall()) == expected
    assert con.execute("SELECT count(*) FROM h SEMI JOIN k USING (order_key)").fetchone() == (0,)
    con.execute("ROLLBACK")
