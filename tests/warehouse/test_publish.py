"""The published copy in real DuckDB files: after every publish (the first, full one, and the
incremental ones after new polls, retention, a late poll log, rows without a time, a schema
change or an unreadable copy) it holds exactly the warehouse's rows in every table."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from warehouse.test_retention import _log

from pipeline.derived import refresh_derived
from pipeline.records import RECORD_TABLES, unmark_records_built
from pipeline.retention import prune
from pipeline.warehouse import Warehouse, append
from pipeline.warehouse import publish as publish_module
from pipeline.warehouse.changes import CHANGES_TABLE, MARK_TABLE, note_changed_orders
from pipeline.warehouse.publish import HOURS_TABLE, PRIVATE_PREFIX, RECENT, publish_copy
from pipeline.warehouse.store import first_row

DAY = timedelta(days=1)


def _add(warehouse: Warehouse, **frames: pl.DataFrame) -> None:
    with warehouse.transaction() as con:
        for table, frame in frames.items():
            append(con, table, frame)
    refresh_derived(warehouse)


def _differences(warehouse: Warehouse, published: Path) -> dict[str, int]:
    """Rows in one file's table and not in the other's, per table (both ways, with repeats);
    a table missing on one side counts as -1."""
    con = duckdb.connect()
    con.execute(f"ATTACH '{warehouse.path}' AS source (READ_ONLY)")
    con.execute(f"ATTACH '{published}' AS copy (READ_ONLY)")
    tables = {
        name: {
            row[0]
            for row in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_catalog = ?", [name]
            ).fetchall()
        }
        for name in ("source", "copy")
    }
    private = {t for t in tables["source"] if t.startswith(PRIVATE_PREFIX)}
    assert private, "a refresh keeps bookkeeping tables"
    assert not private & tables["copy"], "bookkeeping tables are not published"
    assert MARK_TABLE in tables["copy"], "a copy says which change notes it holds"
    tables["source"] -= private
    tables["copy"] -= {MARK_TABLE, HOURS_TABLE}  # and the sums it compares by hour
    out = {table: -1 for table in tables["source"] ^ tables["copy"]}
    for table in tables["source"] & tables["copy"]:
        out[table] = sum(
            con.execute(
                f"SELECT count(*) FROM (SELECT * FROM {a}.{table} EXCEPT ALL "
                f"SELECT * FROM {b}.{table})"
            ).fetchone()[0]  # type: ignore[index]
            for a, b in (("source", "copy"), ("copy", "source"))
        )
    con.close()
    return {table: n for table, n in out.items() if n}


def test_every_publish_leaves_a_copy_equal_to_the_warehouse(tmp_path: Path) -> None:
    orders, observations, payloads = _log()
    start = observations["polled_at"].min()
    assert isinstance(start, datetime)
    first = observations.filter(pl.col("polled_at") < start + DAY)
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    published = tmp_path / "published" / "warehouse.duckdb"
    _add(warehouse, orders=orders, observations=first, payloads=payloads)

    done = publish_copy(warehouse, published)
    assert done.full
    assert _differences(warehouse, published) == {}

    _add(warehouse, observations=observations.filter(pl.col("polled_at") >= start + DAY))
    done = publish_copy(warehouse, published)
    assert not done.full
    assert done.rows_added == observations.height - first.height
    assert done.rows_removed == 0
    assert _differences(warehouse, published) == {}

    pruned = prune(warehouse, start + DAY, tmp_path / "archive")
    assert pruned.observations > 0
    done = publish_copy(warehouse, published)
    assert not done.full
    assert done.rows_removed == pruned.observations + pruned.payloads
    assert _differences(warehouse, published) == {}

    publish_copy(warehouse, published)  # the other copy catches up with the prune
    again = publish_copy(warehouse, published)
    assert (again.full, again.rows_added, again.rows_removed) == (False, 0, 0)


def _calls(monkeypatch: pytest.MonkeyPatch, name: str) -> list[object]:
    """What the publish step `name` (called as `name(con, source, what, ...)`) is called on
    from now on, in order; it still runs."""
    calls: list[object] = []
    real = getattr(publish_module, name)

    def spy(con: duckdb.DuckDBPyConnection, source: str, what: object, *rest: object) -> object:
        calls.append(what)
        return real(con, source, what, *rest)

    monkeypatch.setattr(publish_module, name, spy)
    return calls


def test_the_first_copy_is_the_warehouse_file_brought_up_to_date(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first publish copies the warehouse's file instead of writing every row again; when
    the file changes while it is copied, or cannot be copied, DuckDB writes the copy instead.
    Either way the copy equals the warehouse, without its bookkeeping tables."""
    orders, observations, _ = _log()
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    _add(warehouse, orders=orders, observations=observations)
    written = _calls(monkeypatch, "_copy_through_duckdb")
    published = tmp_path / "published" / "warehouse.duckdb"
    assert publish_copy(warehouse, published).full
    assert written == []
    assert _differences(warehouse, published) == {}

    stamps = iter(range(1000))
    monkeypatch.setattr(publish_module, "_stamp", lambda path: next(stamps))  # always moving
    again = tmp_path / "again" / "warehouse.duckdb"
    assert publish_copy(warehouse, again).full
    assert len(written) == 1
    assert _differences(warehouse, again) == {}
    assert not list(again.parent.glob(".*.tmp"))

    def refused(*args: object) -> None:
        raise PermissionError("the file is locked by another program")

    monkeypatch.setattr(publish_module.shutil, "copyfile", refused)
    third = tmp_path / "third" / "warehouse.duckdb"
    assert publish_copy(warehouse, third).full
    assert len(written) == 2
    assert _differences(warehouse, third) == {}
    assert not list(third.parent.glob(".*.tmp*"))


