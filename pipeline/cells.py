"""Per-order records collapsed into cells, kept up to date as the records change.

The analytics read every record table as cells: orders that agree on what the analytics group
by, once their times are on a fine grid (`CELL_GRID`), enter as one row with a count. Counting
them afresh on every refresh costs a scan of every record, which grows with the orders ever
tracked. So each record table has a stored cell table (`CELL_TABLES`) that a refresh updates
by the records it replaced and the ones it wrote (`update_cells`): its cost follows what
changed.

One thing the cells keep per order: `registered_at`, because the scorecard's windows (the last
hour, day, 7 and 30 days) end at the refresh and so move. Orders registered before every
window any refresh can ask for (31 to 32 days before the newest registration, at the start of a
day) lose it once (`age_cells`: it becomes `AGED`, older than every window), and only then
collapse with their like; a refresh asking for windows that reach
before that line (an `as_of` in the past) counts the records instead, as exactly.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import polars as pl

from pipeline.analytics.metrics import RESOLUTION
from pipeline.analytics.scorecard import WINDOWS, window_start_sql
from pipeline.analytics.survival import CENSORED, EVENT, WEIGHT
from pipeline.warehouse.store import (
    declare_table,
    derived_state,
    query,
    set_derived_state,
    tables_exist,
)

CELL_GRID = 0.005
"""Relative step of the grid record times are placed on: half a percent, far inside the
sampling error of any figure read off them, and coarse enough that a million orders fall into
tens of thousands of cells."""

CELL_TABLES = {
    "code_records": "_code_cells",
    "completion_records": "_completion_cells",
    "expiry_records": "_expiry_cells",
}
"""Record table → the table of its cells (bookkeeping: the leading `_` keeps it out of the
published copy, `pipeline.warehouse.publish.PRIVATE_PREFIX`)."""

AGED_STATE = "record_cells_aged_before"
"""`derived_state` entry: orders registered before it have lost `registered_at` in the cells."""
AGE_MARGIN = timedelta(days=1)
"""How far behind the longest window the aging line stays: the line moves at most once a day,
and a refresh may ask for windows ending up to a day before the newest registration."""
AGED = "TIMESTAMPTZ '0001-01-01 00:00:00+00'"
"""What an aged order's `registered_at` becomes: before every window, and not null (an order
without a registration time is in no window, an aged one is in the all-time row). A real time,
not `-infinity`, which polars and pandas cannot hold; any registration this old is aged too."""

_COMMON = ("provider", "event_code")
_CELL_KEYS: dict[str, tuple[str, ...]] = {
    "code_records": (*_COMMON, "service", "country"),
    "completion_records": (*_COMMON, "order_kind", "service", "country", "registered_at"),
    "expiry_records": (
        *_COMMON, "order_kind", "origin_at", "registered_at",
        "window_s", "horizon_s", "window_documented",
    ),
}  # fmt: skip
"""Record columns each table's analytics group or filter by (besides the times)."""
_READ_BY_HOUR = ("origin_at",)
"""Cell columns only `expiry_rates_over_time` reads, from the stored cells by hour itself
(`cells_relation`, `pipeline.expiry_hours`): `read_record_cells` leaves them out, and a year
and a half of expiry cells then reads as tens of rows instead of 171,000."""
_WITH_BOUNDS = ("code_records", "completion_records")
"""Tables whose analytics fit the NPMLE to the event's bounds (expiry needs `time_s` only)."""


def _snap(value: str, direction: str) -> str:
    """SQL placing a time in seconds on the `CELL_GRID` grid (`floor`, `ceil` or `round` of its
    logarithm); zero and negative times stay as they are."""
    return (
        f"CASE WHEN ({value}) > 0 THEN exp({direction}(ln({value}) / {CELL_GRID}) * {CELL_GRID}) "
        f"ELSE ({value}) END"
    )


_EXACT = f"event_code <> {CENSORED} AND event_after_s >= event_by_s"
# An interval narrower than a step would round to one point and read as an exact time (and a
# group of them would lose its smoothing): it keeps one step below its upper bound instead.
_EVENT_AFTER = (
    f"CASE WHEN {_EXACT} THEN {_snap('event_by_s', 'round')} "
    f"WHEN {_snap('event_after_s', 'round')} >= {_snap('event_by_s', 'round')} "
    f"THEN {_snap('event_by_s', 'round')} * exp(-{CELL_GRID}) "
    f"ELSE {_snap('event_after_s', 'round')} END"
)
_EVENT_BY = f"CASE WHEN event_code = {CENSORED} THEN NULL ELSE {_snap('event_by_s', 'round')} END"
_TIME = _snap("time_s", "round")
_TIME_TO_HORIZON = (
    "CASE WHEN time_s > horizon_s THEN horizon_s + 1 WHEN time_s = horizon_s THEN horizon_s "
    f"WHEN {_TIME} >= horizon_s THEN {_snap('time_s', 'floor')} ELSE {_TIME} END"
)
_TIMES: dict[str, tuple[str, ...]] = {
    "code_records": ("time_s", "event_after_s", "event_by_s", RESOLUTION),
    "completion_records": ("time_s", "event_after_s", "event_by_s", RESOLUTION),
    "expiry_records": ("time_s",),
}
"""The time columns of each table's cells."""


