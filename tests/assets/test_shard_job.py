"""The Dagster job `poll_shard` in real runs against the sandbox: each run polls only its own
shard's orders into the poll log (a folder, or a bucket of an S3-compatible server on loopback
named by the warehouse resource), and the derived refresh folds both shards' answers in once."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest
from live_sandbox import live_sandbox, track
from object_store import BUCKET, s3_bucket

from pipeline.assets.resources import ProvidersResource, WarehouseResource
from pipeline.assets.shards import poll_shard_job
from pipeline.derived import refresh_derived
from pipeline.polllog import fold_log, log_files
from pipeline.providers.registry import PROVIDERS
from pipeline.settings import Settings
from pipeline.sharding import Shard
from pipeline.warehouse import Warehouse

ORDERS_PER_PROVIDER = 4
WINDOW_S = 4.0


def _run(
    shard: str, data_dir: Path, url: str, instance: dg.DagsterInstance, log_url: str | None
) -> dg.ExecuteInProcessResult:
    return poll_shard_job.execute_in_process(
        run_config={
            "ops": {
                "poll_orders_shard": {
                    "config": {"shard": shard, "window_s": WINDOW_S, "tick_s": 1.0}
                }
            }
        },
        resources={
            "warehouse": WarehouseResource(
                data_dir=str(data_dir), lock_timeout_s=10.0, log_url=log_url
            ),
            "providers": ProvidersResource(sandbox_url=url),
        },
        instance=instance,
        raise_on_error=False,
    )


@pytest.mark.parametrize("where", ["folder", "object store"])
def test_each_shard_run_polls_its_own_orders_into_the_log(
    tmp_path: Path, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with live_sandbox() as live, dg.instance_for_test() as instance, ExitStack() as stack:
        log_url = None
        if where == "object store":
            for name, value in stack.enter_context(s3_bucket()).items():
                monkeypatch.setenv(name, value)
            log_url = f"s3://{BUCKET}/dagster/log"
        settings = Settings.from_env(
            {"PIPELINE_DATA_DIR": str(tmp_path), "PIPELINE_LOG_URL": log_url or ""}
        )
        warehouse = Warehouse(settings.warehouse_path)
        tracked = track(warehouse, live.url, dict.fromkeys(PROVIDERS, ORDERS_PER_PROVIDER))
        runs = [_run(f"{k}/2", tmp_path, live.url, instance, log_url) for k in range(2)]
        assert all(run.success for run in runs)
        bad = _run("2/2", tmp_path, live.url, instance, log_url)
        assert not bad.success  # no such shard: the run fails, saying why
        assert "need 0 <= K < N" in str(bad.all_events)

        log = (
            pl.scan_parquet(
                f"{log_url or settings.log_dir}/observations/**/*.parquet", hive_partitioning=True
            )
            .select("provider", "order_id")
            .unique()
            .collect()
        )
        assert set(log.iter_rows()) == {(o.provider, o.order_id) for o in tracked}
        if log_url is not None:  # and nothing went to the data folder's log
            assert not list(settings.log_dir.rglob("*.parquet"))
        for k in range(2):
            shard = Shard(k, 2)
            state = duckdb.connect(str(shard.state_path(tmp_path)), read_only=True)
            foreign = state.sql(f"SELECT count(*) FROM orders WHERE NOT ({shard.owns_sql})")
            assert foreign.fetchall() == [(0,)]
            assert state.sql("SELECT count(*) FROM order_tracking").fetchall()[0][0] > 0
            state.close()
        assert warehouse.read("SELECT count(*) AS n FROM observations")["n"].item() == 0

        assert fold_log(warehouse, settings.poll_log()).error is None
        refresh_derived(warehouse)
        stored = warehouse.read(
            "SELECT count(*) AS n, count(DISTINCT observation_id) AS ids FROM observations"
        )
        assert stored["n"].item() == stored["ids"].item() > 0
        assert log_files(settings.poll_log()) == []
