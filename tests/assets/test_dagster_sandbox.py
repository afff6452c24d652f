"""The real Dagster assets, materialized in-process against the sandbox on a temporary warehouse:
every provider asset materializes with its metadata and checks; a provider in outage fails only
its own asset; the derived assets and the report follow."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from live_sandbox import default_config, live_sandbox, track

from pipeline.assets.analytics import analytics, published_warehouse, report, status_history
from pipeline.assets.checks import CHECK_NAMES
from pipeline.assets.ingestion import observations_key, orders, provider_observations
from pipeline.assets.resources import ProvidersResource, WarehouseResource
from pipeline.model import PROVIDERS
from pipeline.simulator.faults import Scenario
from pipeline.warehouse import Warehouse

WINDOW = {"ops": {"poll_providers": {"config": {"window_s": 2.0, "tick_s": 1.0}}}}
BAANX_DOWN = Scenario.from_json(
    {
        "name": "baanx-down",
        "providers": {
            "baanx": [
                {
                    "kind": "outage",
                    "every_s": 3600,
                    "duration_s": 3600,
                    "offset_s": 0,
                    "status": 503,
                    "endpoints": ["status"],
                }
            ]
        },
    }
)


def _resources(data_dir: Path, url: str) -> dict[str, object]:
    return {
        "warehouse": WarehouseResource(data_dir=str(data_dir), lock_timeout_s=10.0),
        "providers": ProvidersResource(sandbox_url=url),
    }


def _materialized(result: dg.ExecuteInProcessResult) -> set[dg.AssetKey]:
    return {event.asset_key for event in result.get_asset_materialization_events()}


def test_every_provider_asset_materializes_with_metadata_and_checks(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    with live_sandbox() as live, dg.instance_for_test() as instance:
        track(warehouse, live.url, dict.fromkeys(PROVIDERS, 2))
        result = dg.materialize(
            [orders, provider_observations],
            resources=_resources(tmp_path, live.url),
            run_config=WINDOW,
            instance=instance,
        )
    assert result.success
    assert _materialized(result) == {dg.AssetKey("orders")} | {
        observations_key(s) for s in PROVIDERS
    }
    for slug in PROVIDERS:
        metadata = result.asset_materializations_for_node("poll_providers")
        event = next(m for m in metadata if m.asset_key == observations_key(slug))
        assert event.metadata["polls"].value > 0  # type: ignore[operator]
        assert 0 < event.metadata["availability"].value <= 1  # type: ignore[operator]
        assert "latency_p95_ms" in event.metadata and "summary" in event.metadata
    evaluations = result.get_asset_check_evaluations()
    assert {(e.asset_key, e.check_name) for e in evaluations} == {
        (observations_key(s), name) for s in PROVIDERS for name in CHECK_NAMES
    }


def test_a_provider_in_outage_fails_only_its_own_asset(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    with (
        live_sandbox(default_config(faults=BAANX_DOWN)) as live,
        dg.instance_for_test() as instance,
    ):
        track(warehouse, live.url, dict.fromkeys(PROVIDERS, 2))
        result = dg.materialize(
            [orders, provider_observations],
            resources=_resources(tmp_path, live.url),
            run_config=WINDOW,
            instance=instance,
            raise_on_error=False,
        )
    assert not result.success
    materialized = _materialized(result)
    assert observations_key("baanx") not in materialized
    assert {observations_key(s) for s in PROVIDERS if s != "baanx"} <= materialized
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "baanx" in str(failure.step_failure_data.error)  # type: ignore[union-attr]
    stored = warehouse.read(
        "SELECT count(*) AS n FROM observations WHERE provider = 'baanx' AND http_status = 503"
    )
    assert stored["n"].item() > 0  # the failed polls are still recorded


@pytest.mark.slow
def test_derived_assets_and_report_follow_ingestion(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    with live_sandbox() as live, dg.instance_for_test() as instance:
        track(warehouse, live.url, dict.fromkeys(PROVIDERS, 3))
        resources = _resources(tmp_path, live.url)
        dg.materialize(
            [orders, provider_observations],
            resources=resources,
            run_config=WINDOW,
            instance=instance,
        )
        result = dg.materialize(
            [status_history, analytics, published_warehouse, report],
            resources=resources,
            instance=instance,
        )
    assert result.success
    assert (tmp_path / "published" / "warehouse.duckdb").is_file()
    html = (tmp_path / "reports" / "report.html").read_text()
    assert "data:image/png;base64," in html
    history = warehouse.read("SELECT count(DISTINCT order_id) AS n FROM status_history")
    assert history["n"].item() == 3 * len(PROVIDERS)
