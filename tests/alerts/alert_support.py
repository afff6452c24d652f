"""Real receivers for the alert tests (fixtures in conftest.py), and builders of warehouse data.

- `WebhookReceiver`: a tiny HTTP server on 127.0.0.1 in a thread that records every POST; it
  answers each path with the status set for it (200 by default) and shuts itself down after
  `STOP_AFTER_S` even if a test forgets to.
- `smtp_sink`: an aiosmtpd server on 127.0.0.1 that records every message and accepts one
  user and password (AUTH without TLS, as a local relay would).
- `ok_polls` / `failed_polls` / `order_lifecycle`: observations as the poller writes them.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from pipeline.alerts.config import AlertConfig, DeliveryPolicy, EmailTarget, WebhookTarget
from pipeline.ingest import write_batch
from pipeline.intake import make_order, register
from pipeline.model import Observation
from pipeline.secret import Secret
from pipeline.warehouse import Warehouse

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
STOP_AFTER_S = 60.0
"""A receiver stops itself this long after it started, whatever the test does."""
WEBHOOK_TOKEN = "T0AB12CD3/B0XYZ987/sEcReTtOkEn4567890abcdef"
"""Looks like a Slack webhook path: the part of the URL that must never be shown."""
SMTP_USER = "alerts"
SMTP_PASSWORD = "pa55-w0rd-never-shown"
FAST_DELIVERY = DeliveryPolicy(retry_attempts=3, retry_backoff_s=0.01, timeout_s=2.0)


def free_port() -> int:
    """A loopback port nothing listens on (right now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclasses.dataclass(frozen=True)
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 that records POSTed JSON bodies."""

    def __init__(self, port: int = 0) -> None:
        self.received: list[Received] = []
        self.status_by_path: dict[str, int] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                receiver.received.append(Received(self.path, dict(self.headers), body))
                status = receiver.status_by_path.get(self.path, 200)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the test reads `received`; no stderr noise

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._timer = threading.Timer(STOP_AFTER_S, self.stop)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [r.body for r in self.received if r.path == path]

    def start(self) -> WebhookReceiver:
        self._thread.start()
        self._timer.start()
        return self

    def stop(self) -> None:
        self._timer.cancel()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    try:
        yield server
    finally:
        server.stop()


@dataclasses.dataclass
class SmtpSink:
    """Messages an aiosmtpd server accepted, and how to reach it."""

    port: int
    messages: list[dict[str, Any]]
    logins: list[str]


class _Handler:
    def __init__(self, sink: list[dict[str, Any]]) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.sink.append(
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "data": envelope.content.decode("utf-8", "replace"),
            }
        )
        return "250 OK"


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    messages: list[dict[str, Any]] = []
    logins: list[str] = []

    def authenticator(
        server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode(),
            auth_data.password.decode(),
        ) == (SMTP_USER, SMTP_PASSWORD)
        if ok:
            logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)

    port = free_port()
    controller = Controller(
        _Handler(messages),
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        auth_require_tls=False,
    )
    controller.start()
    timer = threading.Timer(STOP_AFTER_S, controller.stop)
    timer.start()
    try:
        yield SmtpSink(port, messages, logins)
    finally:
        timer.cancel()
        controller.stop()


def webhook(
    receiver: WebhookReceiver, path: str, form: str = "generic", **kw: Any
) -> WebhookTarget:
    """A webhook target whose URL carries `WEBHOOK_TOKEN`, as real ones do."""
    return WebhookTarget(
        kw.get("name", f"webhook-{form}"),
        Secret(receiver.url(f"{path}/{WEBHOOK_TOKEN}")),
        form,  # type: ignore[arg-type]
    )


def email_target(sink: SmtpSink) -> EmailTarget:
    return EmailTarget(
        name="email#1",
        host="127.0.0.1",
        port=sink.port,
        sender="pipeline@example.org",
        recipients=("oncall@example.org",),
        user=SMTP_USER,
        password=Secret(SMTP_PASSWORD),
        starttls=False,
    )


def config(tmp_path: Any, *targets: Any, **changes: Any) -> AlertConfig:
    """The default rules and SLOs, with `targets` and fast retries."""
    return dataclasses.replace(
        AlertConfig(data_dir=tmp_path, targets=targets, delivery=FAST_DELIVERY), **changes
    )


def polls(
    provider: str,
    start: datetime,
    end: datetime,
    every_s: float,
    *,
    failing: bool = False,
    order_id: str = "probe-1",
    order_kind: str = "product_order",
) -> list[Observation]:
    """One order polled every `every_s` over [start, end): answered, or failing with a 503."""
    found = []
    moment = start
    while moment < end:
        found.append(
            Observation(
                provider=provider,
                order_id=order_id,
                order_kind=order_kind,
                polled_at=moment,
                state="pending",
                is_terminal=False,
                http_status=503 if failing else 200,
                error_class="server_error" if failing else None,
                provider_status=None if failing else "STARTED",
            )
        )
        moment += timedelta(seconds=every_s)
    return found


def track(
    warehouse: Warehouse, provider: str, order_id: str, created_at: datetime, kind: str
) -> None:
    register(
        warehouse,
        [
            make_order(
                provider, order_id, order_kind=kind, created_at=created_at, registered_at=created_at
            )
        ],
        source="test",
    )


def lifecycle(
    provider: str,
    order_id: str,
    kind: str,
    created_at: datetime,
    steps: list[tuple[float, str, str]],
) -> list[Observation]:
    """Polls of one order: (seconds after creation, canonical state, provider status)."""
    return [
        Observation(
            provider=provider,
            order_id=order_id,
            order_kind=kind,
            polled_at=created_at + timedelta(seconds=at),
            state=state,
            is_terminal=state not in {"pending", "processing", "unknown"},
            http_status=200,
            provider_status=status,
        )
        for at, state, status in steps
    ]


def write(warehouse: Warehouse, observations: list[Observation]) -> None:
    result = write_batch(warehouse, observations)
    assert result.quarantined == 0, "test data must be valid"
