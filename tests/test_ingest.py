"""The write path: one transaction per batch, idempotent, quarantine kept, tracking folded in;
many providers' rows written together, yet one provider's refused rows never cost the others."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import polars as pl
import pytest

from pipeline import ingest
from pipeline.ingest import write_batch, write_batches
from pipeline.model import Observation
from pipeline.warehouse import Warehouse

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _obs(order_id: str, seconds: float, state: str = "pending", **changes: object) -> Observation:
    fields: dict[str, object] = {
        "provider": "baanx",
        "order_id": order_id,
        "order_kind": "product_order",
        "polled_at": T0 + timedelta(seconds=seconds),
        "state": state,
        "is_terminal": state in {"completed", "expired", "failed"},
        "http_status": 200,
        "payload_sha256": "a" * 64,
        "payload_redacted": '{"status":"STARTED"}',
    }
    fields.update(changes)
    return Observation(**fields)  # type: ignore[arg-type]


def test_rewriting_a_batch_stores_nothing_new(warehouse: Warehouse) -> None:
    batch = [_obs("o1", 0), _obs("o2", 0), _obs("o3", 0, state="bogus")]
    first = write_batch(warehouse, batch)
    assert (first.written, first.quarantined, first.payloads_new) == (2, 1, 1)
    again = write_batch(warehouse, batch)
    assert (again.written, again.quarantined, again.payloads_new) == (0, 0, 0)
    counts = warehouse.read(
        "SELECT (SELECT count(*) FROM observations) AS obs, (SELECT count(*) FROM quarantine) AS q"
    ).row(0)
    assert counts == (2, 1)


def test_only_the_bodies_of_stored_rows_are_kept(warehouse: Warehouse) -> None:
    valid = _obs("o1", 0, payload_sha256="b" * 64, payload_redacted='{"status":"DONE"}')
    refused = _obs("o2", 0, state="bogus", payload_sha256="c" * 64, payload_redacted="{}")
    assert write_batch(warehouse, [valid, refused]).payloads_new == 1
    assert write_batch(warehouse, [_obs("o3", 0), _obs("o4", 0)]).payloads_new == 1
    stored = warehouse.read("SELECT payload_sha256 FROM payloads ORDER BY 1")["payload_sha256"]
    assert stored.to_list() == ["a" * 64, "b" * 64]


def test_tracking_remembers_last_state_terminal_time_and_errors(warehouse: Warehouse) -> None:
    write_batch(
        warehouse, [_obs("o1", 0), _obs("o1", 5, http_status=500, error_class="server_error")]
    )
    row = warehouse.read("SELECT * FROM order_tracking WHERE order_id = 'o1'").row(0, named=True)
    assert row["last_state"] == "pending" and row["polls"] == 2
    assert row["consecutive_errors"] == 1 and row["last_ok_at"] == T0

    write_batch(warehouse, [_obs("o1", 10, state="completed")])
    row = warehouse.read("SELECT * FROM order_tracking WHERE order_id = 'o1'").row(0, named=True)
    assert row["is_terminal"] and row["terminal_seen_at"] == T0 + timedelta(seconds=10)
    assert row["consecutive_errors"] == 0 and not row["grace_checked"]

    write_batch(warehouse, [_obs("o1", 70, state="completed")])
    row = warehouse.read("SELECT * FROM order_tracking WHERE order_id = 'o1'").row(0, named=True)
    assert row["grace_checked"] and row["terminal_seen_at"] == T0 + timedelta(seconds=10)
    assert row["polls"] == 4


def test_a_provider_whose_rows_are_refused_never_costs_the_others(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = ingest.append

    def refuse_sms4sats(con: Any, table: str, frame: pl.DataFrame) -> int:
        if table == "observations" and "sms4sats" in frame["provider"].to_list():
            raise duckdb.ConstraintException("refused")
        return original(con, table, frame)

    monkeypatch.setattr(ingest, "append", refuse_sms4sats)
    batch = [_obs("b1", 0), _obs("s1", 0, provider="sms4sats"), _obs("b2", 0)]
    result, failed = write_batches(warehouse, batch)
    assert failed == {}
    assert (result.written, result.quarantined) == (2, 1)
    stored = warehouse.read("SELECT order_id FROM observations ORDER BY order_id")["order_id"]
    assert stored.to_list() == ["b1", "b2"]
    quarantined = warehouse.read("SELECT order_id, reasons FROM quarantine").row(0)
    assert quarantined[0] == "s1" and "warehouse refused the row" in quarantined[1]


def test_many_providers_are_validated_and_stored_together(warehouse: Warehouse) -> None:
    batch = [_obs("b1", 0), _obs("s1", 0, provider="sms4sats"), _obs("x", 0, state="bogus")]
    result, failed = write_batches(warehouse, batch)
    assert failed == {} and (result.written, result.quarantined) == (2, 1)
    tracked = warehouse.read("SELECT provider, order_id FROM order_tracking ORDER BY order_id")
    assert tracked.rows() == [("baanx", "b1"), ("sms4sats", "s1"), ("baanx", "x")]
