"""The poller's transport (aiohttp under httpx) over real loopback TCP: a pool never opens more
connections than its bound, each provider has a pool of its own sized by its policy, and every
wire failure reaches the poller as the httpx exception it classifies (never an aiohttp one)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from live_sandbox import create_orders, default_config, live_sandbox
from test_isolation import OPEN_PROFILE

from pipeline.intake import register
from pipeline.polling.client import MAX_CONNECTIONS, Poller
from pipeline.polling.tick import run_tick
from pipeline.polling.transport import PoolTransport
from pipeline.providers.registry import ADAPTERS
from pipeline.settings import Settings
from pipeline.warehouse import Warehouse

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class CountingServer:
    """A raw HTTP/1.1 keep-alive server that answers `{}` after `delay_s` and counts the
    connections it was given: in all, and open at once."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.open = 0
        self.peak_open = 0
        self.accepted = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.open += 1
        self.peak_open = max(self.peak_open, self.open)
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                await asyncio.sleep(self.delay_s)
                writer.write(ANSWER)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open -= 1
            writer.close()


@contextlib.asynccontextmanager
async def serving(handler: Any) -> AsyncIterator[str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


def test_a_pool_never_opens_more_connections_than_its_bound() -> None:
    async def main() -> tuple[CountingServer, list[int], int]:
        counter = CountingServer(delay_s=0.02)
        async with serving(counter.handle) as url:
            transport = PoolTransport(max_connections=3)
            async with httpx.AsyncClient(transport=transport) as client:
                answers = await asyncio.gather(*(client.get(f"{url}/x/{i}") for i in range(40)))
        return counter, [a.status_code for a in answers], transport.peak_in_flight

    counter, statuses, peak = asyncio.run(main())
    assert statuses == [200] * 40
    assert counter.peak_open <= 3
    assert counter.accepted <= 3  # kept alive and reused, not reopened
    assert peak == 40  # all handed over at once; the pool held them to three connections


def test_each_provider_gets_its_own_pool_sized_by_its_policy() -> None:
    settings = Settings.from_env({"PIPELINE_SANDBOX_URL": "http://127.0.0.1:9"})

    async def pools(limits: bool) -> dict[str, PoolTransport]:
        async with Poller(settings, ADAPTERS, limits=limits) as poller:
            found = {}
            for slug, lane in poller.lanes.items():
                assert lane.client is not None
                transport = lane.client._transport
                assert isinstance(transport, PoolTransport)
                found[slug] = transport
            return found

    limited = asyncio.run(pools(limits=True))
    assert len({id(t) for t in limited.values()}) == len(ADAPTERS)
    for slug, transport in limited.items():
        assert transport.max_connections == ADAPTERS[slug].policy.max_concurrency
    unlimited = asyncio.run(pools(limits=False))
    for slug, transport in unlimited.items():
        assert transport.max_connections == max(
            ADAPTERS[slug].policy.max_concurrency, MAX_CONNECTIONS
        )


def _concurrency_per_provider(app: Any, peaks: dict[str, int]) -> Any:
    """An ASGI wrapper: status reads wait 50 ms; the most at once per provider is recorded."""
    now: collections.Counter[str] = collections.Counter()

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"].startswith("/_"):
            await app(scope, receive, send)
            return
        provider = scope["path"].split("/")[1]
        now[provider] += 1
        peaks[provider] = max(peaks.get(provider, 0), now[provider])
        try:
            await asyncio.sleep(0.05)
            await app(scope, receive, send)
        finally:
            now[provider] -= 1

    return wrapped


@pytest.mark.slow
def test_the_poller_keeps_every_providers_concurrency_limit_at_the_server(
    warehouse: Warehouse,
) -> None:
    peaks: dict[str, int] = {}
    config = default_config(profile=OPEN_PROFILE)
    with live_sandbox(config, wrap=lambda app: _concurrency_per_provider(app, peaks)) as live:
        orders = create_orders(live.url, {slug: 24 for slug in ADAPTERS})
        register(warehouse, orders, source="test")
        settings = Settings.from_env({"PIPELINE_SANDBOX_URL": live.url})

        async def main() -> int:
            async with Poller(settings, ADAPTERS, limits=True, seed=1) as poller:
                # Lanes without a rate limit would also be bounded by their bucket otherwise;
                # dropping the buckets leaves the connection bound as the only brake.
                for lane in poller.lanes.values():
                    lane.bucket = None
                now = datetime.now(UTC) + timedelta(seconds=301)
                result = await run_tick(warehouse, poller, now=now)
            return sum(t.ok for t in result.providers.values())

        ok = asyncio.run(main())
    assert ok == len(orders)
    for slug, adapter in ADAPTERS.items():
        assert 1 <= peaks[slug] <= adapter.policy.max_concurrency, slug
    assert any(peaks[slug] > 1 for slug in ADAPTERS)  # requests did overlap


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _get(url: str, **timeouts: float) -> None:
    timeout = httpx.Timeout(timeouts.get("read", 5.0), **timeouts)
    transport = PoolTransport(max_connections=1)
    async with httpx.AsyncClient(transport=transport, timeout=timeout) as client:
        await client.get(url)


def test_wire_failures_arrive_as_the_httpx_errors_the_poller_classifies() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)
        writer.close()

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()
        writer.close()

    async def short_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{")
        await writer.drain()
        writer.close()

    async def main() -> None:
        for handler in (hang_up, garbage, short_body):
            async with serving(handler) as url:
                with pytest.raises(httpx.TransportError) as caught:
                    await _get(url)
                assert not isinstance(caught.value, httpx.TimeoutException), handler.__name__
        async with serving(never_answer) as url:
            with pytest.raises(httpx.ReadTimeout):
                await _get(url, read=0.2)
        with pytest.raises(httpx.ConnectError):
            await _get(f"http://127.0.0.1:{_free_port()}/")

    asyncio.run(main())
