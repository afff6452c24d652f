"""The sandbox's own endpoints under `/_sandbox/` (never subject to faults).

- `GET /_sandbox/orders[?provider=&since=&limit=]`: the orders the sandbox holds, enough for the
  pipeline to register and poll them:
  `{"now": "…Z", "count": n, "orders": [{"provider", "order_id", "order_kind", "created_at",
  "service", "country", "poll_path"}]}` (`poll_path` is relative to the sandbox root and holds no
  credentials).
- `GET /_sandbox/truth[?provider=&order_id=]`: true transition times so far:
  `{"now": "…Z", "count": n, "orders": [<OrderTruth.to_record()>]}`.
- `POST /_sandbox/truth/flush`: write final orders' truth to the JSONL file now.
- `GET /_sandbox/faults`: the active scenario and how often each fault fired.
- `PUT /_sandbox/faults`: switch scenario: `{"scenario": "<name or path>"}` or a scenario document.
- `GET /_sandbox/health`: profile, seed, counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pipeline.simulator.faults import Scenario, load_scenario
from pipeline.simulator.lifecycles import iso_utc
from pipeline.simulator.state import Sandbox, SandboxOrder
from pipeline.simulator.wire import ProviderWire, read_json

PREFIX = "/_sandbox"


def _sandbox(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


def _wires(request: Request) -> Mapping[str, ProviderWire]:
    wires: Mapping[str, ProviderWire] = request.app.state.wires
    return wires


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status)


def order_entry(order: SandboxOrder, wire: ProviderWire) -> dict[str, object]:
    """One `/_sandbox/orders` entry."""
    truth = order.truth
    path = wire.poll_path.format(order_id=truth.order_id, owner=order.owner or "")
    return {
        "provider": truth.provider,
        "order_id": truth.order_id,
        "order_kind": truth.order_kind,
        "created_at": iso_utc(truth.created_at),
        "service": truth.service,
        "country": truth.country,
        "poll_path": f"/{wire.slug}{path}",
    }


async def orders(request: Request) -> Response:
    """`GET /_sandbox/orders`."""
    sandbox = _sandbox(request)
    params = request.query_params
    since: datetime | None = None
    if params.get("since"):
        try:
            since = datetime.fromisoformat(params["since"].replace("Z", "+00:00"))
        except ValueError:
            return _error("since must be an ISO-8601 time with a zone")
        if since.tzinfo is None:
            return _error("since must be an ISO-8601 time with a zone")
    try:
        limit = int(params["limit"]) if params.get("limit") else None
    except ValueError:
        return _error("limit must be an integer")
    selected = [
        o
        for o in sandbox.list_orders(params.get("provider") or None)
        if since is None or o.truth.created_at >= since
    ]
    if limit is not None:
        selected = selected[-limit:] if limit > 0 else []
    wires = _wires(request)
    entries = [order_entry(o, wires[o.truth.provider]) for o in selected]
    return JSONResponse({"now": iso_utc(sandbox.now()), "count": len(entries), "orders": entries})


async def truth(request: Request) -> Response:
    """`GET /_sandbox/truth`."""
    sandbox = _sandbox(request)
    records = sandbox.truth_records(
        request.query_params.get("provider") or None, request.query_params.get("order_id") or None
    )
    return JSONResponse({"now": iso_utc(sandbox.now()), "count": len(records), "orders": records})


async def flush_truth(request: Request) -> Response:
    """`POST /_sandbox/truth/flush`."""
    return JSONResponse({"written": _sandbox(request).flush_truth()})


async def faults(request: Request) -> Response:
    """`GET` (show) or `PUT` (switch) the fault scenario."""
    sandbox = _sandbox(request)
    if request.method == "PUT":
        body = await read_json(request)
        if not isinstance(body, dict):
            return _error('send {"scenario": name} or a scenario document')
        try:
            if isinstance(body.get("scenario"), str):
                scenario = load_scenario(body["scenario"])
            else:
                scenario = Scenario.from_json(body)
        except (ValueError, TypeError) as error:
            return _error(str(error))
        sandbox.set_scenario(scenario)
    engine = sandbox.faults
    return JSONResponse({"scenario": engine.scenario.to_json(), "fired": engine.counts})


async def health(request: Request) -> Response:
    """`GET /_sandbox/health`."""
    sandbox = _sandbox(request)
    return JSONResponse(
        {
            "status": "ok",
            "profile": sandbox.profile.name,
            "seed": sandbox.config.seed,
            "faults": sandbox.faults.scenario.name,
            "started_at": iso_utc(sandbox.started_at),
            "now": iso_utc(sandbox.now()),
            "orders": len(sandbox.orders),
            "evicted": sandbox.evicted,
            "requests": sandbox.requests,
        }
    )


ROUTES = [
    Route(f"{PREFIX}/orders", orders, methods=["GET"]),
    Route(f"{PREFIX}/truth", truth, methods=["GET"]),
    Route(f"{PREFIX}/truth/flush", flush_truth, methods=["POST"]),
    Route(f"{PREFIX}/faults", faults, methods=["GET", "PUT"]),
    Route(f"{PREFIX}/health", health, methods=["GET"]),
]
