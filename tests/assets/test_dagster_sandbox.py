"""The real Dagster assets, materialized in-process against the sandbox on a temporary warehouse:
every provider asset materializes with its metadata and checks; one long run reports every
interval (several materializations and check evaluations per provider in one run); a provider
in outage fails only its own asset, minute by minute; the derived assets and the report follow."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from live_sandbox import default_config, live_sandbox, track

from pipeline.assets.analytics import (
    analytics,
    poll_rollups,
    published_warehouse,
    report,
    status_history,
)
from pipeline.assets.checks import CHECK_NAMES
from pipeline.assets.ingestion import (
    ANSWERING_CHECK,
    observations_key,
    orders,
    provider_observations,
)
from pipeline.assets.resources import ProvidersResource, WarehouseResource
from pipeline.providers.registry import PROVIDERS
from pipeline.simulator.faults import Scenario
from pipeline.warehouse import Warehouse

WINDOW = {"ops": {"poll_providers": {"config": {"window_s": 2.0, "tick_s": 1.0}}}}
# A long run in miniature: 12 s of polling reporting every 4 s (a minute by default).
LONG_WINDOW = {
    "ops": {"poll_providers": {"config": {"window_s": 12.0, "tick_s": 1.0, "report_every_s": 4.0}}}
}
SHORT_REPORTS = {
    "ops": {"poll_providers": {"config": {"window_s": 6.0, "tick_s": 1.0, "report_every_s": 2.0}}}
}
ALL_CHECKS = (ANSWERING_CHECK, *CHECK_NAMES)
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
        (observations_key(s), name) for s in PROVIDERS for name in ALL_CHECKS
    }


def _per_asset(events: list[dg.AssetMaterialization]) -> dict[str, list[dg.AssetMaterialization]]:
    grouped: dict[str, list[dg.AssetMaterialization]] = {}
    for event in events:
        grouped.setdefault(event.asset_key.path[-1], []).append(event)
    return grouped


def test_one_long_run_reports_every_interval(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    with live_sandbox() as live, dg.instance_for_test() as instance:
        track(warehouse, live.url, dict.fromkeys(PROVIDERS, 3))
        result = dg.materialize(
            [provider_observations],
            resources=_resources(tmp_path, live.url),
            run_config=LONG_WINDOW,
            instance=instance,
        )
        stored = {
            slug: instance.fetch_materializations(observations_key(slug), limit=10).records
            for slug in PROVIDERS
        }
    assert result.success
    per_asset = _per_asset(result.asset_materializations_for_node("poll_providers"))
    assert set(per_asset) == set(PROVIDERS)
    for slug in PROVIDERS:
        reports = per_asset[slug]
        assert len(reports) >= 2, f"{slug}: {len(reports)} materializations in one run"
        assert len(stored[slug]) == len(reports)  # all in the instance, not only in the result
        assert all("polls" in m.metadata and "summary" in m.metadata for m in reports)
        assert all(2.0 <= m.metadata["interval_s"].value <= 8.0 for m in reports)  # type: ignore[operator]
    assert sum(m.metadata["polls"].value for m in per_asset["baanx"]) > 0  # type: ignore[misc]
    evaluations = result.get_asset_check_evaluations()
    for slug in PROVIDERS:
        for name in ALL_CHECKS:
            count = sum(
                1
                for e in evaluations
                if e.asset_key == observations_key(slug) and e.check_name == name
            )
            assert count == len(per_asset[slug]), (slug, name, count)


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
            run_config=SHORT_REPORTS,
            instance=instance,
            raise_on_error=False,
        )
    assert not result.success
    per_asset = _per_asset(result.asset_materializations_for_node("poll_providers"))
    assert "baanx" not in per_asset
    assert all(len(per_asset[s]) >= 2 for s in PROVIDERS if s != "baanx")
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = str(failure.step_failure_data.error)  # type: ignore[union-attr]
    assert "baanx" in message and "still down" in message
    assert not any(s in message for s in PROVIDERS if s != "baanx")
    answering = [e for e in result.get_asset_check_evaluations() if e.check_name == ANSWERING_CHECK]
    for evaluation in answering:  # every report: failed for baanx only
        assert evaluation.passed == (evaluation.asset_key != observations_key("baanx"))
    assert sum(e.asset_key == observations_key("baanx") for e in answering) >= 2
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
            [status_history, poll_rollups, analytics, published_warehouse, report],
            resources=resources,
            instance=instance,
        )
    assert result.success
    assert (tmp_path / "published" / "warehouse.duckdb").is_file()
    html = (tmp_path / "reports" / "report.html").read_text()
    assert "data:image/svg+xml;base64," in html
    history = warehouse.read("SELECT count(DISTINCT order_id) AS n FROM status_history")
    assert history["n"].item() == 3 * len(PROVIDERS)
