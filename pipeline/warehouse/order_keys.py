"""An integer key on the tables of order rows, so that a refresh finds an order's rows by one
integer column instead of two strings.

A refresh reads, deletes and rewrites the rows of the orders its new polls touched, a few
hundred among millions. Found by `(provider, order_id)`, every stored row's two strings are read
and compared; found by `order_key`, one integer column is. Deleting and returning 300 orders'
rows among 2.5 M records took 0.10 s by the key against 0.29 s by the strings, on order ids in
random order as providers' ids are.

The key is DuckDB's `hash(provider, order_id)`. A hash is not unique: a lookup by it finds the
orders asked for and, very rarely, another order sharing a key. So every read narrows the rows
found to the orders asked for by their ids, and every write by key is made exact: a delete puts
back what it took from orders not asked for (`restore_others`), or is made by the ids when the
rows found show a key shared (the status history's fold), and a publish rewrites whole sets of
orders sharing keys on both sides. DuckDB does not promise the same hash across versions, so the
version that keyed the rows is kept in `derived_state` and another one keys them again
(`ensure_order_keys`).
"""

from __future__ import annotations

import itertools

import duckdb

from pipeline.warehouse.changes import note_rewritten
from pipeline.warehouse.store import first_row

ORDER_KEY = "order_key"
KEY_SQL = "hash(provider, order_id)"
"""How a row's `order_key` is computed from its order (read only by the functions here)."""
WITHOUT_KEY = f"* EXCLUDE ({ORDER_KEY})"
"""A keyed table's columns as the code that builds its rows knows them."""
KEYS_STATE = "order_keys"
"""`derived_state` entries `order_keys duckdb <version>`: what keyed the stored rows."""


def keys_state() -> str:
    """The `derived_state` name of rows keyed by this DuckDB."""
    return f"{KEYS_STATE} duckdb {duckdb.__version__}"


def ensure_order_keys(con: duckdb.DuckDBPyConnection, tables: tuple[str, ...]) -> bool:
    """Give each of `tables` that exists its `order_key`, computed by this DuckDB: a table
    from before the key gets the column, rows keyed by another version are keyed again, and
    so are rows written without a key. True when it changed any row."""
    current = keys_state()
    keyed = bool(first_row(con, "SELECT count(*) FROM derived_state WHERE name = ?", [current])[0])
    has_key = _has_key_column(con, tables)
    rekeyed = [table for table, keyed_before in has_key.items() if not (keyed_before and keyed)]
    for table in rekeyed:
        if not has_key[table]:
            con.execute(f"ALTER TABLE {table} ADD COLUMN {ORDER_KEY} UBIGINT")
        con.execute(f"UPDATE {table} SET {ORDER_KEY} = {KEY_SQL}")
    for table in _with_null_keys(con, [table for table in has_key if table not in rekeyed]):
        # Written by a release that did not key its rows (a rollback and back): a lookup
        # by key would miss them, and the order's rows would be written twice.
        con.execute(f"UPDATE {table} SET {ORDER_KEY} = {KEY_SQL} WHERE {ORDER_KEY} IS NULL")
        rekeyed.append(table)
    if rekeyed:
        # Every row changed: a published copy is compared whole, not synced by key.
        note_rewritten(con, rekeyed)
    if not keyed:
        con.execute("DELETE FROM derived_state WHERE name LIKE ?", [f"{KEYS_STATE} %"])
        con.execute(
            "INSERT INTO derived_state (name, value, updated_at) VALUES (?, now(), now())",
            [current],
        )
    return bool(rekeyed)


def _has_key_column(con: duckdb.DuckDBPyConnection, tables: tuple[str, ...]) -> dict[str, bool]:
    """Which of `tables` exist, each with whether it has the key column: one catalog query,
    as every refresh asks (a query per table was 0.03 s of a 1 s refresh)."""
    rows = con.execute(
        "SELECT table_name, bool_or(column_name = ?) FROM information_schema.columns "
        "WHERE table_catalog = current_database() AND table_schema = 'main' "
        "AND table_name IN (SELECT unnest(?::VARCHAR[])) GROUP BY table_name",
        [ORDER_KEY, list(tables)],
    ).fetchall()
    found = dict(rows)
    return {table: bool(found[table]) for table in tables if table in found}


def _with_null_keys(con: duckdb.DuckDBPyConnection, tables: list[str]) -> list[str]:
    """Those of `tables` (each with the key column) holding a row without a key."""
    if not tables:
        return []
    unkeyed = " UNION ALL ".join(
        f"SELECT '{table}' WHERE EXISTS (SELECT 1 FROM {table} WHERE {ORDER_KEY} IS NULL)"
        for table in tables
    )
    return [row[0] for row in con.execute(unkeyed).fetchall()]


ROW_GROUP_ROWS = 122_880
"""Rows in a DuckDB row group (its default size): the unit its scans skip by rowid bounds."""
MAX_SPANS = 32
"""Most rowid ranges a lookup's condition names; closer ranges are joined past it."""


