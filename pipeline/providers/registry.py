"""The provider adapters by slug: the one place a new provider is registered."""

from __future__ import annotations

from pipeline.providers.altinn import AltinnAdapter
from pipeline.providers.baanx import BaanxAdapter
from pipeline.providers.base import ProviderAdapter
from pipeline.providers.ordinalsbot import OrdinalsBotAdapter
from pipeline.providers.sms4sats import Sms4satsAdapter
from pipeline.providers.smsonline import SmsOnlineAdapter

ADAPTERS: dict[str, ProviderAdapter] = {
    "sms4sats": Sms4satsAdapter(),
    "smsonline": SmsOnlineAdapter(),
    "ordinalsbot": OrdinalsBotAdapter(),
    "baanx": BaanxAdapter(),
    "altinn": AltinnAdapter(),
}
"""Adapter instances (stateless, shareable) keyed by provider slug."""


def get_adapter(slug: str) -> ProviderAdapter:
    """The adapter for `slug`.

    Raises:
        KeyError: no adapter is registered under `slug`.
    """
    try:
        return ADAPTERS[slug]
    except KeyError:
        known = ", ".join(sorted(ADAPTERS))
        raise KeyError(f"no provider adapter {slug!r}; known: {known}") from None
