"""The sandbox imitation of a declared provider, built from its `[sandbox]` section.

- the status route sits at the declared request path (and method); it checks every declared
  credential against its sandbox value (header, bearer or query parameter), answers the
  declared `unauthorized` reply when one is missing or wrong, `unknown_order` for an id it does
  not know, and otherwise the order's answer at the sandbox's current time (`render.py`);
- a declared `rate_limit_per_minute` is enforced per credential, with the `rate_limited` reply;
- the create route (if declared) draws a new order (service and country from the path, else
  drawn) and answers its status body;
- each order kind's lifecycle is a graph of phases: from a phase, one outcome is drawn by its
  share (success outcomes scaled by the service's and country's success factors, failure ones
  by their failure factors), after a drawn duration (success ones scaled by the speed factors);
  shares left over, or a duration past the window's end, leave an open phase to its window
  target at the window's end.
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from starlette.requests import Request

from pipeline.providers.declarative.loader import new_order_id
from pipeline.providers.declarative.paths import INDEX_PATTERN
from pipeline.providers.declarative.render import OrderView, render_status
from pipeline.providers.declarative.schema import (
    Declaration,
    Duration,
    Lifecycle,
    Outcome,
    Phase,
    Reply,
    SandboxSection,
    Variation,
    template_fields,
)
from pipeline.simulator.distributions import Dist
from pipeline.simulator.provider import CreatedOrder, Creator, Drawer, SandboxProvider
from pipeline.simulator.state import Sandbox, SandboxOrder
from pipeline.simulator.timeline import Timeline
from pipeline.simulator.wire import (
    PathKey,
    ProviderWire,
    RouteSpec,
    bearer_token,
    client_address,
    empty_reply,
    json_reply,
)
from pipeline.simulator.wire import Reply as WireReply

NEUTRAL = Variation()
TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"
WINDOW_FACT = "window_ends_at"


@dataclasses.dataclass(frozen=True)
class DeclaredFigures:
    """The lifecycle figures of a declared provider (override with
    `LifecycleConfig(<slug>=DeclaredFigures(...))`).

    Attributes:
        lifecycles: order kind -> its phases.
        services: service -> its variation.
        countries: country -> its variation.
    """

    lifecycles: Mapping[str, Lifecycle]
    services: Mapping[str, Variation]
    countries: Mapping[str, Variation]


@dataclasses.dataclass(frozen=True)
class DeclaredOptions:
    """Switches of a declared provider's imitation.

    Attributes:
        require_auth: whether the status and create routes check the credentials.
    """

    require_auth: bool = True


# --- replies ----------------------------------------------------------------------------------


def canned(
    reply: Reply, status: int | None = None, headers: dict[str, str] | None = None
) -> WireReply:
    """A declared reply: a table as JSON, a string as plain text, `""` as an empty body."""
    code = status if status is not None else reply.status
    if isinstance(reply.body, str):
        if not reply.body:
            return empty_reply(code, headers)
        return WireReply(
            status=code,
            raw=reply.body.encode("utf-8"),
            headers=headers or {},
            content_type=TEXT_CONTENT_TYPE,
        )
    return json_reply(reply.body, code, headers=headers or {})


def status_keys(body: Any, steps: tuple[str, ...]) -> tuple[PathKey, ...] | None:
    """`steps` as the keys `Reply.status_path` wants (list indices as integers)."""
    keys: list[PathKey] = []
    current = body
    for step in steps:
        if isinstance(current, list) and INDEX_PATTERN.match(step):
            index = int(step)
            keys.append(index)
            current = current[index]
        elif isinstance(current, dict):
            keys.append(step)
            current = current.get(step)
        else:
            return None
    return tuple(keys)


# --- the lifecycle ----------------------------------------------------------------------------


def _dist(duration: Duration) -> Dist:
    return Dist(duration.kind, duration.a, duration.b)


def _weighted_share(outcome: Outcome, target: Phase, success: float, failure: float) -> float:
    if target.state.is_success:
        return outcome.share * success
    if target.state.is_terminal:
        return outcome.share * failure
    return outcome.share


def _pick(
    phase: Phase, lifecycle: Lifecycle, rng: random.Random, success: float, failure: float
) -> Outcome | None:
    """One outcome of `phase` by its (scaled) share, or None for the shares left over."""
    if not phase.outcomes:
        return None
    shares = [_weighted_share(o, lifecycle.phases[o.to], success, failure) for o in phase.outcomes]
    total = sum(shares)
    if total > 1.0:
        shares = [share / total for share in shares]
    draw = rng.random()
    for outcome, share in zip(phase.outcomes, shares, strict=True):
        if draw < share:
            return outcome
        draw -= share
    return None


def make_drawer(kind: str) -> Drawer:
    """The drawer of order kind `kind` (its lifecycle is read from the figures it is given)."""

    def draw(
        tl: Timeline,
        rng: random.Random,
        figures: DeclaredFigures,
        factor: float,
        service: str | None,
        country: str | None,
    ) -> None:
        lifecycle = figures.lifecycles[kind]
        svc = figures.services.get(service or "", NEUTRAL)
        ctry = figures.countries.get(country or "", NEUTRAL)
        success = svc.success_factor * ctry.success_factor
        failure = svc.failure_factor * ctry.failure_factor
        speed = svc.speed_factor * ctry.speed_factor
        window_end = lifecycle.window_s * factor if lifecycle.window_s else None
        if window_end is not None:
            tl.facts[WINDOW_FACT] = tl.time(window_end)
        phase = lifecycle.phases[lifecycle.start]
        at = 0.0
        tl.enter(at, phase.state, phase.status, phase.name)
        while True:
            outcome = _pick(phase, lifecycle, rng, success, failure)
            target = lifecycle.window_target(phase)
            if outcome is not None:
                nxt = lifecycle.phases[outcome.to]
                if outcome.after.kind == "window":
                    assert window_end is not None
                    delay = max(0.0, window_end - at)
                else:
                    scale = factor * (speed if nxt.state.is_success else 1.0)
                    delay = _dist(outcome.after).draw(rng, scale)
                cut = (
                    target is not None
                    and window_end is not None
                    and outcome.after.kind != "window"
                    and at + delay >= window_end
                )
                if not cut:
                    at += delay
                    phase = nxt
                    tl.enter(at, phase.state, phase.status, phase.name)
                    continue
            if target is None or window_end is None:
                return
            phase = lifecycle.phases[target]
            at = max(at, window_end)
            tl.enter(at, phase.state, phase.status, phase.name)
            return

    draw.__name__ = f"draw_{kind}"
    return draw


# --- the wire ---------------------------------------------------------------------------------


class DeclaredWire:
    """The routes of one declared provider."""

    def __init__(self, declaration: Declaration) -> None:
        self.declaration = declaration
        self.slug = declaration.slug
        self.section: SandboxSection = declaration.sandbox
        spec = declaration.spec
        values = {c.name: c.sandbox_value for c in spec.credentials}
        self.credentials = [(auth, values[auth.credential]) for auth in declaration.request.auth]
        self.query_id = self._query_id()

    def _query_id(self) -> tuple[str, re.Pattern[str]] | None:
        """(parameter, pattern) when the order id travels in the query string."""
        for name, template in self.declaration.request.query:
            if "{order_id}" in template:
                before, _, after = template.partition("{order_id}")
                return name, re.compile(re.escape(before) + "(.+)" + re.escape(after))
        return None

    # --- checks ---

    def unauthorized(self, request: Request, sandbox: Sandbox) -> WireReply | None:
        """The unauthorized reply when a credential is missing or wrong, else None."""
        options: DeclaredOptions = sandbox.options_of(self.slug)
        if not options.require_auth:
            return None
        for auth, value in self.credentials:
            if auth.kind == "bearer":
                given = bearer_token(request)
            elif auth.kind == "header":
                given = request.headers.get(auth.name)
            else:
                given = request.query_params.get(auth.name)
            if given != value:
                return canned(self.section.unauthorized)
        return None

    def refusal(self, request: Request, sandbox: Sandbox) -> WireReply | None:
        """The unauthorized or rate-limited reply, or None when the request may go on."""
        if problem := self.unauthorized(request, sandbox):
            return problem
        limit = self.declaration.spec.policy.rate_limit_per_minute
        if limit is not None:
            key = "&".join(v for _, v in self.credentials) or client_address(request)
            limiter = sandbox.limiter(f"{self.slug}:status", max(1, int(limit)), 60.0)
            retry_after = limiter.hit(key, sandbox.now().timestamp())
            if retry_after is not None:
                return self.rate_limited_reply(retry_after)
        return None

    def order_id(self, request: Request) -> str | None:
        """The order id the request asks about."""
        if "order_id" in request.path_params:
            return str(request.path_params["order_id"])
        if self.query_id is None:
            return None
        name, pattern = self.query_id
        match = pattern.fullmatch(request.query_params.get(name, ""))
        return match.group(1) if match else None

    # --- answers ---

    def view(self, order: SandboxOrder, now: datetime) -> OrderView:
        """What the answer of `order` at `now` depends on."""
        truth = order.truth
        lifecycle = self.section.lifecycles[truth.order_kind]
        reached = {
            name: at
            for name, at in truth.milestones.items()
            if at <= now and name in lifecycle.phases
        }
        if not reached:  # before creation (a clock moved back): the first phase
            reached = {lifecycle.start: truth.created_at}
        current = list(reached)[-1]
        service = self.section.services.get(truth.service or "", NEUTRAL)
        country = self.section.countries.get(truth.country or "", NEUTRAL)
        return OrderView(
            order_id=truth.order_id,
            service=truth.service,
            country=truth.country,
            created_at=truth.created_at,
            window_ends_at=truth.facts.get(WINDOW_FACT),
            milestones=reached,
            phase=lifecycle.phases[current],
            changed_at=reached[current],
            now=now,
            price=service.price,
            phone_prefix=country.prefix,
        )

    def answer(self, order: SandboxOrder, now: datetime) -> WireReply:
        """The status answer of `order` at `now`."""
        lifecycle = self.section.lifecycles[order.truth.order_kind]
        body = render_status(
            self.section, self.declaration.status, lifecycle.phases, self.view(order, now)
        )
        return json_reply(body, status_path=status_keys(body, self.declaration.status.path.steps))

    async def status(self, request: Request, sandbox: Sandbox) -> WireReply:
        """The status endpoint."""
        if problem := self.refusal(request, sandbox):
            return problem
        order_id = self.order_id(request)
        order = sandbox.get(self.slug, order_id) if order_id is not None else None
        if order is None:
            return canned(self.section.unknown_order)
        return self.answer(order, sandbox.now())

    async def create_order(self, request: Request, sandbox: Sandbox) -> WireReply:
        """The create endpoint: a new order of the first kind; its status body."""
        if problem := self.unauthorized(request, sandbox):
            return problem
        service = request.path_params.get("service")
        country = request.path_params.get("country")
        if service is not None and self.section.services and service not in self.section.services:
            return json_reply({"error": f"unknown service {service!r}"}, 400)
        if country is not None and self.section.countries and country not in self.section.countries:
            return json_reply({"error": f"unknown country {country!r}"}, 400)
        kind = self.declaration.spec.order_kinds[0]
        order = sandbox.create_order(self.slug, kind, service=service, country=country)
        return self.answer(order, sandbox.now())

    def error_reply(self, status: int) -> WireReply:
        """An injected 5xx."""
        return canned(self.section.server_error, status)

    def rate_limited_reply(self, retry_after_s: int) -> WireReply:
        """A 429."""
        headers = {"Retry-After": str(retry_after_s)} if self.section.retry_after_header else {}
        return canned(self.section.rate_limited, 429, headers)

    def wire(self) -> ProviderWire:
        """The provider's HTTP surface."""
        request = self.declaration.request
        routes = [RouteSpec(request.path, (request.method,), "status", self.status)]
        create = self.section.create
        if create is not None:
            routes.append(RouteSpec(create.path, (create.method,), "create", self.create_order))
        poll_path = request.path
        if self.query_id is not None:
            name, _ = self.query_id
            template = dict(request.query)[name]
            poll_path += f"?{name}={template}"
        return ProviderWire(
            slug=self.slug,
            routes=tuple(routes),
            error_reply=self.error_reply,
            rate_limited_reply=self.rate_limited_reply,
            poll_path=poll_path,
        )


