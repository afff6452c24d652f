"""Benchmark: the product's poll path beside dlt, on one sandbox and the same orders, in one run.

The sandbox runs as its own process on 127.0.0.1 (realistic profile, OrdinalsBot's limits raised
out of the way), so its CPU is not counted. The benchmark creates 200 orders per provider through
the create endpoints, registers them, then alternates rounds of every variant, first on plain
loopback, then with the sandbox's `latency` scenario (every status answer 50–150 ms late):

- product: `run_tick` with `Poller(limits=False)` and every open order due, on the product's
  event loop: HTTP, parse, pandera validation, DuckDB write;
- dlt rest_api: dlt 1.31's `rest_api` source, one dependent resource per provider (the order
  ids come from a parent resource), raw JSON loaded into DuckDB, no parsing;
- dlt transformer, parallelized / sequential: a `@dlt.transformer` GETting each order's status
  request (built by the product's adapters) with dlt's `requests` helper, loaded into DuckDB.

Each variant runs in a process of its own, started once and kept for all its rounds, so no
variant pays for another's objects (dlt's pipelines, the product's warehouse and pools: a
garbage collection walks every object of its process) and each peak memory is its own; the
rounds still alternate, one variant at a time, so all see the same machine. Per variant: polls
per wall second, its process's CPU ms per poll (`time.process_time`, all threads), the
sandbox's CPU apart, and its process's peak resident memory. Under latency the dlt variants ask
a tenth of the orders (sequential dlt does about 9 polls/s there); the per-poll figures are
comparable, totals are not. Then one product tick runs under cProfile in the product's process.
dlt is imported only inside the functions that use it, so the product's process never loads it.

Usage:
    .venv/bin/python bench/poll_vs_dlt.py                              # full run, saves results
    .venv/bin/python bench/poll_vs_dlt.py --rounds 1 --no-save         # quick look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from poll_throughput import (
    DUE_SHIFT,
    SANDBOX_OPTIONS,
    SANDBOX_START_TIMEOUT_S,
    SEED,
    Round,
    create_orders,
    free_port,
    process_cpu_s,
    profiled_tick,
    tick_polls,
)
from results_file import write_results

from pipeline.commands import processes
from pipeline.intake import register
from pipeline.model import TrackedOrder
from pipeline.polling import event_loop
from pipeline.polling.client import MAX_CONNECTIONS, Poller
from pipeline.polling.tick import run_tick
from pipeline.polling.transport import PoolTransport
from pipeline.providers.registry import ADAPTERS
from pipeline.settings import Settings
from pipeline.warehouse import Warehouse

RESULTS = Path(__file__).with_name("results") / "poll_vs_dlt.json"
COMMAND = ".venv/bin/python bench/poll_vs_dlt.py"
ORDERS_PER_PROVIDER = 200
LOOPBACK_ROUNDS = 5
LATENCY_ROUNDS = 3
LATENCY_DLT_SHARE = 10
"""Under latency the dlt variants ask one order in this many."""
LATENCY_SCENARIO = "latency"
TARGET_LOOPBACK_RATIO = 3.0
TARGET_CPU_MS = 0.6
TARGET_LATENCY_PER_S = 1000.0
VARIANTS = ("product", "dlt_rest_api", "dlt_transformer_parallel", "dlt_transformer_sequential")


def status_requests(orders: Sequence[TrackedOrder], settings: Settings) -> list[dict[str, Any]]:
    """Each order's status request as the product's adapter builds it (URL, query, headers)."""
    rows = []
    for order in orders:
        spec = ADAPTERS[order.provider].build_request(order, settings.provider(order.provider))
        rows.append(
            {
                "provider": order.provider,
                "order_id": order.order_id,
                "url": spec.url,
                "params": dict(spec.params),
                "headers": dict(spec.headers),
            }
        )
    return rows


def rest_api_config(url: str, requests: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A `rest_api` source: per provider, a parent resource of order ids and a dependent status
    resource whose path or query takes each id, with the provider's credentials as headers."""
    import dlt

    resources: list[Any] = []
    by_provider: dict[str, list[dict[str, Any]]] = {}
    for row in requests:
        by_provider.setdefault(row["provider"], []).append(row)
    for slug, rows in by_provider.items():
        parent = f"{slug}_orders"
        sample = rows[0]
        placeholder = f"{{resources.{parent}.order_id}}"
        path = urlsplit(sample["url"]).path.lstrip("/").replace(sample["order_id"], placeholder)
        params = {
            key: placeholder if value == sample["order_id"] else value
            for key, value in sample["params"].items()
        }
        ids = [{"order_id": row["order_id"]} for row in rows]
        # One item holding every id: a dependent resource iterates each item it is given.
        resources.append(dlt.resource([ids], name=parent, selected=False))
        resources.append(
            {
                "name": f"{slug}_status",
                "endpoint": {
                    "path": path,
                    "params": params,
                    "headers": sample["headers"],
                    "paginator": "single_page",
                },
            }
        )
    return {"client": {"base_url": url}, "resources": resources}