def test_publishes_alternate_between_two_copies_updated_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first publish also makes the spare copy, so no later publish copies a file: each
    brings the copy one publish behind up to date and points the link at it."""
    orders, observations, _ = _log()
    start = observations["polled_at"].min()
    assert isinstance(start, datetime)
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    published = tmp_path / "published" / "warehouse.duckdb"
    _add(
        warehouse,
        orders=orders,
        observations=observations.filter(pl.col("polled_at") < start + DAY),
    )
    publish_copy(warehouse, published)
    assert sorted(p.name for p in published.parent.iterdir()) == [
        ".warehouse.duckdb.1", ".warehouse.duckdb.2", "warehouse.duckdb"
    ]  # fmt: skip
    targets = {published.resolve()}

    def no_copy(*args: object) -> None:
        raise AssertionError("a publish copied the whole file")

    monkeypatch.setattr(publish_module.shutil, "copyfile", no_copy)
    for day in (1, 2, 3):
        day_start = start + day * DAY
        polled = pl.col("polled_at")
        _add(
            warehouse,
            observations=observations.filter(polled >= day_start, polled < day_start + DAY),
        )
        assert not publish_copy(warehouse, published).full
        assert _differences(warehouse, published) == {}
        targets.add(published.resolve())
    assert published.is_symlink()
    assert len(targets) == 2
    assert sorted(p.name for p in published.parent.iterdir()) == [
        ".warehouse.duckdb.1", ".warehouse.duckdb.2", "warehouse.duckdb"
    ]  # fmt: skip


@pytest.mark.parametrize("failure", [OSError("no space left on device"), KeyboardInterrupt()])
def test_a_spare_copy_cut_short_leaves_no_file_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: BaseException
) -> None:
    """The spare copy failing (a full disk) leaves the publish done and the next one to copy;
    interrupted, it stops the publish; either way no half copy stays beside the link."""
    orders, observations, _ = _log()
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    published = tmp_path / "published" / "warehouse.duckdb"
    _add(warehouse, orders=orders, observations=observations)
    real_copy = publish_module.shutil.copyfile

    def spare_cut_short(source: Path, destination: Path) -> None:
        if not Path(destination).name.startswith(".warehouse.duckdb.2."):
            real_copy(source, destination)
            return
        Path(destination).write_bytes(b"half a copy")
        raise failure

    monkeypatch.setattr(publish_module.shutil, "copyfile", spare_cut_short)
    if isinstance(failure, OSError):
        publish_copy(warehouse, published)
        assert _differences(warehouse, published) == {}
    else:
        with pytest.raises(KeyboardInterrupt):
            publish_copy(warehouse, published)
    assert sorted(p.name for p in published.parent.iterdir()) == [
        ".warehouse.duckdb.1", "warehouse.duckdb"
    ]  # fmt: skip


_READER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
count = lambda: con.sql("SELECT count(*) FROM observations").fetchall()[0][0]
print(count(), flush=True)
sys.stdin.readline()
print(count(), flush=True)
"""


