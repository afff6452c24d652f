"""Order keys: a span of rowids that bounds a lookup by key without losing any row."""

from __future__ import annotations

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
