"""OrdinalsBot's facts: kinds, ids, credentials, polling policy, windows, colour."""

from __future__ import annotations

from pipeline.model import OrderKind, OrderState
from pipeline.providers.base import PollingPolicy
from pipeline.providers.spec import Credential, EventTime, ExpiryWindow, ProviderSpec

SPEC = ProviderSpec(
    slug="ordinalsbot",
    display_name="OrdinalsBot",
    family="inscriptions",
    order_kinds=(OrderKind.INSCRIPTION,),
    id_pattern=r"[A-Za-z0-9._:-]+",
    id_hint="UUIDs or tokens of letters, digits, '.', '_', ':', '-'",
    credentials=(Credential("ORDINALSBOT_API_KEY", "api_key", "sandbox-ordinalsbot-key"),),
    policy=PollingPolicy(
        cadence_s={
            OrderState.PENDING: 5.0,
            OrderState.PROCESSING: 30.0,
            OrderState.FAILED: 300.0,
        },
        default_cadence_s=30.0,
        terminal_grace_s=300.0,
        max_tracking_age_s=3 * 24 * 3600.0,
        rate_limit_per_minute=300.0,
        budget_share=0.8,
    ),
    expiry_windows=(
        # Only an unpaid invoice expires; a paid order goes on to be inscribed (§3.9).
        ExpiryWindow(
            OrderKind.INSCRIPTION,
            10 * 60.0,
            True,
            "invoice lifetime ≈10 min (§3.9)",
            expires_from=frozenset({OrderState.PENDING}),
        ),
    ),
    # max(files[].tx.updatedAt) once the order is completed (§3.9).
    event_time=EventTime("provider_updated_at", frozenset({OrderState.COMPLETED})),
    colour="#009E73",
    sources=(
        "PROVIDERS.md §3",
        "ordinalsbot/ordinalsbot-node src/types/v1.ts @ cee83248 (SDK order states)",
        "mamokin/ordinalsbot-poc app/order-status/[id]/schema.ts @ 977c15ea (types)",
        "nome-org/gif-creator-backend src/types/ordinals-bot.ts @ e4efe792 (createdAt)",
    ),
)
