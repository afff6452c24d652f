"""Proof (1): Baanx declared as a file (`baanx.toml` here) reads every answer exactly as the
Python Baanx adapter does: the observations are equal (`==`), field for field.

The answers are every Baanx fixture (`tests/fixtures/baanx/`), hand-made error answers (401, 403,
404, 498, 499, 429, 5xx, HTML, empty, truncated, not UTF-8, wrong shapes, unknown statuses) and
what the built-in Baanx sandbox answers over HTTP: every order of a batch at every transition and
long after, refusals for missing or wrong credentials, unknown ids, and a fault scenario that
injects 5xx, 429, truncated and invalid JSON, drift and unknown statuses.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from declarative_helpers import BAANX_TOML

from pipeline.model import Observation, OrderState, TrackedOrder
from pipeline.providers.baanx import ADAPTER as PYTHON_ADAPTER
from pipeline.providers.declarative import load_file
from pipeline.simulator.app import SandboxConfig, build_app, sandbox_of
from pipeline.simulator.clock import FakeClock
from pipeline.simulator.faults import Scenario

DECLARED = load_file(BAANX_TOML)
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "baanx"
POLLED_AT = datetime(2025, 5, 17, 5, 50, tzinfo=UTC)
PREVIOUS = (None, "pending", "completed", "refunded", "bogus")
CODE_KEY = b"equivalence"
TOKEN = "sandbox-baanx-token"
CLIENT = "sandbox-baanx-client"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "X-Client-ID": CLIENT}
ORDERS = 150
LONG_AFTER = timedelta(hours=2)
STEP = timedelta(milliseconds=1)


def both(
    status: int,
    headers: dict[str, str],
    body: bytes,
    tracked: TrackedOrder,
    polled_at: datetime,
    previous: str | None = None,
) -> tuple[Observation, Observation]:
    """(Python adapter's observation, declared adapter's observation) of one answer."""
    kwargs = {
        "order": tracked,
        "polled_at": polled_at,
        "previous_state": previous,
        "code_key": CODE_KEY,
    }
    return (
        PYTHON_ADAPTER.parse(status, headers, body, **kwargs),  # type: ignore[arg-type]
        DECLARED.adapter.parse(status, headers, body, **kwargs),  # type: ignore[arg-type]
    )


def assert_same(
    status: int, headers: dict[str, str], body: bytes, tracked: TrackedOrder, at: datetime
) -> Observation:
    for previous in PREVIOUS:
        expected, declared = both(status, headers, body, tracked, at, previous)
        assert declared == expected, (status, body[:200], previous)
    return expected


def tracked_order(order_id: str = "abcd_1234", created: datetime | None = None) -> TrackedOrder:
    return TrackedOrder(
        "baanx",
        order_id,
        "product_order",
        registered_at=POLLED_AT - timedelta(minutes=3),
        created_at=created,
        service="virtual-card",
    )


# --- fixtures and hand-made answers -----------------------------------------------------------


def fixture_answers() -> Iterator[tuple[str, int, bytes]]:
    for path in sorted(FIXTURES.glob("*.json")):
        documented = 404 if "_404" in path.stem else 200
        for status in sorted({documented, 200}):
            yield path.name, status, path.read_bytes()


@pytest.mark.parametrize(("name", "status", "body"), list(fixture_answers()))
def test_every_fixture(name: str, status: int, body: bytes) -> None:
    assert_same(status, {}, body, tracked_order(), POLLED_AT)
    assert_same(status, {}, body[: len(body) // 2], tracked_order(), POLLED_AT)  # truncated


def order_body(**fields: object) -> bytes:
    return json.dumps({"requestId": "payment_1", "orderId": "abcd_1234", **fields}).encode()


HAND_MADE: list[tuple[int, dict[str, str], bytes]] = [
    (401, {}, b'{"error":"Unauthorized"}'),
    (403, {}, b'{"error":"Forbidden"}'),
    (404, {}, b'{"error":"Order not found"}'),
    (498, {}, b'{"error":"Invalid client key"}'),
    (499, {}, b'{"error":"Missing client key"}'),
    (499, {}, b""),
    (429, {"Retry-After": "7"}, b'{"error":"Too Many Requests"}'),
    (429, {"retry-after": "Sat, 17 May 2025 05:51:00 GMT"}, b""),
    (429, {"Retry-After": "soon"}, b"<html>slow down</html>"),
    (400, {}, b'{"message":"bad id"}'),
    (418, {}, b"teapot"),
    (500, {}, b'{"error":"Internal Server Error"}'),
    (502, {}, b"<html><body>Bad Gateway</body></html>"),
    (503, {}, b""),
    (504, {}, b'{"error":'),
    (200, {}, b""),
    (200, {}, b"   "),
    (200, {}, b"<html><body>maintenance</body></html>"),
    (200, {}, b'{"status":"COMPLETED","paidAt":"2023-03-27 17:0'),
    (200, {}, b'{"status": "\xff"}'),
    (200, {}, b"[]"),
    (200, {}, b'"COMPLETED"'),
    (200, {}, b"null"),
    (200, {}, b"{}"),
    (200, {}, b'{"error":"Order not found"}'),
    (200, {}, b'{"message":"temporarily unavailable"}'),
    (200, {}, order_body(status=3)),
    (200, {}, order_body(status=None)),
    (200, {}, order_body(status="")),
    (200, {}, order_body(status="STARTED")),
    (200, {}, order_body(status="started")),
    (200, {}, order_body(status=" Completed ", paidAt="2023-03-27 17:07:12.662+03")),
    (200, {}, order_body(status="COMPLETED")),
    (200, {}, order_body(status="COMPLETED", paidAt="last tuesday")),
    (200, {}, order_body(status="COMPLETED", paidAt=1679926032)),
    (200, {}, order_body(status="STARTED", paidAt="2023-03-27T14:07:12Z")),
    (200, {}, order_body(status="FAILED", metadata={"note": "payment_refunded"})),
    (200, {}, order_body(status="FAILED", metadata={"note": "PAYMENT_REFUNDED"})),
    (200, {}, order_body(status="FAILED", metadata={"note": "payment_rejected"})),
    (200, {}, order_body(status="FAILED", metadata={"note": 42})),
    (200, {}, order_body(status="FAILED", metadata=["payment_refunded"])),
    (200, {}, order_body(status="FAILED", metadata={"note": "call +4791234567 token=abc123"})),
    (200, {}, order_body(status="EXPIRED")),
    (200, {}, order_body(status="REFUNDED", metadata={"note": "payment_refunded"})),
    (200, {}, order_body(status="ON_HOLD")),
    (200, {}, order_body(status="COMPLETED", accessToken="secret-token-value", x="y" * 10_000)),
]


@pytest.mark.parametrize(("status", "headers", "body"), HAND_MADE)
def test_hand_made_answers(status: int, headers: dict[str, str], body: bytes) -> None:
    assert_same(status, headers, body, tracked_order(), POLLED_AT)
    assert_same(status, headers, body, tracked_order(), POLLED_AT.astimezone())


# --- the built-in Baanx sandbox ---------------------------------------------------------------


def sandbox_answers(
    scenario: Scenario | None = None,
) -> list[tuple[httpx.Response, TrackedOrder, datetime]]:
    """Answers of the built-in Baanx sandbox: a batch of orders polled just after each of their
    transitions and long after, plus refusals and unknown ids."""
    clock = FakeClock()
    config = SandboxConfig(profile="realistic", seed=5)
    if scenario is not None:
        config = SandboxConfig(profile="realistic", seed=5, faults=scenario)
    app = build_app(config, clock=clock)
    sandbox = sandbox_of(app)
    answers: list[tuple[httpx.Response, TrackedOrder, datetime]] = []

    async def main() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.test") as client:
            products = ("virtual-card", "card-topup", "metal-card")
            ids = []
            for index in range(ORDERS):
                payload = {
                    "productId": products[index % 3],
                    "paymentMethod": "CRYPTO_EXTERNAL_DAIMO",
                }
                while True:  # the fault scenario may refuse a create; try again
                    created = await client.post("/baanx/v1/order", json=payload, headers=HEADERS)
                    if created.status_code == 200:
                        break
                ids.append(created.json()["orderId"])
            orders = [sandbox.get("baanx", order_id) for order_id in ids]
            assert all(o is not None for o in orders)
            # Each order just after each of its transitions, then all of them long after.
            polls = sorted(
                (t.at + STEP, index)
                for index, o in enumerate(orders)
                if o
                for t in o.truth.transitions
            )
            end = max(o.truth.final.at for o in orders if o) + LONG_AFTER
            polls += [(end, index) for index in range(len(orders))]
            for moment, index in polls:
                o = orders[index]
                assert o is not None
                clock.set(max(moment, clock.now()))
                tracked = tracked_order(o.truth.order_id, o.truth.created_at)
                response = await client.get(f"/baanx/v1/order/{o.truth.order_id}", headers=HEADERS)
                answers.append((response, tracked, clock.now()))
            first = ids[0]
            refusals = [
                {"Authorization": f"Bearer {TOKEN}"},  # 499
                {"Authorization": f"Bearer {TOKEN}", "X-Client-ID": "other-client"},  # 498
                {"X-Client-ID": CLIENT},  # 401
                {"Authorization": "Bearer wrong", "X-Client-ID": CLIENT},  # 401
                {"Authorization": "Bearer sandbox-baanx-other-user-token", "X-Client-ID": CLIENT},
            ]
            for headers in refusals:
                response = await client.get(f"/baanx/v1/order/{first}", headers=headers)
                answers.append((response, tracked_order(first), clock.now()))
            for unknown in ("ord_000000000000", "no-such-order", "a%20b"):
                response = await client.get(f"/baanx/v1/order/{unknown}", headers=HEADERS)
                answers.append((response, tracked_order(unknown), clock.now()))

    asyncio.run(main())
    return answers


def test_every_sandbox_answer() -> None:
    answers = sandbox_answers()
    seen_states = set()
    seen_statuses = set()
    for response, tracked, at in answers:
        observation = assert_same(
            response.status_code, dict(response.headers), response.content, tracked, at
        )
        seen_states.add(observation.state)
        seen_statuses.add(response.status_code)
    assert {
        OrderState.PENDING,
        OrderState.COMPLETED,
        OrderState.FAILED,
        OrderState.REFUNDED,
        OrderState.EXPIRED,
    } <= seen_states
    assert {200, 401, 403, 404, 498, 499} <= seen_statuses


FAULTS = Scenario.from_json(
    {
        "name": "everything-goes-wrong",
        "providers": {
            "baanx": [
                {"kind": "server_error", "rate": 0.05, "status": 500},
                {"kind": "server_error", "rate": 0.05, "status": 502},
                {"kind": "server_error", "rate": 0.05, "status": 503},
                {"kind": "rate_limit", "rate": 0.05, "retry_after_s": 3},
                {"kind": "truncated_json", "rate": 0.05},
                {"kind": "invalid_json", "rate": 0.05, "mode": "html"},
                {"kind": "invalid_json", "rate": 0.05, "mode": "js_literal"},
                {"kind": "drift", "rate": 0.05},
                {"kind": "unknown_status", "rate": 0.05},
            ]
        },
    }
)


def test_every_sandbox_answer_under_faults() -> None:
    answers = sandbox_answers(FAULTS)
    errors = set()
    for response, tracked, at in answers:
        observation = assert_same(
            response.status_code, dict(response.headers), response.content, tracked, at
        )
        errors.add(observation.error_class)
        if observation.status_unrecognized:
            errors.add("unrecognized")
    assert {None, "server_error", "rate_limited", "parse_error", "unrecognized"} <= errors
