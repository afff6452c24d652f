"""The Dagster definitions load, and hold the graph, checks, schedule and sensors users will see."""

from __future__ import annotations

import dagster as dg

from pipeline.assets.checks import CHECK_NAMES
from pipeline.model import PROVIDERS


def test_definitions_contain_every_provider_asset_check_schedule_and_sensor() -> None:
    from pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = graph.get_all_asset_keys()
    assert dg.AssetKey("orders") in keys
    for slug in PROVIDERS:
        key = dg.AssetKey(["observations", slug])
        assert key in keys
        for name in CHECK_NAMES:
            assert dg.AssetCheckKey(key, name) in graph.asset_check_keys
    schedule = defs.resolve_schedule_def("ingestion_schedule")
    assert schedule.cron_schedule == "* * * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert defs.resolve_sensor_def("inbox_sensor").default_status == dg.DefaultSensorStatus.RUNNING
    assert defs.resolve_sensor_def("automation") is not None
    assert defs.resolve_job_def("ingestion") is not None
