"""The one place the Dagster graph is assembled: assets, checks, sensors, resources.

Groups: `ingestion` (orders and one observations asset per provider, polled by long runs that
`ingestion_sensor` chains), then the derived groups `history`, `analytics` and `reporting`,
refreshed by declarative automation, and `alerts` (rules, SLOs, messages, status page) every
minute. `dagster_housekeeping` keeps the instance's history bounded. The job `poll_shard` polls
one shard of the orders into the poll log, for pollers on several processes or machines.
"""

import dagster as dg

from pipeline.assets.alerting import alerts
from pipeline.assets.analytics import (
    analytics,
    observation_archive,
    poll_rollups,
    published_warehouse,
    report,
    status_history,
)
from pipeline.assets.automation import (
    automation_sensor,
    derived_job,
    inbox_sensor,
    ingestion_job,
    ingestion_sensor,
    orders_job,
)
from pipeline.assets.housekeeping import DagsterRetention, dagster_housekeeping
from pipeline.assets.ingestion import orders, provider_observations
from pipeline.assets.resources import build_resources
from pipeline.assets.shards import poll_shard_job
from pipeline.settings import Settings

ASSETS = [
    orders,
    provider_observations,
    status_history,
    poll_rollups,
    observation_archive,
    analytics,
    published_warehouse,
    report,
    alerts,
]
"""Every asset, for the Definitions and for runs in process (`pipeline demo`)."""

defs = dg.Definitions(
    assets=ASSETS,
    jobs=[ingestion_job, orders_job, derived_job, poll_shard_job],
    sensors=[ingestion_sensor, inbox_sensor, automation_sensor, dagster_housekeeping],
    resources={
        **build_resources(),
        "dagster_retention": DagsterRetention(days=Settings.from_env().dagster_retention_days),
    },
    # Runs are short and the machine small: a process per step costs more than the step.
    executor=dg.in_process_executor,
)
