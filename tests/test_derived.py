"""Derived tables: incremental status history equals a full rebuild; metrics land as tables; the
published copy opens read-only while the writer holds the warehouse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl
import pytest
from analytics.synthetic import SmsReceiveLifecycle, observation_log
from polars.testing import assert_frame_equal

from pipeline import derived, records
from pipeline.analytics import build_status_history, error_mix
from pipeline.analytics.metrics import (
    EXPIRY_KEYS,
    code_summary,
    completion_summary,
    expiry_summary,
)
from pipeline.analytics.scorecard import provider_scorecard
from pipeline.analytics.survival import WEIGHT
from pipeline.cells import CELL_GRID, CELL_TABLES, read_record_cells
from pipeline.derived import METRIC_TABLES, refresh_derived
from pipeline.records import RECORD_TABLES, build_records
from pipeline.warehouse import Warehouse, append, order_keys
from pipeline.warehouse import publish as publish_module
from pipeline.warehouse.frames import observation_id
from pipeline.warehouse.order_keys import ORDER_KEY, WITHOUT_KEY
from pipeline.warehouse.publish import publish
from pipeline.warehouse.schema import OBSERVATION_COLUMNS, ORDER_COLUMNS


def _log(n_orders: int = 120) -> tuple[pl.DataFrame, pl.DataFrame]:
    log = observation_log(
        SmsReceiveLifecycle(),
        n_orders=n_orders,
        rng=np.random.default_rng(3),
        creation_span_s=900,
        cutoff_s=1800,
        error_rate=0.05,
        unknown_rate=0.02,
    )
    observations = log.observations.with_columns(
        observation_id=pl.struct("provider", "order_id", "polled_at", "attempt").map_elements(
            lambda r: observation_id(r["provider"], r["order_id"], r["polled_at"], r["attempt"]),
            return_dtype=pl.String,
        )
    )
    return log.orders, observations


def _conform(frame: pl.DataFrame, columns: dict[str, pl.DataType]) -> pl.DataFrame:
    return frame.select(
        [
            (pl.col(c) if c in frame.columns else pl.lit(None)).cast(t).alias(c)
            for c, t in columns.items()
        ]
    )


def _append(warehouse: Warehouse, table: str, frame: pl.DataFrame) -> None:
    columns = ORDER_COLUMNS if table == "orders" else OBSERVATION_COLUMNS
    with warehouse.transaction() as con:
        append(con, table, _conform(frame, columns))


def _assert_records_built_from(
    warehouse: Warehouse, orders: pl.DataFrame, observations: pl.DataFrame
) -> None:
    """Every stored record table equals the one built at once from the whole log."""
    expected = build_records(build_status_history(observations), _conform(orders, ORDER_COLUMNS))
    for table, frame in expected.items():
        assert_frame_equal(
            _sorted_table(warehouse, table),
            frame.with_columns(pl.col(pl.Float64).round(9)).sort(frame.columns, nulls_last=True),
            check_dtypes=False,
        )


def test_incremental_history_equals_a_full_rebuild(warehouse: Warehouse) -> None:
    orders, observations = _log()
    _append(warehouse, "orders", orders)
    start = observations["polled_at"].min()
    assert start is not None
    for minutes in (10, 20, 30, 45):  # four "ticks" of new observations
        cut = start + timedelta(minutes=minutes)
        _append(warehouse, "observations", observations.filter(pl.col("polled_at") <= cut))
        refresh_derived(warehouse)
    _append(warehouse, "observations", observations)
    refresh_derived(warehouse)
    stored = _stored(warehouse, "status_history", "provider, order_id, interval_seq")
    expected = build_status_history(observations)
    assert stored.height == expected.height
    assert_frame_equal(
        stored.with_columns(pl.col("state", "previous_state").cast(pl.String)),
        expected.with_columns(pl.col("state", "previous_state").cast(pl.String)),
        check_dtypes=False,
    )


def _stored(warehouse: Warehouse, table: str, order_by: str | None = None) -> pl.DataFrame:
    """A table's rows as its builders make them; in a keyed one, after checking that every row
    carries its order's key (`pipeline.warehouse.order_keys`)."""
    ordered = f" ORDER BY {order_by}" if order_by else ""
    if ORDER_KEY not in warehouse.read(f"SELECT * FROM {table} LIMIT 0").columns:
        return warehouse.read(f"SELECT * FROM {table}{ordered}")
    key = order_keys.KEY_SQL
    wrong = f"SELECT count(*) AS n FROM {table} WHERE {ORDER_KEY} IS DISTINCT FROM {key}"
    assert warehouse.read(wrong)["n"].item() == 0
    return warehouse.read(f"SELECT {WITHOUT_KEY} FROM {table}{ordered}")


