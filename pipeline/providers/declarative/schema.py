"""A provider declaration as frozen data: what `loader.load_file` makes of one TOML file.

Nothing here reads files or validates: `loader` checks every value before it builds these, so a
`Declaration` is always complete and consistent. The adapter (`adapter.py`) and the sandbox
imitation (`sandbox.py`) read only these types.
"""

from __future__ import annotations

import dataclasses
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.model import ErrorClass, OrderState
from pipeline.providers.declarative.paths import JsonPath
from pipeline.providers.spec import ProviderSpec

Scalar = str | int | float | bool
"""A TOML value a condition compares against."""

TIME_COLUMNS: tuple[str, ...] = (
    "provider_created_at",
    "provider_updated_at",
    "provider_paid_at",
    "provider_expires_at",
    "provider_scheduled_at",
)
"""Observation columns a declared event-time field may fill."""
TIME_FORMATS: tuple[str, ...] = ("iso", "epoch_s", "epoch_ms")
AUTH_KINDS: tuple[str, ...] = ("header", "bearer", "query")
REDACTION_KINDS: tuple[str, ...] = ("code", "phone", "hash")
"""`code`: replaced by its length; `phone`: all but the last four digits masked; `hash`: SHA-256."""
METHODS: tuple[str, ...] = ("GET", "POST")


class DeclarationError(ValueError):
    """A declaration file that cannot be used; the message is `<file>: <key.path>: <problem>`.

    Attributes:
        file: the file.
        key: the dotted key the problem is at (`(file)` / `(toml)` for the whole file).
        problem: what is wrong.
    """

    def __init__(self, file: Path | str, key: str, problem: str) -> None:
        super().__init__(f"{file}: {key}: {problem}")
        self.file = str(file)
        self.key = key
        self.problem = problem


