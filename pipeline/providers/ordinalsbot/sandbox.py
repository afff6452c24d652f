"""OrdinalsBot imitation (PROVIDERS.md §3): `GET /order?id=` and `POST /order` (managed order).

The full order object with `state`, mixed timestamp units (`createdAt` ms, `charge.created_at`
and `lightning_invoice.expires_at` s, `files[].tx.updatedAt` ISO), errors as 200
`{"status":"error","error":…}`, and the documented 300 requests/minute limit on `GET /order`
answered with 429 + `Retry-After` (the 429 body is [INF]). Create is limited to 2 requests per
10 s. `x-api-key` is optional unless `require_api_key`; a wrong key is always refused ([INF]).
The lifecycle is in `lifecycle`.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime
from typing import Any

from starlette.requests import Request

from pipeline.model import OrderKind
from pipeline.providers.ordinalsbot import lifecycle
from pipeline.providers.ordinalsbot.spec import SPEC
from pipeline.simulator.provider import (
    CreatedOrder,
    CreateError,
    Creator,
    SandboxProvider,
    Variant,
    sandbox_credential,
)
from pipeline.simulator.state import Sandbox, SandboxOrder
from pipeline.simulator.wire import (
    ProviderWire,
    Reply,
    RouteSpec,
    client_address,
    epoch_ms,
    epoch_s,
    iso_ms_z,
    json_reply,
    read_json,
    stable_hex,
)

SLUG = SPEC.slug
API_KEY = sandbox_credential(SPEC, "api_key")
STATUS_WINDOW_S = 60.0
ORDER_TYPE = "bulk"
POSTAGE = 546
TIMEOUT_MINUTES = 4320
SERVICE_FEE = 100_000
BASE_FEE = 50_000
DEFAULT_FEE_RATE = 11
MAX_FILES = 20
RATE_LIMIT_ERROR = "rate limit exceeded"
"""[INF] invented 429 body text (PROVIDERS.md §3.7)."""
FEE_RATES = (5, 11, 20)
"""Fee rates (sat/vB) the workload's orders offer."""


@dataclasses.dataclass(frozen=True)
class OrdinalsBotOptions:
    """OrdinalsBot unknowns.

    Attributes:
        require_api_key: whether `GET /order` needs `x-api-key` (default: no; a wrong key is
            always rejected).
        status_limit_per_minute: requests per minute on `GET /order` (documented: 300).
        create_limit: requests per `create_window_s` on the create endpoint (documented: 2/10 s).
        create_window_s: the create limit's window.
        limit_scope: `key_or_ip` (per API key, else per client address) or `global`.
        tx_shape: order-level `tx`: `object` (docs), `string` (SDK) or `absent`.
        tx_updated_key: the name of a file's `tx` update time: `updatedAt` (docs) or
            `updated_at` (mamokin/ordinalsbot-poc app/order-status/[id]/schema.ts @ 977c15ea).
        created_at_shape: `createdAt` as epoch `ms` (docs) or the Firebase server-value
            `placeholder` `{".sv": "timestamp"}` (nome-org/gif-creator-backend
            src/types/ordinals-bot.ts @ e4efe792).
        fee_type: `fee` and `baseFee` as a `number` (docs) or a `string` (mamokin/ordinalsbot-poc,
            "inconsistent types from API").
        queued_state: the state of a queued order in the second half of its wait: `queued`
            (docs) or `file-inscribed` (a client's webhook state list; docs/providers/sources.md).
    """

    require_api_key: bool = False
    status_limit_per_minute: int = 300
    create_limit: int = 2
    create_window_s: float = 10.0
    limit_scope: str = "key_or_ip"
    tx_shape: str = "object"
    tx_updated_key: str = "updatedAt"
    created_at_shape: str = "ms"
    fee_type: str = "number"
    queued_state: str = "queued"


OPTION_CHOICES: dict[str, tuple[str, ...]] = {
    "limit_scope": ("key_or_ip", "global"),
    "tx_shape": ("object", "string", "absent"),
    "tx_updated_key": ("updatedAt", "updated_at"),
    "created_at_shape": ("ms", "placeholder"),
    "fee_type": ("number", "string"),
    "queued_state": ("queued", "file-inscribed"),
}
VARIANTS = (
    Variant("tx_shape", "string", "ordinalsbot/ordinalsbot-node src/types/v1.ts (SDK)"),
    Variant("tx_updated_key", "updated_at", "mamokin/ordinalsbot-poc schema.ts @ 977c15ea"),
    Variant("created_at_shape", "placeholder", "nome-org/gif-creator-backend @ e4efe792"),
    Variant("fee_type", "string", "mamokin/ordinalsbot-poc schema.ts @ 977c15ea"),
    Variant("queued_state", "file-inscribed", "a client's webhook states (sources.md)"),
)
"""Real answers beyond the doc page."""


def error_reply(status: int) -> Reply:
    """The documented server error: `{"status":"error","reason":"unable to save data"}`."""
    return json_reply({"status": "error", "reason": "unable to save data"}, status)


