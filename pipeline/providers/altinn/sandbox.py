"""Altinn Notifications imitation (PROVIDERS.md §5): order status, create (email/SMS), cancel.

`GET /notifications/api/v1/orders/{id}/status`: camelCase, pretty-printed, nulls omitted,
`notificationsStatusSummary` absent until notifications are generated, the hidden `Processed`
phase shown as `Completed` with the Processed description, SMS `succeeded` counting `Accepted`
only. Auth: `Authorization: Bearer` or `PlatformAccessToken`; 401/403 with empty bodies, another
org's order is 404, and 404 has an empty body (or ProblemDetails, an option). Create and cancel
answers are [INF]. The lifecycle is in `lifecycle`.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request

from pipeline.model import OrderKind, OrderState
from pipeline.providers.altinn import lifecycle
from pipeline.providers.altinn.spec import SPEC
from pipeline.simulator.provider import (
    CreatedOrder,
    Creator,
    SandboxProvider,
    Variant,
    sandbox_credential,
)
from pipeline.simulator.state import Sandbox, SandboxOrder
from pipeline.simulator.timeline import iso_utc
from pipeline.simulator.wire import (
    PROBLEM_CONTENT_TYPE,
    ProviderWire,
    Reply,
    RouteSpec,
    bearer_token,
    empty_reply,
    iso_z,
    json_reply,
    read_json,
    stable_hex,
)

SLUG = SPEC.slug
TOKEN = sandbox_credential(SPEC, "token")
PLATFORM_TOKEN = sandbox_credential(SPEC, "platform_access_token")
API_PREFIX = "/notifications/api/v1/orders"
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
OTHER_ORG = "digdir"
CHANNEL_PATHS: dict[str, str] = {"email": "Email", "sms": "Sms"}
"""Create endpoint suffix → `notificationChannel`."""

DESCRIPTIONS: dict[str, str] = {
    "Registered": "Order has been registered and is awaiting requested send time before "
    "processing.",
    "Processing": "Order processing is ongoing. Notifications are being generated.",
    "Processed": "Order processing is done. Notifications have been successfully generated.",
    "Completed": "Order processing is completed. All notifications have a final status.",
    "SendConditionNotMet": "Order processing was stopped due to send condition not being met.",
    "Cancelled": "Order processing was stopped due to order being cancelled.",
}
"""Descriptions from the current source (GetOrderService.cs)."""
SEED_COMPLETED_DESCRIPTION = "Order processing is completed. All notifications have been generated."
P_SMS = 0.3
"""Share of the workload's orders sent by SMS (the rest by email)."""
P_SCHEDULED = 0.2
"""Share of the workload's orders that ask for a later send time."""
SCHEDULE_AHEAD_S = (60.0, 600.0)
"""Scheduled orders ask for a send time this far ahead (times the profile factor)."""


@dataclasses.dataclass(frozen=True)
class AltinnOptions:
    """Altinn unknowns.

    Attributes:
        not_found_body: `empty` (seed and source) or `problem` (ProblemDetails, newer docs).
        completed_description: text of the final `Completed`: `source` ("…All notifications
            have a final status.") or `seed` ("…All notifications have been generated.").
        org: the creator org of the sandbox's development tokens.
        other_org_tokens: extra valid tokens of another org (they get 404 for this org's orders).
        no_org_tokens: valid tokens with no resolvable org (they get 403).
        indent: spaces of indentation (the API pretty-prints).
        processed_status: the internal `Processed` phase on v1: `Completed` (with the
            Processed description, since commit e2e8f29f5) or `Processed` (as the API answered
            before it; OrderProcessingStatus.cs @ 0d0183fb).
    """

    not_found_body: str = "empty"
    completed_description: str = "source"
    org: str = "ttd"
    other_org_tokens: tuple[str, ...] = ("sandbox-altinn-other-org-token",)
    no_org_tokens: tuple[str, ...] = ("sandbox-altinn-no-org-token",)
    indent: int = 2
    processed_status: str = "Completed"


OPTION_CHOICES: dict[str, tuple[str, ...]] = {
    "not_found_body": ("empty", "problem"),
    "completed_description": ("source", "seed"),
    "processed_status": ("Completed", "Processed"),
}
VARIANTS = (
    Variant("processed_status", "Processed", "Altinn/altinn-notifications OrderMapper.cs"),
    Variant("not_found_body", "problem", "Altinn notifications API docs (ProblemDetails)"),
)
"""Answers the real API has given beyond today's v1 shape."""


