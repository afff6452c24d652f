"""Validation: failing rows are quarantined with their reasons, never dropped, never raised."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import polars as pl

from pipeline.model import Observation
from pipeline.validation import split_valid
from pipeline.warehouse.frames import observations_frame

POLLED_AT = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _obs(order_id: str, **changes: object) -> Observation:
    fields: dict[str, object] = {
        "provider": "sms4sats",
        "order_id": order_id,
        "order_kind": "sms_receive",
        "polled_at": POLLED_AT,
        "state": "processing",
        "is_terminal": False,
        "http_status": 200,
    }
    fields.update(changes)
    return Observation(**fields)  # type: ignore[arg-type]


def test_clean_batch_passes_whole() -> None:
    result = split_valid(
        observations_frame([_obs("a"), _obs("b", error_class="timeout", http_status=None)])
    )
    assert result.valid.height == 2 and result.quarantine.is_empty()


def test_each_failing_row_is_quarantined_with_the_checks_it_failed() -> None:
    batch = observations_frame(
        [
            _obs("good"),
            _obs("bad-state", state="teleported"),
            _obs("bad-terminal", state="processing", is_terminal=True),
            _obs("bad-status", http_status=999),
            _obs("unmasked", phone_masked="4915112345678"),
        ]
    )
    result = split_valid(batch, batch_id="b1")
    assert result.valid["order_id"].to_list() == ["good"]
    reasons = {
        row["order_id"]: json.loads(row["reasons"])
        for row in result.quarantine.iter_rows(named=True)
    }
    assert set(reasons) == {"bad-state", "bad-terminal", "bad-status", "unmasked"}
    assert any(r.startswith("state:") for r in reasons["bad-state"])
    assert any("terminal flag" in r for r in reasons["bad-terminal"])
    assert any(r.startswith("http_status:") for r in reasons["bad-status"])
    assert any(r.startswith("phone_masked:") for r in reasons["unmasked"])
    # The quarantined copy never keeps the unmasked number it was rejected for.
    assert "4915112345678" not in result.quarantine.write_csv()
    assert set(result.quarantine["batch_id"]) == {"b1"}


def test_batch_level_failure_quarantines_every_row() -> None:
    batch = observations_frame([_obs("a"), _obs("b")]).with_columns(
        pl.col("polled_at").dt.convert_time_zone("Europe/Oslo")
    )
    result = split_valid(batch)
    assert result.valid.is_empty()
    assert result.quarantine.height == 2
    assert all("polled_at" in r for r in result.quarantine["reasons"])