def _cell_expressions(table: str, registered_at: str) -> list[str]:
    """The SELECT list placing a record of `table` in its cell (without the count);
    `registered_at` is the SQL its registration time becomes."""
    keys = {
        "registered_at": f"{registered_at} AS registered_at",
        "origin_at": "date_trunc('hour', origin_at) AS origin_at",
    }
    columns = [keys.get(key, key) for key in _CELL_KEYS[table]]
    if table in _WITH_BOUNDS:
        return [
            *columns,
            f"{_TIME} AS time_s",
            f"{_EVENT_AFTER} AS event_after_s",
            f"{_EVENT_BY} AS event_by_s",
            f"CASE WHEN event_code = {EVENT} THEN {_snap('upper_s - lower_s', 'round')} "
            f"END AS {RESOLUTION}",
        ]
    return [*columns, f"{_TIME_TO_HORIZON} AS time_s"]


def cell_columns(table: str) -> list[str]:
    """The columns of `table`'s stored cells but the count."""
    return [*_CELL_KEYS[table], *_TIMES[table]]


def _read_columns(table: str) -> list[str]:
    """The columns `read_record_cells` gives `table`'s cells, but the count."""
    return [c for c in cell_columns(table) if c not in _READ_BY_HOUR]


def _stored_registration(aged_before: datetime | None) -> str:
    """SQL of the `registered_at` a stored cell keeps: aged before `aged_before`."""
    if aged_before is None:
        return "registered_at"
    return (
        f"CASE WHEN registered_at < TIMESTAMPTZ '{aged_before.isoformat()}' THEN {AGED} "
        "ELSE registered_at END"
    )


def _cells_of(table: str, source: str, registered_at: str, sign: int = 1) -> str:
    """SQL counting the records in `source` (rows of `table`) into cells, times `sign`."""
    columns = ", ".join(_cell_expressions(table, registered_at))
    return f"SELECT {columns}, ({sign} * count(*))::BIGINT AS {WEIGHT} FROM {source} GROUP BY ALL"


def aged_before(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """Where the stored cells' aging line is (`AGED_STATE`); None before any aging."""
    return derived_state(con, AGED_STATE)


def build_cells(con: duckdb.DuckDBPyConnection, newest: datetime | None) -> None:
    """Every cell table counted afresh from its records, aged as far as `newest` (the newest
    registration) allows: orders are aged as they are counted, so a year of them never stands
    one row each (8.3 M groups took 5 GB)."""
    line = aging_line(newest)
    registration = _stored_registration(line)
    for table, cells in CELL_TABLES.items():
        select = _cells_of(table, table, registration)
        declare_table(con, cells, select)  # then filled: the cells' updates add rows later
        con.execute(f"INSERT INTO {cells} {select}")
    set_derived_state(con, AGED_STATE, line)


def update_cells(con: duckdb.DuckDBPyConnection, table: str, removed: str, added: str) -> None:
    """Take the records in `removed` out of `table`'s cells and put those in `added` in
    (both are relations with the record table's columns); cells left empty are dropped."""
    registration = _stored_registration(aged_before(con))
    delta = (
        f"SELECT {', '.join(cell_columns(table))}, sum({WEIGHT})::BIGINT AS {WEIGHT} FROM "
        f"({_cells_of(table, removed, registration, -1)} UNION ALL "
        f"{_cells_of(table, added, registration)}) GROUP BY ALL HAVING sum({WEIGHT}) <> 0"
    )
    cells = CELL_TABLES[table]
    same_cell = " AND ".join(f"c.{c} IS NOT DISTINCT FROM d.{c}" for c in cell_columns(table))
    columns = [*cell_columns(table), WEIGHT]
    con.execute(
        f"MERGE INTO {cells} c USING ({delta}) d ON {same_cell} "
        f"WHEN MATCHED AND c.{WEIGHT} + d.{WEIGHT} = 0 THEN DELETE "
        f"WHEN MATCHED THEN UPDATE SET {WEIGHT} = c.{WEIGHT} + d.{WEIGHT} "
        f"WHEN NOT MATCHED THEN INSERT ({', '.join(columns)}) "
        f"VALUES ({', '.join(f'd.{c}' for c in columns)})"
    )


def age_cells(con: duckdb.DuckDBPyConnection, newest: datetime | None) -> None:
    """Move the aging line up to the day before the longest window ending at `newest` (the
    newest registration) starts, when that is past where it is: the cells of orders registered
    before it drop their registration time and merge with their like."""
    line = aging_line(newest)
    current = aged_before(con)
    if line is None or (current is not None and line <= current):
        return
    aged = f"registered_at < TIMESTAMPTZ '{line.isoformat()}'"
    for table, cells in CELL_TABLES.items():
        if "registered_at" not in _CELL_KEYS[table]:
            continue
        columns = [c if c != "registered_at" else f"{AGED} AS registered_at"
                   for c in cell_columns(table)]  # fmt: skip
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _aging AS WITH gone AS "
            f"(DELETE FROM {cells} WHERE {aged} RETURNING *) SELECT * FROM gone"
        )
        con.execute(
            f"INSERT INTO {cells} SELECT {', '.join(columns)}, sum({WEIGHT})::BIGINT "
            f"FROM _aging GROUP BY ALL HAVING sum({WEIGHT}) <> 0"
        )
        con.execute("DROP TABLE _aging")
    set_derived_state(con, AGED_STATE, line)


