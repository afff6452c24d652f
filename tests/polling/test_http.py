"""The poller's httpx client: `status_request` builds exactly the request `build_request` would
(for every provider, with keys in headers, query or path, and for awkward ids), and the client
keeps no cookie, so one order's answer never adds a cookie to the next order's request."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest

from pipeline.model import TrackedOrder
from pipeline.polling.client import TIMEOUT
from pipeline.polling.http import PollingClient, status_request
from pipeline.providers.base import RequestSpec
from pipeline.providers.registry import ADAPTERS, PROVIDERS, default_kind
from pipeline.settings import Settings

HEADERS = {"Accept": "application/json", "User-Agent": "order-status-history/0.1"}
ORDER_IDS = ["c411ca33-53dd-4d4f-b959-6c6dffcc88e5", "a/b?c", "é ü", "100%", ".."]
TIMEOUT_NEAR_DEADLINE = httpx.Timeout(connect=0.5, read=0.7, write=0.7, pool=0.5)


def assert_same_request(built: httpx.Request, expected: httpx.Request) -> None:
    assert built.method == expected.method
    assert built.url == expected.url
    assert str(built.url) == str(expected.url)
    assert built.headers.raw == expected.headers.raw
    assert built.extensions == expected.extensions
    assert built.content == expected.content == b""


@pytest.mark.parametrize("slug", PROVIDERS)
@pytest.mark.parametrize("order_id", ORDER_IDS)
def test_status_request_is_what_build_request_makes(slug: str, order_id: str) -> None:
    settings = Settings.from_env({"PIPELINE_SANDBOX_URL": "http://127.0.0.1:8765"})
    order = TrackedOrder(slug, order_id, default_kind(slug), datetime(2026, 1, 1, tzinfo=UTC))
    spec = ADAPTERS[slug].build_request(order, settings.provider(slug))
    client = PollingClient(headers=HEADERS, timeout=TIMEOUT)
    for timeout in (TIMEOUT, TIMEOUT_NEAR_DEADLINE):
        expected = client.build_request(
            spec.method, spec.url, params=spec.params, headers=spec.headers, timeout=timeout
        )
        assert_same_request(status_request(client, spec, timeout), expected)


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("https://api.example.test/v1/orders/abc", {}),
        ("https://api.example.test/v1/orders?kind=sms", {"id": "a&b=c", "key": "k y"}),
        ("https://api.example.test:8443/v1/orders/abc", {"id": "é"}),
    ],
)
def test_queries_merge_as_httpx_merges_them(url: str, params: dict[str, str]) -> None:
    spec = RequestSpec("GET", url, params, {"X-Api-Key": "k", "accept": "text/plain"}, "/orders")
    client = PollingClient(headers=HEADERS, timeout=TIMEOUT)
    expected = client.build_request("GET", url, params=params, headers=spec.headers)
    assert_same_request(status_request(client, spec, TIMEOUT), expected)


def test_an_answers_cookie_never_reaches_the_next_request() -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Cookie"))
        return httpx.Response(200, headers={"Set-Cookie": "session=abc; Path=/"}, json={})

    async def two_polls() -> None:
        async with PollingClient(transport=httpx.MockTransport(handler)) as client:
            for _ in range(2):
                response = await client.get("https://api.example.test/orders/1")
                assert response.headers["Set-Cookie"] == "session=abc; Path=/"
            assert not client.cookies

    asyncio.run(two_polls())
    assert seen == [None, None]


def test_the_client_refuses_cookies() -> None:
    with pytest.raises(ValueError, match="no cookies"):
        PollingClient(cookies={"session": "abc"})
    client = PollingClient()
    with pytest.raises(ValueError, match="no cookies"):
        client.cookies = {"session": "abc"}  # type: ignore[assignment]
    client.cookies = None  # type: ignore[assignment]
