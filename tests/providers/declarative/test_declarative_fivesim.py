"""Proof (2): 5SIM, declared in `pipeline/providers/declared/fivesim.toml` with no Python, is served
by the sandbox and read by its adapter: orders created over HTTP go through the declared
lifecycle, and every answer parses to the true state; credentials, unknown ids, the workload and
the generic sandbox features (query credentials, rate limit, 200-with-error) behave as declared.

The slow test runs the whole product on a real loopback sandbox: orders created by the workload
are tracked, polled until they end, folded into the status history, the analytics and the report,
and materialized as Dagster assets.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest
from declarative_helpers import ACME, write_declaration

from pipeline.model import Observation, OrderState, TrackedOrder
from pipeline.providers.declarative import DeclarativeAdapter, DeclaredProvider, load_file
from pipeline.providers.declarative.sandbox import build_sandbox
from pipeline.providers.registry import ADAPTERS, get_adapter
from pipeline.simulator.app import SandboxConfig, build_app, sandbox_of
from pipeline.simulator.clock import FakeClock
from pipeline.simulator.state import Sandbox, SandboxOrder
from pipeline.simulator.workload import Workload, WorkloadConfig
from pipeline.warehouse import Warehouse

TOKEN = "sandbox-fivesim-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
CODE_KEY = b"fivesim-test"
ORDERS = 120
STEP = timedelta(milliseconds=1)
LONG_AFTER = timedelta(hours=1)


class Harness:
    """A sandbox app on a fake clock with a blocking client."""

    def __init__(self, **config: Any) -> None:
        self.clock = FakeClock()
        self.app = build_app(
            SandboxConfig(**{"profile": "realistic", "seed": 7, **config}), clock=self.clock
        )
        self.sandbox: Sandbox = sandbox_of(self.app)
        self.loop = asyncio.new_event_loop()
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://sandbox.test"
        )

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.client.request(method, url, **kwargs))

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


@pytest.fixture
def harness() -> Iterator[Harness]:
    made = Harness()
    yield made
    made.close()


def buy(harness: Harness, country: str = "england", service: str = "telegram") -> SandboxOrder:
    response = harness.request(
        "GET", f"/fivesim/v1/user/buy/activation/{country}/any/{service}", headers=HEADERS
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["status"] == "PENDING" and answer["product"] == service
    order = harness.sandbox.get("fivesim", str(answer["id"]))
    assert order is not None
    return order


def check(
    harness: Harness, order: SandboxOrder, at: datetime
) -> tuple[httpx.Response, Observation]:
    response = harness.request(
        "GET", f"/fivesim/v1/user/check/{order.truth.order_id}", headers=HEADERS
    )
    tracked = TrackedOrder(
        "fivesim",
        order.truth.order_id,
        order.truth.order_kind,
        registered_at=order.truth.created_at,
        created_at=order.truth.created_at,
        service=order.truth.service,
        country=order.truth.country,
    )
    observation = get_adapter("fivesim").parse(
        response.status_code,
        dict(response.headers),
        response.content,
        order=tracked,
        polled_at=at,
        code_key=CODE_KEY,
    )
    return response, observation


# --- the sandbox serves 5SIM's lifecycle and the adapter reads it ------------------------------


def test_every_answer_reads_as_the_true_state(harness: Harness) -> None:
    countries = ("england", "usa", "india", "indonesia", "germany")
    services = ("telegram", "whatsapp", "google", "discord", "amazon")
    orders = [buy(harness, countries[i % 5], services[i % 5]) for i in range(ORDERS)]
    polls = sorted((t.at + STEP, i) for i, o in enumerate(orders) for t in o.truth.transitions)
    end = max(o.truth.final.at for o in orders) + LONG_AFTER
    polls += [(end, i) for i in range(len(orders))]
    seen: dict[str, int] = {}
    statuses = set()
    for moment, index in polls:
        harness.clock.set(max(moment, harness.clock.now()))
        order = orders[index]
        response, observation = check(harness, order, harness.clock.now())
        truth = order.truth.state_at(harness.clock.now())
        assert truth is not None
        assert observation.error_class is None, observation
        assert observation.state == truth.state, (order.truth.order_id, truth, observation.state)
        assert observation.provider_status == truth.provider_status
        seen[observation.state] = seen.get(observation.state, 0) + 1
        statuses.add(truth.provider_status)
        body = response.json()
        if observation.state == OrderState.CODE_RECEIVED:
            code = body["sms"][0]["code"]
            assert observation.has_code and observation.code_length == len(code) == 6
            assert code not in (observation.payload_redacted or "")
            assert observation.provider_updated_at is not None
        assert body["phone"][-4:] == (observation.phone_masked or "")[-4:]
        assert body["phone"][1:-4] not in (observation.payload_redacted or "")
        created_at = observation.provider_created_at
        assert created_at is not None
        assert observation.provider_expires_at == created_at + timedelta(minutes=15)
    assert statuses == {"PENDING", "RECEIVED", "FINISHED", "CANCELED", "TIMEOUT", "BANNED"}
    assert set(seen) == {"pending", "processing", "code_received", "cancelled", "expired"}
    finals = [o.truth.final.state for o in orders]
    assert 0.55 < finals.count("code_received") / len(finals) < 0.95


def test_orders_end_within_the_window(harness: Harness) -> None:
    for _ in range(60):
        truth = buy(harness).truth
        window_end = truth.created_at + timedelta(minutes=15)
        assert truth.final.at <= window_end + timedelta(minutes=5)
        terminal_at = truth.terminal_at
        assert terminal_at is not None and terminal_at <= window_end
        if truth.final.state == "expired":
            assert truth.final.provider_status == "TIMEOUT" and truth.final.at == window_end


def test_refusals(harness: Harness) -> None:
    order = buy(harness)
    url = f"/fivesim/v1/user/check/{order.truth.order_id}"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        response = harness.request("GET", url, headers=headers)
        assert (response.status_code, response.content) == (401, b"")
    assert (
        harness.request("GET", "/fivesim/v1/user/buy/activation/england/any/telegram").status_code
        == 401
    )
    missing = harness.request("GET", "/fivesim/v1/user/check/999999999", headers=HEADERS)
    assert (missing.status_code, missing.text) == (404, "order not found")
    assert missing.headers["content-type"].startswith("text/plain")
    unknown = harness.request(
        "GET", "/fivesim/v1/user/buy/activation/mars/any/telegram", headers=HEADERS
    )
    assert unknown.status_code == 400


def test_the_workload_creates_fivesim_orders(harness: Harness) -> None:
    async def create() -> list[Any]:
        workload = Workload(harness.client, WorkloadConfig(seed=4))
        return [await workload.create("fivesim") for _ in range(10)]

    created = harness.loop.run_until_complete(create())
    for order in created:
        assert order is not None and order.order_kind == "sms_receive"
        truth = harness.sandbox.get("fivesim", order.order_id)
        assert truth is not None
        assert (order.service, order.country) == (truth.truth.service, truth.truth.country)
    assert len({order.service for order in created}) > 1


# --- the generic sandbox: query credentials, rate limit, 200-with-error -----------------------


@pytest.fixture
def acme_harness(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Harness, DeclaredProvider]]:
    """A sandbox that also serves the generic `acme` declaration."""
    provider = load_file(write_declaration(tmp_path, ACME))
    sandbox = build_sandbox(provider.declaration)
    from pipeline.providers import registry
    from pipeline.simulator import provider as simulator_provider

    entry = registry.RegisteredProvider(
        provider.spec, provider.adapter, str(provider.path), lambda: sandbox
    )
    providers = {**dict(registry.REGISTRY.items()), "acme": entry}
    monkeypatch.setattr(registry.REGISTRY, "_providers", providers)
    simulator_provider.sandbox_provider.cache_clear()
    made = Harness()
    yield made, provider
    made.close()
    simulator_provider.sandbox_provider.cache_clear()


def test_acme_is_served_with_query_credentials_and_a_limit(
    acme_harness: tuple[Harness, DeclaredProvider],
) -> None:
    harness, provider = acme_harness
    auth = {"key": "sandbox-acme-key"}
    account = {"X-Account": "sandbox-acme-account"}
    created = harness.request("POST", "/acme/api/messages", params=auth, headers=account)
    assert created.status_code == 200, created.text
    order_id = created.json()["data"]["items"][0]["id"]
    assert provider.spec.check_order_id(order_id) is None
    tracked = TrackedOrder("acme", order_id, "notification_order", harness.clock.now())

    def poll(**params: str) -> Observation:
        response = harness.request("GET", "/acme/api/messages", params=params, headers=account)
        return provider.adapter.parse(
            response.status_code,
            dict(response.headers),
            response.content,
            order=tracked,
            polled_at=harness.clock.now(),
        )

    assert poll(id=order_id, **auth).state == "pending"
    assert poll(id=order_id).error_class == "auth_invalid"  # 401 without the key
    unknown = poll(id="no-such-id", **auth)
    assert (unknown.error_class, unknown.error_message) == (
        "not_found",
        "ok=false: message not found",
    )
    order = harness.sandbox.get("acme", order_id)
    assert order is not None
    harness.clock.set(order.truth.final.at + STEP)
    assert poll(id=order_id, **auth).state == order.truth.final.state
    # 120 requests a minute per credential; the 121st is refused with Retry-After.
    answers = [
        harness.request(
            "GET", "/acme/api/messages", params={"id": order_id, **auth}, headers=account
        )
        for _ in range(130)
    ]
    limited = [a for a in answers if a.status_code == 429]
    assert limited and int(limited[0].headers["retry-after"]) >= 1
    assert (
        provider.adapter.parse(
            429,
            dict(limited[0].headers),
            limited[0].content,
            order=tracked,
            polled_at=harness.clock.now(),
        ).error_class
        == "rate_limited"
    )


# --- end to end on a real sandbox: tracked, polled, history, analytics, report, Dagster -------


def scaled(slug: str, factor: float) -> DeclarativeAdapter:
    """A copy of the registered (declared) adapter with its cadences scaled by `factor`."""
    registered = ADAPTERS[slug]
    assert isinstance(registered, DeclarativeAdapter)
    adapter = copy.copy(registered)
    policy = adapter.policy
    adapter.spec = dataclasses.replace(
        adapter.spec,
        policy=dataclasses.replace(
            policy,
            cadence_s={k: max(0.1, v * factor) for k, v in policy.cadence_s.items()},
            default_cadence_s=max(0.1, policy.default_cadence_s * factor),
            terminal_grace_s=max(0.1, policy.terminal_grace_s * factor),
        ),
    )
    return adapter


@pytest.mark.slow
def test_fivesim_end_to_end(tmp_path: Path) -> None:
    from live_sandbox import default_config, live_sandbox, track

    from pipeline.assets.analytics import (
        analytics,
        poll_rollups,
        published_warehouse,
        report,
        status_history,
    )
    from pipeline.assets.ingestion import observations_key, orders, provider_observations
    from pipeline.assets.resources import ProvidersResource, WarehouseResource
    from pipeline.polling.client import Poller
    from pipeline.polling.tick import run_window
    from pipeline.settings import Settings

    warehouse = Warehouse(tmp_path / "warehouse.duckdb", lock_timeout_s=10.0)
    warehouse.initialise()
    with live_sandbox(default_config()) as live, dg.instance_for_test() as instance:
        tracked = track(warehouse, live.url, {"fivesim": 12})
        assert len(tracked) == 12
        settings = Settings.from_env({"PIPELINE_SANDBOX_URL": live.url})

        async def poll() -> None:
            async with Poller(settings, {"fivesim": scaled("fivesim", 0.05)}) as poller:
                await run_window(
                    warehouse, poller, duration_s=60.0, tick_s=0.2, stop_when_idle=True
                )

        asyncio.run(poll())
        truth = httpx.get(f"{live.url}/_sandbox/truth").json()["orders"]
        resources = {
            "warehouse": WarehouseResource(data_dir=str(tmp_path), lock_timeout_s=10.0),
            "providers": ProvidersResource(sandbox_url=live.url),
        }
        ingest = dg.materialize(
            [orders, provider_observations],
            resources=resources,
            run_config={"ops": {"poll_providers": {"config": {"window_s": 2.0, "tick_s": 1.0}}}},
            instance=instance,
        )
        derived = dg.materialize(
            [status_history, poll_rollups, analytics, published_warehouse, report],
            resources=resources,
            instance=instance,
        )
    # Tracked and polled until each order ended in its true state.
    true_state = {o["order_id"]: o["state"] for o in truth if o["provider"] == "fivesim"}
    final = warehouse.read(
        "SELECT order_id, last_state, is_terminal FROM order_tracking WHERE provider = 'fivesim'"
    )
    assert final.height == 12
    for row in final.iter_rows(named=True):
        assert row["is_terminal"] and row["last_state"] == true_state[row["order_id"]], row
    stored = warehouse.read(
        "SELECT count(*) AS n, count(code_sha256) AS codes FROM observations"
        " WHERE provider = 'fivesim'"
    ).row(0, named=True)
    assert stored["n"] > 12 and stored["codes"] > 0
    bodies = warehouse.read(
        "SELECT body_redacted FROM payloads WHERE provider = 'fivesim'"
    ).to_series()
    assert bodies.len() > 0
    assert not any('"code":"' in body for body in bodies)  # codes only as {"length": n}
    assert all('"sms":[]' in body or '"code":{"length":6}' in body for body in bodies)
    # The history, the analytics and the report have it.
    assert ingest.success and derived.success
    assert observations_key("fivesim") in {
        e.asset_key for e in ingest.get_asset_materialization_events()
    }
    history = warehouse.read(
        "SELECT count(DISTINCT order_id) AS n FROM status_history WHERE provider = 'fivesim'"
    )
    assert history["n"].item() == 12
    for table in ("provider_reliability", "time_to_code", "expiry_rates"):
        rows = warehouse.read(f"SELECT count(*) AS n FROM {table} WHERE provider = 'fivesim'")
        assert rows["n"].item() > 0, table
    html = (tmp_path / "reports" / "report.html").read_text()
    assert "5SIM" in html


def test_fivesim_tables_are_json(harness: Harness) -> None:
    """The create answer is the documented order object, compact JSON."""
    order = buy(harness, "india", "google")
    answer = json.loads(check(harness, order, harness.clock.now())[0].content)
    assert set(answer) == {
        "id",
        "phone",
        "operator",
        "product",
        "price",
        "status",
        "expires",
        "sms",
        "created_at",
        "forwarding",
        "forwarding_number",
        "country",
    }
    assert isinstance(answer["id"], int) and answer["phone"].startswith("+91")
    assert answer["price"] == 0.2 and answer["sms"] == []
