"""Baanx's facts: kinds, ids, credentials, polling policy, windows, colour."""

from __future__ import annotations

from pipeline.model import OrderKind, OrderState
from pipeline.providers.base import PollingPolicy
from pipeline.providers.spec import Credential, EventTime, ExpiryWindow, Option, ProviderSpec

CLIENT_ID_HEADER = "X-Client-ID"
"""The client id header on the doc page."""
CLIENT_KEY_HEADER = "x-client-key"
"""The same value under the name the real clients send."""

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
    options=(
        Option(
            "BAANX_CLIENT_KEY_HEADER",
            "client_key_header",
            default=CLIENT_ID_HEADER,
            choices=(CLIENT_ID_HEADER, CLIENT_KEY_HEADER, "both"),
            note=(
                "The doc page names X-Client-ID; MetaMask Mobile (app/components/UI/Card/sdk/"
                "CardSDK.ts @ 1c3f452a) and Ledger Live send x-client-key. `both` sends both."
            ),
        ),
        Option(
            "BAANX_US_ENV",
            "us_env",
            default="unset",
            choices=("unset", "true", "false"),
            note="MetaMask Mobile sends x-us-env on every Baanx request; unset sends none.",
        ),
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
    sources=(
        "PROVIDERS.md §4",
        "MetaMask/metamask-mobile app/components/UI/Card/types.ts @ 00613668 (six statuses)",
        "MetaMask/metamask-mobile app/components/UI/Card/services/DaimoPayService.ts @ f1ba1b7a",
        "MetaMask/metamask-mobile app/components/UI/Card/sdk/CardSDK.ts @ 1c3f452a (headers)",
    ),
)
