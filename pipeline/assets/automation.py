"""When things run: the ingestion schedule, the inbox sensor and declarative automation downstream.

- `ingestion_schedule`: every minute, on by default. A run carries the `pipeline/ingestion` tag,
  which the instance limits to one run at a time, so windows never overlap; the schedule skips a
  tick while a previous run is still waiting in the queue, so a slow window cannot pile up runs.
- `inbox_sensor`: a new or changed CSV file in the inbox materializes `orders`.
- `automation_sensor`: evaluates the automation conditions of the derived assets (history,
  analytics, report), which refresh on a cron tick rather than after every ingestion window.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import dagster as dg

from pipeline.assets.ingestion import INGESTION_GROUP, orders, provider_observations
from pipeline.settings import Settings

INGESTION_TAG = "pipeline/ingestion"
INGESTION_CRON = "* * * * *"
DERIVED_CRON = "*/5 * * * *"
INBOX_SENSOR_INTERVAL_S = 15
AUTOMATION_INTERVAL_S = 30
_WAITING = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED]

ingestion_job = dg.define_asset_job(
    "ingestion",
    selection=dg.AssetSelection.assets(provider_observations),
    tags={INGESTION_TAG: "all"},
    executor_def=dg.in_process_executor,
    description="One polling window over every provider.",
)

orders_job = dg.define_asset_job(
    "register_orders",
    selection=dg.AssetSelection.assets(orders),
    executor_def=dg.in_process_executor,
    description="Register CSV files waiting in the inbox.",
)

DERIVED_GROUPS = ("history", "analytics", "reporting")
derived_job = dg.define_asset_job(
    "derived",
    selection=dg.AssetSelection.groups(*DERIVED_GROUPS),
    executor_def=dg.in_process_executor,
    description="Status history, analytics tables, published warehouse and report.",
)


def derived_condition(cron: str = DERIVED_CRON) -> dg.AutomationCondition:
    """Refresh once per cron tick, and not while a refresh is already running."""
    return (
        dg.AutomationCondition.cron_tick_passed(cron).since_last_handled()  # type: ignore[misc]
        & ~dg.AutomationCondition.in_progress()
    )


@dg.schedule(
    job=ingestion_job,
    cron_schedule=INGESTION_CRON,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Poll every provider once a minute (ticks every few seconds inside the run).",
)
def ingestion_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    """Request one ingestion window, unless the previous one is still waiting to start."""
    waiting = context.instance.get_run_records(
        dg.RunsFilter(job_name=ingestion_job.name, statuses=_WAITING), limit=1
    )
    if waiting:
        return dg.SkipReason("the previous ingestion run has not started yet")
    return dg.RunRequest(tags={INGESTION_TAG: "all"})


def inbox_fingerprint(inbox: Path) -> str | None:
    """A key that changes whenever a CSV file is added to or changed in `inbox`."""
    files = sorted(inbox.glob("*.csv")) if inbox.is_dir() else []
    if not files:
        return None
    material = "|".join(f"{p.name}:{p.stat().st_mtime_ns}:{p.stat().st_size}" for p in files)
    return hashlib.sha256(material.encode()).hexdigest()[:16]


@dg.sensor(
    job=orders_job,
    minimum_interval_seconds=INBOX_SENSOR_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Registers CSV files dropped in the inbox (PIPELINE_DATA_DIR/inbox).",
)
def inbox_sensor(context: dg.SensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    """Request a registration run for the current set of inbox files."""
    fingerprint = inbox_fingerprint(Settings.from_env().inbox_dir)
    if fingerprint is None:
        return dg.SkipReason("inbox is empty")
    return dg.RunRequest(run_key=f"inbox-{fingerprint}")


automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation",
    target=dg.AssetSelection.all() - dg.AssetSelection.groups(INGESTION_GROUP),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=AUTOMATION_INTERVAL_S,
    description="Refreshes history, analytics and the report on their automation conditions.",
)
