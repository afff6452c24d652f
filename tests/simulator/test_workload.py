"""The workload creates orders on every provider through the create endpoints (with the sandbox's
development credentials) and hands them to intake as CSV files that the pipeline's own CSV reader
accepts; files appear atomically; 429 answers are retried after `Retry-After`.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import httpx

from pipeline.intake import CSV_COLUMNS as INTAKE_COLUMNS
from pipeline.intake import read_orders_csv
from pipeline.model import OrderState
from pipeline.providers.altinn import lifecycle
from pipeline.providers.altinn.sandbox import SCHEDULE_AHEAD_S
from pipeline.providers.ordinalsbot.sandbox import OrdinalsBotOptions
from pipeline.providers.registry import PROVIDERS
from pipeline.simulator.app import SandboxConfig, build_app, sandbox_of
from pipeline.simulator.clock import FakeClock
from pipeline.simulator.options import ProviderOptions
from pipeline.simulator.workload import (
    CSV_COLUMNS,
    Workload,
    WorkloadConfig,
    write_inbox_csv,
)

FAST_CREATES = ProviderOptions(ordinalsbot=OrdinalsBotOptions(create_limit=1000))


def client_for(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox")


def test_one_order_per_provider_goes_through_the_create_endpoints(tmp_path: Path) -> None:
    app = build_app(SandboxConfig(seed=3))
    sandbox = sandbox_of(app)

    async def create_all() -> list:
        async with client_for(app) as client:
            workload = Workload(client, WorkloadConfig(inbox=tmp_path, seed=3))
            return [await workload.create(provider) for provider in PROVIDERS]

    created = asyncio.run(create_all())
    assert all(created)
    assert sandbox.requests == dict.fromkeys(PROVIDERS, 1)
    for order in created:
        stored = sandbox.get(order.provider, order.order_id)
        assert stored is not None and stored.truth.order_kind == order.order_kind
        assert stored.truth.service == order.service and stored.truth.country == order.country
    path = write_inbox_csv(tmp_path, created)
    parsed = read_orders_csv(path.read_text())
    assert [(o.provider, o.order_id, o.order_kind) for o in parsed] == [
        (o.provider, o.order_id, o.order_kind) for o in created
    ]


def test_inbox_files_have_the_agreed_header_and_no_leftovers(tmp_path: Path) -> None:
    assert CSV_COLUMNS == INTAKE_COLUMNS
    path = write_inbox_csv(tmp_path / "inbox", [], sequence=3)
    assert path.read_text() == ",".join(CSV_COLUMNS) + "\n"
    assert path.name.startswith("sandbox-") and path.name.endswith("-0003.csv")
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_run_creates_orders_at_the_rate_and_flushes_the_inbox(tmp_path: Path) -> None:
    app = build_app(SandboxConfig(seed=4, options=FAST_CREATES))
    sandbox = sandbox_of(app)
    config = WorkloadConfig(rate_per_minute=1200, duration_s=0.4, inbox=tmp_path, seed=4)

    async def go() -> int:
        async with client_for(app) as client:
            return await Workload(client, config).run()

    created = asyncio.run(go())
    assert created >= len(PROVIDERS)  # at least the first order of each provider
    assert {o.truth.provider for o in sandbox.list_orders()} == set(PROVIDERS)
    rows = [o for f in sorted(tmp_path.glob("*.csv")) for o in read_orders_csv(f.read_text())]
    assert len(rows) == created == len(sandbox.orders)


def test_rate_limited_creates_are_retried(tmp_path: Path) -> None:
    options = ProviderOptions(ordinalsbot=OrdinalsBotOptions(create_limit=1, create_window_s=0.5))
    app = build_app(SandboxConfig(seed=5, options=options))

    async def go() -> tuple[list, int]:
        async with client_for(app) as client:
            workload = Workload(client, WorkloadConfig(seed=5))
            orders = [await workload.create("ordinalsbot") for _ in range(2)]
            return orders, workload.failed

    orders, failed = asyncio.run(go())
    assert all(orders) and failed == 0
    assert sandbox_of(app).requests["ordinalsbot"] == 3  # the second create was retried once


def test_unretryable_failures_are_counted(tmp_path: Path) -> None:
    app = build_app(SandboxConfig(seed=6))

    async def go() -> tuple[object, int]:
        async with client_for(app) as client:
            credentials = {"BAANX_ACCESS_TOKEN": "wrong", "BAANX_CLIENT_ID": "wrong"}
            workload = Workload(client, WorkloadConfig(seed=6), credentials=credentials)
            return await workload.create("baanx"), workload.failed

    order, failed = asyncio.run(go())
    assert order is None and failed == 1


def test_times_a_create_asks_for_are_on_the_clock_it_is_given() -> None:
    """A workload on a sandbox whose clock is not the wall clock (simulated time) asks for
    Altinn's scheduled sends from that clock, and says its orders were created on it: a send
    time from the wall clock would leave every scheduled order waiting months."""
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    app = build_app(SandboxConfig(seed=4), clock=clock)

    async def create_some() -> list:
        async with client_for(app) as client:
            workload = Workload(client, WorkloadConfig(seed=4), clock=clock)
            return [await workload.create("altinn") for _ in range(60)]

    created = asyncio.run(create_some())
    assert all(order.created_at == clock.now() for order in created)
    waits = []
    for order in created:
        truth = sandbox_of(app).get("altinn", order.order_id).truth
        processing = next(t for t in truth.transitions if t.state == OrderState.PROCESSING.value)
        waits.append((processing.at - clock.now()).total_seconds())
    assert max(waits) <= SCHEDULE_AHEAD_S[1] + lifecycle.AltinnConfig().pickup.b
    assert sum(wait > SCHEDULE_AHEAD_S[0] for wait in waits) >= 3  # some were scheduled
