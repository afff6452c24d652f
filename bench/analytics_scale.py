"""Benchmark: full analytics over 1 M and 10 M observations, and the incremental cost of a tick.

Each size runs in its own process so its peak memory (max RSS) is its own. For each size:
1. generate an observation log (vectorised polars: orders polled every 5 s until they resolve),
2. load it into a fresh DuckDB warehouse through Arrow,
3. full refresh: build `status_history` from the whole log, then every analytics table,
4. the log's last minute arrives as one tick, then the incremental refresh.

Usage:
    .venv/bin/python bench/analytics_scale.py                 # both sizes, writes the results
    .venv/bin/python bench/analytics_scale.py --size 1000000  # one size, prints JSON
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from pipeline.derived import compute_metrics, refresh_status_history
from pipeline.providers.registry import PROVIDERS, default_kind
from pipeline.warehouse import Warehouse, append, replace_table
from pipeline.warehouse.schema import OBSERVATION_COLUMNS, ORDER_COLUMNS

RESULTS = Path(__file__).with_name("results") / "analytics_scale.json"
SIZES = (1_000_000, 10_000_000)
POLL_EVERY_S = 5
POLLS_PER_ORDER = 40  # mean; sets orders = size / POLLS_PER_ORDER
START = datetime(2026, 1, 1, tzinfo=UTC)


def generate(size: int, seed: int = 1) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Orders and about `size` observations: pending, processing, then a terminal state."""
    n_orders = size // POLLS_PER_ORDER
    rng = pl.int_range(n_orders, eager=True).shuffle(seed=seed)
    orders = pl.DataFrame({"n": pl.int_range(n_orders, eager=True)}).with_columns(
        provider=pl.lit(pl.Series(PROVIDERS)).gather(pl.col("n") % len(PROVIDERS)),
        order_id=pl.format("o-{}", pl.col("n")),
        created_s=(rng * 7919 % (24 * 3600)).cast(pl.Int64),
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
    return orders_frame, observations


def run_size(size: int) -> dict[str, float]:
    """Time every phase for one size; returns seconds and peak memory."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    orders, observations = generate(size)
    timings["generate_s"] = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        warehouse = Warehouse(Path(tmp) / "warehouse.duckdb")
        # The last minute of the log arrives later, as one tick.
        cut = observations["polled_at"].max() - pl.duration(minutes=1)  # type: ignore[operator]
        tick = observations.filter(pl.col("polled_at") > cut)
        started = time.perf_counter()
        with warehouse.transaction() as con:
            append(con, "orders", orders)
            append(con, "observations", observations.filter(pl.col("polled_at") <= cut))
        timings["load_s"] = time.perf_counter() - started

        with warehouse.transaction() as con:
            started = time.perf_counter()
            refresh_status_history(con)
            timings["full_history_s"] = time.perf_counter() - started
            started = time.perf_counter()
            for table, frame in compute_metrics(con).items():
                replace_table(con, table, frame)
            timings["full_metrics_s"] = time.perf_counter() - started

        with warehouse.transaction() as con:
            append(con, "observations", tick)
            started = time.perf_counter()
            update = refresh_status_history(con)
            timings["tick_history_s"] = time.perf_counter() - started
            started = time.perf_counter()
            for table, frame in compute_metrics(con).items():
                replace_table(con, table, frame)
            timings["tick_metrics_s"] = time.perf_counter() - started
        timings["tick_observations"] = float(update.new_observations)
    timings["observations"] = float(observations.height)
    timings["orders"] = float(orders.height)
    timings["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, help="run one size in this process, print JSON")
    args = parser.parse_args()
    if args.size:
        print(json.dumps(run_size(args.size)))
        return
    results = {}
    for size in SIZES:
        out = subprocess.run(
            [sys.executable, __file__, "--size", str(size)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        results[str(size)] = json.loads(out.strip().splitlines()[-1])
        print(size, results[str(size)])
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "command": ".venv/bin/python bench/analytics_scale.py",
                "machine": f"{platform.machine()}, {platform.python_version()}, 2 cores",
                "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
