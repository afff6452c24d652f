"""A sandbox served over real loopback TCP for end-to-end tests, and helpers around it.

The server runs uvicorn in a background thread on a free port of 127.0.0.1 and always stops when
the block ends. A small ASGI wrapper records when each provider request arrived, so tests can
measure request rates at the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import uvicorn

from pipeline.intake import make_order, register
from pipeline.model import TrackedOrder
from pipeline.providers.base import PollingPolicy, ProviderAdapter
from pipeline.providers.ordinalsbot.sandbox import OrdinalsBotOptions
from pipeline.providers.registry import ADAPTERS, PROVIDERS
from pipeline.simulator.app import SandboxConfig, build_app, sandbox_of
from pipeline.simulator.lifecycles import Profile
from pipeline.simulator.options import ProviderOptions
from pipeline.simulator.state import Sandbox
from pipeline.simulator.workload import Workload, WorkloadConfig
from pipeline.warehouse import Warehouse

# Lifecycles a hundred times faster than documented: a whole order life fits in seconds.
TEST_PROFILE = Profile("test", 0.01)
START_TIMEOUT_S = 10.0


@dataclasses.dataclass
class RequestLog:
    """Arrival times (monotonic seconds) of requests, per path prefix."""

    arrivals: list[tuple[str, str, float]] = dataclasses.field(default_factory=list)

    def times(self, method: str, path_prefix: str) -> list[float]:
        """Arrival times of `method` requests whose path starts with `path_prefix`."""
        return [t for m, p, t in self.arrivals if m == method and p.startswith(path_prefix)]


@dataclasses.dataclass
class LiveSandbox:
    """A running sandbox: its URL, its state and what reached it."""

    url: str
    sandbox: Sandbox
    requests: RequestLog


def default_config(**changes: Any) -> SandboxConfig:
    """Fast lifecycles, a fixed seed, and OrdinalsBot's create limit (2 per 10 s) lifted so
    tests can create their orders at once (the limit itself is tested with the sandbox)."""
    options = ProviderOptions(ordinalsbot=OrdinalsBotOptions(create_limit=10_000))
    return SandboxConfig(
        **{"profile": TEST_PROFILE, "seed": 11, "options": options, **changes}  # type: ignore[arg-type]
    )


def _recording(app: Any, log: RequestLog) -> Any:
    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            log.arrivals.append((scope["method"], scope["path"], time.monotonic()))
        await app(scope, receive, send)

    return wrapped


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def live_sandbox(
    config: SandboxConfig | None = None, *, wrap: Callable[[Any], Any] | None = None
) -> Iterator[LiveSandbox]:
    """Serve a sandbox on 127.0.0.1 for the duration of the block.

    `wrap` takes the sandbox's ASGI app and returns the app to serve (to alter some answers).
    """
    app = build_app(config or default_config())
    log = RequestLog()
    port = _free_port()
    served = _recording(wrap(app) if wrap else app, log)
    server = uvicorn.Server(
        uvicorn.Config(served, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("sandbox did not start")
        time.sleep(0.02)
    try:
        yield LiveSandbox(f"http://127.0.0.1:{port}", sandbox_of(app), log)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def create_orders(url: str, per_provider: Mapping[str, int]) -> list[TrackedOrder]:
    """Create orders through the sandbox's create endpoints, as a user would."""

    async def main() -> list[TrackedOrder]:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            workload = Workload(client, WorkloadConfig(seed=3, schedule_scale=TEST_PROFILE.scale))
            created = []
            for provider, n in per_provider.items():
                for _ in range(n):
                    order = await workload.create(provider)
                    assert order is not None, f"could not create a {provider} order"
                    created.append(order)
        now = datetime.now(UTC)
        return [
            make_order(
                o.provider,
                o.order_id,
                order_kind=o.order_kind,
                created_at=o.created_at,
                service=o.service,
                country=o.country,
                registered_at=now,
            )
            for o in created
        ]

    return asyncio.run(main())


def track(warehouse: Warehouse, url: str, per_provider: Mapping[str, int]) -> list[TrackedOrder]:
    """Create orders on the sandbox and register them for tracking."""
    orders = create_orders(url, per_provider)
    register(warehouse, orders, source="test")
    return orders


def scaled_adapters(
    factor: float, providers: tuple[str, ...] = PROVIDERS
) -> dict[str, ProviderAdapter]:
    """Copies of the real adapters whose cadences and windows are scaled by `factor`."""
    adapters = {}
    for slug in providers:
        adapter = copy.copy(ADAPTERS[slug])
        policy: PollingPolicy = adapter.policy
        # The adapter reads its policy from its spec: scale a copy of the spec.
        adapter.spec = dataclasses.replace(  # type: ignore[attr-defined]
            adapter.spec,  # type: ignore[attr-defined]
            policy=dataclasses.replace(
                policy,
                cadence_s={k: max(0.1, v * factor) for k, v in policy.cadence_s.items()},
                default_cadence_s=max(0.1, policy.default_cadence_s * factor),
                terminal_grace_s=max(0.1, policy.terminal_grace_s * factor),
            ),
        )
        adapters[slug] = adapter
    return adapters
