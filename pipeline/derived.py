"""Derived tables in the warehouse: the status history, the per-order records and the poll
rollups (all three incremental), and the analytics tables computed from them. The published
read-only copy that notebooks, the report and BI tools read is `pipeline.warehouse.publish`.

Everything here can be rebuilt from `orders`, `observations` and `quarantine`.
"""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta

import duckdb
import polars as pl

from pipeline.analytics import (
    HISTORY_COLUMNS,
    error_mix,
    latency_rollups,
    poll_rollups,
    provider_reliability,
    provider_scorecard,
    status_history_delta,
)
from pipeline.analytics.curves import curves_from
from pipeline.analytics.inputs import OBSERVATION_FIELDS
from pipeline.analytics.metrics import (
    EXPIRY_KEYS,
    code_summary,
    completion_summary,
    expiry_summary,
)
from pipeline.analytics.rollups import (
    ROLLUP_INPUT_COLUMNS,
)
from pipeline.cells import read_record_cells
from pipeline.expiry_hours import TABLE as EXPIRY_HOURS_TABLE
from pipeline.expiry_hours import refresh_expiry_hours
from pipeline.records import (
    RECORD_TABLES,
    build_all_cells,
    build_records,
    lay_out_by_last_poll,
    mark_records_built,
    records_outdated,
    unmark_records_built,
    update_records,
    write_records,
)
from pipeline.rollup_windows import (
    ROLLUP_SCHEMAS,
    ROLLUP_TABLES,
    age_rollups,
    forget_aged_rollups,
    rollups_by_window,
)
from pipeline.warehouse import Warehouse, query, replace_table
from pipeline.warehouse.changes import note_changed_orders, note_rewritten
from pipeline.warehouse.connection import memory_limit
from pipeline.warehouse.order_keys import (
    ORDER_KEY,
    WITHOUT_KEY,
    ensure_order_keys,
    keyed_columns,
    keyed_insert,
    keyed_orders,
    rowid_spans,
    share_of_orders,
)
from pipeline.warehouse.store import (
    derived_state,
    first_row,
    registered,
    set_derived_state,
    tables_exist,
)

HISTORY_TABLE = "status_history"
ROLLUPS_STATE = "poll_rollups"
"""`derived_state` entry: the newest `polled_at` folded into the rollups."""
COMPACTED_STATE = "poll_rollups_compacted"
"""`derived_state` entry: rollup rows before this hour are at hour grain."""
LATE_OBSERVATIONS_S = 900.0
"""Polls stored up to this long after newer ones (a writer held back by a lock, a shard's log
folded in later) are still counted: a refresh that finds new rows this close behind its
watermark re-reads this margin (`_read_from`)."""
AHEAD_OF_CLOCK_S = 300.0
"""How far past this machine's clock a poll's time may carry the history's and the rollups'
watermarks, and the line before which rollups keep hours (`_within_clock`). A poll stamped
further ahead (a poller whose clock runs fast, a row written by hand) is folded in all the same,
but the marks stop there: past it, every poll stored after it would be taken for a late one and
never folded in, and every minute before it compacted into hours."""
MINUTE_GRAIN_S = 2 * 24 * 3600.0
"""Rollups keep minute grain for this long past the newest poll, then hour grain."""
STORED_STATE = "observations_stored"
"""`derived_state` entry: its `rows_behind` is where the observations' row ids ended at the
last history refresh; rows from there on were stored since (`_rewind_for_polls_stored_late`)."""
PRUNED_STATE = "observations_pruned_before"
"""`derived_state` entry: observations polled before this time have left the warehouse
(`pipeline.retention`)."""
FULL_BUILD_ROWS = 2_000_000
"""Observations read at once when the history or the rollups are built from the whole log
(bounds memory)."""
METRIC_TABLES: dict[str, str] = {
    "time_to_code": "Censoring-aware time from order to SMS code, per provider and group.",
    "time_to_completion": "Censoring-aware time from order to success, per provider and group.",
    "incidence_curves": (
        "Cumulative-incidence curves (NPMLE, 95 % bands) per provider behind the time-to-code "
        "and time-to-completion medians."
    ),
    "expiry_rates": "Cumulative incidence of expiry at each provider's window, with CIs.",
    "expiry_rates_over_time": "Expiry rates by hour of order creation.",
    "provider_scorecard": (
        "Transport, outcome and data-quality scorecard per provider over the last hour, day, "
        "7 days, 30 days and all time, ranked in each window."
    ),
    "provider_reliability": "The scorecard's all-time rows (transport, outcome, data quality).",
    "error_mix": "Poll errors per provider and class, with CIs.",
}
"""Every analytics table `write_metrics` writes, in order, with what it holds: the one list of
them (the Dagster assets, the refresh command and the report read it)."""
# Columns the analytics read from the observation log; `attempt` orders polls in one instant.
ANALYTICS_OBSERVATION_COLUMNS = ", ".join((*OBSERVATION_FIELDS, "attempt"))
_DELTA_VIEW = "_history_delta"
BUILD_MEMORY_LIMIT = "1GB"
"""DuckDB's memory while the history and every record are built from the whole log, beside the
polars frames of each slice of polls (`FULL_BUILD_ROWS`) and each share of orders
(`RECORDS_BUILD_ROWS`). With the warehouse's own limit (4 GB) DuckDB kept what it had cached of
the history as it grew: the first refresh of 8.3 M orders peaked at 4.2-4.4 GB in the records
build and, once that was held to 1 GB, that of 16.6 M orders (6 polls each) at 4.5 GB in the
history's fold. Alone, the records build peaked at 3.2 GB with 2 M rows a share and DuckDB at
1.5 GB, and at 2.2 GB with 1 M rows and 1 GB (in 170 s against 118 s)
(`bench/refresh_memory.py`)."""
RECORDS_BUILD_ROWS = 1_000_000
"""History rows per share of orders in the records build (a share's frames take several times
what its rows do)."""
RECENT_ORDER_ROWS = (100_000, 1_000_000)
"""How many of the newest rows of `orders` a refresh looks in, widening, for the orders it
touched before it looks in the rest (`_order_rows`): at 10,000 orders a day, ten days of them,
then three months. At 8.3 M orders, 1,000 orders took 0.01 s among the newest 100,000 rows and
0.05-0.07 s among a million."""


