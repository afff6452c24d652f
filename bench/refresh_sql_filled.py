"""Benchmark: `pipeline refresh` on a warehouse filled by plain SQL, as a team migrating its own
poll history would fill it (documented columns only, 12 polls per order, 18 months of orders).

`analytics_scale.py` generates polls the way the poller writes them (40 per order, a day);
this one is order-heavy and long: many orders, few polls each, over 18 months, so the costs
that follow orders (status history, per-order records, expiry by hour of creation, the
published copy's tables of order rows) dominate. For each size:

1. `fill`: a fresh warehouse (migrations applied) filled by two `INSERT ... SELECT` statements:
   orders made evenly over 18 months, each polled 12 times 15 s apart (pending, processing,
   then completed, expired or still open; `--polls-per-order` for another count, at least
   6); their ids are hex digests in no order, as providers' ids are (ids in registration
   order let DuckDB skip row groups by their bounds);
2. `full`: `pipeline refresh` as its own process (the first one: history, rollups, records,
   analytics, alerts, the first publish and the report);
3. `tick`: 1,000 polls newer than the newest arrive by SQL, then `pipeline refresh` again;
4. `next_tick`: the same with 1,000 other orders: the steady state, where the publish updates
   the copy a publish behind in place (after `tick` it had to make that copy first).

Each refresh is timed from outside and its peak memory is its own (`own_process.run_measured`:
this process holds gigabytes after the fill, which a child forked from it would report).

Usage:
    .venv/bin/python bench/refresh_sql_filled.py                         # 2 M and 20 M
    .venv/bin/python bench/refresh_sql_filled.py --orders 8300000 \\
        --out bench/results/refresh_sql_filled_100m.json                 # 100 M observations
    .venv/bin/python bench/refresh_sql_filled.py --orders 20000 --keep kept  # in kept/20000
    .venv/bin/python bench/refresh_sql_filled.py --orders 16600000 --polls-per-order 6 \
        --out bench/results/refresh_sql_filled_100m_6_polls.json       # twice the orders
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import duckdb
from own_process import run_measured
from results_file import write_results

from pipeline.providers.registry import PROVIDERS, default_kind
from pipeline.warehouse import Warehouse

RESULTS = Path(__file__).with_name("results") / "refresh_sql_filled.json"
ORDERS = (170_000, 1_700_000)
"""Orders per run: 2.04 M and 20.4 M observations."""
POLLS_PER_ORDER = 12
"""Polls per order by default (`--polls-per-order`, at least 6: four pending, then processing)."""
SPAN_S = 548 * 86_400
"""Orders are made evenly over 18 months, as at the 100 M target (200 k polls a day)."""
POLL_EVERY_S = 15
TICK_POLLS = 1_000


def fill(data_dir: Path, n_orders: int, polls: int = POLLS_PER_ORDER) -> dict[str, float]:
    """A new warehouse in `data_dir` holding `n_orders` orders and `polls` polls of each."""
    Warehouse(data_dir / "warehouse.duckdb").initialise()
    providers = [(slug, default_kind(slug)) for slug in PROVIDERS]
    started = time.perf_counter()
    con = _connect(data_dir)
    con.execute("CREATE TEMP TABLE kinds (k INTEGER, provider VARCHAR, order_kind VARCHAR)")
    con.executemany(
        "INSERT INTO kinds VALUES (?, ?, ?)", [(k, *p) for k, p in enumerate(providers)]
    )
    con.execute(
        f"""
        INSERT INTO orders (provider, order_id, order_kind, registered_at, created_at, source)
        SELECT provider, md5('order-' || i), order_kind, made_at, made_at, 'sql'
        FROM (SELECT i, TIMESTAMPTZ '2025-01-01' + to_seconds(i * {SPAN_S / n_orders}) AS made_at,
                     hash(i) % {len(providers)} AS k FROM range(?) r(i))
        JOIN kinds USING (k)
        """,
        [n_orders],
    )
    last = polls - 1
    # One order in ten stays open; of the rest, one in seven expires and the others complete.
    con.execute(
        f"""
        INSERT INTO observations (observation_id, provider, order_id, order_kind, polled_at,
            attempt, http_status, latency_ms, state, provider_status, is_terminal, is_success,
            has_code)
        SELECT md5(order_id || '-' || k), provider, order_id, order_kind,
            registered_at + to_seconds(k * {POLL_EVERY_S} + 3), 1, 200,
            50 + hash(order_id, k) % 200, state, state, is_terminal, state = 'completed', false
        FROM (
            SELECT o.*, k, k = {last} AND NOT open AS is_terminal,
                CASE WHEN k < 4 THEN 'pending' WHEN k < {last} OR open THEN 'processing'
                     WHEN hash(order_id) % 7 = 0 THEN 'expired' ELSE 'completed' END AS state
            FROM (SELECT *, hash(order_id) % 10 = 0 AS open FROM orders) o,
                 range({polls}) r(k)
        )
        """
    )
    observations = con.execute("SELECT count(*) FROM observations").fetchone()[0]  # type: ignore[index]
    con.close()
    seconds = time.perf_counter() - started
    return {
        "orders": float(n_orders),
        "observations": float(observations),
        "fill_s": seconds,
        "fill_rows_per_s": observations / seconds,
    }


def _connect(data_dir: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"))
    con.execute("SET TimeZone = 'UTC'")  # the literals above are UTC times
    return con


def add_tick(data_dir: Path, tick: int = 0, old_orders: int = 0) -> None:
    """`TICK_POLLS` polls by SQL, 5 s after the newest poll, each completing its order: of the
    newest orders still open (skipping the `tick` × `TICK_POLLS` newest, polled by earlier
    ticks), and with `old_orders` of them instead of orders drawn from the whole history (a
    late poll of an old order, or a long-running one polled again)."""
    con = _connect(data_dir)
    con.execute(
        f"""
        INSERT INTO observations (observation_id, provider, order_id, order_kind, polled_at,
            attempt, http_status, latency_ms, state, provider_status, is_terminal, is_success,
            has_code)
        SELECT md5('tick-' || ? || '-' || order_id), provider, order_id, order_kind,
            (SELECT max(polled_at) FROM observations) + INTERVAL 5 SECOND, 1, 200, 60,
            'completed', 'completed', true, true, false
        FROM (
            (SELECT provider, order_id, order_kind FROM orders WHERE hash(order_id) % 10 = 0
             ORDER BY registered_at DESC LIMIT ? OFFSET ?)
            UNION
            (SELECT provider, order_id, order_kind FROM orders
             USING SAMPLE reservoir({int(old_orders)} ROWS) REPEATABLE ({int(tick)}))
        )
        """,
        [tick, TICK_POLLS - old_orders, tick * TICK_POLLS],
    )
    con.close()


def refresh(data_dir: Path) -> dict[str, float]:
    """`pipeline refresh` as its own process: seconds and its own peak RSS."""
    return run_measured(
        [sys.executable, "-m", "pipeline.cli", "refresh"],
        env={**os.environ, "PIPELINE_DATA_DIR": str(data_dir)},
    )


def run(
    n_orders: int, keep: Path | None = None, polls: int = POLLS_PER_ORDER
) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        if keep is not None:  # a new folder, so no earlier run's files are counted
            data_dir = keep / str(n_orders)
            data_dir.mkdir(parents=True)
        results = {"fill": fill(data_dir, n_orders, polls)}
        print(n_orders, "fill", results["fill"], flush=True)
        results["full"] = refresh(data_dir)
        print(n_orders, "full", results["full"], flush=True)
        add_tick(data_dir)
        results["tick"] = refresh(data_dir)
        print(n_orders, "tick", results["tick"], flush=True)
        add_tick(data_dir, 1)
        results["next_tick"] = refresh(data_dir)
        print(n_orders, "next_tick", results["next_tick"], flush=True)
        results["files"] = {
            "warehouse_bytes_per_observation": (data_dir / "warehouse.duckdb").stat().st_size
            / results["fill"]["observations"],
            "published_mb": (data_dir / "published" / "warehouse.duckdb").stat().st_size / 1e6,
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, nargs="*", default=list(ORDERS))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--keep", type=Path, help="build each warehouse in DIR/<orders> and leave it there"
    )
    parser.add_argument("--polls-per-order", type=int, default=POLLS_PER_ORDER)
    args = parser.parse_args()
    if args.polls_per_order < 6:
        parser.error("--polls-per-order: at least 6 (four pending, then processing)")
    results = {str(n): run(n, args.keep, args.polls_per_order) for n in args.orders}
    # Where a kept warehouse went is this machine's business, not the result's.
    command = "python " + " ".join(
        "DIR" if args.keep and arg == str(args.keep) else arg for arg in sys.argv
    )
    write_results(args.out, command, results=results)


if __name__ == "__main__":
    main()
