"""The poller against misbehaving providers (faked with `httpx.MockTransport`): 429 with
Retry-After, timeouts, bad credentials, sustained outages, and a locked warehouse. Each is
recorded as observations and the run carries on; one provider failing never stops the others."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from warehouse_holder import held

from pipeline.intake import make_order, register
from pipeline.model import TrackedOrder
from pipeline.polling.client import Poller
from pipeline.polling.retry import RetryPolicy
from pipeline.polling.tick import TickResult, run_tick
from pipeline.providers.registry import ADAPTERS
from pipeline.settings import Settings
from pipeline.warehouse import Warehouse

SETTINGS = Settings.from_env({})
FAST_RETRY = RetryPolicy(max_attempts=3, base_delay_s=0.01, max_delay_s=0.02)
BAANX_OK = {"orderId": "x", "status": "STARTED"}


def _orders(provider: str, n: int) -> list[TrackedOrder]:
    ids = {
        "baanx": "order_{}",
        "smsonline": "2004687{}",
        "sms4sats": "abc{}",
    }[provider]
    return [make_order(provider, ids.format(i)) for i in range(n)]


def _tick(warehouse: Warehouse, handler: httpx.MockTransport) -> TickResult:
    async def main() -> TickResult:
        async with Poller(SETTINGS, ADAPTERS, transport=handler, retry=FAST_RETRY) as poller:
            return await run_tick(warehouse, poller)

    return asyncio.run(main())


def test_429_is_retried_after_the_wait_it_asks_for(warehouse: Warehouse) -> None:
    calls: Counter[str] = Counter()

    def handler(request: httpx.Request) -> httpx.Response:
        calls[request.url.path] += 1
        if calls[request.url.path] == 1:
            return httpx.Response(429, headers={"Retry-After": "0"}, json={"status": "error"})
        return httpx.Response(200, json=BAANX_OK)

    register(warehouse, _orders("baanx", 1), source="test")
    result = _tick(warehouse, httpx.MockTransport(handler))
    rows = warehouse.read(
        "SELECT attempt, http_status, error_class, state FROM observations ORDER BY attempt"
    )
    assert rows.rows() == [(1, 429, "rate_limited", "unknown"), (2, 200, None, "pending")]
    assert result.providers["baanx"].ok == 1


def test_timeouts_are_recorded_retried_within_bounds_and_keep_the_state(
    warehouse: Warehouse,
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    register(warehouse, _orders("baanx", 2), source="test")
    _tick(warehouse, httpx.MockTransport(handler))
    rows = warehouse.read("SELECT error_class, http_status, state, latency_ms FROM observations")
    assert rows.height == 2 * FAST_RETRY.max_attempts
    assert set(rows["error_class"]) == {"timeout"}
    assert rows["http_status"].null_count() == rows.height
    assert set(rows["state"]) == {"unknown"} and rows["latency_ms"].min() >= 0  # type: ignore[operator]


def test_bad_credentials_are_recorded_once_per_tick_not_hammered(warehouse: Warehouse) -> None:
    requests: Counter[str] = Counter()

    def handler(request: httpx.Request) -> httpx.Response:
        provider = request.url.path.split("/")[1]
        requests[provider] += 1
        if provider == "baanx":
            return httpx.Response(401)
        return httpx.Response(200, json={"status": "OK", "paid": True})

    register(warehouse, _orders("baanx", 6) + _orders("sms4sats", 3), source="test")
    result = _tick(warehouse, httpx.MockTransport(handler))
    assert requests["baanx"] == 1
    assert result.providers["baanx"].errors == {"auth_invalid": 1}
    assert result.providers["baanx"].skipped["config_error"] == 5
    assert result.providers["sms4sats"].ok == 3  # the other provider carried on
    # The next tick tries again (credentials may have been fixed), once.
    _tick(warehouse, httpx.MockTransport(handler))
    assert requests["baanx"] == 2


def test_a_sustained_outage_opens_the_circuit_and_spares_the_others(warehouse: Warehouse) -> None:
    requests: Counter[str] = Counter()

    def handler(request: httpx.Request) -> httpx.Response:
        provider = request.url.path.split("/")[1]
        requests[provider] += 1
        if provider == "smsonline":
            return httpx.Response(503, text="Service Unavailable")
        return httpx.Response(200, json=BAANX_OK)

    register(warehouse, _orders("smsonline", 30) + _orders("baanx", 5), source="test")
    result = _tick(warehouse, httpx.MockTransport(handler))
    smsonline = result.providers["smsonline"]
    assert smsonline.skipped["circuit_open"] > 0
    assert requests["smsonline"] < 30 * FAST_RETRY.max_attempts  # it stopped asking
    assert smsonline.errors["server_error"] == requests["smsonline"]  # every attempt recorded
    # Orders the open circuit held back are recorded too: the outage stays visible.
    seen = warehouse.read(
        "SELECT count(DISTINCT order_id) AS orders, "
        "count(*) FILTER (WHERE error_class = 'circuit_open' AND http_status IS NULL) AS not_sent "
        "FROM observations WHERE provider = 'smsonline'"
    )
    assert seen["orders"].item() == 30
    assert 0 < seen["not_sent"].item() <= smsonline.skipped["circuit_open"]
    assert result.providers["baanx"].ok == 5


def test_a_locked_warehouse_is_reported_and_the_next_tick_catches_up(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "warehouse.duckdb", lock_timeout_s=0.5)
    register(warehouse, _orders("baanx", 2), source="test")
    handler = httpx.MockTransport(lambda request: httpx.Response(200, json=BAANX_OK))

    async def poll_while_locked() -> TickResult:
        async with Poller(SETTINGS, ADAPTERS, transport=handler, retry=FAST_RETRY) as poller:
            with held(warehouse.path):
                # Another process holds the file: the tick cannot read what is due; it says so.
                return await run_tick(warehouse, poller)

    locked = asyncio.run(poll_while_locked())
    assert locked.write_errors and "locked" in locked.write_errors[0]
    assert "PID" in locked.write_errors[0]
    after = _tick(warehouse, handler)
    assert not after.write_errors and after.written == 2


def test_an_order_the_provider_never_knew_is_given_up(warehouse: Warehouse) -> None:
    """A typo'd id (or one from a restarted sandbox) is not polled forever: after MAX_NOT_FOUND
    not-found answers with no valid answer ever, it drops out of the due list; a known order
    that is briefly not found keeps being polled."""
    from datetime import UTC, datetime, timedelta

    from pipeline.polling.schedule import DUE_QUERY, MAX_NOT_FOUND

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("ghost"):
            return httpx.Response(404, json={"error": "Order not found"})
        return httpx.Response(200, json=BAANX_OK)

    register(warehouse, [make_order("baanx", "ghost"), make_order("baanx", "real")], source="t")

    async def ticks() -> None:
        retry = RetryPolicy(max_attempts=1)
        async with Poller(
            SETTINGS, ADAPTERS, transport=httpx.MockTransport(handler), retry=retry
        ) as p:
            for i in range(MAX_NOT_FOUND + 2):
                await run_tick(warehouse, p, now=datetime.now(UTC) + timedelta(minutes=i))

    asyncio.run(ticks())
    not_found = warehouse.read(
        "SELECT count(*) AS n FROM observations "
        "WHERE order_id = 'ghost' AND error_class = 'not_found'"
    )["n"].item()
    assert not_found == MAX_NOT_FOUND
    ever = datetime(2000, 1, 1, tzinfo=UTC)
    due = set(warehouse.read(DUE_QUERY, [ever, "baanx", ever])["order_id"])
    assert due == {"real"}


def test_a_new_unrecognised_status_is_logged_once_with_provider_and_value_never_the_body(
    warehouse: Warehouse, caplog: pytest.LogCaptureFixture
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"orderId": "x", "status": "ON_HOLD", "note": "body-1234"})

    register(warehouse, _orders("baanx", 3), source="test")

    async def two_ticks() -> TickResult:
        # One polling process, its orders asked twice: the second tick five minutes on, when
        # every order is due again, whatever the machine's speed.
        transport = httpx.MockTransport(handler)
        async with Poller(SETTINGS, ADAPTERS, transport=transport, retry=FAST_RETRY) as poller:
            await run_tick(warehouse, poller)
            return await run_tick(warehouse, poller, now=datetime.now(UTC) + timedelta(minutes=5))

    with caplog.at_level(logging.WARNING, logger="pipeline.polling.client"):
        second = asyncio.run(two_ticks())
    assert second.providers["baanx"].polled == 3  # asked again, not logged again
    notes = [r.getMessage() for r in caplog.records if "unrecognised status" in r.getMessage()]
    assert notes == ["baanx: new unrecognised status 'ON_HOLD'"]
    assert "body-1234" not in caplog.text
    stored = warehouse.read("SELECT count(*) AS n FROM observations WHERE status_unrecognized")
    assert stored["n"].item() >= 3