NO_TRANSACTION = "no transaction is active"
"""What DuckDB's error says when COMMIT finds no transaction open."""


class PrunedLogError(RuntimeError):
    """A full rebuild was asked of an observation log that retention has pruned."""


def _refuse_if_pruned(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Raise `PrunedLogError` when the log lacks pruned rows: a full build would drop them."""
    pruned = derived_state(con, PRUNED_STATE)
    if pruned is not None:
        raise PrunedLogError(
            f"{table} needs a full rebuild, but observations polled before {pruned:%Y-%m-%d %H:%M} "
            "UTC were pruned from the warehouse; load them back from the archive "
            "(INSERT INTO observations SELECT DISTINCT * EXCLUDE (day) FROM read_parquet("
            "'<data dir>/archive/observations/**/*.parquet', hive_partitioning = true)), "
            f"delete the '{PRUNED_STATE}' row of derived_state, and refresh again"
        )


@dataclasses.dataclass(frozen=True)
class HistoryUpdate:
    """What one status-history refresh did."""

    mode: str
    """`full` (first build) or `incremental`."""
    new_observations: int
    rows_written: int
    watermark: datetime | None


def refresh_status_history(con: duckdb.DuckDBPyConnection) -> HistoryUpdate:
    """Fold observations newer than the last refresh into `status_history`.

    The first refresh builds the table from the whole log. Later ones read only the observations
    past the watermark (the newest `polled_at` already folded in), or from `LATE_OBSERVATIONS_S`
    before it when polls were stored late in that margin (a slow answer, or another shard's log
    file folded in later: `_read_from`), and the touched orders' current intervals, so their
    cost follows the new observations, not the stored history. An order's rows already folded
    are skipped (`status_history_delta`).
    """
    if ensure_order_keys(con, (HISTORY_TABLE, *RECORD_TABLES)):
        # Committed apart: the lookups below bound their scans by rowid, which is safe only
        # on tables this transaction has not changed (`order_keys.rowid_spans`).
        _commit_part(con)
    _rewind_for_polls_stored_late(con)
    watermark = _watermark(con)
    if watermark is None or not tables_exist(con, [HISTORY_TABLE]):
        return _build_status_history(con)
    if records_outdated(con):
        _build_records(con)
    new = query(
        con,
        f"SELECT {ANALYTICS_OBSERVATION_COLUMNS} FROM observations WHERE polled_at > ?",
        [_read_from(con, HISTORY_TABLE, watermark)],
    )
    if new.is_empty():
        return HistoryUpdate("incremental", 0, 0, watermark)
    # The touched orders' whole history, read once: its current rows seed the fold, and with
    # the fold's rows it is what their records are rebuilt from.
    stored, found, spans = _stored_history(con, new, current_only=False)
    delta = _fold(con, new, stored, found, spans)
    touched = delta.select("provider", "order_id").unique()
    _update_records(con, touched, _after_fold(stored, delta))
    note_changed_orders(con, (HISTORY_TABLE, *RECORD_TABLES), touched)
    latest = new["polled_at"].max()
    newest = max(watermark, latest) if isinstance(latest, datetime) else watermark
    _set_watermark(con, newest)
    return HistoryUpdate("incremental", new.height, delta.height, newest)


def _stored_history(
    con: duckdb.DuckDBPyConnection, new: pl.DataFrame, *, current_only: bool
) -> tuple[pl.DataFrame, pl.DataFrame, str]:
    """The stored history rows of the orders `new` observations touch: all of them, or only
    their current intervals (what a fold needs); every order the lookup found by key
    (`provider`, `order_id`, `order_key`): those orders and any sharing a key with one (every
    order with a history has a current interval, so each of those shows among them); and the
    rowid ranges that hold every stored row of those orders (`order_keys.rowid_spans`)."""
    touched = new.select("provider", "order_id").unique()
    current = "AND t.is_current" if current_only else ""
    with registered(con, "_touched", touched):
        con.execute(f"CREATE OR REPLACE TEMP TABLE _touched_keys AS {keyed_orders('_touched')}")
        spans = rowid_spans(con, HISTORY_TABLE, "_touched_keys")
        found = query(
            con,
            f"SELECT t.* FROM {HISTORY_TABLE} t SEMI JOIN _touched_keys "
            f"USING ({ORDER_KEY}) WHERE {spans} {current}",
        )
        con.execute("DROP TABLE _touched_keys")
    stored = found.join(touched, on=["provider", "order_id"], how="semi").drop(ORDER_KEY)
    return stored, found.select("provider", "order_id", ORDER_KEY).unique(), spans


def _after_fold(stored: pl.DataFrame, delta: pl.DataFrame) -> pl.DataFrame:
    """The whole history of the orders in `delta` once it is folded in: their `stored` rows
    before the first interval the delta rewrites, then the delta (as `_fold` writes them)."""
    first = delta.group_by("provider", "order_id").agg(pl.col("interval_seq").min().alias("_first"))
    kept = stored.join(first, on=["provider", "order_id"], how="inner").filter(
        pl.col("interval_seq") < pl.col("_first")
    )
    return pl.concat([kept.select(delta.columns), delta], how="vertical_relaxed")


def _fold(
    con: duckdb.DuckDBPyConnection,
    new: pl.DataFrame,
    stored: pl.DataFrame,
    found: pl.DataFrame,
    spans: str,
) -> pl.DataFrame:
    """Fold `new` observations into the history, given the stored rows of the orders they
    touch (their current intervals at least), the orders found by their keys and the rowid
    ranges of their rows (`_stored_history`, on the history as this transaction found it); the
    history rows written."""
    delta = status_history_delta(stored, new)
    with registered(con, _DELTA_VIEW, delta), registered(con, "_found", found):
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _rewritten AS "
            + keyed_orders(_DELTA_VIEW, "min(interval_seq) AS first_seq")
        )
        # Each order's rows from the first interval the delta rewrites: found by key where
        # that is exact (no other stored order shares a key with one of these, nor two of
        # these one key), else by the ids. Returning the rows to put back took longer than
        # the delete (0.13 s at 7.5 M rows).
        collide = first_row(
            con,
            f"SELECT (SELECT count(*) > count(DISTINCT {ORDER_KEY}) FROM _rewritten) OR "
            f"EXISTS (SELECT 1 FROM _found f JOIN _rewritten d USING ({ORDER_KEY}) "
            "WHERE f.provider <> d.provider OR f.order_id <> d.order_id)",
        )[0]
        if collide:
            match = "t.provider = d.provider AND t.order_id = d.order_id"
        else:
            match = f"t.{ORDER_KEY} = d.{ORDER_KEY}"
        # Within the ranges: a join by key alone reads every row group (0.08 s of 24 M rows).
        con.execute(
            f"DELETE FROM {HISTORY_TABLE} t USING _rewritten d "
            f"WHERE {match} AND t.interval_seq >= d.first_seq AND {spans}"
        )
        con.execute("DROP TABLE _rewritten")
        con.execute(keyed_insert(HISTORY_TABLE, _DELTA_VIEW))
    return delta


def _build_status_history(con: duckdb.DuckDBPyConnection) -> HistoryUpdate:
    """`status_history` from the whole log, a slice of time at a time, then every record.

    Each slice of about `FULL_BUILD_ROWS` observations is folded in as a refresh folds new
    polls (`_fold`), oldest first: the log is read once, each slice found through the row
    groups' `polled_at` bounds, and memory follows the slice, not the log (DuckDB held to
    `BUILD_MEMORY_LIMIT`, so its cache of the growing history gives way to the slices).
    """
    _refuse_if_pruned(con, HISTORY_TABLE)
    replace_table(
        con, HISTORY_TABLE, pl.DataFrame(schema=HISTORY_COLUMNS), computed=keyed_columns()
    )
    _set_watermark(con, None)  # committed with the first slice: a build cut short starts over
    note_rewritten(con, [HISTORY_TABLE])  # before and after the build (`note_rewritten`)
    read = written = 0
    with memory_limit(con, BUILD_MEMORY_LIMIT):
        for start, end in _time_slices(con):
            new = query(
                con,
                f"SELECT {ANALYTICS_OBSERVATION_COLUMNS} FROM observations "
                "WHERE polled_at >= ? AND polled_at < ?",
                [start, end],
            )
            read += new.height
            stored, found, spans = _stored_history(con, new, current_only=True)
            written += _fold(con, new, stored, found, spans).height
            _commit_part(con)
    _build_records(con)
    note_rewritten(con, [HISTORY_TABLE])
    newest = first_row(con, "SELECT max(polled_at) FROM observations")[0]
    _set_watermark(con, newest)
    return HistoryUpdate("full", read, written, newest)


def _time_slices(con: duckdb.DuckDBPyConnection) -> list[tuple[datetime, datetime]]:
    """Half-open `polled_at` ranges covering the log, about `FULL_BUILD_ROWS` rows each; the
    polls of one instant always fall in one range."""
    total, oldest, newest = first_row(
        con, "SELECT count(*), min(polled_at), max(polled_at) FROM observations"
    )
    if not total:
        return []
    parts = -(-int(total) // FULL_BUILD_ROWS)
    cuts: list[datetime] = []
    if parts > 1:
        shares = [k / parts for k in range(1, parts)]
        cuts = first_row(
            con, "SELECT approx_quantile(polled_at, ?::FLOAT[]) FROM observations", [shares]
        )[0]
    edges = sorted({oldest, *cuts, newest + timedelta(microseconds=1)})
    return list(itertools.pairwise(edges))


def _commit_part(con: duckdb.DuckDBPyConnection) -> None:
    """Commit what a full build has written so far, and go on in a new transaction.

    Rows written in one transaction stay in memory until it ends: a whole build held so peaked
    at 3.8 GB at 20 M observations, against about 2 GB committed part by part. A build writes its
    markers (watermarks, records built) last, so one cut short starts again from scratch."""
    try:
        con.execute("COMMIT")
    except duckdb.TransactionException as error:
        # DuckDB raises this one class both when no transaction is open (every statement then
        # commits on its own) and when the commit itself failed, which must not pass silently.
        if NO_TRANSACTION not in str(error):
            raise
        return
    con.execute("BEGIN TRANSACTION")


def _update_records(
    con: duckdb.DuckDBPyConnection, touched: pl.DataFrame, history: pl.DataFrame
) -> None:
    """Rebuild the per-order records (`pipeline.records`) of the `touched` orders from their
    whole status `history`."""
    if touched.is_empty():
        return
    update_records(con, touched, build_records(history, _order_rows(con, touched)))


def _order_rows(con: duckdb.DuckDBPyConnection, touched: pl.DataFrame) -> pl.DataFrame:
    """The `orders` rows of the `touched` orders (provider, order_id, each once): looked for
    among the newest rows first (`RECENT_ORDER_ROWS`), where the orders still polled were
    registered, and further back only for those not found yet.

    A join by the two strings reads every row's ids: with ids in no order, as providers'
    are, 2,000 orders took 0.29 s among 8.3 M (0.02 s with ids in registration order, whose
    row groups' bounds skip most of the table)."""
    newest = first_row(con, "SELECT max(rowid) FROM orders")[0]
    if newest is None:
        return query(con, "SELECT * FROM orders LIMIT 0")
    lookup = "SELECT o.* FROM orders o SEMI JOIN _wanted USING (provider, order_id) WHERE"
    found: list[pl.DataFrame] = []
    wanted, end = touched, int(newest) + 1
    for rows in (*RECENT_ORDER_ROWS, None):
        start = 0 if rows is None else max(0, int(newest) - rows + 1)
        if start >= end:
            continue
        with registered(con, "_wanted", wanted):
            found.append(query(con, f"{lookup} o.rowid >= {start} AND o.rowid < {end}"))
        wanted = wanted.join(found[-1], on=["provider", "order_id"], how="anti")
        if wanted.is_empty() or not start:
            break
        end = start
    return pl.concat(found)


def _build_records(con: duckdb.DuckDBPyConnection) -> None:
    """Every order's records from the stored status history, a share of the orders at a time,
    with DuckDB's memory held to `BUILD_MEMORY_LIMIT` beside each share's frames."""
    unmark_records_built(con)  # committed with the first part: a build cut short starts over
    note_rewritten(con, RECORD_TABLES)  # before and after the build (`note_rewritten`)
    total = int(first_row(con, f"SELECT count(*) FROM {HISTORY_TABLE}")[0])
    parts = max(1, -(-total // RECORDS_BUILD_ROWS))
    with memory_limit(con, BUILD_MEMORY_LIMIT):
        history, orders = _sorted_into_shares(con, parts)
        for part in range(parts):
            write_records(
                con,
                build_records(
                    query(con, f"SELECT * EXCLUDE (_share) FROM {history} WHERE _share = {part}"),
                    query(con, f"SELECT * EXCLUDE (_share) FROM {orders} WHERE _share = {part}"),
                ),
                replace=part == 0,
            )
            _commit_part(con)
        con.execute(f"DROP TABLE {history}")
        con.execute(f"DROP TABLE {orders}")
        lay_out_by_last_poll(con)
        _commit_part(con)
        build_all_cells(con)
    note_rewritten(con, RECORD_TABLES)
    mark_records_built(con)


def _sorted_into_shares(con: duckdb.DuckDBPyConnection, parts: int) -> tuple[str, str]:
    """Temporary copies of the status history (without its key) and of the orders, each row
    with its order's share (`_share`, of `parts`) and sorted by it: a share is then read from
    its own row groups. Filtered by the share in place, every share read the whole of both
    tables: 25 shares of 8.3 M orders took 116 s of a 214 s build; sorted, 28 s and 10 s. The
    history's share comes from its stored key (`ensure_order_keys` has keyed every row here),
    so no string is hashed again."""
    history = f"SELECT {WITHOUT_KEY}, {share_of_orders(parts, stored=True)} AS _share "
    history += f"FROM {HISTORY_TABLE}"
    orders = f"SELECT *, {share_of_orders(parts, stored=False)} AS _share FROM orders"
    for table, rows in (("_history_shares", history), ("_order_shares", orders)):
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {rows} ORDER BY _share")
    return "_history_shares", "_order_shares"


@dataclasses.dataclass(frozen=True)
class RollupUpdate:
    """What one rollup refresh did."""

    mode: str
    """`full` (built from the whole log) or `incremental`."""
    observations_read: int
    rows: dict[str, int]
    """Rows in each rollup table afterwards."""
    watermark: datetime | None


def refresh_rollups(con: duckdb.DuckDBPyConnection) -> RollupUpdate:
    """Fold the observations since the last refresh into the poll and latency rollups.

    The first refresh builds them from the whole log, `FULL_BUILD_ROWS` at a time. Later ones
    re-add the minutes from the watermark's on (from `LATE_OBSERVATIONS_S` before it when polls
    were stored late there: `_read_from`), reading only those polls; rows older than
    `MINUTE_GRAIN_S` are then folded to hour grain once.
    """
    watermark = derived_state(con, ROLLUPS_STATE)
    columns = ", ".join(ROLLUP_INPUT_COLUMNS)
    if watermark is None:
        mode, read, newest = "full", *_build_rollups(con, columns)
    else:
        mode = "incremental"
        start = _minute(_read_from(con, ROLLUPS_STATE, watermark))
        forget_aged_rollups(con, start)
        new = query(con, f"SELECT {columns} FROM observations WHERE polled_at >= ?", [start])
        for table in ROLLUP_TABLES:
            con.execute(f"DELETE FROM {table} WHERE minute >= ?", [start])
        _append_rollups(con, new)
        read = new.height
        latest: datetime | None = new["polled_at"].max() if read else None  # type: ignore[assignment]
        newest = watermark if latest is None else max(watermark, latest)
    if newest is not None:
        _set_watermark_of(con, ROLLUPS_STATE, newest)
        _compact_rollups(con, newest)
        age_rollups(con, newest)
    rows = {t: int(first_row(con, f"SELECT count(*) FROM {t}")[0]) for t in ROLLUP_TABLES}
    return RollupUpdate(mode, read, rows, newest)


def _build_rollups(con: duckdb.DuckDBPyConnection, columns: str) -> tuple[int, datetime | None]:
    """Rollups of the whole log, read in row ranges; observations read and the newest poll.

    A minute split between two ranges gets a row from each: rows add up, so that is the same
    rollup (compaction and every reader sum them)."""
    _refuse_if_pruned(con, "poll_rollups")
    forget_aged_rollups(con, None)
    for table in ROLLUP_TABLES:  # rows add up: what a build cut short left would count twice
        con.execute(f"DELETE FROM {table}")
    set_derived_state(con, COMPACTED_STATE, None)
    end, last_poll = first_row(
        con, "SELECT coalesce(max(rowid) + 1, 0), max(polled_at) FROM observations"
    )
    # Polls the compaction would fold into hours are rolled up by the hour at once: by the
    # minute, a year of them is nearly a row each in `latency_rollups`, written and then summed.
    hourly_before = None if last_poll is None else _compacted_before(last_poll)
    read, newest = 0, None
    for low in range(0, int(end), FULL_BUILD_ROWS):
        part = query(
            con,
            f"SELECT {columns} FROM observations WHERE rowid >= ? AND rowid < ?",
            [low, low + FULL_BUILD_ROWS],
        )
        if part.is_empty():
            continue
        _append_rollups(con, part, hourly_before=hourly_before)
        _commit_part(con)
        read += part.height
        latest = part["polled_at"].max()
        newest = latest if newest is None else max(newest, latest)  # type: ignore[type-var]
    set_derived_state(con, COMPACTED_STATE, hourly_before)
    return read, newest  # type: ignore[return-value]


def _append_rollups(
    con: duckdb.DuckDBPyConnection,
    observations: pl.DataFrame,
    *,
    hourly_before: datetime | None = None,
) -> None:
    """Add the rollups of `observations` to the tables (by the hour for polls older than
    `hourly_before`)."""
    if observations.is_empty():
        return
    for table, build in (("poll_rollups", poll_rollups), ("latency_rollups", latency_rollups)):
        _insert(con, table, build(observations, hourly_before=hourly_before))


def _insert(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    """Add rows to a rollup table (no key: rows with equal keys add up)."""
    with registered(con, "_rollup_rows", frame):
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _rollup_rows")


def _compact_rollups(con: duckdb.DuckDBPyConnection, newest: datetime) -> None:
    """Fold rollup rows older than `MINUTE_GRAIN_S` before `newest` into hour rows, once.

    In SQL, which sums them within DuckDB's memory limit. A full build writes the polls older
    than that by the hour already (`_build_rollups`), so this folds the minutes refreshes
    have added since."""
    cutoff = _compacted_before(newest)
    since = derived_state(con, COMPACTED_STATE)
    if since is not None and cutoff <= since:
        return
    window = "minute < ?" if since is None else "minute >= ? AND minute < ?"
    bounds = [cutoff] if since is None else [since, cutoff]
    for table, keys in ROLLUP_TABLES.items():
        counts = [c for c in ROLLUP_SCHEMAS[table] if c not in keys]
        by_hour = ", ".join(
            "time_bucket(INTERVAL 1 HOUR, minute) AS minute" if c == "minute" else c for c in keys
        )
        sums = ", ".join(f"sum({c})::BIGINT AS {c}" for c in counts)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _hour_rows AS SELECT {by_hour}, {sums} "
            f"FROM {table} WHERE {window} GROUP BY ALL",
            bounds,
        )
        con.execute(f"DELETE FROM {table} WHERE {window}", bounds)
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _hour_rows")
        con.execute("DROP TABLE _hour_rows")
    set_derived_state(con, COMPACTED_STATE, cutoff)


def _compacted_before(newest: datetime) -> datetime:
    """The hour before which rollup rows are kept by the hour, given the newest poll."""
    return _hour(_within_clock(newest) - timedelta(seconds=MINUTE_GRAIN_S))


def _within_clock(moment: datetime) -> datetime:
    """`moment`, or `AHEAD_OF_CLOCK_S` past this machine's clock if it lies further ahead."""
    return min(moment, datetime.now(UTC) + timedelta(seconds=AHEAD_OF_CLOCK_S))


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


@dataclasses.dataclass(frozen=True)
class MetricsWritten:
    """What `write_metrics` wrote."""

    rows: dict[str, int]
    """Rows in each analytics table (`METRIC_TABLES`, in order) afterwards."""
    frames: dict[str, pl.DataFrame]
    """The tables rewritten whole, as written (`compute_metrics`)."""


def write_metrics(
    con: duckdb.DuckDBPyConnection, *, as_of: datetime | None = None
) -> MetricsWritten:
    """Write every analytics table: the ones `compute_metrics` computes whole, and the expiry
    rates by hour updated in place (`pipeline.expiry_hours`)."""
    frames = compute_metrics(con, as_of=as_of)
    rows = {table: replace_table(con, table, frame) for table, frame in frames.items()}
    rows[EXPIRY_HOURS_TABLE] = refresh_expiry_hours(con)
    if set(rows) != set(METRIC_TABLES):
        raise RuntimeError(f"write_metrics wrote {sorted(rows)}, expected {list(METRIC_TABLES)}")
    return MetricsWritten({table: rows[table] for table in METRIC_TABLES}, frames)


def compute_metrics(
    con: duckdb.DuckDBPyConnection, *, as_of: datetime | None = None
) -> dict[str, pl.DataFrame]:
    """Every analytics table but the expiry rates by hour, from the per-order records (as
    cells), the rollups and the quarantine; the scorecard's windows end at `as_of` (default:
    now)."""
    as_of = as_of or datetime.now(UTC)
    polls, latency = (rollups_by_window(con, table, as_of) for table in ROLLUP_TABLES)
    quarantine = query(con, "SELECT provider, quarantined_at FROM quarantine")
    # One record per order and measure is kept up to date with the history; the analytics read
    # them collapsed into cells, so they cost what the cells do (`pipeline.records`).
    records = read_record_cells(con, as_of)
    code, completion, expiry = (records[table] for table in RECORD_TABLES)
    scorecard = provider_scorecard(polls, latency, quarantine, completion, expiry, as_of=as_of)
    return {
        "time_to_code": code_summary(code),
        "time_to_completion": completion_summary(completion),
        "incidence_curves": curves_from(code, completion),
        "expiry_rates": expiry_summary(expiry, EXPIRY_KEYS),
        "provider_scorecard": scorecard,
        "provider_reliability": provider_reliability(scorecard),
        "error_mix": error_mix(polls),
    }


def refresh_derived(warehouse: Warehouse, *, as_of: datetime | None = None) -> dict[str, int]:
    """Update the status history and the rollups and rewrite every analytics table; rows per
    table. (The poll log is folded in first by the caller: `pipeline.polllog.fold_log`.)"""
    with warehouse.transaction() as con:
        update = refresh_status_history(con)
        rollups = refresh_rollups(con)
        metrics = write_metrics(con, as_of=as_of)
    return {HISTORY_TABLE: update.rows_written, **rollups.rows, **metrics.rows}


def _watermark(con: duckdb.DuckDBPyConnection) -> datetime | None:
    return derived_state(con, HISTORY_TABLE)


def _set_watermark(con: duckdb.DuckDBPyConnection, value: datetime | None) -> None:
    if value is None:
        set_derived_state(con, HISTORY_TABLE, None)
    else:
        _set_watermark_of(con, HISTORY_TABLE, value)


def _set_watermark_of(con: duckdb.DuckDBPyConnection, name: str, watermark: datetime) -> None:
    """Store `watermark` (no later than `_within_clock` allows) under `name` with the polls in
    the late margin behind it (`_read_from`)."""
    watermark = _within_clock(watermark)
    con.execute(
        "INSERT OR REPLACE INTO derived_state (name, value, updated_at, rows_behind) "
        "VALUES (?, ?, now(), ?)",
        [name, watermark, _rows_behind(con, watermark)],
    )


def _rewind_for_polls_stored_late(con: duckdb.DuckDBPyConnection) -> None:
    """Polls stored since the last refresh with times further behind a watermark than its
    late margin (`LATE_OBSERVATIONS_S`: a backfill written by SQL, a poller that held its
    answers for long) move the watermarks back (`rewind_for_late_polls`), so this refresh
    reads them instead of never folding them in. Found among the rows stored since, by their
    row ids: the rows a writer adds come after every row before them. Rows removed meanwhile
    can renumber the rows after them, so some may be missed then, never a row taken for new."""
    stored = first_row(con, "SELECT rows_behind FROM derived_state WHERE name = ?", [STORED_STATE])
    since = stored[0] if stored and stored[0] is not None else None
    marks = [w for w in (derived_state(con, n) for n in (HISTORY_TABLE, ROLLUPS_STATE)) if w]
    if since is None or not marks:
        oldest, end = None, first_row(con, "SELECT max(rowid) + 1 FROM observations")[0]
    else:
        behind = max(marks) - timedelta(seconds=LATE_OBSERVATIONS_S)
        oldest, end = first_row(
            con,
            "SELECT min(polled_at) FILTER (WHERE polled_at <= ?), max(rowid) + 1 "
            "FROM observations WHERE rowid >= ?",
            [behind, since],
        )
    if oldest is not None:
        rewind_for_late_polls(con, oldest)
    if end is not None and end != since:
        con.execute(
            "INSERT OR REPLACE INTO derived_state (name, value, updated_at, rows_behind) "
            "VALUES (?, now(), now(), ?)",
            [STORED_STATE, end],
        )


def rewind_for_late_polls(con: duckdb.DuckDBPyConnection, oldest: datetime) -> None:
    """Polls just stored reach back to `oldest`: move the history's and the rollups'
    watermarks back before it where their late margin (`LATE_OBSERVATIONS_S`) does not reach
    that far, so their next refresh reads those polls (a shard's spool sent after a long
    outage, a log folder folded in late). Never before polls that retention moved out: the
    rollups re-counted from there would lose them."""
    # From the start of an hour: rollups older than two days are kept by the hour, and one
    # re-counted from within its hour would count that hour's first minutes twice.
    since = _hour(oldest - timedelta(microseconds=1))
    pruned = derived_state(con, PRUNED_STATE)
    if pruned is not None:
        since = max(since, _hour(pruned) + timedelta(hours=int(pruned != _hour(pruned))))
    for name in (HISTORY_TABLE, ROLLUPS_STATE):
        watermark = derived_state(con, name)
        if watermark is not None and since < watermark - timedelta(seconds=LATE_OBSERVATIONS_S):
            _set_watermark_of(con, name, since)


def _rows_behind(con: duckdb.DuckDBPyConnection, watermark: datetime) -> int:
    """Polls in the `LATE_OBSERVATIONS_S` before `watermark`, through it."""
    return int(
        first_row(
            con,
            "SELECT count(*) FROM observations WHERE polled_at > ? AND polled_at <= ?",
            [watermark - timedelta(seconds=LATE_OBSERVATIONS_S), watermark],
        )[0]
    )


def _read_from(con: duckdb.DuckDBPyConnection, name: str, watermark: datetime) -> datetime:
    """Where the refresh of the table whose watermark is `name` reads polls from (exclusive).

    Polls can be stored after newer ones (a slow answer, another shard's log folded in later),
    so a refresh re-reads the `LATE_OBSERVATIONS_S` behind its watermark; when the polls there
    are as many as when the watermark was set, none arrived late, and only newer ones are read.
    At 100 M observations that margin held a million polls, re-read on every tick."""
    stored = first_row(con, "SELECT rows_behind FROM derived_state WHERE name = ?", [name])
    if stored and stored[0] is not None and stored[0] == _rows_behind(con, watermark):
        return watermark
    return watermark - timedelta(seconds=LATE_OBSERVATIONS_S)