def test_a_reader_keeps_its_copy_while_publishes_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader (another process) holding the published copy open reads the same rows until it
    reconnects, while publishes go on around it: the one that would update its copy in place
    finds it locked and writes a new file in its stead."""
    orders, observations, _ = _log()
    start = observations["polled_at"].min()
    assert isinstance(start, datetime)
    polled = pl.col("polled_at")
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    published = tmp_path / "published" / "warehouse.duckdb"
    _add(warehouse, orders=orders, observations=observations.filter(polled < start + DAY))
    publish_copy(warehouse, published)
    copied: list[object] = []
    real_copy = publish_module.shutil.copyfile
    monkeypatch.setattr(
        publish_module.shutil, "copyfile", lambda *a: copied.append(a) or real_copy(*a)
    )
    reader = subprocess.Popen(
        [sys.executable, "-c", _READER, str(published)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout is not None and reader.stdin is not None
        seen = int(reader.stdout.readline())
        for day in (1, 2, 3):
            day_start = start + day * DAY
            _add(
                warehouse,
                observations=observations.filter(polled >= day_start, polled < day_start + DAY),
            )
            assert not publish_copy(warehouse, published).full
            assert _differences(warehouse, published) == {}
        reader.stdin.write("\n")
        reader.stdin.flush()
        assert int(reader.stdout.readline()) == seen
        # Copied once: the update in place of the copy the reader held was refused.
        assert len(copied) == 1
    finally:
        reader.kill()
        reader.wait()
    assert seen < warehouse.read("SELECT count(*) AS n FROM observations")["n"].item()


def _published_without_late_rows(
    tmp_path: Path, observations: pl.DataFrame, orders: pl.DataFrame, n: int
) -> tuple[Warehouse, Path, pl.DataFrame]:
    """A warehouse and its published copy holding every poll but `n` polled more than
    3 × `RECENT` before the newest (returned: they arrive late)."""
    newest = observations["polled_at"].max()
    assert isinstance(newest, datetime)
    late = observations.filter(pl.col("polled_at") < newest - 3 * RECENT).sample(n, seed=n)
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    published = tmp_path / "published.duckdb"
    _add(
        warehouse,
        orders=orders,
        observations=observations.join(late, on="observation_id", how="anti"),
    )
    publish_copy(warehouse, published)
    return warehouse, published, late


def test_a_late_row_far_behind_the_newest_is_published(tmp_path: Path) -> None:
    orders, observations, payloads = _log()
    warehouse, published, late = _published_without_late_rows(tmp_path, observations, orders, 5)

    _add(warehouse, observations=late, payloads=payloads.with_columns(first_seen_at=None))
    done = publish_copy(warehouse, published)
    assert not done.full
    assert done.rows_added == late.height + payloads.height
    assert _differences(warehouse, published) == {}


def test_a_new_table_or_an_unreadable_copy_is_published_in_full(tmp_path: Path) -> None:
    orders, observations, _ = _log()
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    published = tmp_path / "published.duckdb"
    _add(warehouse, orders=orders, observations=observations)
    publish_copy(warehouse, published)

    with warehouse.connect() as con:
        con.execute("CREATE TABLE team_notes AS SELECT 'a note' AS note")
    assert publish_copy(warehouse, published).full
    assert _differences(warehouse, published) == {}

    for copy in published.parent.glob(f".{published.name}.*"):
        copy.write_bytes(b"not a database")
    assert publish_copy(warehouse, published).full
    assert _differences(warehouse, published) == {}
    assert not list(published.parent.glob(".*.tmp"))  # no staging file left behind


def test_changes_that_leave_the_row_count_unchanged_are_published(tmp_path: Path) -> None:
    """Retention removing as many old rows as a late poll log adds, and a row replaced by
    another within the newest hour: neither changes a row count, both reach the copy."""
    orders, observations, _ = _log()
    warehouse, published, late = _published_without_late_rows(tmp_path, observations, orders, 7)

    oldest = warehouse.read("SELECT observation_id FROM observations ORDER BY polled_at LIMIT 7")
    with warehouse.connect() as con:
        con.execute(
            "DELETE FROM observations WHERE observation_id IN (SELECT unnest(?))",
            [oldest["observation_id"].to_list()],
        )
    _add(warehouse, observations=late)
    newest_row = warehouse.read(
        "SELECT observation_id FROM observations ORDER BY polled_at DESC LIMIT 1"
    )["observation_id"].item()
    with warehouse.connect() as con:
        con.execute(
            "UPDATE observations SET observation_id = observation_id || '-replaced' "
            "WHERE observation_id = ?",
            [newest_row],
        )
    done = publish_copy(warehouse, published)
    assert not done.full
    assert (done.rows_added, done.rows_removed) == (7 + 1, 7 + 1)
    assert _differences(warehouse, published) == {}


def test_a_poll_stored_twice_or_once_again_reaches_the_copy_as_often(tmp_path: Path) -> None:
    """`observations` has no key constraint: a row added again by SQL (in the newest hour and in
    an old one), then one of them removed, reaches the copy as many times as it is stored."""
    warehouse, published = _published_in_full(tmp_path)
    newest, oldest = (
        warehouse.read(f"SELECT observation_id FROM observations ORDER BY polled_at {way} LIMIT 1")[
            "observation_id"
        ].item()
        for way in ("DESC", "ASC")
    )
    again = "INSERT INTO observations SELECT * FROM observations WHERE observation_id IN (?, ?)"
    with warehouse.connect() as con:
        con.execute(again, [newest, oldest])
    done = publish_copy(warehouse, published)
    assert (done.full, done.rows_added, done.rows_removed) == (False, 2, 0)
    assert _differences(warehouse, published) == {}
    with warehouse.connect() as con:
        kept = "SELECT * FROM observations WHERE observation_id = ? LIMIT 1"
        con.execute(f"CREATE TEMP TABLE kept AS {kept}", [newest])
        con.execute("DELETE FROM observations WHERE observation_id = ?", [newest])
        con.execute("INSERT INTO observations SELECT * FROM kept")
    assert not publish_copy(warehouse, published).full
    assert _differences(warehouse, published) == {}


def test_tables_of_order_rows_are_synced_by_bucket_of_orders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows of some orders changed, removed, duplicated and added, in the history, the records
    and the orders, reach the copy; orders untouched keep their rows."""
    monkeypatch.setattr(publish_module, "SYNC_MIN_ROWS", 0)  # every table of order rows
    monkeypatch.setattr(publish_module, "ROWS_PER_BUCKET", 4)
    orders, observations, _ = _log()
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    published = tmp_path / "published.duckdb"
    _add(warehouse, orders=orders, observations=observations)
    assert publish_copy(warehouse, published).full
    ids = orders["order_id"].sort().to_list()
    with warehouse.connect() as con:
        # Edits by hand are in no change note: without the notes, every table is compared.
        con.execute(f"DROP TABLE {CHANGES_TABLE}")
        con.execute("UPDATE status_history SET n_polls = n_polls + 1 WHERE order_id = ?", [ids[0]])
        con.execute("DELETE FROM completion_records WHERE order_id = ?", [ids[1]])
        con.execute(
            "INSERT INTO status_history SELECT * FROM status_history WHERE order_id = ?", [ids[2]]
        )
        con.execute("UPDATE orders SET service = 'changed' WHERE order_id = ?", [ids[3]])
        con.execute(
            "INSERT INTO code_records SELECT * REPLACE ('new-order' AS order_id) "
            "FROM code_records LIMIT 1"
        )
    assert _differences(warehouse, published)  # the copy is behind
    assert not publish_copy(warehouse, published).full
    assert _differences(warehouse, published) == {}


