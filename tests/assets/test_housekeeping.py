"""Instance housekeeping: finished runs older than the retention go, with their events, captured
logs, check-history rows and (SQLite storage) their event-log file, which `delete_run` alone
leaves behind; newer runs stay whole. Runs are real ones, made by materializing a trivial asset
in a temporary instance; "older" is set by the cutoff, taken between two runs."""

import time
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from pipeline.assets.housekeeping import DagsterRetention, dagster_housekeeping, purge_runs


@dg.asset(check_specs=[dg.AssetCheckSpec("round", asset="pebble")])
def pebble(context: dg.AssetExecutionContext) -> dg.MaterializeResult:  # type: ignore[type-arg]
    context.log.info("a line for the captured logs")
    return dg.MaterializeResult(
        metadata={"size": 1}, check_results=[dg.AssetCheckResult(check_name="round", passed=True)]
    )


def _check_history(instance: dg.DagsterInstance) -> list[str]:
    key = dg.AssetCheckKey(pebble.key, "round")
    return [e.run_id for e in instance.event_log_storage.get_asset_check_execution_history(key, 10)]


def _run(instance: dg.DagsterInstance) -> str:
    return dg.materialize([pebble], instance=instance).run_id


def _event_file(instance: dg.DagsterInstance, run_id: str) -> Path:
    return Path(instance.event_log_storage.path_for_shard(run_id))  # type: ignore[attr-defined]


def _captured_logs(instance: dg.DagsterInstance, run_id: str) -> Path:
    return Path(instance.root_directory) / "storage" / run_id


def test_purge_deletes_runs_older_than_the_cutoff_and_keeps_newer_ones() -> None:
    with dg.instance_for_test() as instance:
        old = [_run(instance), _run(instance)]
        time.sleep(0.05)
        cutoff = datetime.now(UTC)
        time.sleep(0.05)
        new = _run(instance)
        assert all(_event_file(instance, r).is_file() for r in [*old, new])
        assert all(_captured_logs(instance, r).is_dir() for r in [*old, new])

        deleted = purge_runs(instance, created_before=cutoff, limit=100)

        assert sorted(deleted) == sorted(old)
        assert [r.dagster_run.run_id for r in instance.get_run_records()] == [new]
        for run_id in old:
            assert instance.get_run_by_id(run_id) is None
            assert not _event_file(instance, run_id).exists()
            assert not _captured_logs(instance, run_id).exists()
        assert instance.all_logs(new) and _event_file(instance, new).is_file()
        assert _captured_logs(instance, new).is_dir()
        latest = instance.fetch_materializations(pebble.key, limit=10).records
        assert [r.event_log_entry.run_id for r in latest] == [new]
        assert _check_history(instance) == [new]


def test_purge_takes_at_most_a_batch_oldest_first() -> None:
    with dg.instance_for_test() as instance:
        runs = [_run(instance) for _ in range(3)]
        deleted = purge_runs(instance, created_before=datetime.now(UTC), limit=2)
        assert deleted == runs[:2]
        assert [r.dagster_run.run_id for r in instance.get_run_records()] == [runs[2]]


def test_sensor_purges_by_the_configured_retention_and_launches_nothing() -> None:
    with dg.instance_for_test() as instance:
        run_id = _run(instance)
        kept = dagster_housekeeping(
            dg.build_sensor_context(
                instance=instance, resources={"dagster_retention": DagsterRetention(days=1)}
            )
        )
        assert isinstance(kept, dg.SkipReason) and "deleted 0 runs" in (kept.skip_message or "")
        assert instance.get_run_by_id(run_id) is not None
        purged = dagster_housekeeping(
            dg.build_sensor_context(
                instance=instance, resources={"dagster_retention": DagsterRetention(days=-1)}
            )
        )
        assert isinstance(purged, dg.SkipReason) and "deleted 1 runs" in (purged.skip_message or "")
        assert instance.get_run_by_id(run_id) is None