def rowid_spans(con: duckdb.DuckDBPyConnection, table: str, keys: str) -> str:
    """A condition on `table`'s `rowid` (aliased `t`) that holds for its rows whose
    `order_key` is in relation `keys` ("false" when there are none): the rowid ranges that
    hold them, a range per run of row groups holding any.

    Found on the key column alone (0.05-0.09 s among 24 M history rows): the rows a refresh
    looks for were mostly written lately and together, and DuckDB reads only the row groups
    inside the ranges. So 1,000 recent orders' rows cost what their few row groups do (0.03 s
    among 7.5 M rows, where a join by key read every row group: 0.21 s), and a few orders
    from long ago add a row group each: 990 recent orders and 10 from across 18 months took
    0.05 s in three ranges, 0.34-0.72 s in the one span from the oldest row to the newest
    (24 M rows). Rows scattered over the whole table (orders polled at random across the
    history) cost what the join does. Literal ranges, never a subquery: DuckDB 2.0 returns
    wrong rows for `rowid IN (subquery)` on a table the same transaction has changed, so
    callers also use it only where theirs has not changed `table`."""
    groups = con.execute(
        f"SELECT t.rowid // {ROW_GROUP_ROWS} AS g, min(t.rowid), max(t.rowid) FROM {table} t "
        f"SEMI JOIN {keys} USING ({ORDER_KEY}) GROUP BY g ORDER BY g"
    ).fetchall()
    ranges = _ranges_by_run(groups)
    if not ranges:
        return "false"
    return "(" + " OR ".join(f"t.rowid BETWEEN {low} AND {high}" for low, high in ranges) + ")"


def _ranges_by_run(groups: list[tuple[int, int, int]]) -> list[tuple[int, int]]:
    """(first, last) rowid per run of neighbouring row groups, from each group's (number,
    first, last) in order; past `MAX_SPANS` ranges, the two closest are joined."""
    ranges: list[tuple[int, int]] = []
    previous = -2
    for group, low, high in groups:
        if group == previous + 1:
            ranges[-1] = (ranges[-1][0], int(high))
        else:
            ranges.append((int(low), int(high)))
        previous = group
    while len(ranges) > MAX_SPANS:
        gaps = [later[0] - earlier[1] for earlier, later in itertools.pairwise(ranges)]
        i = gaps.index(min(gaps))
        ranges[i : i + 2] = [(ranges[i][0], ranges[i + 1][1])]
    return ranges


def keyed_here(con: duckdb.DuckDBPyConnection, database: str) -> bool:
    """Whether `database`'s rows are keyed by this DuckDB's hash (so keys computed here find
    them)."""
    row = first_row(
        con,
        f'SELECT count(*) FROM "{database}".derived_state WHERE name = ?',
        [keys_state()],
    )
    return bool(row[0])


def share_of_orders(shares: int, *, stored: bool) -> str:
    """The share (0 to `shares` - 1) of a row's order: from the stored `order_key`, or from the
    key computed from the ids for a table without one. The two agree where this DuckDB keyed
    the rows, so a share holds the same orders in both."""
    return f"{ORDER_KEY if stored else KEY_SQL} % {int(shares)}"


def keyed_columns() -> dict[str, str]:
    """The computed column a keyed table is created with (`store.replace_table`)."""
    return {ORDER_KEY: KEY_SQL}


def keyed_orders(relation: str, *aggregates: str) -> str:
    """`relation`'s orders (its `provider` and `order_id`) with their `order_key`, once each,
    and the `aggregates` (SQL, named) of each order's rows."""
    also = "".join(f", {aggregate}" for aggregate in aggregates)
    return f"SELECT provider, order_id, {KEY_SQL} AS {ORDER_KEY}{also} FROM {relation} GROUP BY ALL"


def keyed_insert(table: str, relation: str) -> str:
    """An INSERT of `relation`'s rows (a keyed table's columns but the key) into `table`."""
    return f"INSERT INTO {table} BY NAME SELECT *, {KEY_SQL} AS {ORDER_KEY} FROM {relation}"


def restore_others(
    con: duckdb.DuckDBPyConnection, table: str, removed: str, orders: str, also: str = ""
) -> None:
    """Put back into `table` the rows in `removed` (a temporary table of the rows a delete by
    key took) that are not of `orders` (a relation of `provider`, `order_id`: those rows only
    share a key with one of them), or fail the condition `also` on their order's row (`o`) and
    theirs (`r`); `removed` keeps the rest."""
    others = (
        f"FROM {removed} r WHERE NOT EXISTS (SELECT 1 FROM {orders} o "
        f"WHERE o.provider = r.provider AND o.order_id = r.order_id {also})"
    )
    if first_row(con, f"SELECT count(*) {others}")[0]:
        con.execute(f"INSERT INTO {table} BY NAME SELECT r.* {others}")
        con.execute(f"DELETE {others}")
