"""The `alerts` asset in a real Dagster run: it evaluates the rules on the warehouse, writes the
status page, reports a firing incident through its check (WARN) and the error budgets in its
metadata."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from pipeline.assets.alerting import INCIDENTS_CHECK, alerts
from pipeline.assets.resources import ProvidersResource, WarehouseResource
from pipeline.ingest import write_batch
from pipeline.intake import make_order, register
from pipeline.model import Observation
from pipeline.warehouse import Warehouse


def _failed_polls(provider: str, order_id: str, kind: str, n: int) -> list[Observation]:
    now = datetime.now(UTC)
    return [
        Observation(
            provider=provider,
            order_id=order_id,
            order_kind=kind,
            polled_at=now - timedelta(seconds=5 * i + 1),
            state="unknown",
            is_terminal=False,
            http_status=503,
            error_class="server_error",
            error_message="HTTP 503",
        )
        for i in range(n)
    ]


@pytest.mark.slow
def test_the_alerts_asset_reports_a_down_provider(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("PIPELINE_ALERTS_WEBHOOK_URL", "PIPELINE_ALERTS_SMTP_HOST"):
        monkeypatch.delenv(name, raising=False)
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    register(warehouse, [make_order("baanx", "ord_down1")], source="test")
    write_batch(warehouse, _failed_polls("baanx", "ord_down1", "product_order", 30))
    resources = {
        "warehouse": WarehouseResource(data_dir=str(tmp_path), lock_timeout_s=10.0),
        "providers": ProvidersResource(),
    }
    with dg.instance_for_test() as instance:
        result = dg.materialize([alerts], resources=resources, instance=instance)
    assert result.success
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == INCIDENTS_CHECK and not check.passed
    assert check.severity == dg.AssetCheckSeverity.WARN
    (materialization,) = result.get_asset_materialization_events()
    metadata = materialization.materialization.metadata
    assert "baanx: availability (page)" in metadata["firing"].value
    assert "error_budgets" in metadata
    assert (tmp_path / "status" / "index.html").is_file()
    assert (tmp_path / "status" / "baanx.json").is_file()