# --- creating orders (the workload) -----------------------------------------------------------


def make_create(wire: DeclaredWire) -> Any:
    """The workload's create function, or None without a create route."""
    create = wire.section.create
    if create is None:
        return None
    spec = wire.declaration.spec
    variables = {c.name: c.variable for c in spec.credentials}

    async def create_one(creator: Creator) -> CreatedOrder:
        section = wire.section
        names = set(template_fields(create.path))
        service = _choose(section.services, creator.rng) if "service" in names else None
        country = _choose(section.countries, creator.rng) if "country" in names else None
        path = create.path.format(service=service or "any", country=country or "any")
        headers: dict[str, str] = {"Accept": "application/json"}
        query: list[str] = []
        for auth, _ in wire.credentials:
            value = creator.credentials.get(variables[auth.credential], "")
            if auth.kind == "bearer":
                headers["Authorization"] = f"Bearer {value}"
            elif auth.kind == "header":
                headers[auth.name] = value
            else:
                query.append(f"{auth.name}={value}")
        if query:
            path += "?" + "&".join(query)
        answer = await creator.post(create.method, path, {}, headers)
        order_id = creator.field(answer, *create.id_path.steps)
        return creator.order(order_id, spec.order_kinds[0], service, country)

    return create_one


def _choose(table: Mapping[str, Variation], rng: random.Random) -> str | None:
    if not table:
        return None
    names = sorted(table)
    return rng.choices(names, weights=[table[name].weight for name in names])[0]


def build_sandbox(declaration: Declaration) -> SandboxProvider:
    """The `SandboxProvider` of a declared provider."""
    section = declaration.sandbox
    wire = DeclaredWire(declaration)
    figures = DeclaredFigures(section.lifecycles, section.services, section.countries)

    def services(kind: str, figures: DeclaredFigures) -> Mapping[str, Variation] | None:
        return figures.services or None

    def countries(kind: str, figures: DeclaredFigures) -> Mapping[str, Variation] | None:
        return figures.countries or None

    return SandboxProvider(
        slug=declaration.slug,
        wire=wire.wire(),
        lifecycles={kind: make_drawer(kind) for kind in section.lifecycles},
        figures=figures,
        options=DeclaredOptions(),
        new_order_id=lambda rng: new_order_id(section.ids, rng),
        services=services,
        countries=countries,
        create=make_create(wire),
    )