def _sorted_table(warehouse: Warehouse, table: str) -> pl.DataFrame:
    frame = _stored(warehouse, table).with_columns(pl.col(pl.Float64).round(9))
    return frame.sort(frame.columns, nulls_last=True)


@pytest.mark.parametrize("recent_order_rows", [(100_000, 1_000_000), (3, 7)])
def test_records_and_metrics_after_ticks_equal_a_full_rebuild(
    warehouse: Warehouse,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    recent_order_rows: tuple[int, ...],
) -> None:
    """Each refresh rebuilds only the records of the orders it touched; after many ticks the
    record tables and every analytics table are those of one build from the whole log. So
    too when most touched orders lie past the newest rows of `orders`, looked in first."""
    monkeypatch.setattr(derived, "RECENT_ORDER_ROWS", recent_order_rows)
    orders, observations = _log()
    _append(warehouse, "orders", orders)
    start = observations["polled_at"].min()
    assert start is not None
    as_of = start + timedelta(hours=1)
    for minutes in (5, 10, 15, 20, 30, 45):
        cut = start + timedelta(minutes=minutes)
        _append(warehouse, "observations", observations.filter(pl.col("polled_at") <= cut))
        refresh_derived(warehouse, as_of=as_of)
    _append(warehouse, "observations", observations)
    refresh_derived(warehouse, as_of=as_of)
    fresh = Warehouse(tmp_path / "fresh.duckdb")
    _append(fresh, "orders", orders)
    _append(fresh, "observations", observations)
    refresh_derived(fresh, as_of=as_of)
    assert warehouse.read("SELECT count(*) AS n FROM completion_records")["n"].item() == 120
    for table in (*RECORD_TABLES, *CELL_TABLES.values(), *METRIC_TABLES):
        assert_frame_equal(_sorted_table(warehouse, table), _sorted_table(fresh, table)), table


@pytest.mark.parametrize("shared_by", [3, 40])
def test_ticks_stay_exact_when_orders_share_their_keys(
    warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_by: int
) -> None:
    """A refresh finds an order's rows by its `order_key`, a hash that other orders may share.
    With a key that 120 orders share in threes (or forties), the history and records after
    ticks are still those of one build from the whole log, and a copy published after every
    tick holds the warehouse's rows."""
    monkeypatch.setattr(order_keys, "KEY_SQL", f"hash(provider, order_id) % {shared_by}")
    orders, observations = _log()
    _append(warehouse, "orders", orders)
    start = observations["polled_at"].min()
    assert start is not None
    as_of = start + timedelta(hours=1)
    published = tmp_path / "published" / "warehouse.duckdb"
    for minutes in (5, 10, 20, 30, 45, 60):
        cut = start + timedelta(minutes=minutes)
        _append(warehouse, "observations", observations.filter(pl.col("polled_at") <= cut))
        refresh_derived(warehouse, as_of=as_of)
        copy = publish(warehouse, published)
    monkeypatch.undo()
    fresh = Warehouse(tmp_path / "fresh.duckdb")
    _append(fresh, "orders", orders)
    _append(fresh, "observations", observations)
    refresh_derived(fresh, as_of=as_of)
    keyed = ("status_history", *RECORD_TABLES)
    for table in (*keyed, *CELL_TABLES.values()):
        _assert_same_rows(
            warehouse.read(f"SELECT * FROM {table}").drop(ORDER_KEY, strict=False),
            fresh.read(f"SELECT * FROM {table}").drop(ORDER_KEY, strict=False),
            table,
        )
    _assert_copy_holds(copy, warehouse, keyed)