def problem(status: int, title: str, **extra: Any) -> Reply:
    """An RFC 9110 ProblemDetails reply."""
    sections = {400: "15.5.1", 404: "15.5.5", 409: "15.5.10", 500: "15.6.1"}
    body = {
        "type": f"https://tools.ietf.org/html/rfc9110#section-{sections.get(status, '15.6.1')}",
        "title": title,
        "status": status,
        **extra,
        "traceId": "00-" + stable_hex(title + str(extra), 32) + "-" + stable_hex(title, 16) + "-00",
    }
    return json_reply(body, status, content_type=PROBLEM_CONTENT_TYPE)


def error_reply(status: int) -> Reply:
    """An unhandled server error: empty body."""
    return empty_reply(status)


def rate_limited_reply(retry_after_s: int) -> Reply:
    """[INF] no limiter exists in the app; a gateway 429 has an empty body."""
    return empty_reply(429, {"Retry-After": str(retry_after_s)})


def _org(request: Request, options: AltinnOptions) -> tuple[str | None, Reply | None]:
    """The caller's org, from the PlatformAccessToken first, else the bearer token.

    No valid credential: 401 (empty, `WWW-Authenticate: Bearer`); a valid one with no org: 403.
    """
    known: dict[str, str | None] = {TOKEN: options.org, PLATFORM_TOKEN: options.org}
    known.update({token: OTHER_ORG for token in options.other_org_tokens})
    known.update({token: None for token in options.no_org_tokens})
    for credential in (request.headers.get("platformaccesstoken"), bearer_token(request)):
        if credential is not None and credential in known:
            org = known[credential]
            return (org, None) if org else (None, empty_reply(403))
    return None, empty_reply(401, {"WWW-Authenticate": "Bearer"})


def _not_found(options: AltinnOptions) -> Reply:
    if options.not_found_body == "problem":
        return problem(404, "Not Found")
    return empty_reply(404)


def _invalid_id(value: str) -> Reply:
    return problem(
        400,
        "One or more validation errors occurred.",
        errors={"id": [f"The value '{value}' is not valid."]},
    )


def render_order(
    order: SandboxOrder, now: datetime, options: AltinnOptions, base_uri: str
) -> Reply:
    """The order-with-status answer at `now` (pure), properties in the API's order."""
    truth, attrs = order.truth, order.attrs
    current = truth.state_at(now) or truth.transitions[0]
    internal = current.provider_status
    description = DESCRIPTIONS[internal]
    if internal == "Completed" and options.completed_description == "seed":
        description = SEED_COMPLETED_DESCRIPTION
    body: dict[str, Any] = {"id": truth.order_id}
    if attrs.get("sendersReference") is not None:
        body["sendersReference"] = attrs["sendersReference"]
    body["requestedSendTime"] = iso_z(attrs["requestedSendTime"])
    body["creator"] = order.owner
    body["created"] = iso_z(truth.created_at)
    body["notificationChannel"] = truth.service
    if attrs.get("resourceId") is not None:
        body["resourceId"] = attrs["resourceId"]
    body["processingStatus"] = {
        "status": options.processed_status if internal == "Processed" else internal,
        "description": description,
        "lastUpdate": iso_z(current.at),
    }
    if truth.reached("generated", now):
        channel = "sms" if truth.service == "Sms" else "email"
        generated = truth.facts["generated"]
        final = truth.reached("final", now)
        if channel == "sms":
            succeeded = 0 if final else generated
        else:
            succeeded = truth.facts["delivered"] if final else 0
        body["notificationsStatusSummary"] = {
            channel: {
                "links": {
                    "self": f"{base_uri}{API_PREFIX}/{truth.order_id}/notifications/{channel}"
                },
                "generated": generated,
                "succeeded": succeeded,
            }
        }
    return json_reply(body, indent=options.indent, status_path=("processingStatus", "status"))