def _published_in_full(tmp_path: Path) -> tuple[Warehouse, Path]:
    """A warehouse holding the whole log, refreshed, and its first (full) copy."""
    orders, observations, _ = _log()
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    published = tmp_path / "published.duckdb"
    _add(warehouse, orders=orders, observations=observations)
    assert publish_copy(warehouse, published).full
    return warehouse, published


def test_orders_are_compared_only_in_the_hours_of_registration_that_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An order edited in place, one moved to another hour, one removed and one backfilled
    into an old hour reach the copy; only those hours are compared order by order."""
    monkeypatch.setattr(publish_module, "SYNC_MIN_ROWS", 0)  # every table of order rows
    monkeypatch.setattr(publish_module, "ROWS_PER_BUCKET", 4)
    warehouse, published = _published_in_full(tmp_path)
    hour_of = "epoch(registered_at)::BIGINT // 3600"
    with warehouse.connect() as con:
        first_orders = con.execute(
            f"SELECT {hour_of} AS h, min(order_id) FROM orders GROUP BY h ORDER BY h"
        ).fetchall()
        assert len(first_orders) > 40
        hours = [h for h, _ in first_orders]
        edited, moved, removed, copied = (first_orders[i][1] for i in (3, 10, 20, 30))
        con.execute("UPDATE orders SET service = 'changed' WHERE order_id = ?", [edited])
        con.execute(
            "UPDATE orders SET registered_at = registered_at + INTERVAL 5 HOUR WHERE order_id = ?",
            [moved],
        )
        con.execute("DELETE FROM orders WHERE order_id = ?", [removed])
        con.execute(
            "INSERT INTO orders SELECT * REPLACE ('backfilled' AS order_id) FROM orders "
            "WHERE order_id = ?",
            [copied],
        )
        moved_to = first_row(con, f"SELECT {hour_of} FROM orders WHERE order_id = ?", [moved])[0]
    compared = _hours_compared(monkeypatch, publish_module.ORDER_TIME_COLUMN)
    assert _differences(warehouse, published) == {"orders": 2 + 2 + 1 + 1}
    assert not publish_copy(warehouse, published).full
    assert _differences(warehouse, published) == {}
    assert compared == [sorted({hours[3], hours[10], moved_to, hours[20], hours[30]})]


def test_orders_registered_before_1970_or_past_year_9999_reach_the_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hours are numbered by dividing towards zero, and Python holds no date past 9999:
    orders registered half an hour before 1970 and in the year 12000 are published, edited
    and removed all the same."""
    monkeypatch.setattr(publish_module, "SYNC_MIN_ROWS", 0)  # every table of order rows
    warehouse, published = _published_in_full(tmp_path)
    times = ("1969-12-31 23:30:00+00", "1970-01-01 00:30:00+00", "12000-01-01 00:00:00+00")
    for n, at in enumerate(times):  # one at a time: each publish compares only its hours
        with warehouse.connect() as con:
            con.execute(
                f"INSERT INTO orders SELECT * REPLACE ('odd-{n}' AS order_id, "
                "?::TIMESTAMPTZ AS registered_at) FROM orders LIMIT 1",
                [at],
            )
        assert not publish_copy(warehouse, published).full
        assert _differences(warehouse, published) == {}, at
        for change in ("UPDATE orders SET service = 'changed'", "DELETE FROM orders"):
            with warehouse.connect() as con:
                con.execute(f"{change} WHERE order_id = 'odd-{n}'")
            assert not publish_copy(warehouse, published).full
            assert _differences(warehouse, published) == {}, (at, change)


