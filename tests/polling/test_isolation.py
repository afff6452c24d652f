"""Provider isolation over real loopback HTTP: a provider's poison answers, slowness or 429 storm
never stops or slows the others, and polls keep to each order's cadence.

The sandbox serves every provider; a thin ASGI wrapper turns one provider's answers bad (hostile
bodies, long delays). Slow lifecycles keep orders open, so the number of polls a window makes is
set by the cadences alone and runs can be compared with each other.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from live_sandbox import default_config, live_sandbox, track

from pipeline.polling.client import Poller
from pipeline.polling.retry import RetryPolicy
from pipeline.polling.tick import TickResult, run_tick, run_window
from pipeline.providers.registry import ADAPTERS
from pipeline.settings import Settings
from pipeline.simulator.faults import load_scenario
from pipeline.simulator.lifecycles import Profile
from pipeline.warehouse import Warehouse

# Lifecycles at their documented length: orders stay open for minutes, far beyond a test window.
OPEN_PROFILE = Profile("open", 1.0)
HEALTHY = ("sms4sats", "smsonline", "baanx")
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _ordinalsbot_body(**changes: Any) -> dict[str, Any]:
    body = json.loads((FIXTURES / "ordinalsbot" / "full_order_queued.json").read_text())
    return {**body, **changes}


POISON_BODIES: dict[str, bytes] = {
    # Valid JSON whose strings decode to lone surrogates, which no UTF-8 text can hold.
    "lone_surrogates": json.dumps(_ordinalsbot_body(state="\udc00", status="\ud800x")).encode(),
    "huge_integer": json.dumps(_ordinalsbot_body(inscribedCount=2**40, quantity=10**30)).encode(),
    "one_megabyte_string": json.dumps(_ordinalsbot_body(description="w" * 1_000_000)).encode(),
    "deep_nesting": b"[" * 100_000 + b"]" * 100_000,
    "nul_and_garbage": b'{"state": "comp\\u0000leted", "status": 5e999}',
}


def _answering(path_prefix: str, body: bytes | None = None, delay_s: float = 0.0) -> Any:
    """An ASGI wrapper: status reads (GET) under `path_prefix` wait `delay_s`, then get `body`
    (if given) instead of the sandbox's answer."""

    def wrap(app: Any) -> Any:
        async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if (
                scope["type"] != "http"
                or scope["method"] != "GET"
                or not scope["path"].startswith(path_prefix)
            ):
                await app(scope, receive, send)
                return
            await asyncio.sleep(delay_s)
            if body is None:
                await app(scope, receive, send)
                return
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        return wrapped

    return wrap


def _poll(
    warehouse: Warehouse,
    url: str,
    run: Callable[[Poller], Any],
    *,
    retry: RetryPolicy | None = None,
) -> TickResult:
    settings = Settings.from_env({"PIPELINE_SANDBOX_URL": url})

    async def main() -> TickResult:
        async with Poller(settings, ADAPTERS, retry=retry) as poller:
            result: TickResult = await run(poller)
            return result

    return asyncio.run(main())


@pytest.mark.slow
@pytest.mark.parametrize("poison", sorted(POISON_BODIES))
def test_a_poison_answer_is_recorded_and_the_other_providers_are_stored(
    warehouse: Warehouse, poison: str
) -> None:
    wrap = _answering("/ordinalsbot/order", POISON_BODIES[poison])
    with live_sandbox(default_config(profile=OPEN_PROFILE), wrap=wrap) as live:
        track(warehouse, live.url, dict.fromkeys(ADAPTERS, 2))
        # Twice: the poisoned orders stay due, and the second pass must not die on them either.
        for later in (timedelta(0), timedelta(minutes=10)):
            now = datetime.now(UTC) + later
            _poll(warehouse, live.url, lambda p, now=now: run_tick(warehouse, p, now=now))

    stored = warehouse.read(
        "SELECT provider, count(*) FILTER (error_class IS NULL) AS ok, "
        "count(*) FILTER (error_class = 'parse_error') AS parse_errors "
        "FROM observations GROUP BY provider"
    )
    quarantined = warehouse.read("SELECT count(*) AS n FROM quarantine")["n"].item()
    by_provider = {row["provider"]: row for row in stored.iter_rows(named=True)}
    for slug in ADAPTERS:
        if slug != "ordinalsbot":
            assert by_provider[slug]["ok"] == 4, slug  # 2 orders x 2 passes, all answered
    # Every poisoned poll left a trace: a parse error, a quarantined row, or a stored answer
    # whose hostile parts were neutralised; never nothing.
    poisoned = by_provider.get("ordinalsbot", {"ok": 0, "parse_errors": 0})
    assert poisoned["ok"] + poisoned["parse_errors"] + quarantined == 4
    text = warehouse.read("SELECT * FROM observations").write_json()
    text.encode("utf-8")  # everything stored is valid Unicode


def _polls_per_provider(warehouse: Warehouse) -> dict[str, int]:
    frame = warehouse.read("SELECT provider, count(*) AS n FROM observations GROUP BY provider")
    return dict(frame.iter_rows())


