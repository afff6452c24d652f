"""Sharded polling: two `pipeline poll --shard K/2` processes and a reader run at once against
the sandbox over loopback TCP, with no lock error anywhere; each shard polls only its own
orders, the log holds every answer once, and `pipeline refresh` folds it into the warehouse,
where the same queries as always find each observation once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl
import pytest
from live_sandbox import live_sandbox, track
from object_store import BUCKET, s3_bucket

from pipeline.polllog import log_files
from pipeline.providers.registry import PROVIDERS
from pipeline.settings import Settings
from pipeline.sharding import Shard
from pipeline.warehouse import Warehouse

ORDERS_PER_PROVIDER = 8
POLL_S = 8.0
TIMEOUT_S = 180

READER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import duckdb
    import polars as pl
    log, warehouse, stop = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    until = time.monotonic() + 120
    seen, reads, last = 0, 0, False
    while not last and time.monotonic() < until:
        last = stop.exists()  # the pollers are done: one more read, which sees all they wrote
        if "://" in log:  # an object store: polars reads it, with the store's variables
            try:
                rows = pl.scan_parquet(
                    f"{log}/observations/**/*.parquet", hive_partitioning=True
                ).select(pl.len()).collect().item()
            except pl.exceptions.ComputeError as error:
                if "expanded paths were empty" not in str(error):
                    raise
                rows = 0  # nothing written yet
        else:
            rows = duckdb.sql(
                f"SELECT count(*) FROM read_parquet('{log}/observations/**/*.parquet', "
                "hive_partitioning = true)"
            ).fetchall()[0][0] if any(Path(log).rglob("*.parquet")) else 0
        assert rows >= seen, (rows, seen)  # the log only grows while nobody folds it
        seen = rows
        con = duckdb.connect(warehouse, read_only=True)  # the warehouse stays readable
        con.execute("SELECT count(*) FROM orders").fetchall()
        con.close()
        reads += 1
        time.sleep(0.2)
    print(f"reads={reads} rows={seen}")
    """
)


def _env(data_dir: Path, sandbox_url: str, log_env: dict[str, str]) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "PIPELINE_DATA_DIR": str(data_dir),
        "PIPELINE_SANDBOX_URL": sandbox_url,
        "PIPELINE_LOCK_TIMEOUT_S": "5",
        "MPLCONFIGDIR": str(data_dir / ".mpl"),
        **log_env,
    }


def _pipeline(
    data_dir: Path, url: str, log_env: dict[str, str], *args: str
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=data_dir,
        env=_env(data_dir, url, log_env),
    )


@contextmanager
def _log_location(where: str) -> Iterator[dict[str, str]]:
    """The variables that put the poll log in `where`: the data folder (none), or a bucket of
    an S3-compatible server on loopback."""
    if where == "folder":
        yield {}
        return
    with s3_bucket() as env:
        yield {**env, "PIPELINE_LOG_URL": f"s3://{BUCKET}/shared/log"}


def _finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=TIMEOUT_S)
    return process.returncode, out, err


@pytest.mark.parametrize("where", ["folder", "object store"])
def test_two_shards_and_a_reader_run_at_once_without_lock_errors_or_duplicates(
    tmp_path: Path, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with live_sandbox() as live, _log_location(where) as log_env:
        for name, value in log_env.items():  # this process reads the log too
            monkeypatch.setenv(name, value)
        settings = Settings.from_env({"PIPELINE_DATA_DIR": str(tmp_path), **log_env})
        warehouse = Warehouse(settings.warehouse_path, lock_timeout_s=5.0)
        log = settings.log_url or str(settings.log_dir)
        stop = tmp_path / "pollers-done"
        tracked = track(warehouse, live.url, dict.fromkeys(PROVIDERS, ORDERS_PER_PROVIDER))
        shards = [Shard(k, 2) for k in range(2)]
        pollers = [
            _pipeline(tmp_path, live.url, log_env, "poll", "--shard", f"{s.index}/{s.count}",
                      "--duration", str(POLL_S), "--tick", "1")
            for s in shards
        ]  # fmt: skip
        reader = subprocess.Popen(
            [sys.executable, "-c", READER, log, str(settings.warehouse_path), str(stop)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=_env(tmp_path, live.url, log_env),
        )  # fmt: skip
        finished = [_finish(p) for p in pollers]
        stop.touch()
        finished.append(_finish(reader))
        for code, out, err in finished:
            assert code == 0, out + err
            assert "lock" not in (out + err).lower(), out + err
        assert "reads=" in finished[-1][1]
        assert int(finished[-1][1].split("rows=")[1]) > 0  # the reader saw the log grow
        log_rows = (
            pl.scan_parquet(f"{log}/observations/**/*.parquet", hive_partitioning=True)
            .select("observation_id", "provider", "order_id")
            .collect()
        )
        refreshed = _finish(_pipeline(tmp_path, live.url, log_env, "refresh", "--no-alerts"))
        assert refreshed[0] == 0, refreshed[1] + refreshed[2]
        left_in_log = log_files(settings.poll_log())

    # Every answer is in the log once, and each shard asked only for its own orders.
    assert log_rows.height > 0
    assert log_rows["observation_id"].n_unique() == log_rows.height
    for shard in shards:
        state = duckdb.connect(str(shard.state_path(tmp_path)), read_only=True)
        polled = state.sql("SELECT provider, order_id FROM order_tracking").pl()
        owned = state.sql(f"SELECT count(*) FROM orders WHERE NOT ({shard.owns_sql})").fetchall()
        state.close()
        assert owned == [(0,)]
        assert polled.height > 0, f"{shard.name} polled nothing"
        for provider, order_id in polled.iter_rows():
            mine = duckdb.sql(
                f"SELECT {shard.owns_sql} FROM (SELECT ? AS provider, ? AS order_id)",
                params=[provider, order_id],
            ).fetchall()[0][0]
            assert mine, (shard.name, provider, order_id)
    assert {(o.provider, o.order_id) for o in tracked} == {
        (p, o) for p, o in log_rows.select("provider", "order_id").unique().iter_rows()
    }

    # The refresh folded the log into the warehouse (and emptied it): each row once.
    stored = warehouse.read("SELECT observation_id FROM observations")
    assert sorted(stored["observation_id"]) == sorted(log_rows["observation_id"])
    assert left_in_log == []
    history = warehouse.read("SELECT count(DISTINCT order_id) AS n FROM status_history")
    assert history["n"].item() == len({o.order_id for o in tracked})


def test_a_shard_is_named_k_of_n() -> None:
    assert Shard.parse(" 1 / 3 ") == Shard(1, 3)
    for bad in ("3/3", "1", "a/b", "-1/2"):
        with pytest.raises(ValueError):
            Shard.parse(bad)
