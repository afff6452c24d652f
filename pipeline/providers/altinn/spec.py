"""Altinn's facts: kinds, ids, credentials, polling policy, windows, colour."""

from __future__ import annotations

from pipeline.model import OrderKind, OrderState
from pipeline.providers.base import PollingPolicy
from pipeline.providers.spec import Credential, EventTime, ProviderSpec

SPEC = ProviderSpec(
    slug="altinn",
    display_name="Altinn",
    family="notifications",
    order_kinds=(OrderKind.NOTIFICATION_ORDER,),
    id_pattern=r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
    id_hint="GUIDs (8-4-4-4-12 hex digits)",
    # The first of the two is preferred when both are set.
    credentials=(
        Credential("ALTINN_TOKEN", "token", "sandbox-altinn-token"),
        Credential(
            "ALTINN_PLATFORM_ACCESS_TOKEN", "platform_access_token", "sandbox-altinn-platform-token"
        ),
    ),
    policy=PollingPolicy(
        cadence_s={OrderState.PENDING: 60.0, OrderState.PROCESSING: 60.0},
        default_cadence_s=60.0,
        terminal_grace_s=300.0,
        max_tracking_age_s=2 * 24 * 3600.0,
        rate_limit_per_minute=None,
    ),
    # Notification orders do not expire. processingStatus.lastUpdate on the first poll showing a
    # final status (§5.9).
    event_time=EventTime(
        "provider_updated_at", frozenset({OrderState.COMPLETED, OrderState.CANCELLED})
    ),
    colour="#D55E00",
    sources=(
        "PROVIDERS.md §5",
        "Altinn/altinn-notifications @ 0d0183fb OrderProcessingStatus.cs, OrderMapper.cs",
    ),
)