def test_an_order_sharing_a_key_and_polled_without_news_keeps_its_history(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two orders share a key; a tick brings one of them new states and the other only a
    timed-out poll (touched, but nothing to fold): the second's history stays whole."""
    monkeypatch.setattr(order_keys, "KEY_SQL", "hash(provider, order_id) % 1")
    orders, observations = _log()
    states = observations.filter(pl.col("error_class").is_null())
    polls = states.group_by("order_id").agg(
        pl.len().alias("n"), pl.col("polled_at").max().alias("last")
    )
    first, second = polls.filter(pl.col("n") >= 4).sort("last").tail(2)["order_id"]
    pair = [first, second]  # `second` is polled last: the tick's news are its
    kept = observations.filter(pl.col("order_id").is_in(pair))
    cut = kept.filter(pl.col("order_id") == second)["polled_at"].sort()[-2]
    _append(warehouse, "orders", orders.filter(pl.col("order_id").is_in(pair)))
    _append(warehouse, "observations", kept.filter(pl.col("polled_at") <= cut))
    refresh_derived(warehouse)
    timeout = (
        kept.filter(pl.col("order_id") == first)
        .tail(1)
        .with_columns(
            polled_at=pl.lit(cut) + timedelta(seconds=1),
            error_class=pl.lit("timeout"),
            state=pl.lit("unknown"),
            http_status=pl.lit(None, pl.Int32),
            observation_id=pl.lit("timeout-of-first"),
        )
    )
    tick = pl.concat([kept.filter(pl.col("polled_at") > cut), timeout], how="vertical_relaxed")
    assert set(tick["order_id"]) == set(pair)
    _append(warehouse, "observations", tick)
    refresh_derived(warehouse)
    _assert_history_built_from(warehouse, pl.concat([kept, timeout], how="vertical_relaxed"))


def test_a_warehouse_keyed_otherwise_is_keyed_again(warehouse: Warehouse) -> None:
    """Tables from before `order_key`, or keyed by another DuckDB's hash, get this one's key
    for every row at the next refresh, and the refresh goes on from them."""
    orders, observations = _log()
    _append(warehouse, "orders", orders)
    start = observations["polled_at"].min()
    assert start is not None
    _append(
        warehouse,
        "observations",
        observations.filter(pl.col("polled_at") <= start + timedelta(minutes=20)),
    )
    refresh_derived(warehouse)
    keyed = ("status_history", *RECORD_TABLES)
    with warehouse.transaction() as con:
        con.execute("ALTER TABLE status_history DROP COLUMN order_key")
        for table in RECORD_TABLES:
            con.execute(f"UPDATE {table} SET order_key = 7")
        con.execute(
            "UPDATE derived_state SET name = 'order_keys duckdb 0.0.1' "
            "WHERE name LIKE 'order_keys %'"
        )
    _append(warehouse, "observations", observations)
    refresh_derived(warehouse)
    for table in keyed:
        _stored(warehouse, table)  # every row keyed by its order
    assert (
        warehouse.read("SELECT count(*) AS n FROM derived_state WHERE name LIKE 'order_keys %'")[
            "n"
        ].item()
        == 1
    )
    _assert_history_built_from(warehouse, observations)


def test_records_rebuilt_with_the_keys_made_again_hold_every_order_once(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refresh that keys the rows again (keyed by another DuckDB) and rebuilds every record
    (a record table from an earlier release) shares the orders by the new keys: the history's
    share and the orders' agree, and every order's records are there once."""
    orders, observations = _log()
    _append(warehouse, "orders", orders)
    _append(warehouse, "observations", observations)
    refresh_derived(warehouse)
    with warehouse.transaction() as con:
        con.execute("UPDATE status_history SET order_key = order_key + 1")
        con.execute(
            "UPDATE derived_state SET name = 'order_keys duckdb 0.0.1' "
            "WHERE name LIKE 'order_keys %'"
        )
        con.execute("DROP TABLE code_records")
    monkeypatch.setattr(derived, "RECORDS_BUILD_ROWS", 50)
    refresh_derived(warehouse)
    _assert_records_built_from(warehouse, orders, observations)


def test_rows_written_without_a_key_are_keyed_before_a_refresh_looks_for_them(
    warehouse: Warehouse,
) -> None:
    """Rows an earlier release wrote (no key) under a current keying are keyed at the next
    refresh: found by key, the order's rows are rewritten, not written a second time."""
    orders, observations = _log()
    _append(warehouse, "orders", orders)
    start = observations["polled_at"].min()
    assert start is not None
    early = observations.filter(pl.col("polled_at") <= start + timedelta(minutes=10))
    _append(warehouse, "observations", early)
    refresh_derived(warehouse)
    with warehouse.transaction() as con:
        for table in ("status_history", *RECORD_TABLES):
            con.execute(f"UPDATE {table} SET order_key = NULL WHERE order_id <= 'o0000040'")
    _append(warehouse, "observations", observations)
    refresh_derived(warehouse)
    for table in RECORD_TABLES:
        _stored(warehouse, table)
    _assert_history_built_from(warehouse, observations)


def test_a_copy_is_compared_whole_when_its_rows_were_keyed_by_another_duckdb(
    warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A publish by a newer DuckDB (another hash) before any refresh keyed the rows again
    must not look them up by keys it computes itself (where the row counts come out equal,
    nothing would catch it): it compares the orders instead. With the rows keyed by the same
    DuckDB, it looks them up by key."""
    orders, observations = _log()
    _append(warehouse, "orders", orders)
    start = observations["polled_at"].min()
    assert start is not None
    published = tmp_path / "published" / "warehouse.duckdb"
    monkeypatch.setattr(publish_module, "SYNC_MIN_ROWS", 1)
    keyed_lookups: list[str] = []
    real_keyed_orders = publish_module.keyed_orders

    def counted(relation: str, *aggregates: str) -> str:
        keyed_lookups.append(relation)
        return real_keyed_orders(relation, *aggregates)

    monkeypatch.setattr(publish_module, "keyed_orders", counted)
    for minutes in (10, 20, 30):
        cut = start + timedelta(minutes=minutes)
        _append(warehouse, "observations", observations.filter(pl.col("polled_at") <= cut))
        refresh_derived(warehouse)
        publish(warehouse, published)
    assert keyed_lookups  # the same DuckDB keyed the rows: found by key
    _append(warehouse, "observations", observations)
    refresh_derived(warehouse)
    keyed_lookups.clear()
    monkeypatch.setattr(order_keys, "KEY_SQL", "hash(order_id, provider)")
    monkeypatch.setattr(order_keys, "keys_state", lambda: "order_keys duckdb 99.0.0")
    copy = publish(warehouse, published)
    assert not keyed_lookups
    _assert_copy_holds(copy, warehouse, ("status_history", *RECORD_TABLES))


def _assert_same_rows(mine: pl.DataFrame, theirs: pl.DataFrame, table: str) -> None:
    """The same rows in any order (`table` named when not)."""
    try:
        assert_frame_equal(
            mine.sort(mine.columns, nulls_last=True), theirs.sort(theirs.columns, nulls_last=True)
        )
    except AssertionError as error:
        raise AssertionError(f"{table}: {error}") from None


def _assert_copy_holds(copy: Path, warehouse: Warehouse, tables: tuple[str, ...]) -> None:
    """The published `copy` holds the warehouse's rows of `tables`."""
    for table in tables:
        in_copy = Warehouse(copy).read(f"SELECT * FROM {table}", read_only=True)
        _assert_same_rows(in_copy, warehouse.read(f"SELECT * FROM {table}"), table)


def test_the_history_a_tick_rebuilds_records_from_is_the_stored_one(
    warehouse: Warehouse,
) -> None:
    """A tick reads its orders' history once and rebuilds their records from it with the fold's
    rows in place (`_after_fold`): that must be their whole history as stored after the fold,
    earlier intervals included."""
    orders, observations = _log()
    _append(warehouse, "orders", orders)
    start = observations["polled_at"].min()
    assert start is not None
    for minutes in (5, 10):
        _append(warehouse, "observations", observations.filter(
            pl.col("polled_at") <= start + timedelta(minutes=minutes)
        ))  # fmt: skip
        refresh_derived(warehouse)
    new = observations.filter(
        pl.col("polled_at").is_between(start + timedelta(minutes=10), start + timedelta(minutes=20))
    )
    _append(warehouse, "observations", new)
    key = ["provider", "order_id", "interval_seq"]
    with warehouse.transaction() as con:
        stored, found, spans = derived._stored_history(con, new, current_only=False)
        delta = derived._fold(con, new, stored, found, spans)
        rebuilt_from = derived._after_fold(stored, delta)
    with warehouse.transaction() as con:  # a lookup bounded by rowid: after the commit
        after, _, _ = derived._stored_history(con, delta, current_only=False)
    assert (stored["interval_seq"] > 0).any()  # orders with intervals before the tick's
    assert rebuilt_from.height == after.height > delta.height
    assert_frame_equal(
        rebuilt_from.sort(key).select(after.columns), after.sort(key), check_dtypes=False
    )


def test_a_full_build_in_parts_equals_one_built_at_once(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With slices of 500 observations, most orders span several slices, and the records are
    built from shares of 50 history rows: the history and the per-order records are the same
    as those built from the whole log at once."""
    orders, observations = _log()
    _append(warehouse, "orders", orders)
    _append(warehouse, "observations", observations)
    monkeypatch.setattr(derived, "FULL_BUILD_ROWS", 500)
    monkeypatch.setattr(derived, "RECORDS_BUILD_ROWS", 50)
    with warehouse.transaction() as con:
        update = derived.refresh_status_history(con)
    assert (update.mode, update.new_observations) == ("full", observations.height)
    stored = _stored(warehouse, "status_history", "provider, order_id, interval_seq")
    assert_frame_equal(
        stored.with_columns(pl.col("state", "previous_state").cast(pl.String)),
        build_status_history(observations).with_columns(
            pl.col("state", "previous_state").cast(pl.String)
        ),
        check_dtypes=False,
    )
    _assert_records_built_from(warehouse, orders, observations)


def test_a_full_build_lays_each_record_table_out_by_last_poll(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Built in shares of orders by key, the records are then laid out by their order's last
    poll: the orders a refresh polls next (the open ones, polled last) sit together at the
    end, where its deletes look for them (`order_keys.rowid_spans`)."""
    orders, observations = _log()
    _append(warehouse, "orders", orders)
    _append(warehouse, "observations", observations)
    monkeypatch.setattr(derived, "RECORDS_BUILD_ROWS", 50)
    refresh_derived(warehouse)
    for table in RECORD_TABLES:
        last_polls = warehouse.read(
            f"SELECT epoch(origin_at) + follow_up_s AS t FROM {table} ORDER BY rowid"
        )["t"]
        assert last_polls.len() > 50, table
        assert last_polls.is_sorted(), table


def test_the_build_holds_duckdb_memory_low(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every slice of the history's fold and every share of the records are written with
    DuckDB held to the build's limit (its cache of the growing history gives way to their
    frames), and the limit is set back after."""
    orders, observations = _log()
    _append(warehouse, "orders", orders)
    _append(warehouse, "observations", observations)
    monkeypatch.setattr(derived, "FULL_BUILD_ROWS", 500)
    monkeypatch.setattr(derived, "RECORDS_BUILD_ROWS", 50)
    monkeypatch.setattr(derived, "BUILD_MEMORY_LIMIT", "300MB")
    real_fold, real_write = derived._fold, derived.write_records
    folds: list[str] = []
    writes: list[str] = []

    def fold_noting_the_limit(con: duckdb.DuckDBPyConnection, *args: Any) -> pl.DataFrame:
        folds.append(_memory_limit(con))
        return real_fold(con, *args)

    def write_noting_the_limit(
        con: duckdb.DuckDBPyConnection, frames: dict[str, pl.DataFrame], *, replace: bool
    ) -> int:
        writes.append(_memory_limit(con))
        return real_write(con, frames, replace=replace)

    monkeypatch.setattr(derived, "_fold", fold_noting_the_limit)
    monkeypatch.setattr(derived, "write_records", write_noting_the_limit)
    with warehouse.transaction() as con:
        before = _memory_limit(con)
        derived.refresh_status_history(con)
        after = _memory_limit(con)
    assert len(folds) > 1 and set(folds) == {"286.1 MiB"}  # 300 MB as DuckDB shows it
    assert len(writes) > 1 and set(writes) == {"286.1 MiB"}
    assert after == before != "286.1 MiB"


def _memory_limit(con: duckdb.DuckDBPyConnection) -> str:
    return str(con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])


def test_every_metric_table_is_written(warehouse: Warehouse) -> None:
    orders, observations = _log()
    _append(warehouse, "orders", orders)
    _append(warehouse, "observations", observations)
    counts = refresh_derived(warehouse)
    for table in METRIC_TABLES:
        assert table in counts
        assert warehouse.read(f"SELECT count(*) AS n FROM {table}")["n"].item() == counts[table]
    ttc = warehouse.read("SELECT * FROM time_to_code WHERE group_level = 'provider'")
    assert ttc["n_orders"].item() == orders.height
    assert ttc["median_s"].item() is not None


def test_published_copy_opens_read_only_while_the_writer_is_busy(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    orders, observations = _log()
    _append(warehouse, "orders", orders)
    _append(warehouse, "observations", observations)
    refresh_derived(warehouse)
    published = publish(warehouse, tmp_path / "published" / "warehouse.duckdb")
    with warehouse.connect():  # the writer holds its file...
        reader = Warehouse(published, lock_timeout_s=0.5)
        n = reader.read("SELECT count(*) AS n FROM observations", read_only=True)["n"].item()
        assert n == observations.height  # ...and readers of the published copy carry on
        with pytest.raises(Exception, match=r"read-only|read only"):
            reader.read("DELETE FROM observations", read_only=True)


def test_refresh_on_an_empty_warehouse_writes_empty_tables(warehouse: Warehouse) -> None:
    counts = refresh_derived(warehouse)
    assert all(n == 0 for n in counts.values())
    for table in METRIC_TABLES:
        assert warehouse.read(f"SELECT count(*) AS n FROM {table}")["n"].item() == 0


def _assert_history_built_from(warehouse: Warehouse, observations: pl.DataFrame) -> None:
    """The stored status history is the one built from `observations` at once."""
    stored = _stored(warehouse, "status_history", "provider, order_id, interval_seq")
    as_text = pl.col("state", "previous_state").cast(pl.String)
    assert_frame_equal(
        stored.with_columns(as_text),
        build_status_history(observations).with_columns(as_text),
        check_dtypes=False,
    )


def test_a_row_stored_after_newer_ones_is_still_folded_in(warehouse: Warehouse) -> None:
    """One shard's log file (or a slow answer) lands after a refresh has passed its poll time:
    the refresh re-reads `LATE_OBSERVATIONS_S` behind its watermark and folds the row in."""
    orders, observations = _log()
    _append(warehouse, "orders", orders)
    newest = observations["polled_at"].max()
    assert newest is not None
    recent = pl.col("polled_at") > newest - timedelta(minutes=5)
    late_orders = observations.filter(recent)["order_id"].unique().head(5)
    late = observations.filter(pl.col("order_id").is_in(late_orders.implode()) & recent)
    assert late.height > 0
    _append(warehouse, "observations", observations.join(late, on="observation_id", how="anti"))
    refresh_derived(warehouse)
    _append(warehouse, "observations", late)
    refresh_derived(warehouse)
    _assert_history_built_from(warehouse, observations)


def test_polls_stored_long_after_their_time_are_folded_in(warehouse: Warehouse) -> None:
    """A backfill written by SQL (or a poller that held its answers for long) stores polls far
    behind the watermarks, past their late margin: the refresh finds them among the rows
    stored since the last one, and the history and rollups count them as if stored in time."""
    orders, observations = _log()
    _append(warehouse, "orders", orders)
    first_polled = observations.sort("polled_at")["order_id"].unique(maintain_order=True)
    backfill = observations.filter(pl.col("order_id").is_in(first_polled.head(20).implode()))
    early = backfill["polled_at"].min()
    assert isinstance(early, datetime)
    _append(warehouse, "observations", observations.join(backfill, on="observation_id", how="anti"))
    refresh_derived(warehouse)
    watermark = derived_watermark(warehouse)
    assert watermark is not None
    assert early < watermark - timedelta(seconds=derived.LATE_OBSERVATIONS_S)
    _append(warehouse, "observations", backfill)
    refresh_derived(warehouse)
    _assert_history_built_from(warehouse, observations)
    with warehouse.connect(read_only=True) as con:
        assert con.execute("SELECT sum(polls) FROM poll_rollups").fetchone() == (
            observations.height,
        )
    refresh_derived(warehouse)  # nothing stored since: nothing moves back
    assert derived_watermark(warehouse) == watermark


def test_a_poll_stamped_far_ahead_holds_no_later_poll_back(warehouse: Warehouse) -> None:
    """A poller whose clock runs fast, or a row written by hand, stores a poll years ahead: it
    is folded in, but the watermarks stop at this machine's clock, so the polls stored after it
    are still folded in and the rollups keep the recent minutes."""
    orders, observations = _log()
    last = observations["polled_at"].max()
    assert isinstance(last, datetime)
    shift = datetime.now(UTC) - timedelta(minutes=1) - last  # polled up to a minute ago
    orders = orders.with_columns(pl.col(c) + shift for c in ("created_at", "registered_at"))
    observations = observations.with_columns(pl.col("polled_at") + shift)
    _append(warehouse, "orders", orders)
    newest = last + shift
    later = observations.filter(pl.col("polled_at") > newest - timedelta(minutes=3))
    ahead = observations.head(1).with_columns(
        order_id=pl.lit("ahead-of-its-time"),
        observation_id=pl.lit("ahead"),
        polled_at=pl.lit(datetime(9999, 1, 1, tzinfo=UTC), dtype=pl.Datetime("us", "UTC")),
    )
    _append(warehouse, "observations", observations.join(later, on="observation_id", how="anti"))
    _append(warehouse, "observations", ahead)
    refresh_derived(warehouse)
    _append(warehouse, "observations", later)
    refresh_derived(warehouse)
    _assert_history_built_from(warehouse, pl.concat([observations, ahead]))
    with warehouse.connect(read_only=True) as con:
        polls, by_minute = con.execute(
            "SELECT sum(polls), count(*) FILTER (WHERE minute > ? AND minute < ? "
            "AND minute <> date_trunc('hour', minute)) FROM poll_rollups",
            [newest - timedelta(minutes=3), newest],
        ).fetchone()
    assert polls == observations.height + 1
    assert by_minute > 0  # not folded into hours, as a poll two days before the newest is


def test_a_refresh_reads_the_late_margin_only_when_a_poll_arrived_late(
    warehouse: Warehouse,
) -> None:
    """With nothing stored late, a refresh reads only the polls past its watermarks (the
    rollups: from the watermark's minute); a poll stored behind the watermark makes it read
    the margin again, and the result equals a build from scratch."""
    orders, observations = _log()
    _append(warehouse, "orders", orders)
    newest = observations["polled_at"].max()
    assert isinstance(newest, datetime)
    tick = pl.col("polled_at") > newest - timedelta(seconds=20)
    # The last four minutes of polls of a few orders not polled in the tick arrive late.
    recent = ~tick & (pl.col("polled_at") > newest - timedelta(minutes=4))
    in_tick = observations.filter(tick)["order_id"].implode()
    late_orders = observations.filter(recent & ~pl.col("order_id").is_in(in_tick))["order_id"]
    late = observations.filter(
        recent & pl.col("order_id").is_in(late_orders.unique().head(3).implode())
    )
    assert late.height > 0
    _append(
        warehouse,
        "observations",
        observations.filter(~tick).join(late, on="observation_id", how="anti"),
    )
    refresh_derived(warehouse)
    _append(warehouse, "observations", observations.filter(tick))
    with warehouse.transaction() as con:
        history, rollups = derived.refresh_status_history(con), derived.refresh_rollups(con)
    assert history.new_observations == observations.filter(tick).height
    assert rollups.observations_read < 2 * observations.filter(tick).height + 60

    _append(warehouse, "observations", late)
    with warehouse.transaction() as con:
        history, rollups = derived.refresh_status_history(con), derived.refresh_rollups(con)
    margin = pl.col("polled_at") > newest - timedelta(seconds=derived.LATE_OBSERVATIONS_S)
    assert history.new_observations == observations.filter(margin).height
    _assert_history_built_from(warehouse, observations)
    polls = warehouse.read("SELECT sum(polls) AS n FROM poll_rollups")["n"].item()
    assert polls == observations.height


def test_a_watermark_stored_without_its_count_reads_the_margin(warehouse: Warehouse) -> None:
    """Watermarks stored before the count was kept (migration 8 adds it, null) make the next
    refresh re-read the whole margin, as every refresh did then."""
    orders, observations = _log()
    _append(warehouse, "orders", orders)
    newest = observations["polled_at"].max()
    assert isinstance(newest, datetime)
    tick = pl.col("polled_at") > newest - timedelta(seconds=20)
    _append(warehouse, "observations", observations.filter(~tick))
    refresh_derived(warehouse)
    with warehouse.connect() as con:
        watermark = derived.derived_state(con, derived.HISTORY_TABLE)
        con.execute("UPDATE derived_state SET rows_behind = NULL")
    assert watermark is not None
    _append(warehouse, "observations", observations.filter(tick))
    with warehouse.transaction() as con:
        history = derived.refresh_status_history(con)
    margin = pl.col("polled_at") > watermark - timedelta(seconds=derived.LATE_OBSERVATIONS_S)
    assert history.new_observations == observations.filter(margin).height


def derived_watermark(warehouse: Warehouse) -> datetime | None:
    with warehouse.connect(read_only=True) as con:
        return derived.derived_state(con, derived.HISTORY_TABLE)


def test_a_full_build_whose_commit_fails_stops_and_is_built_again(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full build commits slice by slice; a commit that fails (here a key conflict made in
    the slice's transaction) must stop the build with its error, store no watermark, and leave
    the next refresh to build everything again."""
    orders, observations = _log()
    _append(warehouse, "orders", orders)
    _append(warehouse, "observations", observations)
    monkeypatch.setattr(derived, "FULL_BUILD_ROWS", 500)
    real_fold, calls = derived._fold, [0]

    def conflicting_fold(
        con: duckdb.DuckDBPyConnection,
        new: pl.DataFrame,
        stored: pl.DataFrame,
        found: pl.DataFrame,
        spans: str,
    ) -> pl.DataFrame:
        calls[0] += 1
        folded = real_fold(con, new, stored, found, spans)
        if calls[0] == 2:  # another connection stores the same key first: this commit fails
            con.execute("INSERT INTO derived_state (name) VALUES ('conflict')")
            con.cursor().execute("INSERT INTO derived_state (name) VALUES ('conflict')")
        return folded

    monkeypatch.setattr(derived, "_fold", conflicting_fold)
    with pytest.raises(duckdb.Error), warehouse.transaction() as con:
        derived.refresh_status_history(con)
    assert derived_watermark(warehouse) is None
    monkeypatch.setattr(derived, "_fold", real_fold)
    with warehouse.transaction() as con:
        assert derived.refresh_status_history(con).mode == "full"
    _assert_history_built_from(warehouse, observations)


def test_records_from_an_earlier_release_are_rebuilt(warehouse: Warehouse) -> None:
    """A warehouse whose record tables lack a column, or one of them, gets them rebuilt from
    the status history on the next refresh."""
    orders, observations = _log()
    _append(warehouse, "orders", orders)
    _append(warehouse, "observations", observations)
    refresh_derived(warehouse)
    expected = {table: _sorted_table(warehouse, table) for table in RECORD_TABLES}
    with warehouse.connect() as con:
        con.execute("ALTER TABLE completion_records DROP COLUMN registered_at")
        con.execute("DROP TABLE code_records")
    refresh_derived(warehouse)
    for table, frame in expected.items():
        assert_frame_equal(_sorted_table(warehouse, table), frame)


def test_records_built_by_other_rules_are_rebuilt(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records built by an earlier release's rules (here: a different builder version) are
    all rebuilt on the next refresh, including those of orders it does not touch."""
    orders, observations = _log()
    _append(warehouse, "orders", orders)
    _append(warehouse, "observations", observations)
    refresh_derived(warehouse)
    expected = _sorted_table(warehouse, "completion_records")
    with warehouse.connect() as con:
        con.execute("UPDATE completion_records SET lower_s = -1")  # what old rules derived
    refresh_derived(warehouse)
    assert warehouse.read("SELECT min(lower_s) AS m FROM completion_records")["m"].item() == -1
    monkeypatch.setattr(records, "RECORDS_VERSION", records.RECORDS_VERSION + 1)
    refresh_derived(warehouse)
    assert_frame_equal(_sorted_table(warehouse, "completion_records"), expected)


def test_analytics_read_from_cells_agree_with_the_orders_one_by_one(
    warehouse: Warehouse,
) -> None:
    """The analytics tables are computed from the records collapsed into cells; the same
    figures from every record one by one differ by no more than the cells' time grid allows,
    and every count is the same."""
    orders, observations = _log(n_orders=1500)
    _append(warehouse, "orders", orders)
    _append(warehouse, "observations", observations)
    # The last hour holds about half of the orders, registered over 15 minutes.
    first = orders["registered_at"].min()
    assert isinstance(first, datetime)
    as_of = first + timedelta(hours=1, seconds=450)
    refresh_derived(warehouse, as_of=as_of)
    raw = {table: warehouse.read(f"SELECT * FROM {table}") for table in RECORD_TABLES}
    with warehouse.transaction() as con:
        cells = read_record_cells(con, as_of)
    for table, frame in cells.items():
        assert frame[WEIGHT].sum() == raw[table].height
        assert frame.height < raw[table].height

    keys = ["provider", "group_level", "group_value"]
    for table, direct in (
        ("time_to_code", code_summary(raw["code_records"])),
        ("time_to_completion", completion_summary(raw["completion_records"])),
    ):
        both = warehouse.read(f"SELECT * FROM {table}").join(direct, on=keys, suffix="_raw")
        assert both.height == direct.height > 0
        for count in ("n_orders", "n_events", "n_competing", "n_censored"):
            assert (both[count] == both[f"{count}_raw"]).all()
        # Measured: medians 0.04 % apart, interval bounds up to 1 % (bounds sit on cells).
        for median, grid_steps in (
            ("median_s", 2),
            ("midpoint_median_s", 2),
            ("median_ci_low_s", 4),
            ("median_ci_high_s", 4),
        ):
            drift = (both[median] / both[f"{median}_raw"] - 1).abs().max()
            assert drift <= grid_steps * CELL_GRID, (table, median, drift)
        for cif in ("cif_1m", "cif_2m", "cif_5m"):
            assert (both[cif] - both[f"{cif}_raw"]).abs().max() <= 0.01, (table, cif)

    expiry = warehouse.read("SELECT * FROM expiry_rates").join(
        expiry_summary(raw["expiry_records"], EXPIRY_KEYS), on=EXPIRY_KEYS, suffix="_raw"
    )
    assert expiry.height > 0
    assert (expiry["n_expired"] == expiry["n_expired_raw"]).all()
    assert (expiry["expiry_rate"] - expiry["expiry_rate_raw"]).abs().max() <= 0.005

    polls = warehouse.read("SELECT * FROM poll_rollups")
    latency = warehouse.read("SELECT * FROM latency_rollups")
    quarantine = warehouse.read("SELECT provider, quarantined_at FROM quarantine")
    direct = provider_scorecard(
        polls, latency, quarantine, raw["completion_records"], raw["expiry_records"],
        as_of=as_of,
    )  # fmt: skip
    scorecard = warehouse.read("SELECT * FROM provider_scorecard").join(
        direct, on=["window", "provider"], suffix="_raw"
    )
    assert scorecard.height == direct.height == 5
    assert (scorecard["n_orders"] == scorecard["n_orders_raw"]).all()
    assert scorecard["n_orders"].n_unique() > 1  # the windows hold different orders
    assert (scorecard["success_rate"] - scorecard["success_rate_raw"]).abs().max() <= 0.005
    # The rollups are read summed per window: the transport figures are exactly the same.
    assert scorecard["polls"].n_unique() > 1  # the windows hold different polls
    for exact in ("polls", "availability", "rate_limited_rate", "latency_p50_ms", "latency_p95_ms"):
        assert (scorecard[exact] - scorecard[f"{exact}_raw"]).abs().max() < 1e-9, exact
    assert_frame_equal(warehouse.read("SELECT * FROM error_mix"), error_mix(polls))
