"""Asset checks: each one fails on data built to break it and passes on clean data."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from pipeline.assets import checks
from pipeline.ingest import write_batch
from pipeline.intake import make_order, register
from pipeline.model import Observation
from pipeline.providers.base import PollingPolicy
from pipeline.providers.registry import get_spec
from pipeline.providers.spec import ExpiryWindow
from pipeline.warehouse import Warehouse

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
KEY = dg.AssetKey(["observations", "baanx"])
POLICY = PollingPolicy(
    cadence_s={"pending": 10.0},
    default_cadence_s=10.0,
    terminal_grace_s=60.0,
    max_tracking_age_s=3600.0,
)
# A 300 s window plus the 300 s grace: orders open after 600 s are stuck.
SPEC = dataclasses.replace(
    get_spec("baanx"),
    policy=POLICY,
    expiry_windows=(ExpiryWindow("product_order", 300.0, True, "test window"),),
)


def _obs(
    order_id: str, seconds_ago: float, state: str = "pending", **changes: object
) -> Observation:
    fields: dict[str, object] = {
        "provider": "baanx",
        "order_id": order_id,
        "order_kind": "product_order",
        "polled_at": NOW - timedelta(seconds=seconds_ago),
        "state": state,
        "is_terminal": state in {"completed", "failed", "expired"},
        "http_status": 200,
        "provider_status": {"pending": "STARTED", "completed": "COMPLETED"}.get(state, state),
    }
    fields.update(changes)
    return Observation(**fields)  # type: ignore[arg-type]


def _track(warehouse: Warehouse, order_id: str, registered_ago_s: float) -> None:
    register(
        warehouse,
        [make_order("baanx", order_id, registered_at=NOW - timedelta(seconds=registered_ago_s))],
        source="test",
    )


@pytest.fixture
def clean(warehouse: Warehouse) -> Warehouse:
    """Two orders: one completed, one pending and freshly polled, all answers recognised."""
    _track(warehouse, "done", 300)
    _track(warehouse, "open", 60)
    write_batch(
        warehouse,
        [_obs("done", 200), _obs("done", 100, "completed"), _obs("open", 5)],
    )
    return warehouse


def _run(warehouse: Warehouse, name: str) -> dg.AssetCheckResult:
    with warehouse.connect() as con:
        results = {r.check_name: r for r in checks.run_checks(con, KEY, SPEC, NOW)}
    return results[name]


@pytest.mark.parametrize("name", checks.CHECK_NAMES)
def test_every_check_passes_on_clean_data(clean: Warehouse, name: str) -> None:
    assert _run(clean, name).passed


def test_quarantine_rate_fails_when_answers_are_rejected(clean: Warehouse) -> None:
    write_batch(clean, [_obs(f"bad-{i}", 10, state="nonsense") for i in range(3)])
    result = _run(clean, "quarantine_rate")
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert result.metadata["quarantined"].value == 3


def test_coverage_freshness_fails_when_open_orders_go_unpolled(clean: Warehouse) -> None:
    for i in range(3):
        _track(clean, f"stale-{i}", 900)
        write_batch(clean, [_obs(f"stale-{i}", 800)])
    result = _run(clean, "coverage_freshness")
    assert not result.passed
    assert result.metadata["worst_lag_s"].value == pytest.approx(800)
    assert result.metadata["fresh_share"].value == pytest.approx(1 / 4)


def test_impossible_transitions_are_reported_with_where(clean: Warehouse) -> None:
    write_batch(clean, [_obs("done", 50, "pending")])
    result = _run(clean, "impossible_transitions")
    assert not result.passed
    example = result.metadata["examples"].value[0]  # type: ignore[index]
    assert (example["from"], example["to"]) == ("completed", "pending")
    assert example["order"] == checks.short_id("done")


def test_stuck_orders_are_the_open_ones_past_the_window(clean: Warehouse) -> None:
    _track(clean, "stuck", 700)
    write_batch(clean, [_obs("stuck", 5)])
    result = _run(clean, "stuck_orders")
    assert not result.passed and result.metadata["count"].value == 1
    assert result.metadata["by_state"].value == {"pending": 1}


def test_unknown_status_rate_fails_on_unrecognised_statuses(clean: Warehouse) -> None:
    write_batch(
        clean,
        [
            _obs(
                "open",
                4 - i / 10,
                "unknown",
                provider_status="TELEPORTED",
                status_unrecognized=True,
            )
            for i in range(3)
        ],
    )
    result = _run(clean, "unknown_status_rate")
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert result.metadata["unrecognised_statuses"].value == ["TELEPORTED"]
