"""SMSOnline's facts: kinds, ids, credentials, polling policy, windows, colour."""

from __future__ import annotations

from pipeline.model import OrderKind, OrderState
from pipeline.providers.base import PollingPolicy
from pipeline.providers.spec import Credential, ExpiryWindow, ProviderSpec

SPEC = ProviderSpec(
    slug="smsonline",
    display_name="SMSOnline",
    family="SMS activation",
    order_kinds=(OrderKind.SMS_RECEIVE,),
    code_kinds=(OrderKind.SMS_RECEIVE,),
    id_pattern=r"[0-9]+",
    id_hint="digits only",
    credentials=(
        Credential("SMSONLINE_USER_ID", "user_id", "sandbox-user-0001"),
        Credential("SMSONLINE_API_KEY", "api_key", "sandbox-smsonline-key"),
    ),
    policy=PollingPolicy(
        cadence_s={OrderState.PROCESSING: 5.0, OrderState.PENDING: 5.0},
        default_cadence_s=5.0,
        terminal_grace_s=120.0,
        max_tracking_age_s=25 * 60.0,
        rate_limit_per_minute=None,
    ),
    expiry_windows=(
        ExpiryWindow(OrderKind.SMS_RECEIVE, 20 * 60.0, True, "20-min number lease (§2.9)"),
    ),
    colour="#E69F00",
    sources=(
        "PROVIDERS.md §2",
        "an unattributed v3 client script (body as an object; docs/providers/sources.md)",
    ),
)