def _window_with_baanx_delay(tmp_path: Path, name: str, delay_s: float) -> dict[str, int]:
    warehouse = Warehouse(tmp_path / f"{name}.duckdb")
    warehouse.initialise()
    wrap = _answering("/baanx/", None, delay_s) if delay_s else None
    with live_sandbox(default_config(profile=OPEN_PROFILE), wrap=wrap) as live:
        track(warehouse, live.url, dict.fromkeys(ADAPTERS, 4))
        started = time.monotonic()
        _poll(
            warehouse,
            live.url,
            lambda p: run_window(warehouse, p, duration_s=WINDOW_S, tick_s=1.0),
        )
        elapsed = time.monotonic() - started
    assert elapsed < WINDOW_S + 3.0, f"{name} window overran: {elapsed:.1f} s"
    return _polls_per_provider(warehouse)


WINDOW_S = 12.0


@pytest.mark.slow
def test_a_slow_provider_leaves_the_others_poll_rates_alone(tmp_path: Path) -> None:
    baseline = _window_with_baanx_delay(tmp_path, "baseline", 0.0)
    for delay_s in (8.0, 20.0):
        slowed = _window_with_baanx_delay(tmp_path, f"baanx_{delay_s:.0f}s", delay_s)
        for slug in ("sms4sats", "smsonline"):
            assert abs(slowed[slug] - baseline[slug]) <= 0.1 * baseline[slug], (
                slug,
                delay_s,
                slowed,
                baseline,
            )
        assert slowed["baanx"] < baseline["baanx"]  # the slow one is the only one slowed


@pytest.mark.slow
def test_polls_keep_to_each_orders_cadence(warehouse: Warehouse) -> None:
    with live_sandbox(default_config(profile=OPEN_PROFILE)) as live:
        track(warehouse, live.url, {slug: 4 for slug in HEALTHY})
        _poll(warehouse, live.url, lambda p: run_window(warehouse, p, duration_s=16.0, tick_s=1.0))
    polls = warehouse.read(
        "SELECT provider, order_id, polled_at, state FROM observations "
        "WHERE error_class IS NULL ORDER BY provider, order_id, polled_at"
    )
    gaps = (
        polls.with_columns(
            gap_s=pl.col("polled_at").diff().over("order_id").dt.total_microseconds() / 1e6,
            previous_state=pl.col("state").shift().over("order_id"),
            poll_number=pl.int_range(pl.len()).over("order_id"),
        )
        # The first gap ends at the order's random phase, a fraction of its cadence.
        .filter(pl.col("poll_number") >= 2)
    )
    checked = 0
    for row in gaps.iter_rows(named=True):
        cadence = ADAPTERS[row["provider"]].policy.cadence_for(row["previous_state"])
        assert abs(row["gap_s"] - cadence) <= 0.1 * cadence, row
        checked += 1
    assert checked >= 2 * 4 * len(HEALTHY)  # at least two full cadences per order


@pytest.mark.slow
def test_a_429_storm_ends_poll_duration_on_time_with_every_attempt_recorded(
    tmp_path: Path,
) -> None:
    duration_s = 60
    config = default_config(profile=OPEN_PROFILE, faults=load_scenario("storm"))
    with live_sandbox(config) as live:
        warehouse = Warehouse(tmp_path / "data" / "warehouse.duckdb")
        warehouse.initialise()
        track(warehouse, live.url, dict.fromkeys(ADAPTERS, 8))
        env = {**os.environ, "PIPELINE_DATA_DIR": str(tmp_path / "data")}
        env["PIPELINE_SANDBOX_URL"] = live.url
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "pipeline.cli", "poll", "--duration", str(duration_s)],
            env=env,
            capture_output=True,
            text=True,
            timeout=duration_s + 60,
        )
        elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    # The window itself, from its first ask to its last, keeps to the duration (the process's
    # start-up and summary around it depend on how busy the machine is; the outer bound only
    # catches a run that would not stop).
    span = warehouse.read("SELECT epoch(max(polled_at) - min(polled_at)) AS s FROM observations")[
        "s"
    ].item()
    assert span <= duration_s + 2, f"polls went on for {span:.0f} s of a {duration_s} s window"
    assert elapsed <= duration_s + 45, f"poll --duration {duration_s} took {elapsed:.0f} s"
    stored = warehouse.read(
        "SELECT provider, count(*) AS attempts, "
        "count(*) FILTER (error_class = 'rate_limited') AS rate_limited, "
        "max(gap_s) AS worst_gap_s FROM ("
        "  SELECT provider, error_class, epoch(polled_at - lag(polled_at) OVER ("
        "    PARTITION BY provider, order_id ORDER BY polled_at)) AS gap_s FROM observations"
        ") GROUP BY provider"
    )
    by_provider = {row["provider"]: row for row in stored.iter_rows(named=True)}
    assert sum(row["rate_limited"] for row in by_provider.values()) > 0  # the storm came
    # The summary's provider lines: provider, due, polled, asks (attempts), ok, ...
    table = [line.split() for line in done.stdout.splitlines()]
    asks = {cells[0]: int(cells[3]) for cells in table if cells and cells[0] in ADAPTERS}
    for slug in ADAPTERS:
        row = by_provider[slug]
        # Every order kept being asked all along: never left longer than its slowest cadence
        # plus the longest wait a 429 asks for (10 s) and a little scheduling.
        policy = ADAPTERS[slug].policy
        slowest = max(policy.cadence_for(s) for s in ("pending", "processing", "unknown"))
        assert row["worst_gap_s"] < slowest + 12, (slug, row)
        # Every attempt the run counted is a stored row.
        assert asks[slug] == row["attempts"], (slug, asks, row)
