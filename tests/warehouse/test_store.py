"""Warehouse writes and reads: idempotent bulk appends, payloads stored once, UTC round trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import polars as pl

from pipeline.model import Observation, OrderState
from pipeline.warehouse import Warehouse, append, replace_table, store
from pipeline.warehouse.frames import observations_frame, payloads_frame
from pipeline.warehouse.schema import OBSERVATION_COLUMNS
from pipeline.warehouse.store import first_row, registered

POLLED_AT = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def _observation(order_id: str = "abcd_1234", **changes: object) -> Observation:
    fields: dict[str, object] = {
        "provider": "baanx",
        "order_id": order_id,
        "order_kind": "product_order",
        "polled_at": POLLED_AT,
        "state": OrderState.PENDING.value,
        "is_terminal": False,
        "http_status": 200,
        "latency_ms": 12.5,
        "provider_status": "STARTED",
        "payload_sha256": "f" * 64,
        "payload_redacted": '{"status":"STARTED"}',
    }
    fields.update(changes)
    return Observation(**fields)  # type: ignore[arg-type]


def test_the_same_observation_twice_stores_one_row(warehouse: Warehouse) -> None:
    frame = observations_frame([_observation()])
    with warehouse.transaction() as con:
        assert append(con, "observations", frame) == 1
    with warehouse.transaction() as con:
        assert append(con, "observations", frame) == 0
        assert append(con, "observations", pl.concat([frame, frame])) == 0
    assert warehouse.read("SELECT count(*) AS n FROM observations")["n"].item() == 1


def test_a_batch_stores_each_new_observation_once_whatever_lies_in_its_span(
    warehouse: Warehouse,
) -> None:
    """Repeats within a batch are stored once, both when nothing is stored in the batch's time
    span (no key is checked) and when stored rows lie in it (only new keys go in)."""
    first = observations_frame([_observation("a"), _observation("b")])
    with warehouse.transaction() as con:
        assert append(con, "observations", pl.concat([first, first])) == 2
    later = POLLED_AT + timedelta(seconds=1)
    overlapping = observations_frame(
        [_observation("b"), _observation("c", polled_at=later), _observation("c", polled_at=later)]
    )
    with warehouse.transaction() as con:
        assert append(con, "observations", overlapping) == 1
    stored = warehouse.read("SELECT order_id FROM observations ORDER BY order_id")
    assert stored["order_id"].to_list() == ["a", "b", "c"]


def test_a_retry_is_a_distinct_row_with_a_distinct_key(warehouse: Warehouse) -> None:
    frame = observations_frame([_observation(), _observation(attempt=2)])
    with warehouse.transaction() as con:
        assert append(con, "observations", frame) == 2


def test_identical_bodies_are_stored_once(warehouse: Warehouse) -> None:
    observations = [
        _observation("a"),
        _observation("b"),
        _observation("c", payload_sha256="e" * 64),
    ]
    with warehouse.transaction() as con:
        assert append(con, "payloads", payloads_frame(observations)) == 2
        assert append(con, "payloads", payloads_frame(observations)) == 0


def test_append_goes_through_arrow_with_the_declared_schema(warehouse: Warehouse) -> None:
    frame = observations_frame([_observation()])
    assert dict(frame.schema) == OBSERVATION_COLUMNS
    with warehouse.transaction() as con:
        append(con, "observations", frame)
    stored = warehouse.read("SELECT * FROM observations")
    assert stored.select(frame.columns).schema == frame.schema


def test_timestamps_round_trip_in_utc_to_the_microsecond(warehouse: Warehouse) -> None:
    oslo = timezone(timedelta(hours=1))
    local = POLLED_AT.astimezone(oslo)
    with warehouse.transaction() as con:
        append(con, "observations", observations_frame([_observation(polled_at=local)]))
    stored = warehouse.read("SELECT polled_at FROM observations")
    assert stored.schema["polled_at"] == pl.Datetime("us", "UTC")
    assert stored["polled_at"].item() == POLLED_AT
    session_zone = warehouse.read("SELECT current_setting('TimeZone') AS tz")["tz"].item()
    assert session_zone == "UTC"


def test_a_failed_transaction_leaves_nothing_behind(warehouse: Warehouse) -> None:
    try:
        with warehouse.transaction() as con:
            append(con, "observations", observations_frame([_observation()]))
            raise RuntimeError("simulated crash mid-batch")
    except RuntimeError:
        pass
    assert warehouse.read("SELECT count(*) AS n FROM observations")["n"].item() == 0


def test_threads_opening_a_new_warehouse_at_once_all_succeed(tmp_path: Path) -> None:
    """A polling run's loops, writer and inbox all open a brand-new file at the same moment:
    migrating it (and DuckDB's per-process instance) must not race."""
    import threading

    warehouse = Warehouse(tmp_path / "fresh.duckdb")
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def open_and_read() -> None:
        start.wait()
        try:
            for _ in range(20):
                warehouse.read("SELECT count(*) FROM orders")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=open_and_read) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_a_table_replaced_by_no_rows_then_filled_in_one_transaction_filters_right(
    warehouse: Warehouse,
) -> None:
    """A derived table emptied and refilled in bulk within one transaction (a full rebuild)
    must answer filters and joins over the new rows; DuckDB 2.0 answered none when the empty
    table came from `CREATE TABLE ... AS`."""
    rows = pl.DataFrame({"order_id": [f"o-{i}" for i in range(300_000)]})
    with warehouse.transaction() as con:
        replace_table(con, "derived_example", rows.clear())
        with registered(con, "_rows", rows):
            con.execute("INSERT INTO derived_example SELECT * FROM _rows")
        with registered(con, "_wanted", rows.head(10)):
            joined = first_row(
                con, "SELECT count(*) FROM derived_example JOIN _wanted USING (order_id)"
            )
        found = first_row(con, "SELECT count(*) FROM derived_example WHERE order_id = 'o-5'")
    assert (joined[0], found[0]) == (10, 1)


def test_repeated_keys_are_found_by_their_hashes() -> None:
    """The pre-check before deduplicating a batch: a key made of several columns repeats only
    when all of them do, and a null in a key repeats like any value."""
    orders = pl.DataFrame({"provider": ["baanx", "altinn", "baanx"], "order_id": ["1", "1", "2"]})
    key = ["provider", "order_id"]
    assert not store._may_repeat(orders, key)
    assert store._may_repeat(pl.concat([orders, orders.head(1)]), key)
    with_null = pl.DataFrame({"provider": ["baanx", "baanx"], "order_id": [None, None]})
    assert store._may_repeat(with_null, key)