def test_a_copy_remembers_its_hour_sums_and_they_are_trusted_only_while_they_count_its_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A publish reads the copy's side of the hour comparison from the sums the copy
    remembered; a copy whose row count no longer matches them (changed by other hands) is
    summed again, and put right."""
    monkeypatch.setattr(publish_module, "SYNC_MIN_ROWS", 0)  # every table of order rows
    warehouse, published = _published_in_full(tmp_path)
    copy_sides = _copy_sides_of_hour_sums(monkeypatch)
    for n in range(2):  # both copies brought up to date once, remembering their sums
        with warehouse.connect() as con:
            con.execute(
                "UPDATE orders SET service = ? WHERE order_id = (SELECT min(order_id) FROM orders)",
                [f"changed {n}"],
            )
        assert not publish_copy(warehouse, published).full
        assert _differences(warehouse, published) == {}
    remembered = "FROM _remembered_hours"
    assert len(copy_sides) == 6  # the orders and two rollup tables, twice
    assert all(remembered in side for side in copy_sides)
    next_copy = publish_module._next_slot(published)
    with duckdb.connect(str(next_copy)) as con:
        con.execute("DELETE FROM orders WHERE order_id IN (SELECT max(order_id) FROM orders)")
    copy_sides.clear()
    assert not publish_copy(warehouse, published).full
    assert published.resolve() == next_copy.resolve()
    assert _differences(warehouse, published) == {}
    summed_again = [side for side in copy_sides if remembered not in side]
    assert len(summed_again) == 1 and '."orders"' in summed_again[0]


def _copy_sides_of_hour_sums(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The copy's side of each comparison of whole tables' hour sums from now on: its
    remembered sums or a query summing the copy's table."""
    sides: list[str] = []
    real = publish_module._differing_hours

    def spy(con: duckdb.DuckDBPyConnection, source: str, copy: str, params: list[object]) -> object:
        if "_source_hours" in source:
            sides.append(copy)
        return real(con, source, copy, params)

    monkeypatch.setattr(publish_module, "_differing_hours", spy)
    return sides