def rate_limited_reply(retry_after_s: int) -> Reply:
    """429 with `Retry-After` and `{"status":"error","error":"rate limit exceeded"}` ([INF])."""
    return json_reply(
        {"status": "error", "error": RATE_LIMIT_ERROR},
        429,
        headers={"Retry-After": str(retry_after_s)},
    )


def _error_in_200(message: str) -> Reply:
    return json_reply({"status": "error", "error": message})


def _key_problem(request: Request, options: OrdinalsBotOptions) -> Reply | None:
    key = request.headers.get("x-api-key")
    if key is not None and key != API_KEY:
        return json_reply({"status": "error", "error": "invalid api key"}, 401)
    if key is None and options.require_api_key:
        return json_reply({"status": "error", "error": "api key required"}, 401)
    return None


def _limit_key(request: Request, options: OrdinalsBotOptions) -> str:
    if options.limit_scope == "global":
        return "global"
    return "key:" + (request.headers.get("x-api-key") or "ip:" + client_address(request))


def _file_item(
    order_id: str,
    index: int,
    spec: dict[str, Any],
    now: datetime,
    order: SandboxOrder,
    options: OrdinalsBotOptions,
) -> dict[str, Any]:
    truth = order.truth
    item: dict[str, Any] = {
        "name": spec["name"],
        "size": spec["size"],
        "type": spec["type"],
        "url": spec["url"],
    }
    if truth.reached("queued", now):
        item["iqueued"] = True
        item["iqueuedAt"] = epoch_ms(truth.milestones["queued"])
        item["processing"] = not truth.reached("completed", now)
    item["completed"] = truth.reached("completed", now)
    if truth.reached("completed", now):
        reveal = stable_hex(f"{order_id}:{index}:reveal", 64)
        item["tx"] = {
            "commit": stable_hex(f"{order_id}:{index}:commit", 64),
            "reveal": reveal,
            "inscription": reveal + "i0",
            "fees": 295 + spec["size"] // 4,
            options.tx_updated_key: iso_ms_z(truth.milestones["completed"]),
        }
        item["sent"] = stable_hex(f"{order_id}:{index}:sent", 64)
        item["inscriptionId"] = reveal + "i0"
    return item


def _shown_state(order: SandboxOrder, now: datetime, options: OrdinalsBotOptions) -> str:
    """The wire state at `now`: the truth's, `queued` renamed in its second half if asked."""
    truth = order.truth
    current = truth.state_at(now) or truth.transitions[0]
    state = current.provider_status
    done = truth.milestones.get("completed") or truth.milestones.get("error")
    if state != "queued" or options.queued_state == "queued" or done is None:
        return state
    return options.queued_state if now >= current.at + (done - current.at) / 2 else state


def _fee(value: int, options: OrdinalsBotOptions) -> int | str:
    return value if options.fee_type == "number" else str(value)


def render_order(order: SandboxOrder, now: datetime, options: OrdinalsBotOptions) -> Reply:
    """The full order object at `now` (pure)."""
    truth, attrs = order.truth, order.attrs
    order_id = truth.order_id
    state = _shown_state(order, now, options)
    paid = truth.reached("paid", now)
    expired = state == "expired"
    completed = truth.reached("completed", now)
    files = [
        _file_item(order_id, index, spec, now, order, options)
        for index, spec in enumerate(attrs["files"])
    ]
    chain_fee = attrs["chainFee"]
    amount = chain_fee + SERVICE_FEE + BASE_FEE + POSTAGE * len(files)
    charge_status = "paid" if paid else ("expired" if expired else "unpaid")
    body: dict[str, Any] = {
        "status": "ok",
        "id": order_id,
        "state": state,
        "orderType": ORDER_TYPE,
        "createdAt": (
            epoch_ms(truth.created_at) if options.created_at_shape == "ms" else {".sv": "timestamp"}
        ),
        "paid": paid,
        "underpaid": False,
        "overpaid": False,
        "expired": expired,
        "fee": _fee(attrs["fee"], options),
        "postage": POSTAGE,
        "receiveAddress": attrs["receiveAddress"],
        "timeout": TIMEOUT_MINUTES,
        "chainFee": chain_fee,
        "serviceFee": SERVICE_FEE,
        "baseFee": _fee(BASE_FEE, options),
        "rareSatsFee": 0,
        "zeroConf": None,
        "amount": amount,
        "inscribedCount": len(files) if completed else 0,
        "charge": {
            "id": str(uuid.UUID(hex=stable_hex(f"{order_id}:charge", 32))),
            "description": "OrdinalsBot inscription order",
            "amount": amount,
            "missing_amt": 0 if paid else amount,
            "status": charge_status,
            "currency": "BTC",
            "created_at": epoch_s(truth.created_at),
            "order_id": order_id,
            "address": "bc1q" + stable_hex(f"{order_id}:address", 38),
            "lightning_invoice": {
                "expires_at": epoch_s(truth.facts["invoice_expires_at"]),
                "payreq": f"lnbc{amount * 10}n1p" + stable_hex(f"{order_id}:payreq", 180),
            },
        },
        "files": files,
    }
    if completed and files:
        first = files[0]["tx"]
        if options.tx_shape == "object":
            body["tx"] = {key: first[key] for key in ("commit", "fees", "inscription", "reveal")}
        elif options.tx_shape == "string":
            body["tx"] = first["reveal"]
        body["sent"] = files[0]["sent"]
    if state == "error":
        body["error"] = "inscription failed: fee too low for the reveal transaction"
    return json_reply(body, status_path=("state",))


