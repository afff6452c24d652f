"""Assembles the sandbox: one Starlette app serving every registered provider's imitation.

    from pipeline.simulator.app import SandboxConfig, build_app, sandbox_of

    app = build_app(SandboxConfig(profile="fast", seed=1), clock=FakeClock())
    sandbox = sandbox_of(app)            # the `Sandbox` state (also `app.state.sandbox`)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox")

Each provider lives under its slug with its real path after it (`/sms4sats/orderstatus`,
`/baanx/v1/order/{orderId}`, …): the app mounts the `wire` of every provider in `REGISTRY`
(`SandboxProvider`, from `pipeline/providers/<slug>/sandbox.py` or a declaration). Every provider
request passes through `serve`, which applies the active fault scenario around the provider's
handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from pipeline.simulator import control
from pipeline.simulator.clock import Clock
from pipeline.simulator.faults import FaultPlan
from pipeline.simulator.provider import sandbox_providers
from pipeline.simulator.state import Sandbox, SandboxConfig, Sleep
from pipeline.simulator.wire import (
    JSON_CONTENT_TYPE,
    ProviderWire,
    RouteSpec,
    to_response,
)

__all__ = ["Sandbox", "SandboxConfig", "build_app", "provider_wires", "sandbox_of"]

logger = logging.getLogger(__name__)

TRUTH_FLUSH_INTERVAL_S = 5.0
SLOW_BODY_CHUNKS = 5


async def serve(
    sandbox: Sandbox, wire: ProviderWire, spec: RouteSpec, request: Request
) -> Response:
    """Answer one provider request, with the faults the scenario assigns to it."""
    provider = wire.slug
    sandbox.requests[provider] = sandbox.requests.get(provider, 0) + 1
    plan = sandbox.faults.plan(provider, spec.kind, sandbox.now())
    if plan.delay_s > 0:
        await sandbox.pause(plan.delay_s)
    if plan.error_status is not None:
        reply = wire.error_reply(plan.error_status)
    elif plan.retry_after_s is not None:
        reply = wire.rate_limited_reply(plan.retry_after_s)
    else:
        variant = plan.variant
        answering = (
            sandbox.answering_with(provider, variant.apply(sandbox.options_of(provider)))
            if variant is not None
            else contextlib.nullcontext()
        )
        with answering:
            reply = await spec.handler(request, sandbox)
        sandbox.faults.mutate_body(provider, plan, reply)
    data = sandbox.faults.mutate_bytes(provider, plan, reply, reply.encode())
    if plan.byte_rule is not None and plan.byte_rule.kind == "slow_body":
        return _slow_response(sandbox, plan, data, reply.status, reply.headers, reply.content_type)
    return to_response(reply, data)


def _slow_response(
    sandbox: Sandbox,
    plan: FaultPlan,
    data: bytes,
    status: int,
    headers: dict[str, str],
    content_type: str,
) -> Response:
    """The body in a few chunks spread over the rule's delay."""
    assert plan.byte_rule is not None
    low, high = plan.byte_rule.delays
    pause = (low + high) / 2 / SLOW_BODY_CHUNKS
    size = max(1, -(-len(data) // SLOW_BODY_CHUNKS))

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(data), size):
            await sandbox.pause(pause)
            yield data[start : start + size]

    return StreamingResponse(
        chunks(), status_code=status, headers=headers, media_type=content_type or JSON_CONTENT_TYPE
    )


def _endpoint(wire: ProviderWire, spec: RouteSpec) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await serve(request.app.state.sandbox, wire, spec, request)

    endpoint.__name__ = f"{wire.slug}_{spec.handler.__name__}"
    return endpoint


def provider_wires() -> tuple[ProviderWire, ...]:
    """The HTTP surface of every registered provider, in registration order."""
    return tuple(provider.wire for provider in sandbox_providers())


def provider_routes(wires: tuple[ProviderWire, ...] | None = None) -> list[BaseRoute]:
    """Every provider endpoint (of `wires`, default: every registered provider) under its slug."""
    if wires is None:
        wires = provider_wires()
    routes: list[BaseRoute] = []
    for wire in wires:
        for spec in wire.routes:
            path = f"/{wire.slug}{spec.path}" if spec.path != "/" else f"/{wire.slug}/"
            routes.append(Route(path, _endpoint(wire, spec), methods=list(spec.methods)))
    return routes


async def _flush_periodically(sandbox: Sandbox) -> None:
    while True:
        await asyncio.sleep(TRUTH_FLUSH_INTERVAL_S)
        try:
            sandbox.flush_truth()
        except OSError:
            logger.exception("could not write ground truth")


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    sandbox: Sandbox = app.state.sandbox
    task = asyncio.create_task(_flush_periodically(sandbox)) if sandbox.truth_log else None
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        sandbox.flush_truth(closing=True)


def build_app(
    config: SandboxConfig | None = None, *, clock: Clock | None = None, sleep: Sleep | None = None
) -> Starlette:
    """The sandbox app; its `Sandbox` is `app.state.sandbox` (see `sandbox_of`).

    Args:
        config: profile, seed, faults, options, limits (defaults: fast profile, seed 0, no
            faults).
        clock: time source; a `FakeClock` lets tests move time without sleeping.
        sleep: how fault delays wait (default `asyncio.sleep`).
    """
    sandbox = Sandbox(config, clock=clock, sleep=sleep)
    wires = provider_wires()
    app = Starlette(routes=[*control.ROUTES, *provider_routes(wires)], lifespan=_lifespan)
    app.state.sandbox = sandbox
    app.state.wires = {wire.slug: wire for wire in wires}
    return app


def sandbox_of(app: Starlette) -> Sandbox:
    """The `Sandbox` behind an app made by `build_app`."""
    sandbox: Sandbox = app.state.sandbox
    return sandbox
