"""The Dagster definitions load, and hold the graph, checks and sensors users will see: every
sensor is on by default, and no schedule remains (ingestion is chained by its sensor)."""

from __future__ import annotations

import dagster as dg

from pipeline.assets.checks import CHECK_NAMES
from pipeline.assets.ingestion import ANSWERING_CHECK
from pipeline.providers.registry import PROVIDERS


def test_definitions_contain_every_provider_asset_check_and_sensor() -> None:
    from pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = graph.get_all_asset_keys()
    assert dg.AssetKey("orders") in keys
    for slug in PROVIDERS:
        key = dg.AssetKey(["observations", slug])
        assert key in keys
        for name in (ANSWERING_CHECK, *CHECK_NAMES):
            assert dg.AssetCheckKey(key, name) in graph.asset_check_keys
    assert not list(defs.schedules or [])
    for name in ("ingestion_sensor", "inbox_sensor", "automation", "dagster_housekeeping"):
        assert defs.resolve_sensor_def(name).default_status == dg.DefaultSensorStatus.RUNNING
    assert defs.resolve_sensor_def("ingestion_sensor").job_name == "ingestion"
    assert defs.resolve_job_def("ingestion") is not None
