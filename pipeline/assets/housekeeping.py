"""Keeps the Dagster instance bounded: runs older than the retention are deleted.

`retention:` in dagster.yaml purges schedule and sensor ticks only; runs and their event logs
stay forever unless deleted. The `dagster_housekeeping` sensor deletes, once an hour, the finished
runs created more than `DagsterRetention.days` ago (7 by default): the run record, its events
(materializations and check evaluations included), its captured stdout/stderr and, on the default
SQLite storage, the run's own event-log file, which `delete_run` empties but leaves on disk. It
also drops the automation sensor's condition-evaluation records older than the retention (Dagster
keeps them 30 days; measured ≈ 180 MB a day with the derived assets on a 5-minute cron).
A sensor rather than a scheduled job: it purges whenever the daemon is up (a laptop is rarely on
at 3 a.m.) and launches no run, so it adds nothing to the history it trims.
"""

import os
from datetime import UTC, datetime, timedelta

import dagster as dg
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable
from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage

from pipeline.settings import DEFAULT_DAGSTER_RETENTION_DAYS

HOUSEKEEPING_INTERVAL_S = 3600
# Runs deleted per evaluation: a backlog is worked off over a few hours rather than in one
# evaluation that outlives the sensor's gRPC timeout (60 s).
PURGE_BATCH = 500
FINISHED = [
    dg.DagsterRunStatus.SUCCESS,
    dg.DagsterRunStatus.FAILURE,
    dg.DagsterRunStatus.CANCELED,
]


class DagsterRetention(dg.ConfigurableResource):  # type: ignore[type-arg]
    """How long the Dagster instance keeps finished runs.

    Attributes:
        days: runs created longer ago than this are deleted.
        batch: at most this many runs are deleted per housekeeping pass.
    """

    days: int = DEFAULT_DAGSTER_RETENTION_DAYS
    batch: int = PURGE_BATCH


def purge_runs(instance: dg.DagsterInstance, *, created_before: datetime, limit: int) -> list[str]:
    """Delete up to `limit` finished runs created before `created_before`, oldest first.

    Returns:
        The ids of the deleted runs.
    """
    records = instance.get_run_records(
        filters=dg.RunsFilter(created_before=created_before, statuses=FINISHED),
        limit=limit,
        ascending=True,
    )
    deleted = []
    for record in records:
        run_id = record.dagster_run.run_id
        instance.delete_run(run_id)
        instance.compute_log_manager.delete_logs(prefix=[run_id])
        _remove_run_event_file(instance, run_id)
        deleted.append(run_id)
    _delete_check_executions(instance, deleted)
    return deleted


def purge_automation_evaluations(instance: dg.DagsterInstance, *, before: datetime) -> None:
    """Delete the declarative-automation evaluation records older than `before`."""
    storage = instance.schedule_storage
    if storage is not None and storage.supports_auto_materialize_asset_evaluations:
        storage.purge_asset_evaluations(before=before.timestamp())


def _delete_check_executions(instance: dg.DagsterInstance, run_ids: list[str]) -> None:
    # `delete_run` leaves each run's rows (one per check) in the check-history table, ≈ 2.6 MB a
    # day here. Dagster has no public call for them: this is its own table, on every SQL storage.
    storage = instance.event_log_storage
    if not run_ids or not isinstance(storage, SqlEventLogStorage):
        return
    table = AssetCheckExecutionsTable
    with storage.index_connection() as conn:
        conn.execute(table.delete().where(table.c.run_id.in_(run_ids)))


def _remove_run_event_file(instance: dg.DagsterInstance, run_id: str) -> None:
    # SQLite event-log storage keeps one file per run; other storages have no such file.
    path_for_shard = getattr(instance.event_log_storage, "path_for_shard", None)
    if path_for_shard is None:
        return
    path = str(path_for_shard(run_id))
    for leftover in (path, f"{path}-wal", f"{path}-shm"):
        if os.path.isfile(leftover):
            os.remove(leftover)


@dg.sensor(
    minimum_interval_seconds=HOUSEKEEPING_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Deletes finished runs older than the retention (7 days by default), with "
    "their event logs and captured logs, so the Dagster instance stays bounded.",
)
def dagster_housekeeping(
    context: dg.SensorEvaluationContext, dagster_retention: DagsterRetention
) -> dg.SkipReason:
    """Purge one batch of old runs; the tick's message says how many went."""
    cutoff = datetime.now(UTC) - timedelta(days=dagster_retention.days)
    deleted = purge_runs(context.instance, created_before=cutoff, limit=dagster_retention.batch)
    purge_automation_evaluations(context.instance, before=cutoff)
    return dg.SkipReason(
        f"deleted {len(deleted)} runs created before {cutoff:%Y-%m-%d %H:%M} UTC "
        f"(retention {dagster_retention.days} days)"
    )