def dlt_transformer(requests: Sequence[dict[str, Any]], *, parallelized: bool) -> Any:
    """A `@dlt.transformer` GETting every status request and yielding its JSON."""
    import dlt
    from dlt.sources.helpers import requests as dlt_requests

    @dlt.resource(name="status_requests", selected=False)
    def pending() -> Iterator[dict[str, Any]]:
        yield from requests

    @dlt.transformer(data_from=pending, name="status", parallelized=parallelized)
    def status(row: dict[str, Any]) -> Iterator[Any]:
        answer = dlt_requests.get(row["url"], params=row["params"], headers=row["headers"])
        yield dlt.mark.with_table_name(answer.json(), f"{row['provider']}_status")

    return status


class DltRunner:
    """Loads into one DuckDB file per variant; counts the polls the sandbox answered."""

    def __init__(self, directory: Path, url: str) -> None:
        self.directory = directory
        self.url = url

    def run(self, variant: str, requests: Sequence[dict[str, Any]]) -> int:
        """One pass of `variant` over `requests`; returns the polls made."""
        import dlt
        from dlt.sources.rest_api import rest_api_source

        if variant == "dlt_rest_api":
            source: Any = rest_api_source(rest_api_config(self.url, requests))  # type: ignore[arg-type]
        else:
            source = dlt_transformer(requests, parallelized=variant.endswith("parallel"))
        pipeline = dlt.pipeline(
            pipeline_name=f"bench_{variant}",
            destination=dlt.destinations.duckdb(str(self.directory / f"{variant}.duckdb")),
            pipelines_dir=str(self.directory / "pipelines"),
            dataset_name="raw",
        )
        info = pipeline.run(source)
        info.raise_on_failed_jobs()
        return len(requests)


def summarise(rounds: Sequence[Round], rss_mb: float) -> dict[str, Any]:
    """Medians and per-round figures of one variant in one setting."""
    server = [r.server_cpu_ms for r in rounds if r.server_cpu_ms is not None]
    return {
        "polls_per_round": rounds[0].requests,
        "per_s_median": round(statistics.median(r.per_s for r in rounds), 1),
        "cpu_ms_median": round(statistics.median(r.cpu_ms for r in rounds), 3),
        "cpu_share_of_a_core": round(statistics.median(r.cpu_s / r.wall_s for r in rounds), 2),
        "server_cpu_ms_median": round(statistics.median(server), 3) if server else None,
        "peak_rss_mb": round(rss_mb, 1),
        "per_s": [round(r.per_s, 1) for r in rounds],
        "cpu_ms": [round(r.cpu_ms, 3) for r in rounds],
    }


# --- one process per variant ------------------------------------------------------------------
# Each variant's process runs `_start` once, then `_round` per round; these functions run there.

_worker: dict[str, Any] = {}
"""The variant's state inside its own process."""


def _start(variant: str, url: str, directory: str, orders: list[TrackedOrder]) -> None:
    """Set up `variant` in this process: the product's warehouse, poller and event loop, or
    the dlt variant's requests and destination."""
    # dlt's own setting (its logger is reconfigured on every run): no schema-inference notes.
    os.environ["RUNTIME__LOG_LEVEL"] = "ERROR"
    settings = Settings.from_env({"PIPELINE_SANDBOX_URL": url, "PIPELINE_DATA_DIR": directory})
    _worker.update(variant=variant, outcomes={"stored": 0, "errors": {}})
    if variant != "product":
        _worker.update(
            requests=status_requests(orders, settings), dlt=DltRunner(Path(directory), url)
        )
        return
    warehouse = Warehouse(settings.warehouse_path)
    register(warehouse, orders, source="bench")
    runner = asyncio.Runner(loop_factory=event_loop.loop_factory())
    poller = Poller(settings, ADAPTERS, limits=False, seed=SEED)
    runner.run(poller.__aenter__())
    _worker.update(warehouse=warehouse, runner=runner, poller=poller)


def _product_pass() -> int:
    """One `run_tick` over every open order; returns the attempts made."""
    tick = _worker["runner"].run(
        run_tick(_worker["warehouse"], _worker["poller"], now=datetime.now(UTC) + DUE_SHIFT)
    )
    attempts, written, errors = tick_polls(tick)
    outcomes = _worker["outcomes"]
    outcomes["stored"] += written
    for name, count in errors.items():
        outcomes["errors"][name] = outcomes["errors"].get(name, 0) + count
    return attempts