def _base_uri(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/" + SLUG


async def order_status(request: Request, sandbox: Sandbox) -> Reply:
    """`GET /notifications/api/v1/orders/{id}/status`."""
    options: AltinnOptions = sandbox.options_of(SLUG)
    org, refusal = _org(request, options)
    if refusal:
        return refusal
    order_id = request.path_params["id"]
    if not GUID.match(order_id):
        return _invalid_id(order_id)
    order = sandbox.get(SLUG, order_id.lower())
    if order is None or order.owner != org:
        return _not_found(options)
    return render_order(order, sandbox.now(), options, _base_uri(request))


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


async def create_order(request: Request, sandbox: Sandbox) -> Reply:
    """`POST /notifications/api/v1/orders/email|sms` → 202 `{orderId, recipientLookup}` ([INF])."""
    options: AltinnOptions = sandbox.options_of(SLUG)
    org, refusal = _org(request, options)
    if refusal:
        return refusal
    channel = CHANNEL_PATHS[request.url.path.rstrip("/").rsplit("/", 1)[-1]]
    body = await read_json(request)
    if not isinstance(body, dict):
        return problem(
            400,
            "One or more validation errors occurred.",
            errors={"body": ["A non-empty request body is required."]},
        )
    recipients = body.get("recipients")
    if not isinstance(recipients, list) or not recipients:
        return problem(
            400,
            "One or more validation errors occurred.",
            errors={"Recipients": ["One or more recipient is required."]},
        )
    now = sandbox.now()
    requested = _parse_time(body.get("requestedSendTime"))
    if "requestedSendTime" in body and requested is None:
        return problem(
            400,
            "One or more validation errors occurred.",
            errors={"RequestedSendTime": ["Send time must include time zone."]},
        )
    requested = max(requested or now, now)
    sender_reference = body.get("sendersReference")
    order = sandbox.create_order(
        SLUG,
        OrderKind.NOTIFICATION_ORDER,
        service=channel,
        owner=org,
        attrs={
            "sendersReference": sender_reference if isinstance(sender_reference, str) else None,
            "requestedSendTime": requested,
            "resourceId": body.get("resourceId")
            if isinstance(body.get("resourceId"), str)
            else None,
        },
        requested_send_time=requested,
        recipients=len(recipients),
    )
    order_id = order.truth.order_id
    return json_reply(
        {"orderId": order_id, "recipientLookup": {"status": "Success"}},
        202,
        headers={"Location": f"{_base_uri(request)}{API_PREFIX}/{order_id}"},
    )


async def cancel_order(request: Request, sandbox: Sandbox) -> Reply:
    """`PUT /notifications/api/v1/orders/{id}/cancel`: only while Registered, else 409."""
    options: AltinnOptions = sandbox.options_of(SLUG)
    org, refusal = _org(request, options)
    if refusal:
        return refusal
    order_id = request.path_params["id"]
    if not GUID.match(order_id):
        return _invalid_id(order_id)
    order = sandbox.get(SLUG, order_id.lower())
    if order is None or order.owner != org:
        return problem(404, "Not Found")
    now = sandbox.now()
    current = order.truth.state_at(now)
    if current is None or current.provider_status != "Registered":
        return problem(409, "Conflict", detail="Order processing has already started.")
    order.truth.interrupt(now, OrderState.CANCELLED, "Cancelled", "cancelled")
    sandbox.reopen_truth(order)
    return render_order(order, now, options, _base_uri(request))


WIRE = ProviderWire(
    slug=SLUG,
    routes=(
        RouteSpec(f"{API_PREFIX}/email", ("POST",), "create", create_order),
        RouteSpec(f"{API_PREFIX}/sms", ("POST",), "create", create_order),
        RouteSpec(API_PREFIX + "/{id}/status", ("GET",), "status", order_status),
        RouteSpec(API_PREFIX + "/{id}/cancel", ("PUT",), "action", cancel_order),
    ),
    error_reply=error_reply,
    rate_limited_reply=rate_limited_reply,
    poll_path="/notifications/api/v1/orders/{order_id}/status",
)


async def create(creator: Creator) -> CreatedOrder:
    """An email or SMS order (`P_SMS`) to 1-3 recipients, some scheduled (`P_SCHEDULED`)."""
    rng = creator.rng
    sms = rng.random() < P_SMS
    count = rng.randint(1, 3)
    recipients = [
        {"mobileNumber": f"+47{rng.randrange(40_000_000, 50_000_000)}"}
        if sms
        else {"emailAddress": f"recipient{rng.randrange(10_000)}@example.com"}
        for _ in range(count)
    ]
    body: dict[str, Any] = {
        "sendersReference": f"sandbox-{rng.getrandbits(32):08x}",
        "recipients": recipients,
    }
    if rng.random() < P_SCHEDULED:
        ahead = rng.uniform(*SCHEDULE_AHEAD_S) * creator.schedule_scale
        body["requestedSendTime"] = iso_utc(creator.now() + timedelta(seconds=ahead))
    answer = await creator.post(
        "POST",
        f"{API_PREFIX}/{'sms' if sms else 'email'}",
        body,
        {"Authorization": f"Bearer {creator.credentials['ALTINN_TOKEN']}"},
    )
    order_id = creator.field(answer, "orderId")
    channel = "Sms" if sms else "Email"
    return creator.order(order_id, OrderKind.NOTIFICATION_ORDER, channel)


SANDBOX = SandboxProvider(
    slug=SLUG,
    wire=WIRE,
    lifecycles=lifecycle.LIFECYCLES,
    figures=lifecycle.AltinnConfig(),
    options=AltinnOptions(),
    option_choices=OPTION_CHOICES,
    new_order_id=lifecycle.new_order_id,
    services=lifecycle.channels,
    create=create,
    variants=VARIANTS,
)
"""The Altinn imitation."""
