"""Answers the real providers send that their doc pages omit, each read as it means.

Every fixture `tests/fixtures/<slug>/real_*.json` cites its source in that folder's README.md
(and docs/providers/sources.md). The sandbox serves each of them too
(tests/simulator/test_real_variants.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline.model import TrackedOrder
from pipeline.providers.registry import default_kind, get_adapter

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
POLLED_AT = datetime(2025, 5, 17, 5, 50, tzinfo=UTC)

CASES: list[tuple[str, str, str | None, dict[str, Any]]] = [
    # (provider, fixture, previous state, expected observation fields)
    ("baanx", "real_pending.json", None, {"state": "processing", "is_terminal": False}),
    (
        "baanx",
        "real_refunded.json",
        "pending",
        {"state": "refunded", "is_terminal": True, "is_success": False},
    ),
    ("smsonline", "real_body_object.json", None, {"state": "processing", "has_code": False}),
    ("ordinalsbot", "real_file_inscribed.json", None, {"state": "processing"}),
    (
        "ordinalsbot",
        "real_tx_updated_at.json",
        None,
        {
            "state": "completed",
            "provider_updated_at": datetime(2024, 1, 17, 22, 34, 40, 766000, UTC),
        },
    ),
    (
        "ordinalsbot",
        "real_created_at_placeholder.json",
        None,
        {"state": "processing", "provider_created_at": datetime(2023, 2, 7, 16, 6, 0, tzinfo=UTC)},
    ),
    ("ordinalsbot", "real_fee_strings.json", None, {"state": "processing", "amount": 1218725.0}),
    (
        "sms4sats",
        "real_cancelled_refund.json",
        "processing",
        {"state": "cancelled", "is_terminal": True, "provider_substatus": "user_cancelled"},
    ),
    (
        "sms4sats",
        "real_cancelled_refund.json",
        "pending",
        {"state": "expired", "is_terminal": True, "provider_substatus": "invoice_expired"},
    ),
    ("sms4sats", "real_code_string.json", None, {"state": "code_received", "code_length": 6}),
    (
        "altinn",
        "real_processed.json",
        None,
        {"state": "processing", "provider_substatus": "awaiting_delivery"},
    ),
]


@pytest.mark.parametrize(
    ("provider", "fixture", "previous", "expected"),
    CASES,
    ids=[f"{p}-{f.removesuffix('.json')}-{prev}" for p, f, prev, _ in CASES],
)
def test_a_real_answer_reads_as_it_means(
    provider: str, fixture: str, previous: str | None, expected: dict[str, Any]
) -> None:
    body = (FIXTURES / provider / fixture).read_bytes()
    order_id = json.loads(body).get("orderId") or json.loads(body).get("id") or "20046875"
    if provider == "sms4sats":
        order_id = "f" * 64
    order = TrackedOrder(
        provider=provider,
        order_id=str(order_id),
        order_kind=default_kind(provider),
        registered_at=POLLED_AT - timedelta(minutes=3),
    )
    observation = get_adapter(provider).parse(
        200,
        {"content-type": "application/json"},
        body,
        order=order,
        polled_at=POLLED_AT,
        previous_state=previous,
        code_key=b"k",
    )
    assert observation.error_class is None, observation
    assert not observation.status_unrecognized
    for field, value in expected.items():
        assert getattr(observation, field) == value, (field, observation)


@pytest.mark.parametrize("provider", ["baanx", "smsonline", "ordinalsbot", "sms4sats", "altinn"])
def test_every_real_fixture_has_its_source_in_the_readme(provider: str) -> None:
    readme = (FIXTURES / provider / "README.md").read_text()
    for path in sorted((FIXTURES / provider).glob("real_*.json")):
        assert f"`{path.name}`" in readme, path.name
    assert {c[1] for c in CASES if c[0] == provider} == {
        p.name for p in (FIXTURES / provider).glob("real_*.json")
    }