def _round(share: int) -> tuple[int, float, float]:
    """One timed pass (the dlt variants ask one order in `share`): polls, wall and CPU seconds
    of this process, all its threads."""
    cpu_before, started = time.process_time(), time.perf_counter()
    if _worker["variant"] == "product":
        polls = _product_pass()
    else:
        polls = _worker["dlt"].run(_worker["variant"], _worker["requests"][::share])
    return polls, time.perf_counter() - started, time.process_time() - cpu_before


def _peak_rss_mb() -> float:
    """This process's peak resident memory, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pools(reset: bool) -> dict[str, Any]:
    """Per provider: its pool's bound and the most requests it was handed at once (within the
    bound, no request queued for a connection; the bound itself is aiohttp's, tested in
    tests/polling/test_transport.py against a server counting connections). `reset` starts
    counting anew."""
    report = {}
    for slug, lane in _worker["poller"].lanes.items():
        transport = lane.client._transport if lane.client is not None else None
        if isinstance(transport, PoolTransport):
            report[slug] = {
                "max_connections": transport.max_connections,
                "peak_in_flight": transport.peak_in_flight,
            }
            if reset:
                transport.peak_in_flight = 0
    return report


def _finish() -> dict[str, Any]:
    """The product's outcomes and one more tick under cProfile; then close its pools."""
    runner, poller = _worker["runner"], _worker["poller"]
    profile = runner.run(profiled_tick(_worker["warehouse"], poller))
    runner.run(poller.__aexit__(None, None, None))
    runner.close()
    return {"outcomes": _worker["outcomes"], "profile": profile}


class Variant:
    """A variant's own process, kept for all its rounds."""

    def __init__(self, name: str, url: str, directory: Path, orders: list[TrackedOrder]) -> None:
        directory.mkdir()
        self.name = name
        self._pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start,
            initargs=(name, url, str(directory), orders),
        )

    def call(self, function: Any, *args: Any) -> Any:
        """Run `function(*args)` in the variant's process and return its result."""
        return self._pool.submit(function, *args).result()

    def close(self) -> None:
        """End the process."""
        self._pool.shutdown()


def benchmark(
    url: str, server_pid: int, per_provider: int, rounds: dict[str, int]
) -> dict[str, Any]:
    """Create and register orders, then alternate every variant, on loopback, then latency."""
    orders = asyncio.run(create_orders(url, per_provider))
    print(f"created {len(orders)} orders")
    results: dict[str, Any] = {"orders": len(orders)}
    with tempfile.TemporaryDirectory() as tmp:
        variants = {v: Variant(v, url, Path(tmp) / v, orders) for v in VARIANTS}
        try:
            for variant in variants.values():
                variant.call(_peak_rss_mb)  # waits until every process is set up
            product = variants["product"]
            for setting, count in rounds.items():
                scenario = LATENCY_SCENARIO if setting == "latency" else "none"
                httpx.put(f"{url}/_sandbox/faults", json={"scenario": scenario}).raise_for_status()
                share = LATENCY_DLT_SHARE if setting == "latency" else 1
                measured: dict[str, list[Round]] = {v: [] for v in VARIANTS}
                product.call(_pools, True)
                for index in range(count + 1):  # round 0 warms up every variant
                    line = []
                    for name, variant in variants.items():
                        server_before = process_cpu_s(server_pid)
                        polls, wall_s, cpu_s = variant.call(_round, share)
                        server_after = process_cpu_s(server_pid)
                        server_cpu = (
                            None
                            if server_before is None or server_after is None
                            else server_after - server_before
                        )
                        result = Round(polls, wall_s, cpu_s, server_cpu)
                        if index > 0:
                            measured[name].append(result)
                        line.append(f"{name} {result.per_s:5.0f}/s {result.cpu_ms:5.2f} ms")
                    label = "warm-up" if index == 0 else f"round {index}"
                    print(f"{setting} {label:>8}: " + " | ".join(line), flush=True)
                summaries: dict[str, Any] = {
                    name: summarise(measured[name], variant.call(_peak_rss_mb))
                    for name, variant in variants.items()
                }
                summaries["pool"] = product.call(_pools, False)
                results[setting] = summaries
            httpx.put(f"{url}/_sandbox/faults", json={"scenario": "none"}).raise_for_status()
            finished = product.call(_finish)
            results["product_outcomes"] = finished["outcomes"]
            results["profile_one_tick_after"] = finished["profile"]
        finally:
            for variant in variants.values():
                variant.close()
    results["targets"] = verdicts(results)
    return results


