"""The one place the Dagster graph is assembled: assets, checks, schedules, sensors, resources."""

from __future__ import annotations

import dagster as dg

from pipeline.assets.intake import orders
from pipeline.assets.resources import WarehouseResource
from pipeline.settings import Settings

_settings = Settings.from_env()

defs = dg.Definitions(
    assets=[orders],
    resources={
        "warehouse": WarehouseResource(
            data_dir=str(_settings.data_dir), lock_timeout_s=_settings.lock_timeout_s
        ),
    },
)
