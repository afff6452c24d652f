"""Baanx's facts: kinds, ids, credentials, polling policy, windows, colour."""

from __future__ import annotations

from pipeline.model import OrderKind, OrderState
from pipeline.providers.base import PollingPolicy
from pipeline.providers.spec import Credential, EventTime, ExpiryWindow, ProviderSpec

SPEC = ProviderSpec(
    slug="baanx",
    display_name="Baanx",
    family="payments",
    order_kinds=(OrderKind.PRODUCT_ORDER,),
    id_pattern=r"[^\s/\\\x00-\x1f\x7f-\x9f]+",
    id_hint="no whitespace, slashes or control characters (C0, DEL, C1)",
    credentials=(
        Credential("BAANX_ACCESS_TOKEN", "access_token", "sandbox-baanx-token"),
        Credential("BAANX_CLIENT_ID", "client_id", "sandbox-baanx-client"),
    ),
    policy=PollingPolicy(
        cadence_s={OrderState.PENDING: 3.0, OrderState.PROCESSING: 3.0},
        default_cadence_s=3.0,
        terminal_grace_s=60.0,
        max_tracking_age_s=3600.0,
        rate_limit_per_minute=None,
    ),
    expiry_windows=(
        ExpiryWindow(OrderKind.PRODUCT_ORDER, 15 * 60.0, False, "payment window undocumented (§8)"),
    ),
    # paidAt, present only on COMPLETED (§4.8).
    event_time=EventTime("provider_paid_at", frozenset({OrderState.COMPLETED})),
    colour="#CC79A7",
    sources=("PROVIDERS.md §4",),
)
