"""Benchmark: the warehouse and its refresh at 1 M and 10 M observations (and more on request).

Each step runs in its own process so its peak memory (max RSS) is its own:
1. `load`: generate an observation log (vectorised polars: orders polled every 5 s until they
   resolve) and bulk-load all but its last minute into a fresh DuckDB warehouse through Arrow;
2. `full`: the first refresh (status history, rollups, records, every analytics table) and the
   first publish (a full copy);
3. `tick`: two writes of a quarter minute each, each followed by the incremental refresh (the
   second is the steady state);
4. `report`: bring the published copy up to date and render the HTML report;
5. `command`: a second tick, then `pipeline refresh` as its own process (everything a cron
   refresh does, end to end, with the process's start-up);
6. `notebook`: the notebook (`notebooks/order_outcomes.ipynb`) executed top to bottom against
   the published copy, as Jupyter would (`notebook_scale.py`): its time and its kernel's peak;
7. `prune`: retention moves the polls older than `PRUNE_AFTER` to the Parquet archive
   (`pipeline.retention`): its time, and the bytes per observation in the warehouse before and
   after and in the archive.

Usage:
    .venv/bin/python bench/analytics_scale.py                        # 1 M and 10 M
    .venv/bin/python bench/analytics_scale.py --sizes 20000000 --out scale-20m.json
    .venv/bin/python bench/analytics_scale.py --sizes 100000000 \
        --out bench/results/analytics_scale_100m.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
from notebook_scale import kernel_env, run_notebook
from own_process import run_measured
from results_file import write_results

from pipeline.derived import (
    refresh_derived,
    refresh_rollups,
    refresh_status_history,
    write_metrics,
)
from pipeline.providers.registry import PROVIDERS, default_kind
from pipeline.report import build_report
from pipeline.retention import prune
from pipeline.warehouse import Warehouse, append
from pipeline.warehouse.publish import publish_copy
from pipeline.warehouse.schema import OBSERVATION_COLUMNS, ORDER_COLUMNS

RESULTS = Path(__file__).with_name("results") / "analytics_scale.json"
SIZES = (1_000_000, 10_000_000)
POLL_EVERY_S = 5
POLLS_PER_ORDER = 40  # mean; sets orders = size / POLLS_PER_ORDER
CHUNK_ROWS = 4_000_000
"""Observations generated and loaded at once (bounds the load step's memory)."""
START = datetime(2026, 1, 1, tzinfo=UTC)
AS_OF = START + timedelta(days=1, hours=1)
"""Where the scorecard's windows end: just after the generated day."""
TICK = "tick.parquet"
COMMAND_TICK = "command_tick.parquet"
PUBLISHED = Path("published") / "warehouse.duckdb"
"""Where `pipeline refresh` keeps the published copy (`Settings.published_path`)."""
PRUNE_AFTER = timedelta(hours=12)
"""The `prune` step keeps this much of the log (about half of it moves)."""


def generate(
    size: int, seed: int = 1, *, first_order: int = 0, span_s: tuple[int, int] = (0, 86_400)
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Orders and about `size` observations: pending, processing, then a terminal state.

    Orders are numbered from `first_order` and created within `span_s` (seconds into the day),
    so a large log can be made a time slice at a time (`load_chunks`).
    """
    n_orders = size // POLLS_PER_ORDER
    rng = pl.int_range(n_orders, eager=True).shuffle(seed=seed)
    orders = pl.DataFrame(
        {"n": pl.int_range(first_order, first_order + n_orders, eager=True)}
    ).with_columns(
        provider=pl.lit(pl.Series(PROVIDERS)).gather(pl.col("n") % len(PROVIDERS)),
        order_id=pl.format("o-{}", pl.col("n")),
        created_s=(span_s[0] + rng * 7919 % (span_s[1] - span_s[0])).cast(pl.Int64),
        pay_s=(rng * 31 % 60 + 5).cast(pl.Int64),
        event_s=(rng * 97 % (2 * POLLS_PER_ORDER * POLL_EVERY_S - 80) + 70).cast(pl.Int64),
        outcome=pl.when(rng % 10 < 7).then(pl.lit("completed")).otherwise(pl.lit("expired")),
    )
    orders = orders.with_columns(
        order_kind=pl.col("provider").replace_strict(
            {slug: default_kind(slug) for slug in PROVIDERS}
        ),
        registered_at=pl.lit(START) + pl.duration(seconds=pl.col("created_s")),
    )
    polls = (
        orders.select(
            "provider",
            "order_id",
            "order_kind",
            "registered_at",
            "pay_s",
            "event_s",
            "outcome",
            k=pl.int_ranges(0, pl.col("event_s") // POLL_EVERY_S + 2),
        )
        .explode("k")
        .with_columns(t=pl.col("k") * POLL_EVERY_S)
        .with_columns(
            polled_at=pl.col("registered_at") + pl.duration(seconds=pl.col("t")),
            state=pl.when(pl.col("t") < pl.col("pay_s"))
            .then(pl.lit("pending"))
            .when(pl.col("t") < pl.col("event_s"))
            .then(pl.lit("processing"))
            .otherwise(pl.col("outcome")),
            http_status=pl.lit(200, pl.Int32),
            latency_ms=pl.lit(12.0),
            attempt=pl.lit(1, pl.Int32),
        )
        .with_columns(
            is_terminal=pl.col("state").is_in(["completed", "expired"]),
            observation_id=pl.format("{}-{}", pl.col("order_id"), pl.col("k")),
        )
    )
    observations = polls.select(
        [
            (pl.col(c) if c in polls.columns else pl.lit(None)).cast(t).alias(c)
            for c, t in OBSERVATION_COLUMNS.items()
        ]
    )
    orders_frame = orders.select(
        [
            (pl.col(c) if c in orders.columns else pl.lit(None)).cast(t).alias(c)
            for c, t in ORDER_COLUMNS.items()
        ]
    )
    # A log grows in time order: each tick appends the polls just made.
    return orders_frame, observations.sort("polled_at")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def step_load(size: int, workdir: Path) -> dict[str, float]:
    """Generate the log and bulk-load all of it but its last minute (kept for the tick step),
    `CHUNK_ROWS` observations (a slice of the day) at a time, in time order as a log grows."""
    chunks = max(1, -(-size // CHUNK_ROWS))
    warehouse = Warehouse(workdir / "warehouse.duckdb")
    generated = seconds = 0.0
    n_orders = n_observations = loaded_rows = 0
    for chunk in range(chunks):
        started = time.perf_counter()
        span = (86_400 * chunk // chunks, 86_400 * (chunk + 1) // chunks)
        orders, observations = generate(
            size // chunks, seed=1 + chunk, first_order=n_orders, span_s=span
        )
        if chunk == chunks - 1:
            newest = observations["polled_at"].max()
            assert isinstance(newest, datetime)
            cut = newest - timedelta(minutes=1)
            # Two ticks: the first half of the last minute for the `tick` step, the second
            # for `command`.
            halfway = cut + timedelta(seconds=30)
            polled = pl.col("polled_at")
            observations.filter(polled > cut, polled <= halfway).write_parquet(workdir / TICK)
            observations.filter(polled > halfway).write_parquet(workdir / COMMAND_TICK)
            observations_loaded = observations.filter(pl.col("polled_at") <= cut)
        else:
            observations_loaded = observations
        generated += time.perf_counter() - started
        started = time.perf_counter()
        with warehouse.transaction() as con:
            append(con, "orders", orders)
            append(con, "observations", observations_loaded)
        seconds += time.perf_counter() - started
        n_orders += orders.height
        n_observations += observations.height
        loaded_rows += observations_loaded.height
        del orders, observations, observations_loaded
    return {
        "generate_s": generated,
        "load_s": seconds,
        "load_rows_per_s": loaded_rows / seconds,
        "observations": float(n_observations),
        "orders": float(n_orders),
        "bytes_per_observation": (workdir / "warehouse.duckdb").stat().st_size / loaded_rows,
        "peak_rss_mb": _peak_mb(),
    }


def step_full(workdir: Path) -> dict[str, float]:
    """The first refresh (history, rollups, records and every analytics table from the whole
    log), then the first publish, which copies the whole database, and a second one, which
    makes the other of the two published copies (later publishes update one in place)."""
    warehouse = Warehouse(workdir / "warehouse.duckdb")
    started = time.perf_counter()
    refresh_derived(warehouse, as_of=AS_OF)
    seconds = time.perf_counter() - started
    peak = _peak_mb()
    started = time.perf_counter()
    published = publish_copy(warehouse, workdir / PUBLISHED)
    assert published.full
    first_publish_s = time.perf_counter() - started
    started = time.perf_counter()
    assert not publish_copy(warehouse, workdir / PUBLISHED).full
    return {
        "seconds": seconds,
        "peak_rss_mb": peak,
        "first_publish_s": first_publish_s,
        "second_publish_s": time.perf_counter() - started,
        "first_publish_peak_rss_mb": _peak_mb(),
    }


def step_tick(workdir: Path) -> dict[str, float]:
    """The first half of the log's last half minute arrives as one tick's write, then the
    incremental refresh; then the second half and a refresh again. The first refresh after a
    full build also pays DuckDB's one-time tidying of the rebuilt tables when it commits (the
    checkpoint: 0.28 s at 11.9 M observations, 0.02 s on the tick after), so the second is
    the steady state, reported unprefixed; the first is `first_*`."""
    tick = pl.read_parquet(workdir / TICK)
    middle = tick["polled_at"].min() + (tick["polled_at"].max() - tick["polled_at"].min()) / 2  # type: ignore[operator]
    polled = pl.col("polled_at")
    first = _tick(workdir, tick.filter(polled <= middle))
    steady = _tick(workdir, tick.filter(polled > middle))
    return {
        **steady,
        **{f"first_{name}": value for name, value in first.items()},
        "peak_rss_mb": _peak_mb(),
    }


def _tick(workdir: Path, tick: pl.DataFrame) -> dict[str, float]:
    """One tick's write, then the refresh, timed to the end of its commit and close."""
    warehouse = Warehouse(workdir / "warehouse.duckdb")
    started = time.perf_counter()
    with warehouse.transaction() as con:
        opened = time.perf_counter() - started
        started = time.perf_counter()
        append(con, "observations", tick)
        written = time.perf_counter() - started
    refresh_started = started = time.perf_counter()
    with warehouse.transaction() as con:
        history = refresh_status_history(con)
        rollups = refresh_rollups(con)
        history_s = time.perf_counter() - started
        started = time.perf_counter()
        write_metrics(con, as_of=AS_OF)
        metrics_s = time.perf_counter() - started
        started = time.perf_counter()
    return {
        "tick_observations": float(tick.height),
        "open_s": opened,
        "write_s": written,
        "history_and_rollups_s": history_s,
        "metrics_s": metrics_s,
        "commit_s": time.perf_counter() - started,
        "refresh_s": time.perf_counter() - refresh_started,
        "history_rows_read": float(history.new_observations),
        "rollup_rows_read": float(rollups.observations_read),
    }


def step_report(workdir: Path) -> dict[str, float]:
    """Publish the read-only copy after the tick (the copy a publish behind brought up to date
    in place) and render the HTML report from it."""
    started = time.perf_counter()
    published = publish_copy(Warehouse(workdir / "warehouse.duckdb"), workdir / PUBLISHED)
    publish_s = time.perf_counter() - started
    assert not published.full
    started = time.perf_counter()
    build_report(published.path, workdir / "report.html", generated_at=AS_OF)
    return {
        "publish_s": publish_s,
        "publish_rows_added": float(published.rows_added),
        "report_s": time.perf_counter() - started,
        "peak_rss_mb": _peak_mb(),
    }


def step_prune(workdir: Path) -> dict[str, float]:
    """Move the polls older than `PRUNE_AFTER` (before the newest) to the Parquet archive."""
    path = workdir / "warehouse.duckdb"
    warehouse = Warehouse(path)
    before = warehouse.read("SELECT count(*) AS n, max(polled_at) AS newest FROM observations")
    rows, newest = before.row(0)
    size_before = path.stat().st_size
    started = time.perf_counter()
    result = prune(warehouse, newest - PRUNE_AFTER, workdir / "archive")
    seconds = time.perf_counter() - started
    archived = sum(f.stat().st_size for f in (workdir / "archive").rglob("*.parquet"))
    kept = rows - result.observations
    return {
        "seconds": seconds,
        "observations_moved": float(result.observations),
        "moved_rows_per_s": result.observations / seconds,
        "warehouse_bytes_per_observation_before": size_before / rows,
        # The file keeps its size after a delete; the blocks it frees are reused by new rows.
        "warehouse_bytes_per_observation_after": path.stat().st_size / max(kept, 1),
        "archive_bytes_per_observation": archived / max(result.observations, 1),
        "peak_rss_mb": _peak_mb(),
    }


def step_command(workdir: Path) -> dict[str, float]:
    """A second tick's polls arrive, then `pipeline refresh` runs as its own process, as from
    cron: fold, history, records, analytics, alerts, publish and report, start to end."""
    with Warehouse(workdir / "warehouse.duckdb").transaction() as con:
        append(con, "observations", pl.read_parquet(workdir / COMMAND_TICK))
    return run_measured(
        [sys.executable, "-m", "pipeline.cli", "refresh"],
        env={**os.environ, "PIPELINE_DATA_DIR": str(workdir)},
    )


def step_notebook(workdir: Path) -> dict[str, float]:
    """The notebook, top to bottom in a new kernel, against the published copy the `command`
    step left: its time and the kernel's own peak memory."""
    os.environ["PIPELINE_DATA_DIR"] = str(workdir)
    with tempfile.TemporaryDirectory() as scratch:
        kernel_env(Path(scratch))
        found = run_notebook()
    return {"seconds": found["seconds"], "peak_rss_mb": found["kernel_peak_rss_mb"]}


STEPS = ("load", "full", "tick", "report", "command", "notebook", "prune")


def run_size(size: int) -> dict[str, dict[str, float]]:
    """Every step for one size, each in its own process so its peak memory is its own."""
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for step in STEPS:
            out = subprocess.run(
                [sys.executable, __file__, "--size", str(size), "--step", step, "--dir", tmp],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            results[step] = json.loads(out.strip().splitlines()[-1])
            print(size, step, results[step], flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    parser.add_argument("--size", type=int, help="with --step: the size being run")
    parser.add_argument("--step", choices=STEPS, help="run one step in this process")
    parser.add_argument("--dir", type=Path, help="with --step: the working directory")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.step:
        if args.step == "load":
            result = step_load(args.size, args.dir)
        else:
            steps = {
                "full": step_full,
                "tick": step_tick,
                "report": step_report,
                "command": step_command,
                "notebook": step_notebook,
                "prune": step_prune,
            }
            result = steps[args.step](args.dir)
        print(json.dumps(result))
        return
    results = {str(size): run_size(size) for size in args.sizes}
    command = "python bench/analytics_scale.py --sizes " + " ".join(map(str, args.sizes))
    write_results(args.out, command, results=results)


if __name__ == "__main__":
    main()
