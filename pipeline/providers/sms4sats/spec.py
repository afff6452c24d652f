"""sms4sats's facts: kinds, ids, credentials, polling policy, windows, colour."""

from __future__ import annotations

from pipeline.model import OrderKind, OrderState
from pipeline.providers.base import PollingPolicy
from pipeline.providers.spec import Credential, ExpiryWindow, ProviderSpec

SPEC = ProviderSpec(
    slug="sms4sats",
    display_name="sms4sats",
    family="SMS activation",
    order_kinds=(OrderKind.SMS_RECEIVE, OrderKind.SMS_SEND),
    code_kinds=(OrderKind.SMS_RECEIVE,),
    id_pattern=r"[A-Za-z0-9_-]+",
    id_hint="letters, digits, '_' and '-' (64 hex characters)",
    credentials=(Credential("SMS4SATS_API_KEY", "api_key", "sandbox-sms4sats-key"),),
    policy=PollingPolicy(
        cadence_s={OrderState.PROCESSING: 3.0, OrderState.PENDING: 5.0},
        default_cadence_s=5.0,
        terminal_grace_s=120.0,
        max_tracking_age_s=30 * 60.0,
        rate_limit_per_minute=None,
    ),
    expiry_windows=(
        ExpiryWindow(OrderKind.SMS_RECEIVE, 21 * 60.0, True, "auto-cancel after 21 min (§1.8)"),
    ),
    colour="#0072B2",
    sources=(
        "PROVIDERS.md §1",
        "BlitzWallet/BlitzWallet @ 62975d93 app/components/admin/homeComponents/apps/sms4sats",
        "fiatjaf/lntxbot sms.go @ e9f9a1fc (code as string, number as int)",
    ),
)