async def get_order(request: Request, sandbox: Sandbox) -> Reply:
    """`GET /order?id=`: key check, the 300/min limit, then the order (or a 200 error)."""
    options: OrdinalsBotOptions = sandbox.options_of(SLUG)
    problem = _key_problem(request, options)
    if problem:
        return problem
    limiter = sandbox.limiter(
        "ordinalsbot:status", options.status_limit_per_minute, STATUS_WINDOW_S
    )
    retry_after = limiter.hit(_limit_key(request, options), sandbox.now().timestamp())
    if retry_after is not None:
        return rate_limited_reply(retry_after)
    order_id = request.query_params.get("id", "")
    if not order_id:
        return _error_in_200("id is required")
    order = sandbox.get(SLUG, order_id)
    if order is None:
        return _error_in_200("order not found")
    return render_order(order, sandbox.now(), options)


def _files(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    files = body.get("files")
    if not isinstance(files, list) or not 0 < len(files) <= MAX_FILES:
        return None
    specs = []
    for index, entry in enumerate(files):
        if not isinstance(entry, dict):
            return None
        size = entry.get("size")
        specs.append(
            {
                "name": str(entry.get("name") or f"file-{index}"),
                "size": size if isinstance(size, int) and size > 0 else 1000,
                "type": str(entry.get("type") or "text/plain"),
                "url": str(entry.get("url") or entry.get("dataURL") or ""),
            }
        )
    return specs


async def create_order(request: Request, sandbox: Sandbox) -> Reply:
    """`POST /order` `{files: [{name, size, type, url|dataURL}], receiveAddress, fee?}`."""
    options: OrdinalsBotOptions = sandbox.options_of(SLUG)
    problem = _key_problem(request, options)
    if problem:
        return problem
    limiter = sandbox.limiter("ordinalsbot:create", options.create_limit, options.create_window_s)
    retry_after = limiter.hit(_limit_key(request, options), sandbox.now().timestamp())
    if retry_after is not None:
        return rate_limited_reply(retry_after)
    body = await read_json(request)
    if not isinstance(body, dict):
        return _error_in_200("invalid request body")
    files = _files(body)
    if files is None:
        return _error_in_200(f"files must be a list of 1-{MAX_FILES} file objects")
    address = body.get("receiveAddress")
    if not isinstance(address, str) or not address:
        return _error_in_200("receiveAddress is required")
    fee = body.get("fee")
    fee = fee if isinstance(fee, int) and fee > 0 else DEFAULT_FEE_RATE
    vbytes = sum(spec["size"] // 4 + 200 for spec in files)
    order = sandbox.create_order(
        SLUG,
        OrderKind.INSCRIPTION,
        service=ORDER_TYPE,
        attrs={"files": files, "receiveAddress": address, "fee": fee, "chainFee": vbytes * fee},
    )
    return render_order(order, sandbox.now(), options)


WIRE = ProviderWire(
    slug=SLUG,
    routes=(
        RouteSpec("/order", ("GET",), "status", get_order),
        RouteSpec("/order", ("POST",), "create", create_order),
    ),
    error_reply=error_reply,
    rate_limited_reply=rate_limited_reply,
    poll_path="/order?id={order_id}",
)


async def create(creator: Creator) -> CreatedOrder:
    """A one-file text inscription with a drawn size, address and fee rate."""
    rng = creator.rng
    size = rng.randrange(200, 5000)
    answer = await creator.post(
        "POST",
        "/order",
        {
            "files": [
                {
                    "name": "note.txt",
                    "size": size,
                    "type": "text/plain",
                    "url": "https://example.com/note.txt",
                }
            ],
            "receiveAddress": "bc1p" + f"{rng.getrandbits(232):058x}",
            "fee": rng.choice(FEE_RATES),
        },
        {"x-api-key": creator.credentials["ORDINALSBOT_API_KEY"]},
    )
    if isinstance(answer, dict) and answer.get("status") == "error":
        raise CreateError(str(answer.get("error")), retryable=False)
    order_id = creator.field(answer, "id")
    return creator.order(order_id, OrderKind.INSCRIPTION, ORDER_TYPE)


SANDBOX = SandboxProvider(
    slug=SLUG,
    wire=WIRE,
    lifecycles=lifecycle.LIFECYCLES,
    figures=lifecycle.OrdinalsBotConfig(),
    options=OrdinalsBotOptions(),
    option_choices=OPTION_CHOICES,
    new_order_id=lifecycle.new_order_id,
    create=create,
    variants=VARIANTS,
)
"""The OrdinalsBot imitation."""
