"""Fixtures for adapter tests: documented bodies from `tests/fixtures/<slug>/` and orders."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline.model import TrackedOrder
from pipeline.providers.registry import default_kind
from pipeline.settings import ProviderSettings, Secret

FIXTURES_DIR = Path(__file__).resolve().parent.parent / "fixtures"
POLLED_AT = datetime(2025, 5, 17, 5, 50, 0, tzinfo=UTC)


@pytest.fixture
def polled_at() -> datetime:
    """The poll time every adapter test uses."""
    return POLLED_AT


@pytest.fixture
def load_fixture() -> Callable[[str, str], bytes]:
    """Read `tests/fixtures/<slug>/<name>` as raw bytes, exactly as a response body."""

    def load(slug: str, name: str) -> bytes:
        return (FIXTURES_DIR / slug / name).read_bytes()

    return load


@pytest.fixture
def make_order() -> Callable[..., TrackedOrder]:
    """Build a tracked order created `age_s` seconds before `POLLED_AT`."""

    def make(
        provider: str,
        order_id: str = "order-1",
        *,
        kind: str | None = None,
        age_s: float = 60.0,
        **extra: Any,
    ) -> TrackedOrder:
        return TrackedOrder(
            provider=provider,
            order_id=order_id,
            order_kind=kind or default_kind(provider),
            registered_at=POLLED_AT - timedelta(seconds=age_s),
            **extra,
        )

    return make


@pytest.fixture
def make_settings() -> Callable[..., ProviderSettings]:
    """Build provider settings with the given plain-text secrets."""

    def make(
        slug: str, base_url: str = "https://api.example.test", **secrets: str
    ) -> ProviderSettings:
        return ProviderSettings(
            slug=slug,
            base_url=base_url,
            secrets={name: Secret(value) for name, value in secrets.items()},
            is_sandbox=False,
        )

    return make