def test_rollups_are_rewritten_only_in_the_hours_that_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rollup row changed in an old hour, one removed and one added in a new hour reach the
    copy; only those hours are rewritten."""
    monkeypatch.setattr(publish_module, "SYNC_MIN_ROWS", 0)  # the rollups are small here
    warehouse, published = _published_in_full(tmp_path)
    hour_of = "epoch(minute)::BIGINT // 3600"
    with warehouse.connect() as con:
        minutes = con.execute(
            f"SELECT {hour_of} AS h, min(minute) FROM latency_rollups GROUP BY h ORDER BY h"
        ).fetchall()
        assert len(minutes) > 40
        (changed_hour, changed), (removed_hour, removed) = minutes[5], minutes[25]
        con.execute("UPDATE latency_rollups SET polls = polls + 1 WHERE minute = ?", [changed])
        con.execute("DELETE FROM latency_rollups WHERE minute = ?", [removed])
        con.execute(
            "INSERT INTO latency_rollups SELECT * REPLACE (minute + INTERVAL 30 DAY AS minute) "
            "FROM latency_rollups WHERE minute = ?",
            [minutes[-1][1]],
        )
        added_hour = minutes[-1][0] + 30 * 24
    rewritten = _hours_compared(monkeypatch, "minute")
    assert _differences(warehouse, published).keys() == {"latency_rollups"}
    assert not publish_copy(warehouse, published).full
    assert _differences(warehouse, published) == {}
    assert rewritten == [[changed_hour, removed_hour, added_hour]]


def _hours_compared(monkeypatch: pytest.MonkeyPatch, column: str) -> list[list[int]]:
    """The hours of `column` publishes compare row by row from now on, per table in order."""
    compared: list[list[int]] = []
    real = publish_module._within_hours

    def spy(spied: str, hours: list[int]) -> tuple[str, list[object]]:
        if spied == column:
            compared.append(hours)
        return real(spied, hours)

    monkeypatch.setattr(publish_module, "_within_hours", spy)
    return compared


def _compared_row_by_row(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The tables publishes compare row by row from now on (`_sync_orders`), in order."""
    return _calls(monkeypatch, "_sync_orders")


def _published_half_days(
    tmp_path: Path, halves: int
) -> tuple[Warehouse, Path, Callable[[int], None]]:
    """A warehouse holding the first `halves` half days of polls, published twice (both copies
    exist), and a function adding (and refreshing) the polls of half day `n`."""
    orders, observations, _ = _log()
    start = observations["polled_at"].min()
    assert isinstance(start, datetime)
    polled = pl.col("polled_at")
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    published = tmp_path / "published" / "warehouse.duckdb"
    half = DAY / 2
    _add(warehouse, orders=orders, observations=observations.filter(polled < start + halves * half))
    publish_copy(warehouse, published)
    publish_copy(warehouse, published)

    def add_half_day(n: int) -> None:
        since = start + n * half
        _add(warehouse, observations=observations.filter(polled >= since, polled < since + half))

    return warehouse, published, add_half_day


