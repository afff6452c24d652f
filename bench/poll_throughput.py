"""Benchmark: end-to-end polls per second against the sandbox, beside a bare `httpx` loop.

The sandbox runs as its own process on 127.0.0.1 (realistic profile, no faults, no workload) with
OrdinalsBot's status and create limits raised out of the way; our client-side limits are off
(`Poller(limits=False)`). The benchmark creates orders through the create endpoints, registers
them in a temporary warehouse, then alternates, round by round:

- bare: one client of the poller's kind (`PollingClient` over the poller's transport, its
  timeouts) sends every order's status request (built beforehand by the real adapter, as the
  poller builds it), with the poller's concurrency bounds (per provider, and no more in flight
  than pooled connections), and reads the body;
- end-to-end: `run_tick` with every order due (HTTP -> parse -> validate -> write to DuckDB).

Both run on the polling runs' event loop (`pipeline.polling.event_loop`).

Each reports requests (polls) per wall second and CPU milliseconds per request of this process
(`time.process_time`, all threads; the sandbox's own CPU is reported separately), and the
end-to-end ones the time spent in `write_batches`. Headline numbers are medians over the rounds; one
warm-up round of each comes first. Then one more end-to-end tick of each concurrency runs under
cProfile (the write thread included), summarised by area and by function.

Usage:
    .venv/bin/python bench/poll_throughput.py                 # full run, writes the results
    .venv/bin/python bench/poll_throughput.py --orders 50 --rounds 2 --no-save   # quick look
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import os
import pstats
import socket
import statistics
import sysconfig
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from results_file import write_results

from pipeline.commands import processes
from pipeline.intake import make_order, register
from pipeline.model import TrackedOrder
from pipeline.polling import event_loop
from pipeline.polling import writer as writer_module
from pipeline.polling.client import MAX_CONNECTIONS, TIMEOUT, Poller
from pipeline.polling.http import PollingClient, status_request
from pipeline.polling.tick import TickResult, run_tick
from pipeline.polling.transport import PoolTransport
from pipeline.providers.base import RequestSpec
from pipeline.providers.registry import ADAPTERS, PROVIDERS
from pipeline.settings import Settings
from pipeline.simulator.workload import Workload, WorkloadConfig
from pipeline.warehouse import Warehouse

RESULTS = Path(__file__).with_name("results") / "poll_throughput.json"
COMMAND = ".venv/bin/python bench/poll_throughput.py"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
ORDERS_PER_PROVIDER = 200
ROUNDS = 7
TARGET_RATIO = 0.70
SEED = 1
# Shifts the tick's clock past the longest cadence (OrdinalsBot `failed`, 300 s), so every open
# order is due on every tick, while staying far inside the shortest tracking age (25 min).
DUE_SHIFT = timedelta(seconds=301)
# The poller's per-lane concurrency with limits off (`pipeline.polling.client._lane`).
UNLIMITED_LANE_CONCURRENCY = MAX_CONNECTIONS
CREATE_CONCURRENCY = 16
VARIANTS = {"bare": "bare", "end_to_end": "e2e"}
"""Variant name -> short label; all run once per round, in this order."""
SANDBOX_START_TIMEOUT_S = 30.0
SANDBOX_OPTIONS = (
    "ordinalsbot.status_limit_per_minute=1000000000",
    "ordinalsbot.create_limit=1000000000",
)
PROFILE_TOP = 15
# Where profiled time is attributed, first match wins (fragments of the code's file path, or of
# the function's name for built-in functions).
AREAS = (
    ("pipeline/ingest.py", "write: ingest"),
    ("pipeline/validation.py", "write: validate (pandera)"),
    ("pipeline/warehouse/", "write: warehouse / duckdb"),
    ("pandera", "write: validate (pandera)"),
    ("duckdb", "write: warehouse / duckdb"),
    ("polars", "polars (frames, due selection)"),
    ("PyLazyFrame", "polars (frames, due selection)"),
    ("PyDataFrame", "polars (frames, due selection)"),
    ("pipeline/providers/", "parse: adapters"),
    ("pipeline/polling/", "poller / tick"),
    ("pipeline/model.py", "poller / tick"),
    ("httpx", "http: httpx"),
    ("aiohttp", "http: aiohttp"),
    ("yarl", "http: aiohttp"),
    ("multidict", "http: aiohttp"),
    ("uvloop", "asyncio event loop"),
    ("httpcore", "http: httpcore"),
    ("h11", "http: h11"),
    ("anyio", "http: anyio"),
    ("sniffio", "http: sniffio"),
    ("asyncio", "asyncio event loop"),
    ("selectors", "asyncio event loop"),
    ("epoll", "asyncio event loop"),
    ("socket", "sockets"),
    ("cookiejar", "http: cookie jar (urllib)"),
    ("urllib", "http: cookie jar (urllib)"),
    ("ipaddress", "http: host parsing (ipaddress)"),
    ("re.Pattern", "regex (adapters' scrubbing, parsing)"),
    ("/re/", "regex (adapters' scrubbing, parsing)"),
    ("json", "parse: json"),
    ("dataclasses", "dataclasses"),
)


@dataclasses.dataclass(frozen=True)
class Round:
    """One measured pass: requests (or polls) done, wall and CPU seconds."""

    requests: int
    wall_s: float
    cpu_s: float
    server_cpu_s: float | None

    @property
    def per_s(self) -> float:
        """Requests per wall second."""
        return self.requests / self.wall_s

    @property
    def cpu_ms(self) -> float:
        """This process's CPU milliseconds per request."""
        return self.cpu_s * 1000 / self.requests

    @property
    def server_cpu_ms(self) -> float | None:
        """The sandbox's CPU milliseconds per request (Linux only)."""
        return None if self.server_cpu_s is None else self.server_cpu_s * 1000 / self.requests


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of another process, from /proc (None where unavailable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(work: Callable[[], Awaitable[int]], server_pid: int) -> Round:
    """Run `work` (which returns how many requests it made) and time it."""
    server_before = process_cpu_s(server_pid)
    cpu_before = time.process_time()
    started = time.perf_counter()
    requests = await work()
    wall_s = time.perf_counter() - started
    cpu_s = time.process_time() - cpu_before
    server_after = process_cpu_s(server_pid)
    server_cpu_s = (
        None if server_before is None or server_after is None else server_after - server_before
    )
    return Round(requests, wall_s, cpu_s, server_cpu_s)


async def create_orders(url: str, per_provider: int) -> list[TrackedOrder]:
    """Create `per_provider` orders on every provider through the sandbox's create endpoints."""
    async with httpx.AsyncClient(base_url=url, timeout=10.0) as client:
        workload = Workload(client, WorkloadConfig(rate_per_minute=0, seed=SEED))
        gate = asyncio.Semaphore(CREATE_CONCURRENCY)

        async def one(provider: str) -> TrackedOrder | None:
            async with gate:
                created = await workload.create(provider)
            if created is None:
                return None
            return make_order(
                created.provider,
                created.order_id,
                order_kind=created.order_kind,
                created_at=created.created_at,
                service=created.service,
                country=created.country,
            )

        made = await asyncio.gather(*(one(p) for p in PROVIDERS for _ in range(per_provider)))
    orders = [order for order in made if order is not None]
    if len(orders) != per_provider * len(PROVIDERS):
        raise RuntimeError(f"created {len(orders)} of {per_provider * len(PROVIDERS)} orders")
    return orders


async def bare_round(
    client: httpx.AsyncClient, specs: Sequence[tuple[str, RequestSpec]], lanes: Mapping[str, int]
) -> int:
    """GET every spec once with the poller's concurrency bounds (per provider, and no more in
    flight than pooled connections); returns responses read."""
    gates = {slug: asyncio.Semaphore(size) for slug, size in lanes.items()}
    in_flight = asyncio.Semaphore(MAX_CONNECTIONS)

    async def one(slug: str, spec: RequestSpec) -> int:
        async with gates[slug], in_flight:
            response = await client.send(status_request(client, spec, TIMEOUT))
            _ = response.content
            return response.status_code

    statuses = await asyncio.gather(*(one(slug, spec) for slug, spec in specs))
    bad = [status for status in statuses if status != 200]
    if bad:
        raise RuntimeError(f"bare loop: {len(bad)} non-200 answers, e.g. {bad[0]}")
    return len(statuses)


def tick_polls(result: TickResult) -> tuple[int, int, dict[str, int]]:
    """Attempts made, observations stored, and error counts of one tick."""
    attempts = sum(t.attempts for t in result.providers.values())
    errors: dict[str, int] = {}
    for t in result.providers.values():
        for name, count in t.errors.items():
            errors[name] = errors.get(name, 0) + count
    if result.write_errors:
        raise RuntimeError(f"tick not stored: {result.write_errors}")
    return attempts, result.written + result.quarantined, errors


def short_path(path: str) -> str:
    """A profiled file's path without this machine's prefixes (project, venv, interpreter)."""
    for prefix in (f"{PROJECT_ROOT}/", f"{sysconfig.get_paths()['stdlib']}/"):
        path = path.removeprefix(prefix)
    return path.split("site-packages/")[-1]


def summarise_profile(profile: pstats.Stats, total_s: float) -> dict[str, Any]:
    """Own time by area, and the functions with the most own time."""
    stats: dict[tuple[str, int, str], tuple[Any, ...]] = profile.stats  # type: ignore[attr-defined]
    areas: dict[str, float] = {}
    rows = []
    for (path, line, name), (_, calls, own_s, cumulative_s, _) in stats.items():
        where = path if path != "~" else name
        area = next((label for fragment, label in AREAS if fragment in where), "other")
        areas[area] = areas.get(area, 0.0) + own_s
        short = short_path(path)
        rows.append((own_s, cumulative_s, calls, f"{short}:{line}({name})"))
    rows.sort(reverse=True)
    return {
        "profiled_s": round(total_s, 3),
        "own_time_by_area_s": {
            k: round(v, 3) for k, v in sorted(areas.items(), key=lambda kv: -kv[1])
        },
        "top_own_time": [
            {"function": where, "own_s": round(own, 3), "cumulative_s": round(cum, 3), "calls": n}
            for own, cum, n, where in rows[:PROFILE_TOP]
        ],
    }


async def profiled_tick(warehouse: Warehouse, poller: Poller) -> dict[str, Any]:
    """One more end-to-end tick under cProfile, the write thread included."""
    write_profile = cProfile.Profile()
    original = writer_module.write_batches

    def write_batches(*args: Any, **kwargs: Any) -> Any:
        return write_profile.runcall(original, *args, **kwargs)

    main_profile = cProfile.Profile()
    writer_module.write_batches = write_batches  # type: ignore[assignment]
    try:
        started = time.perf_counter()
        main_profile.enable()
        await run_tick(warehouse, poller, now=datetime.now(UTC) + DUE_SHIFT)
        main_profile.disable()
        total_s = time.perf_counter() - started
    finally:
        writer_module.write_batches = original
    stats = pstats.Stats(main_profile)
    stats.add(write_profile)
    return summarise_profile(stats, total_s)


class WriteTimer:
    """Wraps the tick's `write_batches` to time the write phase (wall and its thread's CPU)."""

    def __init__(self) -> None:
        self.wall_s = 0.0
        self.cpu_s = 0.0
        self.original = writer_module.write_batches

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started, cpu_started = time.perf_counter(), time.thread_time()
        try:
            return self.original(*args, **kwargs)
        finally:
            self.wall_s += time.perf_counter() - started
            self.cpu_s += time.thread_time() - cpu_started

    def take(self) -> tuple[float, float]:
        """Wall and CPU seconds since the last call, and reset."""
        taken = (self.wall_s, self.cpu_s)
        self.wall_s = self.cpu_s = 0.0
        return taken


async def benchmark(url: str, server_pid: int, per_provider: int, rounds: int) -> dict[str, Any]:
    """Create and register orders, then alternate the bare and end-to-end variants."""
    started = time.perf_counter()
    orders = await create_orders(url, per_provider)
    print(f"created {len(orders)} orders in {time.perf_counter() - started:.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env({"PIPELINE_SANDBOX_URL": url, "PIPELINE_DATA_DIR": tmp})
        warehouse = Warehouse(settings.warehouse_path)
        register(warehouse, orders, source="bench")
        specs = [
            (o.provider, ADAPTERS[o.provider].build_request(o, settings.provider(o.provider)))
            for o in orders
        ]
        lanes = {
            slug: max(adapter.policy.max_concurrency, UNLIMITED_LANE_CONCURRENCY)
            for slug, adapter in ADAPTERS.items()
        }
        timer = WriteTimer()
        measured: dict[str, list[Round]] = {name: [] for name in VARIANTS}
        writes: dict[str, list[tuple[float, float]]] = {"end_to_end": []}
        outcomes: dict[str, dict[str, Any]] = {name: {"stored": 0, "errors": {}} for name in writes}
        async with (
            PollingClient(
                timeout=TIMEOUT,
                transport=PoolTransport(max_connections=MAX_CONNECTIONS),
                follow_redirects=False,
                headers={"Accept": "application/json", "User-Agent": "order-status-history/0.1"},
            ) as client,
            Poller(settings, ADAPTERS, limits=False, seed=SEED) as poller,
        ):

            def tick_work(name: str, tick_poller: Poller) -> Callable[[], Awaitable[int]]:
                async def work() -> int:
                    now = datetime.now(UTC) + DUE_SHIFT
                    result = await run_tick(warehouse, tick_poller, now=now)
                    attempts, written, tick_errors = tick_polls(result)
                    outcome = outcomes[name]
                    outcome["stored"] += written
                    for error, count in tick_errors.items():
                        outcome["errors"][error] = outcome["errors"].get(error, 0) + count
                    return attempts

                return work

            def bare_work(concurrency: Mapping[str, int]) -> Callable[[], Awaitable[int]]:
                async def work() -> int:
                    return await bare_round(client, specs, concurrency)

                return work

            works = {
                "bare": bare_work(lanes),
                "end_to_end": tick_work("end_to_end", poller),
            }
            writer_module.write_batches = timer  # type: ignore[assignment]
            try:
                for index in range(rounds + 1):
                    line = []
                    for name, work in works.items():
                        timer.take()
                        result = await measure(work, server_pid)
                        if name in writes and index > 0:
                            writes[name].append(timer.take())
                        if index > 0:
                            measured[name].append(result)
                        line.append(f"{VARIANTS[name]} {result.per_s:4.0f}/s {result.cpu_ms:4.2f}")
                    label = "warm-up" if index == 0 else f"round {index}"
                    print(f"{label:>8}: " + " | ".join(line))
            finally:
                writer_module.write_batches = timer.original  # type: ignore[assignment]
            profiles = {"end_to_end": await profiled_tick(warehouse, poller)}
    summaries = {name: summarise(rounds_of) for name, rounds_of in measured.items()}
    for name, timings in writes.items():
        summaries[name]["write_ms_per_tick_median"] = round(
            statistics.median(wall for wall, _ in timings) * 1000, 1
        )
        summaries[name]["write_cpu_ms_per_poll_median"] = round(
            statistics.median(
                cpu * 1000 / r.requests for (_, cpu), r in zip(timings, measured[name], strict=True)
            ),
            3,
        )
        summaries[name].update(outcomes[name])
    return {
        "orders": len(orders),
        "bare": summaries["bare"],
        "end_to_end": summaries["end_to_end"],
        "ratio": ratio(measured["end_to_end"], measured["bare"], "per_s"),
        "cpu_ratio": ratio(measured["end_to_end"], measured["bare"], "cpu_ms"),
        "target_ratio": TARGET_RATIO,
        "profile_one_tick": profiles,
    }


def ratio(numerator: Sequence[Round], denominator: Sequence[Round], attribute: str) -> float:
    """Ratio of the medians of one `Round` property."""
    return round(median(numerator, attribute) / median(denominator, attribute), 3)


def median(rounds: Sequence[Round], attribute: str) -> float:
    """The median of one `Round` property over the rounds."""
    return statistics.median(getattr(r, attribute) for r in rounds)


def summarise(rounds: Sequence[Round]) -> dict[str, Any]:
    """Medians and per-round figures."""
    server = [r.server_cpu_ms for r in rounds if r.server_cpu_ms is not None]
    return {
        "per_s_median": round(median(rounds, "per_s"), 1),
        "cpu_ms_median": round(median(rounds, "cpu_ms"), 3),
        "server_cpu_ms_median": round(statistics.median(server), 3) if server else None,
        "requests_per_round": [r.requests for r in rounds],
        "per_s": [round(r.per_s, 1) for r in rounds],
        "cpu_ms": [round(r.cpu_ms, 3) for r in rounds],
        "wall_s": [round(r.wall_s, 3) for r in rounds],
    }


def print_table(results: Mapping[str, Any]) -> None:
    """The headline numbers and where one end-to-end tick spends its time."""
    print()
    print(f"{'':<26} {'per s':>6} {'CPU ms/req':>11} {'sandbox CPU ms/req':>19} {'write ms':>9}")
    rows = (
        ("bare httpx", results["bare"]),
        ("end-to-end (run_tick)", results["end_to_end"]),
    )
    for label, row in rows:
        server = row["server_cpu_ms_median"]
        write = row.get("write_ms_per_tick_median")
        print(
            f"{label:<26} {row['per_s_median']:>6.0f} {row['cpu_ms_median']:>11.2f} "
            f"{'n/a' if server is None else f'{server:.2f}':>19} "
            f"{'' if write is None else f'{write:.0f}':>9}"
        )
    verdict = "meets" if results["ratio"] >= results["target_ratio"] else "below"
    print(
        f"ratio end-to-end / bare: {results['ratio']:.0%} ({verdict} the "
        f"{results['target_ratio']:.0%} target); CPU per poll x{results['cpu_ratio']:.2f}"
    )
    for name, profile in results["profile_one_tick"].items():
        print(
            f"\nprofiled end-to-end tick ({name}): {profile['profiled_s']:.2f} s wall under "
            "cProfile; own time by area:"
        )
        for area, seconds in profile["own_time_by_area_s"].items():
            print(f"  {area:<38} {seconds:7.3f} s")
        print("top functions by own time:")
        for row in profile["top_own_time"]:
            print(f"  {row['own_s']:7.3f} s {row['calls']:>8} calls  {row['function']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=ORDERS_PER_PROVIDER, help="per provider")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="measured rounds of each")
    parser.add_argument("--no-save", action="store_true", help="print only; keep the results file")
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = processes.python_module(
        "pipeline.cli",
        "simulator",
        "--port",
        str(port),
        "--profile",
        "realistic",
        "--seed",
        str(SEED),
        "--workload-rate",
        "0",
        "--no-truth",
        "--no-inbox",
        "--faults",
        "none",
        *(arg for option in SANDBOX_OPTIONS for arg in ("--option", option)),
    )
    with tempfile.TemporaryDirectory() as sandbox_dir:
        env = {"PIPELINE_DATA_DIR": sandbox_dir}
        with processes.running(argv, env=env, quiet=True) as sandbox:
            processes.wait_for_http(
                url + "/_sandbox/health", timeout_s=SANDBOX_START_TIMEOUT_S, process=sandbox
            )
            results = event_loop.run(benchmark(url, sandbox.pid, args.orders, args.rounds))
    print_table(results)
    if args.no_save:
        return
    write_results(
        RESULTS,
        COMMAND,
        setup={
            "sandbox": "pipeline simulator --profile realistic --faults none, "
            "127.0.0.1 TCP, separate process; " + ", ".join(SANDBOX_OPTIONS),
            "orders_per_provider": args.orders,
            "rounds": args.rounds,
            "client": f"the poller's client and transport, pool {MAX_CONNECTIONS} "
            "connections, "
            f"{UNLIMITED_LANE_CONCURRENCY} in flight per provider, "
            f"{MAX_CONNECTIONS} in all",
            "end_to_end": "run_tick (due selection, HTTP, parse, pandera, DuckDB write) "
            "with Poller(limits=False) and every open order due",
            "cpu": "time.process_time of the benchmark process (all threads)",
            "event_loop": event_loop.loop_factory().__module__,
        },
        results=results,
    )
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