def same_value(actual: Any, expected: Scalar) -> bool:
    """JSON `actual` equals TOML `expected`, with booleans never equal to numbers."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return isinstance(actual, bool) and isinstance(expected, bool) and actual == expected
    if isinstance(expected, int | float):
        return isinstance(actual, int | float) and actual == expected
    return isinstance(actual, str) and actual == expected


def is_present(value: Any) -> bool:
    """A value that says something: not null, not an empty string, array or object."""
    return value is not None and value != "" and value != [] and value != {}


@dataclasses.dataclass(frozen=True)
class Condition:
    """A test on the value at `path`: `equals` one value, is `one_of` several, or is (not)
    `present`. With none given, presence is tested."""

    path: JsonPath
    equals: Scalar | None = None
    one_of: tuple[Scalar, ...] | None = None
    present: bool | None = None

    def holds(self, body: Any) -> bool:
        """Whether the condition holds for `body`."""
        value = self.path.get(body)
        if self.equals is not None:
            return same_value(value, self.equals)
        if self.one_of is not None:
            return any(same_value(value, option) for option in self.one_of)
        wanted = True if self.present is None else self.present
        return is_present(value) == wanted


@dataclasses.dataclass(frozen=True)
class Auth:
    """One credential a request carries.

    Attributes:
        kind: `header` (the value in header `name`), `bearer` (`Authorization: Bearer <value>`)
            or `query` (the value in query parameter `name`).
        credential: the credential's name (`ProviderSettings.secret(name)`).
        name: the header or query parameter (`Authorization` for `bearer`).
    """

    kind: str
    credential: str
    name: str


def template_fields(template: str) -> list[str]:
    """The `{field}` names of a `str.format` template (raises ValueError when malformed)."""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]


@dataclasses.dataclass(frozen=True)
class RequestTemplate:
    """How to ask for one order's status.

    Attributes:
        method: HTTP method.
        path: path after the base URL, with `{order_id}` where the (percent-encoded) id goes.
        query: query parameters; values may hold `{order_id}`.
        headers: extra headers (`Accept: application/json` unless overridden).
        auth: the credentials the request carries.
    """

    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    auth: tuple[Auth, ...] = ()

    @property
    def log_url(self) -> str:
        """A URL template safe to log: the path and the id-bearing query, no credentials."""
        if not self.query:
            return self.path
        return self.path + "?" + "&".join(f"{name}={value}" for name, value in self.query)


@dataclasses.dataclass(frozen=True)
class StatusRule:
    """An override of the status map: when the raw status is `status` (any status when None)
    and `condition` holds, the order is in `state`."""

    state: OrderState
    status: str | None = None
    condition: Condition | None = None

    def applies(self, status_key: str, body: Any) -> bool:
        """Whether the rule applies to a body whose normalised status is `status_key`."""
        if self.status is not None and self.status != status_key:
            return False
        return self.condition is None or self.condition.holds(body)


def status_key(status: str) -> str:
    """A raw status as compared with the map and rules: stripped and upper-cased."""
    return status.strip().upper()


@dataclasses.dataclass(frozen=True)
class StatusSection:
    """Where the status lives and what it means.

    Attributes:
        path: the JSON path of the provider's status word.
        map: normalised status (`status_key`) -> canonical state.
        substatus: the JSON path of a secondary status or note, if any.
        rules: overrides tried in order before the map; the first that applies wins.
    """

    path: JsonPath
    map: Mapping[str, OrderState]
    substatus: JsonPath | None = None
    rules: tuple[StatusRule, ...] = ()

    def state_of(self, status: str, body: Any) -> OrderState | None:
        """The canonical state of a body with raw `status`; None when it is not recognised."""
        key = status_key(status)
        for rule in self.rules:
            if rule.applies(key, body):
                return rule.state
        return self.map.get(key)


@dataclasses.dataclass(frozen=True)
class TimeField:
    """A provider-written time: the value at `path` in `format` fills observation `column`."""

    column: str
    path: JsonPath
    format: str


@dataclasses.dataclass(frozen=True)
class Fields:
    """JSON paths of the informational fields (all optional).

    Attributes:
        service: what was ordered (falls back to the tracked order's).
        country: where (falls back to the tracked order's).
        phone: the phone number (stored masked).
        code: the delivered SMS code (stored as a keyed hash and its length).
        amount: the price paid.
        amount_unit: the unit `amount` is in (a literal, not a path).
    """

    service: JsonPath | None = None
    country: JsonPath | None = None
    phone: JsonPath | None = None
    code: JsonPath | None = None
    amount: JsonPath | None = None
    amount_unit: str | None = None


@dataclasses.dataclass(frozen=True)
class Paid:
    """When an order counts as paid (`is_paid`).

    Attributes:
        always: every order the endpoint knows is prepaid.
        statuses: normalised raw statuses that mean paid.
        from_paid_at: a `provider_paid_at` value means paid.
        path: a boolean field saying whether it is paid.
    """

    always: bool = False
    statuses: frozenset[str] = frozenset()
    from_paid_at: bool = False
    path: JsonPath | None = None


@dataclasses.dataclass(frozen=True)
class BodyError:
    """A 2xx body that reports an error.

    Attributes:
        condition: when the body is an error (e.g. `status == "error"`, or `error` present).
        message: the JSON path of its reason; None means the usual keys (`error`, `message`, ...).
        prefix: how the observation's error message starts.
        error_class: the class to record; None means `body_error` (`not_found` if the reason
            says so).
    """

    condition: Condition
    message: JsonPath | None = None
    prefix: str = "error in body"
    error_class: ErrorClass | None = None


@dataclasses.dataclass(frozen=True)
class Errors:
    """Error shapes: HTTP status -> error class, and 2xx bodies that are errors."""

    http: Mapping[int, ErrorClass] = dataclasses.field(default_factory=dict)
    body: tuple[BodyError, ...] = ()


# --- the sandbox imitation --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Duration:
    """A drawn duration: `kind` is `lognormal` (a = median, b = sigma), `uniform` (a = low,
    b = high), `fixed` (a) or `window` (until the lifecycle's window ends)."""

    kind: str
    a: float = 0.0
    b: float = 0.0


@dataclasses.dataclass(frozen=True)
class Outcome:
    """One way out of a phase: to phase `to` with probability `share`, after `after`."""

    to: str
    share: float
    after: Duration


@dataclasses.dataclass(frozen=True)
class Phase:
    """One step of a sandbox lifecycle.

    Attributes:
        name: the phase's name (also its milestone: the time it was first entered).
        status: the provider's status word while in it.
        state: the canonical state it is (checked against the adapter when loading).
        outcomes: ways out; the shares left over keep the order here until the window ends.
        on_window: the phase entered when the window ends here (default: the lifecycle's, for
            an open phase).
        body: JSON merged into the status answer from this phase on (templated strings).
        substatus: the value put at the status section's `substatus` path, if any.
    """

    name: str
    status: str
    state: OrderState
    outcomes: tuple[Outcome, ...] = ()
    on_window: str | None = None
    body: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    substatus: str | None = None


@dataclasses.dataclass(frozen=True)
class Lifecycle:
    """One order kind's state machine in the sandbox.

    Attributes:
        start: the first phase.
        phases: every phase by name.
        window_s: the order's window (seconds from creation), None for none.
        on_window: the phase an open order enters when the window ends.
    """

    start: str
    phases: Mapping[str, Phase]
    window_s: float | None = None
    on_window: str | None = None

    def window_target(self, phase: Phase) -> str | None:
        """The phase entered when the window ends in `phase`: its own `on_window`, else the
        lifecycle's for an open phase (a terminal phase without one is not cut)."""
        if self.window_s is None:
            return None
        if phase.on_window is not None:
            return phase.on_window
        return None if phase.state.is_terminal else self.on_window


@dataclasses.dataclass(frozen=True)
class Variation:
    """How a service or country shifts the odds and speed of its orders (as `Traits`), plus
    what it shows on the wire (`price` for services, phone `prefix` for countries)."""

    weight: float = 1.0
    success_factor: float = 1.0
    speed_factor: float = 1.0
    failure_factor: float = 1.0
    price: float | None = None
    prefix: str | None = None


@dataclasses.dataclass(frozen=True)
class Reply:
    """A canned answer: `status` and `body` (a table is sent as JSON, a string as plain text,
    `""` as an empty body)."""

    status: int
    body: Any = ""


@dataclasses.dataclass(frozen=True)
class IdFormat:
    """How the sandbox makes order ids: `digits` (`length` digits, no leading zero), `hex`
    (`length` lower-case hex characters) or `uuid`, after `prefix`."""

    kind: str
    length: int = 0
    prefix: str = ""


@dataclasses.dataclass(frozen=True)
class CreateRoute:
    """The sandbox's create endpoint (what the workload calls).

    Attributes:
        method: HTTP method.
        path: path after the provider prefix; `{service}` and `{country}` are filled by the
            workload and read back by the sandbox.
        id_path: where the new order's id is in the answer (the answer is the status body).
    """

    method: str
    path: str
    id_path: JsonPath


@dataclasses.dataclass(frozen=True)
class SandboxSection:
    """The sandbox imitation of a declared provider.

    Attributes:
        ids: how order ids are made.
        lifecycles: order kind -> its state machine.
        body: the status answer's base JSON (templated strings), before phases and status.
        services: service -> its variation (the workload draws from these).
        countries: country -> its variation.
        create: the create endpoint, None for none (the workload then skips the provider).
        unknown_order: the answer for an id the sandbox does not know.
        unauthorized: the answer when a credential is missing or wrong.
        server_error: the body of injected 5xx answers (their status comes from the fault).
        rate_limited: the body of 429 answers.
        retry_after_header: whether 429 answers carry `Retry-After`.
    """

    ids: IdFormat
    lifecycles: Mapping[str, Lifecycle]
    body: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    services: Mapping[str, Variation] = dataclasses.field(default_factory=dict)
    countries: Mapping[str, Variation] = dataclasses.field(default_factory=dict)
    create: CreateRoute | None = None
    unknown_order: Reply = Reply(404, {"error": "order not found"})
    unauthorized: Reply = Reply(401, "")
    server_error: Reply = Reply(500, {"error": "Internal Server Error"})
    rate_limited: Reply = Reply(429, {"error": "Too Many Requests"})
    retry_after_header: bool = True


# --- the whole declaration --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Declaration:
    """One declared provider.

    Attributes:
        path: the file it was read from.
        spec: the provider's facts.
        request: how to ask for an order's status.
        status: where the status lives and what it means.
        times: provider-written times, in the order they are read.
        fields: informational fields.
        paid: when an order counts as paid.
        errors: error shapes.
        redactions: JSON key -> redaction kind, applied at any depth of the stored body.
        sandbox: the sandbox imitation.
    """

    path: Path
    spec: ProviderSpec
    request: RequestTemplate
    status: StatusSection
    sandbox: SandboxSection
    times: tuple[TimeField, ...] = ()
    fields: Fields = Fields()
    paid: Paid = Paid()
    errors: Errors = Errors()
    redactions: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def slug(self) -> str:
        """The provider's slug."""
        return self.spec.slug
