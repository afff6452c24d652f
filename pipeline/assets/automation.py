"""When things run: the ingestion sensor, the inbox sensor and declarative automation downstream.

- `ingestion_sensor`: on by default, every 30 s. It keeps one long ingestion run polling at all
  times: it asks for a run when none is active, and for the next one `HANDOVER_LEAD_S` before the
  current run's window ends (the run tags itself with that time when it starts polling). The
  successor starts up meanwhile, waits for the `ingestion` pool the current run holds, and polls
  within seconds of its end (dagster_home/dagster.yaml: at most two runs tagged
  `pipeline/ingestion`, one of them waiting). Measured hand-over: 5-6 s without polls.
- `inbox_sensor`: a new or changed CSV file in the inbox materializes `orders`, unless an
  ingestion run is polling (it registers the inbox itself every tick).
- `automation_sensor`: evaluates the automation conditions of the derived assets (history,
  analytics, report), which refresh on a cron tick rather than after every ingestion report.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from pipeline.assets.ingestion import (
    INGESTION_GROUP,
    POLLS_UNTIL_TAG,
    orders,
    provider_observations,
)
from pipeline.settings import Settings

INGESTION_TAG = "pipeline/ingestion"
INGESTION_SENSOR_INTERVAL_S = 30
# Ask for the next run this long before the current window ends: more than two sensor intervals,
# so one evaluation always lands in it, and more than a run's start-up (≈10-20 s on two cores).
HANDOVER_LEAD_S = 75.0
DERIVED_CRON = "*/5 * * * *"
INBOX_SENSOR_INTERVAL_S = 15
AUTOMATION_INTERVAL_S = 30
_WAITING = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
]
_ACTIVE = [*_WAITING, dg.DagsterRunStatus.STARTED]

ingestion_job = dg.define_asset_job(
    "ingestion",
    selection=dg.AssetSelection.assets(provider_observations),
    tags={INGESTION_TAG: "all"},
    executor_def=dg.in_process_executor,
    description="One long polling window over every provider, reporting every minute.",
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


def ingestion_skip_reason(active: Sequence[dg.RunRecord], now: float) -> str | None:
    """Why no ingestion run should be requested now, or None to request one.

    Args:
        active: the ingestion job's runs that are queued, starting or started.
        now: the current time, in seconds since the epoch.
    """
    polls_until = []
    for record in active:
        tag = record.dagster_run.tags.get(POLLS_UNTIL_TAG)
        if tag is None:  # queued, starting, or started and not polling yet
            return f"ingestion run {record.dagster_run.run_id[:8]} is waiting to start polling"
        polls_until.append(float(tag))
    if polls_until and max(polls_until) - now > HANDOVER_LEAD_S:
        until = datetime.fromtimestamp(max(polls_until), UTC).strftime("%H:%M:%S")
        return f"the current run polls until {until} UTC; its successor is requested shortly before"
    return None


@dg.sensor(
    job=ingestion_job,
    minimum_interval_seconds=INGESTION_SENSOR_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Keeps one long ingestion run polling: requests the next one shortly before the "
    "current window ends, so it takes over within seconds.",
)
def ingestion_sensor(context: dg.SensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    """Request an ingestion run when none is active or the active one is about to end."""
    active = context.instance.get_run_records(
        dg.RunsFilter(job_name=ingestion_job.name, statuses=_ACTIVE)
    )
    reason = ingestion_skip_reason(active, time.time())
    if reason is not None:
        return dg.SkipReason(reason)
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
    """Request a registration run for the current set of inbox files, unless an ingestion run
    is polling: it registers the inbox every tick, and a run per file drop (one every few
    seconds under a steady workload) would cost a process start and history each time."""
    fingerprint = inbox_fingerprint(Settings.from_env().inbox_dir)
    if fingerprint is None:
        return dg.SkipReason("inbox is empty")
    polling = context.instance.get_run_records(
        dg.RunsFilter(job_name=ingestion_job.name, statuses=[dg.DagsterRunStatus.STARTED])
    )
    if any(POLLS_UNTIL_TAG in record.dagster_run.tags for record in polling):
        return dg.SkipReason("the polling ingestion run registers the inbox every tick")
    return dg.RunRequest(run_key=f"inbox-{fingerprint}")


automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation",
    target=dg.AssetSelection.all() - dg.AssetSelection.groups(INGESTION_GROUP),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=AUTOMATION_INTERVAL_S,
    description="Refreshes history, analytics and the report on their automation conditions.",
)