def test_orders_a_refresh_noted_reach_the_copy_without_comparing_every_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The status history and the records reach the copy through the refresh's change notes:
    they are not compared row by row, the orders table (anyone may fill it) still is, and each
    copy ends equal to the warehouse."""
    monkeypatch.setattr(publish_module, "SYNC_MIN_ROWS", 0)  # every table of order rows
    warehouse, published, add_half_day = _published_half_days(tmp_path, 1)
    compared = _compared_row_by_row(monkeypatch)
    for half in (1, 2, 3):
        add_half_day(half)
        behind = _differences(warehouse, published)
        assert {"status_history", *RECORD_TABLES} <= set(behind), behind
        assert not publish_copy(warehouse, published).full
        assert _differences(warehouse, published) == {}
    assert "orders" in compared
    assert not {"status_history", *RECORD_TABLES} & set(compared), compared


def test_tables_rebuilt_whole_or_edited_by_hand_are_compared_row_by_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a full rebuild of the records, each copy compares them row by row once; a row of
    the history deleted by hand (no note says so) is found by the row counts."""
    monkeypatch.setattr(publish_module, "SYNC_MIN_ROWS", 0)
    warehouse, published, add_half_day = _published_half_days(tmp_path, 1)
    compared = _compared_row_by_row(monkeypatch)
    with warehouse.connect() as con:
        unmark_records_built(con)  # the next refresh rebuilds every record
    add_half_day(1)
    for _copy in (1, 2):
        publish_copy(warehouse, published)
        assert set(RECORD_TABLES) <= set(compared), compared
        assert "status_history" not in compared
        assert _differences(warehouse, published) == {}
        compared.clear()

    with warehouse.connect() as con:
        con.execute(
            "DELETE FROM status_history WHERE rowid = (SELECT max(rowid) FROM status_history)"
        )
    assert "status_history" in _differences(warehouse, published)
    publish_copy(warehouse, published)
    assert "status_history" in compared
    assert _differences(warehouse, published) == {}


def test_a_warehouse_whose_notes_start_again_is_compared_row_by_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warehouse restored from a backup, or whose log was dropped, numbers its notes again
    from 1: the copies' marks name notes it does not hold, so the publish compares every row,
    and a change that leaves every row count as it was still reaches the copy."""
    monkeypatch.setattr(publish_module, "SYNC_MIN_ROWS", 0)
    warehouse, published, add_half_day = _published_half_days(tmp_path, 1)
    add_half_day(1)
    publish_copy(warehouse, published)
    publish_copy(warehouse, published)  # both copies hold everything, marked at the last note
    compared = _compared_row_by_row(monkeypatch)
    order = warehouse.read("SELECT provider, order_id FROM status_history LIMIT 1")
    with warehouse.connect() as con:
        con.execute(f"DROP TABLE {CHANGES_TABLE}")
        con.execute(
            "UPDATE status_history SET n_polls = n_polls + 1 WHERE order_id = ?",
            [order["order_id"].item()],
        )
        note_changed_orders(con, ["status_history"], order)  # note 1, below the marks
    assert "status_history" in _differences(warehouse, published)
    publish_copy(warehouse, published)
    assert "status_history" in compared
    assert _differences(warehouse, published) == {}


def test_two_publishes_at_once_take_turns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A publish started while another is under way waits for it and then updates the other
    copy, never the one the first just made current (readers would find it locked)."""
    orders, observations, _ = _log()
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    published = tmp_path / "published" / "warehouse.duckdb"
    _add(warehouse, orders=orders, observations=observations)
    publish_copy(warehouse, published)
    publish_copy(warehouse, published)
    updated: list[str] = []
    started = threading.Event()
    real_update = publish_module._update

    def slow_update(con: duckdb.DuckDBPyConnection, source: str, copy: Path) -> object:
        updated.append(copy.name)
        started.set()
        time.sleep(0.5)  # the second publish starts meanwhile
        return real_update(con, source, copy)

    monkeypatch.setattr(publish_module, "_update", slow_update)
    first = threading.Thread(target=publish_copy, args=(warehouse, published))
    first.start()
    assert started.wait(30)
    publish_copy(warehouse, published)
    first.join()
    assert len(updated) == 2 and updated[0] != updated[1], updated
    assert _differences(warehouse, published) == {}


def test_where_links_cannot_be_made_the_copy_itself_is_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(*args: object) -> None:
        raise OSError("links are not supported here")

    monkeypatch.setattr(publish_module.os, "symlink", no_links)
    orders, observations, _ = _log()
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    published = tmp_path / "published" / "warehouse.duckdb"
    _add(warehouse, orders=orders.head(20), observations=observations)
    for _ in range(3):
        publish_copy(warehouse, published)
        assert published.is_file() and not published.is_symlink()
        assert _differences(warehouse, published) == {}
        _add(warehouse, orders=orders)