def verdicts(results: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets against this run's medians."""
    loop, late = results["loopback"], results.get("latency")
    ratio = loop["product"]["per_s_median"] / loop["dlt_rest_api"]["per_s_median"]
    out: dict[str, Any] = {
        "loopback_vs_dlt_rest_api": {"ratio": round(ratio, 2), "target": TARGET_LOOPBACK_RATIO},
        "cpu_ms_per_poll": {"value": loop["product"]["cpu_ms_median"], "target": TARGET_CPU_MS},
    }
    if late is not None:
        pools = late["pool"]
        out["latency_polls_per_s"] = {
            "value": late["product"]["per_s_median"],
            "target": TARGET_LATENCY_PER_S,
            "cpu_share_of_a_core": late["product"]["cpu_share_of_a_core"],
            "pool_capacity_per_s_at_100ms": sum(p["max_connections"] for p in pools.values()) * 10,
            "pools_within_bounds": all(
                p["peak_in_flight"] <= p["max_connections"] for p in pools.values()
            ),
        }
    return out


def print_table(results: dict[str, Any]) -> None:
    """Every variant's medians, and the verdicts."""
    for setting in ("loopback", "latency"):
        if setting not in results:
            continue
        print(f"\n{setting}: {'polls/s':>10} {'CPU ms/poll':>12} {'sandbox ms':>11} {'RSS MB':>7}")
        for variant in VARIANTS:
            row = results[setting][variant]
            print(
                f"  {variant:<28} {row['per_s_median']:>8.0f} {row['cpu_ms_median']:>12.3f} "
                f"{row['server_cpu_ms_median'] or 0:>11.3f} {row['peak_rss_mb']:>7.0f}"
            )
    print("\ntargets:", json.dumps(results["targets"], indent=2))


def previous_run() -> dict[str, Any] | None:
    """The figures and profile of the results file about to be replaced, kept for comparison."""
    try:
        before = json.loads(RESULTS.read_text())
    except (OSError, ValueError):
        return None
    results = before.get("results", {})
    return {
        "measured_at": before.get("measured_at"),
        "setup": before.get("setup"),
        "loopback": results.get("loopback"),
        "latency": results.get("latency"),
        "targets": results.get("targets"),
        "profile_one_tick": results.get("profile_one_tick_after"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=ORDERS_PER_PROVIDER, help="per provider")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per setting")
    parser.add_argument("--no-save", action="store_true", help="print only; keep the results file")
    args = parser.parse_args()
    rounds = {
        "loopback": args.rounds or LOOPBACK_ROUNDS,
        "latency": args.rounds or LATENCY_ROUNDS,
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = processes.python_module(
        "pipeline.cli", "simulator", "--port", str(port), "--profile", "realistic",
        "--seed", str(SEED), "--workload-rate", "0", "--no-truth", "--no-inbox",
        "--faults", "none",
        *(arg for option in SANDBOX_OPTIONS for arg in ("--option", option)),
    )  # fmt: skip
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory() as sandbox_dir,
        processes.running(argv, env={"PIPELINE_DATA_DIR": sandbox_dir}, quiet=True) as sandbox,
    ):
        processes.wait_for_http(
            url + "/_sandbox/health", timeout_s=SANDBOX_START_TIMEOUT_S, process=sandbox
        )
        results = benchmark(url, sandbox.pid, args.orders, rounds)
    results["run_s"] = round(time.perf_counter() - started, 1)
    print_table(results)
    if args.no_save:
        return
    previous = previous_run()
    write_results(
        RESULTS,
        COMMAND,
        setup={
            "sandbox": "pipeline simulator --profile realistic, 127.0.0.1 TCP, separate "
            "process; faults none (loopback), then scenario latency (50–150 ms per "
            "status answer); " + ", ".join(SANDBOX_OPTIONS),
            "orders_per_provider": args.orders,
            "rounds": rounds,
            "product": "run_tick, Poller(limits=False): due selection, HTTP, parse, "
            f"pandera, DuckDB write; pool {MAX_CONNECTIONS} connections per provider",
            "dlt": f"dlt {metadata.version('dlt')}, destination duckdb, one file per "
            f"variant; under latency one order in {LATENCY_DLT_SHARE}",
            "processes": "each variant in a process of its own, kept for all its rounds; "
            "rounds alternate one variant at a time",
            "cpu": "time.process_time of the variant's process (all threads); the "
            "sandbox's CPU apart",
        },
        results=results,
        previous_run=previous,
    )
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
