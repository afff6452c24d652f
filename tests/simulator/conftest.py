"""Fixtures for sandbox tests: an app on a fake clock, a sync client, and a sleep recorder."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from pipeline.model import Observation, TrackedOrder
from pipeline.providers.registry import REGISTRY, get_adapter
from pipeline.settings import Settings
from pipeline.simulator.app import SandboxConfig, build_app, sandbox_of
from pipeline.simulator.clock import FakeClock
from pipeline.simulator.lifecycles import OrderTruth
from pipeline.simulator.provider import CreatedOrder
from pipeline.simulator.state import Sandbox, SandboxOrder
from pipeline.simulator.workload import Workload

MAX_TRIES = 400
CREDS = REGISTRY.sandbox_credentials()
BASE_URL = "http://sandbox.test"
HARNESS_SETTINGS = Settings.from_env({"PIPELINE_SANDBOX_URL": BASE_URL})
"""Every provider pointed at the harness's app (the adapters' requests go there)."""

BAANX_HEADERS = {
    "Authorization": f"Bearer {CREDS['BAANX_ACCESS_TOKEN']}",
    "X-Client-ID": CREDS["BAANX_CLIENT_ID"],
}
ALTINN_HEADERS = {"Authorization": f"Bearer {CREDS['ALTINN_TOKEN']}"}
SMSONLINE_USER = CREDS["SMSONLINE_USER_ID"]


class SleepRecorder:
    """Stands in for `asyncio.sleep`: records each requested delay and returns at once."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class SyncClient:
    """A blocking HTTP client over `httpx.ASGITransport`, driven by its own event loop."""

    def __init__(self, app: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send one request and wait for the answer."""
        return self._loop.run_until_complete(self._client.request(method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", url, **kwargs)

    def close(self) -> None:
        """Close the client and its loop."""
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()


class SandboxHarness:
    """A sandbox app with its fake clock, sleep recorder and a synchronous HTTP client."""

    def __init__(self, config: SandboxConfig) -> None:
        self.clock = FakeClock()
        self.sleeps = SleepRecorder()
        self.app = build_app(config, clock=self.clock, sleep=self.sleeps)
        self.sandbox: Sandbox = sandbox_of(self.app)
        self.client = SyncClient(self.app)

    def advance(self, seconds: float) -> None:
        """Move the fake clock forward."""
        self.clock.advance(seconds)

    def create(self, provider: str, kind: str = "", **body: Any) -> str:
        """Create one order through the provider's create endpoint; returns its id. The built-in
        providers take fixed request bodies (overridable by `body`); others are created as the
        workload does."""
        if provider == "sms4sats" and kind == "sms_send":
            payload = {"message": "hello", "phone": "+4791234567", **body}
            response = self.client.post("/sms4sats/createsendorder", json=payload)
            return str(response.json()["orderId"])
        if provider == "sms4sats":
            payload = {"country": 22, "service": "openAI", **body}
            return str(self.client.post("/sms4sats/createorder", json=payload).json()["orderId"])
        if provider == "smsonline":
            payload = {"apiKey": CREDS["SMSONLINE_API_KEY"], "service": "ds", "country": "12"}
            payload.update(body)
            response = self.client.put(
                f"/smsonline/v3/numbers/{SMSONLINE_USER}/order", json=payload
            )
            return str(response.json()["body"]["orderId"])
        if provider == "ordinalsbot":
            self.sandbox.reset_limiter("ordinalsbot:create")
            payload = {
                "files": [{"name": "a.txt", "size": 10, "type": "text/plain", "url": "https://x"}],
                "receiveAddress": "bc1pexample",
                **body,
            }
            return str(self.client.post("/ordinalsbot/order", json=payload).json()["id"])
        if provider == "baanx":
            payload = {"productId": "virtual-card", "paymentMethod": "CRYPTO_EXTERNAL_DAIMO"}
            payload.update(body)
            response = self.client.post("/baanx/v1/order", json=payload, headers=BAANX_HEADERS)
            return str(response.json()["orderId"])
        if provider != "altinn":  # a declared provider: its own create call
            return self.create_as_user(provider, 1)[0].order_id
        channel = body.pop("channel", "email")
        payload = {"recipients": [{"emailAddress": "a@example.com"}], **body}
        response = self.client.post(
            f"/altinn/notifications/api/v1/orders/{channel}", json=payload, headers=ALTINN_HEADERS
        )
        return str(response.json()["orderId"])

    def create_as_user(self, provider: str, count: int) -> list[TrackedOrder]:
        """`count` orders created through the provider's own create call (as the workload
        does), as tracked orders registered when created."""

        async def create_all() -> list[CreatedOrder | None]:
            workload = Workload(self.client._client)
            made = []
            for _ in range(count):
                self.sandbox.reset_limiter(f"{provider}:create")
                made.append(await workload.create(provider))
            return made

        created = self.client._loop.run_until_complete(create_all())
        assert all(order is not None for order in created), f"{provider}: a create failed"
        return [
            TrackedOrder(
                provider=o.provider,
                order_id=o.order_id,
                order_kind=o.order_kind,
                registered_at=o.created_at,
                created_at=o.created_at,
                service=o.service,
                country=o.country,
            )
            for o in created
            if o is not None
        ]

    def poll(self, order: TrackedOrder) -> tuple[httpx.Response, Observation]:
        """Ask for `order` with its adapter's own request; the answer and its reading."""
        adapter = get_adapter(order.provider)
        spec = adapter.build_request(order, HARNESS_SETTINGS.provider(order.provider))
        response = self.client.request(
            spec.method, spec.url, params=dict(spec.params), headers=dict(spec.headers)
        )
        observation = adapter.parse(
            response.status_code,
            dict(response.headers),
            response.content,
            order=order,
            polled_at=self.clock.now(),
        )
        return response, observation

    def order(self, provider: str, order_id: str) -> SandboxOrder:
        """The stored order."""
        order = self.sandbox.get(provider, order_id)
        assert order is not None
        return order

    def find(
        self, provider: str, predicate: Callable[[OrderTruth], bool], kind: str = "", **body: Any
    ) -> SandboxOrder:
        """Create orders until one's drawn timeline satisfies `predicate`."""
        for _ in range(MAX_TRIES):
            order = self.order(provider, self.create(provider, kind, **dict(body)))
            if predicate(order.truth):
                return order
        raise AssertionError(f"no {provider} order matched in {MAX_TRIES} tries")

    def at_milestone(self, order: SandboxOrder, milestone: str, after_s: float = 0.001) -> None:
        """Move the clock just past `milestone` of `order`."""
        self.clock.set(order.truth.milestones[milestone] + timedelta(seconds=after_s))

    def status(self, provider: str, order_id: str, **headers: str) -> httpx.Response:
        """Poll one order's status endpoint with the development credentials."""
        if provider == "sms4sats":
            return self.client.get("/sms4sats/orderstatus", params={"orderId": order_id})
        if provider == "smsonline":
            return self.client.get(
                f"/smsonline/v3/numbers/{SMSONLINE_USER}/order/{order_id}",
                params={"apiKey": CREDS["SMSONLINE_API_KEY"]},
            )
        if provider == "ordinalsbot":
            return self.client.get("/ordinalsbot/order", params={"id": order_id})
        if provider == "baanx":
            return self.client.get(f"/baanx/v1/order/{order_id}", headers=headers or BAANX_HEADERS)
        return self.client.get(
            f"/altinn/notifications/api/v1/orders/{order_id}/status",
            headers=headers or ALTINN_HEADERS,
        )


@pytest.fixture
def make_harness() -> Iterator[Callable[..., SandboxHarness]]:
    """Build a harness; keyword arguments go to `SandboxConfig` (default: realistic, seed 1)."""
    made: list[SandboxHarness] = []

    def make(**config: Any) -> SandboxHarness:
        config.setdefault("profile", "realistic")
        config.setdefault("seed", 1)
        made.append(SandboxHarness(SandboxConfig(**config)))
        return made[-1]

    yield make
    for harness in made:
        harness.client.close()


@pytest.fixture
def harness(make_harness: Callable[..., SandboxHarness]) -> SandboxHarness:
    """A realistic-profile sandbox with no faults."""
    return make_harness()
