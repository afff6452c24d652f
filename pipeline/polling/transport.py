"""The poller's HTTP transport: aiohttp's connection pool under the httpx client API.

httpx stays the API the poller talks to (requests, responses, timeouts, exception types); this
transport replaces httpcore underneath. On a small machine httpcore, anyio and h11 cost about
1 ms of CPU per request and rescan every queued request on each connection event, so a pool
larger than about 20 connections got slower, not faster; aiohttp's C parser and connector do the
same work for a fraction of that and let a pool grow to what slow providers need.

Each transport owns one pool bounded by `max_connections` (a lane's own pool: a provider never
uses another's connections). Every failure surfaces as the httpx exception the poller already
classifies: timeouts as `httpx.TimeoutException`, everything else on the wire as
`httpx.TransportError`; never as an aiohttp or asyncio exception.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping

import aiohttp
import httpx
import yarl

# Idle keep-alive connections are closed after this long (httpx's default expiry).
KEEPALIVE_EXPIRY_S = 5.0


class PoolTransport(httpx.AsyncBaseTransport):
    """An httpx transport over one aiohttp connection pool of at most `max_connections`.

    The aiohttp session is made on first use, inside the running event loop. Cookies and
    redirects stay httpx's business: the session keeps no cookie jar and follows nothing.
    """

    def __init__(self, *, max_connections: int, keepalive_expiry_s: float = KEEPALIVE_EXPIRY_S):
        if max_connections < 1:
            raise ValueError("a pool needs at least one connection")
        self.max_connections = max_connections
        self._keepalive_expiry_s = keepalive_expiry_s
        self._ssl: ssl.SSLContext = httpx.create_ssl_context()
        self._session: aiohttp.ClientSession | None = None
        self.in_flight = 0
        self.peak_in_flight = 0
        """Requests handed to this transport and not yet answered, now and at most: those
        beyond `max_connections` wait for a pooled connection (the poller's lane semaphore
        keeps them within it)."""

    def _session_for_loop(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.max_connections,
                limit_per_host=0,  # the pool is already one provider's: `limit` is its bound
                keepalive_timeout=self._keepalive_expiry_s,
                ssl=self._ssl,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,  # httpx decodes by Content-Encoding, as before
                timeout=aiohttp.ClientTimeout(total=None),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` and read the whole body (the poller reads every body anyway)."""
        session = self._session_for_loop()
        body = await request.aread()
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            async with session.request(
                request.method,
                yarl.URL(str(request.url), encoded=True),  # httpx has already encoded it
                headers=list(request.headers.multi_items()),
                data=body or None,
                allow_redirects=False,
                timeout=_client_timeout(request.extensions.get("timeout", {})),
            ) as answer:
                content = await answer.read()
        except Exception as error:
            raise _as_httpx_error(error, request) from error
        finally:
            self.in_flight -= 1
        extensions: dict[str, object] = {"http_version": b"HTTP/1.1"}
        if answer.reason:
            extensions["reason_phrase"] = answer.reason.encode("ascii", "replace")
        return httpx.Response(
            answer.status,
            headers=answer.raw_headers,
            stream=httpx.ByteStream(content),  # read by the client, as from httpx's own transports
            request=request,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        """Close the pool and its connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None


def _client_timeout(timeout: Mapping[str, float | None]) -> aiohttp.ClientTimeout:
    """httpx's per-request timeouts in aiohttp's terms.

    aiohttp's `connect` covers waiting for a pooled connection and opening it, so it is httpx's
    pool and connect timeouts together; `sock_read` bounds each wait for bytes, like httpx's read.
    """
    connect, pool = timeout.get("connect"), timeout.get("pool")
    waited = None if connect is None or pool is None else connect + pool
    return aiohttp.ClientTimeout(
        total=None, connect=waited, sock_connect=connect, sock_read=timeout.get("read")
    )


def _as_httpx_error(error: Exception, request: httpx.Request) -> Exception:
    """The httpx exception for an aiohttp or socket failure (the poller classifies those).

    The message is only the error's type: aiohttp's texts can hold the URL, and with it a key.
    """
    message = type(error).__name__
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message, request=request)
    if isinstance(error, asyncio.TimeoutError):  # SocketTimeoutError and plain timeouts
        return httpx.ReadTimeout(message, request=request)
    if isinstance(error, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message, request=request)
    if isinstance(error, aiohttp.ServerDisconnectedError | aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError(message, request=request)
    if isinstance(error, aiohttp.ClientError | OSError):
        return httpx.ReadError(message, request=request)
    return error