_LONGEST_WINDOW = max(length for length in WINDOWS.values() if length is not None)


def aging_line(newest: datetime | None) -> datetime | None:
    """Where the aging line goes for `newest` (the newest registration): the start of the day
    before the longest window ending there starts."""
    if newest is None:
        return None
    # A registration time in the future (a unit mixed up upstream) must not move the line
    # past every window for good: every later read would count the records again.
    newest = min(newest, datetime.now(UTC))
    return _start_of_day(newest - _LONGEST_WINDOW - AGE_MARGIN)


def _start_of_day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def read_record_cells(con: duckdb.DuckDBPyConnection, as_of: datetime) -> dict[str, pl.DataFrame]:
    """Every record table collapsed into cells: one row per distinct combination of what the
    analytics read, with `orders` (`pipeline.analytics.survival.WEIGHT`) counting its orders.

    The analytics then cost what the cells cost, not what the orders do. To make orders
    combine, every time is placed on the nearest step of a relative grid of step `CELL_GRID`.
    One rule for all keeps the order of any two times (a time equal to or below another is
    still so), which is what the NPMLE's cells and the Kaplan–Meier risk sets are made of:
    rounding an event's bounds outwards and an open order's last poll downwards put an order
    still open at the very poll that saw others' outcomes before that poll, and a provider
    polled on a shared grid lost its median. `registered_at` becomes the start of the
    shortest scorecard window ending at `as_of` that holds it; `origin_at` (expiry) is left
    out (`_READ_BY_HOUR`). The expiry rate is read at its horizon: every later time counts as
    one time past it, and no time crosses it (one just short of it goes down the grid, so an
    order not followed to the horizon never makes the rate there known).

    Read from the stored cells when they are there and aged no later than `as_of`'s longest
    window starts; counted from the records otherwise.
    """
    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=UTC)  # as the windows read it
    if not tables_exist(con, list(CELL_TABLES.values())) or not _aged_outside_windows(con, as_of):
        return count_record_cells(con, as_of)
    window = window_start_sql("registered_at", as_of)
    cells = {}
    for table, cell_table in CELL_TABLES.items():
        columns = [window + " AS registered_at" if c == "registered_at" else c
                   for c in _read_columns(table)]  # fmt: skip
        cells[table] = query(
            con,
            f"SELECT {', '.join(columns)}, sum({WEIGHT})::BIGINT AS {WEIGHT} "
            f"FROM {cell_table} GROUP BY ALL",
        )
    return cells


def count_record_cells(con: duckdb.DuckDBPyConnection, as_of: datetime) -> dict[str, pl.DataFrame]:
    """`read_record_cells`, counted from every record."""
    window = window_start_sql("registered_at", as_of)
    return {
        table: query(
            con,
            f"SELECT {', '.join(_read_columns(table))}, sum({WEIGHT})::BIGINT AS {WEIGHT} "
            f"FROM ({_cells_of(table, table, window)}) GROUP BY ALL",
        )
        for table in CELL_TABLES
    }


def cells_relation(con: duckdb.DuckDBPyConnection, table: str, *, counted: bool = False) -> str:
    """SQL of a relation holding `table`'s cells with every column (`cell_columns`) and the
    count: its stored cell table, or, where none is stored or when `counted`, the cells
    counted from its records (with their registration times as they are)."""
    if not counted and tables_exist(con, [CELL_TABLES[table]]):
        return CELL_TABLES[table]
    return f"({_cells_of(table, table, 'registered_at')})"


def _aged_outside_windows(con: duckdb.DuckDBPyConnection, as_of: datetime) -> bool:
    """True when every order aged in the stored cells is older than the windows ending at
    `as_of`."""
    line = aged_before(con)
    return line is None or line <= as_of - _LONGEST_WINDOW
