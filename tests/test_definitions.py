"""The Dagster definitions load, and hold the graph users will see."""

from __future__ import annotations

import dagster as dg


def test_definitions_load() -> None:
    from pipeline.definitions import defs

    keys = defs.resolve_asset_graph().get_all_asset_keys()
    assert dg.AssetKey("orders") in keys
