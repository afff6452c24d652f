"""The one place the Dagster graph is assembled: assets, checks, schedules, sensors, resources.

Groups: `ingestion` (orders and one observations asset per provider), then the derived groups
`history`, `analytics` and `reporting`, refreshed by declarative automation.
"""

import dagster as dg

from pipeline.assets.analytics import analytics, published_warehouse, report, status_history
from pipeline.assets.automation import (
    automation_sensor,
    derived_job,
    inbox_sensor,
    ingestion_job,
    ingestion_schedule,
    orders_job,
)
from pipeline.assets.ingestion import orders, provider_observations
from pipeline.assets.resources import build_resources

defs = dg.Definitions(
    assets=[
        orders,
        provider_observations,
        status_history,
        analytics,
        published_warehouse,
        report,
    ],
    jobs=[ingestion_job, orders_job, derived_job],
    schedules=[ingestion_schedule],
    sensors=[inbox_sensor, automation_sensor],
    resources=build_resources(),
    # Runs are short and the machine small: a process per step costs more than the step.
    executor=dg.in_process_executor,
)
