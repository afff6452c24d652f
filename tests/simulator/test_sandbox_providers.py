"""The sandbox takes every provider from the registry: each built-in package's `SANDBOX` fits its
spec, and a provider registered outside `pipeline/simulator` is served, drawn, configured and
created on like the built-ins, with no simulator module naming it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from starlette.requests import Request

from pipeline.model import OrderState
from pipeline.providers.registry import REGISTRY, RegisteredProvider
from pipeline.providers.spec import ProviderSpec
from pipeline.simulator.app import SandboxConfig, build_app, sandbox_of
from pipeline.simulator.distributions import Traits
from pipeline.simulator.lifecycles import LifecycleConfig, draw_order
from pipeline.simulator.options import ProviderOptions, apply_overrides
from pipeline.simulator.provider import (
    CreatedOrder,
    Creator,
    SandboxProvider,
    sandbox_provider,
    sandbox_providers,
)
from pipeline.simulator.state import Sandbox
from pipeline.simulator.timeline import Timeline
from pipeline.simulator.wire import ProviderWire, Reply, RouteSpec, json_reply, read_json
from pipeline.simulator.workload import Workload, WorkloadConfig

SLUG = "example"
KIND = "sms_receive"


def test_every_registered_provider_has_a_fitting_sandbox() -> None:
    sandboxes = sandbox_providers()
    assert [s.slug for s in sandboxes] == list(REGISTRY)
    for sandbox in sandboxes:
        assert sandbox.wire.slug == sandbox.slug
        assert sandbox.problems(REGISTRY.spec(sandbox.slug)) == []
        for field, allowed in sandbox.option_choices.items():
            assert getattr(sandbox.options, field) in allowed, (sandbox.slug, field)
        rng = random.Random(1)
        ids = {sandbox.new_order_id(rng) for _ in range(50)}
        spec = REGISTRY.spec(sandbox.slug)
        assert all(spec.check_order_id(order_id) is None for order_id in ids)


# --- a provider from outside the simulator ----------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ExampleFigures:
    p_code: float = 1.0
    code_after_s: float = 30.0
    services: dict[str, Traits] = dataclasses.field(default_factory=lambda: {"chat": Traits()})


@dataclasses.dataclass(frozen=True)
class ExampleOptions:
    status_word: str = "waiting"


def draw(
    tl: Timeline,
    rng: random.Random,
    figures: ExampleFigures,
    f: float,
    service: str | None,
    country: str | None,
) -> None:
    tl.enter(0.0, OrderState.PROCESSING, "waiting")
    if rng.random() < figures.p_code:
        tl.enter(figures.code_after_s * f, OrderState.CODE_RECEIVED, "done", "code")


async def get_order(request: Request, sandbox: Sandbox) -> Reply:
    order = sandbox.get(SLUG, request.path_params["id"])
    if order is None:
        return json_reply({"error": "not found"}, 404)
    current = order.truth.state_at(sandbox.now()) or order.truth.transitions[0]
    options: ExampleOptions = sandbox.options.of(SLUG)
    word = options.status_word if current.provider_status == "waiting" else "done"
    return json_reply({"id": order.truth.order_id, "status": word}, status_path=("status",))


async def post_order(request: Request, sandbox: Sandbox) -> Reply:
    body = await read_json(request) or {}
    order = sandbox.create_order(SLUG, KIND, service=str(body.get("service") or "chat"))
    return json_reply({"id": order.truth.order_id}, 201)


async def create(creator: Creator) -> CreatedOrder:
    answer = await creator.post("POST", "/orders", {"service": "chat"})
    return creator.order(creator.field(answer, "id"), KIND, "chat")


EXAMPLE = SandboxProvider(
    slug=SLUG,
    wire=ProviderWire(
        slug=SLUG,
        routes=(
            RouteSpec("/orders/{id}", ("GET",), "status", get_order),
            RouteSpec("/orders", ("POST",), "create", post_order),
        ),
        error_reply=lambda status: json_reply({"error": "server"}, status),
        rate_limited_reply=lambda after: json_reply({}, 429, headers={"Retry-After": str(after)}),
        poll_path="/orders/{order_id}",
    ),
    lifecycles={KIND: draw},
    figures=ExampleFigures(),
    options=ExampleOptions(),
    option_choices={"status_word": ("waiting", "pending")},
    new_order_id=lambda rng: f"ex-{rng.getrandbits(32):08x}",
    services=lambda kind, figures: figures.services,
    create=create,
)


@pytest.fixture
def example_registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    template = REGISTRY.spec("smsonline")
    spec = ProviderSpec(
        slug=SLUG,
        display_name="Example",
        family="SMS activation",
        order_kinds=(KIND,),
        policy=template.policy,
        colour="#123456",
    )
    entry = RegisteredProvider(spec, REGISTRY.adapter("smsonline"), "test", lambda: EXAMPLE)
    monkeypatch.setitem(REGISTRY._providers, SLUG, entry)
    sandbox_provider.cache_clear()
    yield
    sandbox_provider.cache_clear()


@pytest.mark.usefixtures("example_registered")
def test_a_provider_outside_the_simulator_is_drawn_configured_served_and_created_on() -> None:
    created = datetime(2026, 1, 1, tzinfo=UTC)
    truth = draw_order(SLUG, KIND, random.Random(1), created, "realistic")
    assert truth.service == "chat" and truth.order_id.startswith("ex-")
    assert truth.final.state == OrderState.CODE_RECEIVED
    never = LifecycleConfig(**{SLUG: ExampleFigures(p_code=0.0)})
    assert (
        draw_order(SLUG, KIND, random.Random(1), created, config=never).final.state == "processing"
    )

    options = apply_overrides(ProviderOptions(), [f"{SLUG}.status_word=pending"])
    with pytest.raises(ValueError, match="choose one of"):
        apply_overrides(options, [f"{SLUG}.status_word=other"])

    async def scenario() -> tuple[CreatedOrder | None, httpx.Response, dict]:
        app = build_app(SandboxConfig(options=options))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
            workload = Workload(client, WorkloadConfig(providers=(SLUG,)))
            order = await workload.create(SLUG)
            assert order is not None
            status = await client.get(f"/{SLUG}/orders/{order.order_id}")
            listing = (await client.get("/_sandbox/orders", params={"provider": SLUG})).json()
        assert sandbox_of(app).requests[SLUG] == 2
        return order, status, listing

    order, status, listing = asyncio.run(scenario())
    assert order is not None and order.provider == SLUG and order.service == "chat"
    assert status.json() == {"id": order.order_id, "status": "pending"}
    assert listing["orders"][0]["poll_path"] == f"/{SLUG}/orders/{order.order_id}"
