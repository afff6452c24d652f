"""Reads and checks a provider declaration (TOML) into a `Declaration`.

Every problem raises `DeclarationError` with `<file>: <key.path>: <problem>`: TOML syntax,
unknown keys at any level, wrong types, bad regular expressions, state names that are no
`OrderState`, malformed JSON paths, credential variables outside the provider's prefix,
references to undeclared credentials, columns, phases or kinds, and a sandbox lifecycle whose
answers the provider's own adapter would not read as the lifecycle says. Nothing is registered
until the whole file is accepted.
"""

from __future__ import annotations

import json
import math
import random
import re
import tomllib
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from pipeline.model import ErrorClass, OrderState, TrackedOrder
from pipeline.providers.base import PollingPolicy
from pipeline.providers.declarative.paths import JsonPath
from pipeline.providers.declarative.render import (
    RESERVED_NAMES,
    OrderView,
    RenderError,
    render_status,
    template_problems,
)
from pipeline.providers.declarative.schema import (
    AUTH_KINDS,
    METHODS,
    REDACTION_KINDS,
    TIME_COLUMNS,
    TIME_FORMATS,
    Auth,
    BodyError,
    Condition,
    CreateRoute,
    Declaration,
    DeclarationError,
    Duration,
    Errors,
    Fields,
    IdFormat,
    Lifecycle,
    Outcome,
    Paid,
    Phase,
    Reply,
    RequestTemplate,
    SandboxSection,
    Scalar,
    StatusRule,
    StatusSection,
    TimeField,
    Variation,
    status_key,
    template_fields,
)
from pipeline.providers.spec import (
    COLOUR_PATTERN,
    EVENT_TIME_COLUMNS,
    SLUG_PATTERN,
    Credential,
    EventTime,
    ExpiryWindow,
    ProviderSpec,
)

KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
VARIABLE_PATTERN = re.compile(r"^[A-Z][A-Z0-9_]*$")
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
HEADER_PATTERN = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
PHASE_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
STATES: tuple[str, ...] = tuple(s.value for s in OrderState)
ERROR_CLASSES: tuple[str, ...] = tuple(e.value for e in ErrorClass)
DISTRIBUTIONS = ("lognormal", "uniform", "fixed")
ID_KINDS = ("digits", "hex", "uuid")
SHARE_TOLERANCE = 1e-9
SAMPLE_CREATED_AT = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
SAMPLE_STEP = timedelta(seconds=30)
SAMPLE_IDS = 20

_T = TypeVar("_T")


class Section:
    """One TOML table being read: remembers the keys read so unknown ones can be named.

    Args:
        file: the declaration file (for messages).
        key: this table's dotted key (`""` for the top level).
        data: the table.
    """

    def __init__(self, file: Path, key: str, data: Mapping[str, Any]) -> None:
        self.file = file
        self.key = key
        self.data = data
        self.read: set[str] = set()

    def where(self, name: str) -> str:
        """The dotted key of `name` in this table."""
        return f"{self.key}.{name}" if self.key else name

    def error(self, name: str | None, problem: str) -> DeclarationError:
        """A `DeclarationError` at `name` (this table itself when None)."""
        return DeclarationError(
            self.file, self.where(name) if name else self.key or "(file)", problem
        )

    def has(self, name: str) -> bool:
        """Whether `name` is given."""
        return name in self.data

    def raw(self, name: str, *, required: bool = False) -> Any:
        """The value of `name` (None when absent and not required)."""
        self.read.add(name)
        if name not in self.data:
            if required:
                raise self.error(name, "missing")
            return None
        return self.data[name]

    def string(
        self,
        name: str,
        *,
        required: bool = False,
        default: str | None = None,
        pattern: re.Pattern[str] | None = None,
        choices: tuple[str, ...] | None = None,
        hint: str = "",
    ) -> str | None:
        """A string value, checked against `pattern` or `choices`."""
        value = self.raw(name, required=required)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self.error(name, f"expected a string, got {_toml_type(value)}")
        if choices is not None and value not in choices:
            raise self.error(name, f"{value!r} is not one of {', '.join(choices)}")
        if pattern is not None and not pattern.match(value):
            raise self.error(name, f"{value!r} must match {hint or pattern.pattern}")
        if not value.strip():
            raise self.error(name, "may not be empty")
        return value

    def required_string(self, name: str, **kwargs: Any) -> str:
        """A string value that must be given."""
        value = self.string(name, required=True, **kwargs)
        assert value is not None
        return value

    def number(
        self,
        name: str,
        *,
        required: bool = False,
        default: float | None = None,
        minimum: float | None = None,
        positive: bool = False,
        maximum: float | None = None,
    ) -> float | None:
        """A finite number (integer or float, never a boolean)."""
        value = self.raw(name, required=required)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(name, f"expected a number, got {_toml_type(value)}")
        number = float(value)
        if not math.isfinite(number):
            raise self.error(name, "must be a finite number")
        if positive and number <= 0:
            raise self.error(name, f"must be greater than 0, got {value}")
        if minimum is not None and number < minimum:
            raise self.error(name, f"must be at least {minimum:g}, got {value}")
        if maximum is not None and number > maximum:
            raise self.error(name, f"must be at most {maximum:g}, got {value}")
        return number

    def required_number(self, name: str, **kwargs: Any) -> float:
        """A number that must be given."""
        value = self.number(name, required=True, **kwargs)
        assert value is not None
        return value

    def integer(self, name: str, *, default: int | None = None, minimum: int = 0) -> int | None:
        """An integer (never a boolean) of at least `minimum`."""
        value = self.raw(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(name, f"expected an integer, got {_toml_type(value)}")
        if value < minimum:
            raise self.error(name, f"must be at least {minimum}, got {value}")
        return value

    def boolean(self, name: str, *, default: bool = False) -> bool:
        """A boolean."""
        value = self.raw(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(name, f"expected true or false, got {_toml_type(value)}")
        return value

    def strings(
        self, name: str, *, required: bool = False, non_empty: bool = False
    ) -> tuple[str, ...]:
        """An array of non-empty strings."""
        value = self.raw(name, required=required)
        if value is None:
            value = []
        if not isinstance(value, list):
            raise self.error(name, f"expected an array of strings, got {_toml_type(value)}")
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                raise self.error(f"{name}[{index}]", "expected a non-empty string")
        if non_empty and not value:
            raise self.error(name, "may not be empty")
        if len(set(value)) != len(value):
            raise self.error(name, "lists a value twice")
        return tuple(value)

    def scalar(self, name: str) -> Scalar | None:
        """A string, number or boolean."""
        value = self.raw(name)
        if value is None or isinstance(value, str | int | float | bool):
            return value
        raise self.error(name, f"expected a string, number or boolean, got {_toml_type(value)}")

    def path(self, name: str, *, required: bool = False) -> JsonPath | None:
        """A JSON path."""
        text = self.string(name, required=required)
        if text is None:
            return None
        try:
            return JsonPath.parse(text)
        except ValueError as exc:
            raise self.error(name, str(exc)) from None

    def required_path(self, name: str) -> JsonPath:
        """A JSON path that must be given."""
        path = self.path(name, required=True)
        assert path is not None
        return path

    def state(self, name: str, *, required: bool = True) -> OrderState | None:
        """A canonical state name."""
        text = self.string(name, required=required)
        if text is None:
            return None
        return _state(self, name, text)

    def table(self, name: str, *, required: bool = False) -> Section | None:
        """A sub-table."""
        value = self.raw(name, required=required)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.error(name, f"expected a table, got {_toml_type(value)}")
        return Section(self.file, self.where(name), value)

    def tables(self, name: str) -> list[Section]:
        """An array of tables (`[[name]]`)."""
        value = self.raw(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error(name, f"expected an array of tables, got {_toml_type(value)}")
        found = []
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                raise self.error(f"{name}[{index}]", f"expected a table, got {_toml_type(item)}")
            found.append(Section(self.file, f"{self.where(name)}[{index}]", item))
        return found

    def free(self) -> list[tuple[str, Any]]:
        """Every (key, value) of a table whose keys are data (maps, tables of names)."""
        self.read.update(self.data)
        return list(self.data.items())

    def done(self) -> None:
        """Refuse keys that were never read."""
        unknown = sorted(set(self.data) - self.read)
        if unknown:
            known = ", ".join(sorted(self.read)) or "none"
            raise self.error(unknown[0], f"unknown key (known here: {known})")


def _toml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _state(section: Section, name: str, text: str) -> OrderState:
    try:
        return OrderState(text)
    except ValueError:
        raise section.error(
            name, f"{text!r} is not a state (states: {', '.join(STATES)})"
        ) from None


def _done(section: Section | None, build: Callable[[Section], _T]) -> _T | None:
    """`build(section)` followed by the unknown-key check, or None without a section."""
    if section is None:
        return None
    value = build(section)
    section.done()
    return value


# --- entry point ------------------------------------------------------------------------------


def read_declaration(path: Path) -> Declaration:
    """Read, check and build the declaration in `path`.

    Raises:
        DeclarationError: anything wrong, naming the file, the key and the problem.
    """
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise DeclarationError(path, "(file)", f"cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise DeclarationError(path, "(file)", "is not UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DeclarationError(path, "(toml)", f"not valid TOML: {exc}") from None
    top = Section(path, "", data)
    declaration = _declaration(top)
    top.done()
    _check_sandbox_answers(declaration)
    return declaration


def _declaration(top: Section) -> Declaration:
    spec = _spec(top)
    credentials = {c.name for c in spec.credentials}
    request = _done(top.table("request", required=True), lambda s: _request(s, credentials))
    assert request is not None
    status = _done(top.table("status", required=True), _status)
    assert status is not None
    times = _done(top.table("times"), _times) or ()
    fields = _done(top.table("fields"), _fields) or Fields()
    paid = _done(top.table("paid"), _paid) or Paid()
    errors = _done(top.table("errors"), _errors) or Errors()
    redactions = _done(top.table("redactions"), _redactions) or {}
    _check_redacted(top, fields, redactions)
    columns = {t.column for t in times}
    if spec.event_time is not None and spec.event_time.column not in columns:
        raise top.error(
            "event_time.column",
            f"{spec.event_time.column!r} is not filled by any [times] entry"
            f" (declared: {', '.join(sorted(columns)) or 'none'})",
        )
    if paid.from_paid_at and "provider_paid_at" not in columns:
        raise top.error("paid.from_paid_at", "no [times] entry fills provider_paid_at")
    sandbox = _done(top.table("sandbox", required=True), lambda s: _sandbox(s, spec, status))
    assert sandbox is not None
    return Declaration(
        path=top.file,
        spec=spec,
        request=request,
        status=status,
        sandbox=sandbox,
        times=times,
        fields=fields,
        paid=paid,
        errors=errors,
        redactions=redactions,
    )


# --- the spec ---------------------------------------------------------------------------------


def _spec(top: Section) -> ProviderSpec:
    slug = top.required_string("slug", pattern=SLUG_PATTERN, hint="lower-case letters, digits, '_'")
    if top.file.suffix == ".toml" and top.file.stem != slug:
        raise top.error("slug", f"{slug!r} differs from the file name {top.file.name!r}")
    kinds = top.strings("order_kinds", required=True, non_empty=True)
    for index, kind in enumerate(kinds):
        if not KIND_PATTERN.match(kind):
            raise top.error(f"order_kinds[{index}]", f"{kind!r} must match {KIND_PATTERN.pattern}")
    code_kinds = top.strings("code_kinds")
    for index, kind in enumerate(code_kinds):
        if kind not in kinds:
            raise top.error(f"code_kinds[{index}]", f"{kind!r} is not among order_kinds")
    id_pattern = top.string("id_pattern")
    if id_pattern is not None:
        try:
            re.compile(id_pattern)
        except re.error as exc:
            raise top.error("id_pattern", f"not a regular expression ({exc})") from None
    credentials = tuple(_credential(s, slug) for s in top.tables("credentials"))
    _unique(top, "credentials", [c.name for c in credentials], "name")
    _unique(top, "credentials", [c.variable for c in credentials], "variable")
    policy = _done(top.table("policy", required=True), _policy)
    assert policy is not None
    windows = tuple(_expiry_window(s, kinds) for s in top.tables("expiry_windows"))
    _unique(top, "expiry_windows", [w.order_kind for w in windows], "order_kind")
    event_time = _done(top.table("event_time"), _event_time)
    display_name = top.required_string("display_name")
    family = top.required_string("family")
    id_hint = top.string("id_hint", default="") or ""
    colour = top.required_string("colour", pattern=COLOUR_PATTERN, hint="#RRGGBB")
    sources = top.strings("sources", required=True, non_empty=True)
    try:
        return ProviderSpec(
            slug=slug,
            display_name=display_name,
            family=family,
            order_kinds=kinds,
            code_kinds=code_kinds,
            id_pattern=id_pattern,
            id_hint=id_hint,
            credentials=credentials,
            policy=policy,
            expiry_windows=windows,
            event_time=event_time,
            colour=colour,
            sources=sources,
        )
    except ValueError as exc:  # every problem ProviderSpec knows is checked above
        raise top.error(None, str(exc)) from None


def _unique(top: Section, name: str, values: list[str], field: str) -> None:
    seen: set[str] = set()
    for index, value in enumerate(values):
        if value in seen:
            raise top.error(f"{name}[{index}].{field}", f"{value!r} is declared twice")
        seen.add(value)


def _credential(section: Section, slug: str) -> Credential:
    prefix = f"{slug.upper()}_"
    variable = section.required_string("variable", pattern=VARIABLE_PATTERN, hint="A-Z, 0-9, '_'")
    if not variable.startswith(prefix) or variable == prefix:
        raise section.error("variable", f"{variable!r} must start with {prefix}")
    if variable == f"{prefix}BASE_URL":
        raise section.error("variable", f"{variable} is reserved for the provider's base URL")
    credential = Credential(
        variable=variable,
        name=section.required_string("name", pattern=NAME_PATTERN, hint="a-z, 0-9, '_'"),
        sandbox_value=section.required_string("sandbox_value"),
    )
    section.done()
    return credential


def _policy(section: Section) -> PollingPolicy:
    cadence: dict[str, float] = {}
    table = section.table("cadence_s")
    if table is not None:
        for state, _ in table.free():
            _state(table, state, state)
            cadence[state] = table.required_number(state, positive=True)
    return PollingPolicy(
        cadence_s=cadence,
        default_cadence_s=section.required_number("default_cadence_s", positive=True),
        terminal_grace_s=section.required_number("terminal_grace_s", minimum=0),
        max_tracking_age_s=section.required_number("max_tracking_age_s", positive=True),
        rate_limit_per_minute=section.number("rate_limit_per_minute", positive=True),
        budget_share=section.number("budget_share", default=0.8, positive=True, maximum=1.0) or 0.8,
        max_concurrency=section.integer("max_concurrency", default=8, minimum=1) or 8,
    )


def _expiry_window(section: Section, kinds: tuple[str, ...]) -> ExpiryWindow:
    window = ExpiryWindow(
        order_kind=section.required_string("order_kind", choices=kinds),
        window_s=section.required_number("window_s", positive=True),
        documented=section.boolean("documented"),
        note=section.required_string("note"),
        expires_from=_expires_from(section),
    )
    section.done()
    return window


def _expires_from(section: Section) -> frozenset[str] | None:
    """The states an order can still expire from (none listed: any)."""
    states = section.strings("expires_from")
    for index, state in enumerate(states):
        if _state(section, f"expires_from[{index}]", state).is_terminal:
            raise section.error(f"expires_from[{index}]", f"{state!r} is terminal")
    return frozenset(states) or None


def _event_time(section: Section) -> EventTime:
    column = section.required_string("column", choices=EVENT_TIME_COLUMNS)
    states = section.strings("states", required=True, non_empty=True)
    for index, state in enumerate(states):
        _state(section, f"states[{index}]", state)
    return EventTime(column, frozenset(states))


# --- the request ------------------------------------------------------------------------------


def _template(section: Section, name: str, text: str) -> str:
    try:
        names = template_fields(text)
    except ValueError as exc:
        raise section.error(name, f"malformed template ({exc})") from None
    for field in names:
        if field != "order_id":
            raise section.error(name, f"unknown placeholder {{{field}}} (only {{order_id}})")
    return text


def _request(section: Section, credentials: set[str]) -> RequestTemplate:
    method = section.string("method", default="GET", choices=METHODS) or "GET"
    path = section.required_string("path")
    if not path.startswith("/") or "?" in path or "#" in path:
        raise section.error("path", "must start with '/' and hold no query (use request.query)")
    _template(section, "path", path)
    query: list[tuple[str, str]] = []
    table = section.table("query")
    if table is not None:
        for name, _ in table.free():
            query.append((name, _template(table, name, table.required_string(name))))
    headers: list[tuple[str, str]] = []
    table = section.table("headers")
    if table is not None:
        for name, _ in table.free():
            if not HEADER_PATTERN.match(name):
                raise table.error(name, "is not a header name")
            value = table.required_string(name)
            if "{" in value:
                raise table.error(name, "headers take no placeholders")
            headers.append((name, value))
    auth = tuple(_auth(s, credentials) for s in section.tables("auth"))
    return RequestTemplate(method, path, tuple(query), tuple(headers), auth)


def _auth(section: Section, credentials: set[str]) -> Auth:
    kind = section.required_string("kind", choices=AUTH_KINDS)
    credential = section.required_string("credential")
    if credential not in credentials:
        known = ", ".join(sorted(credentials)) or "none declared"
        raise section.error("credential", f"{credential!r} is not a declared credential ({known})")
    if kind == "bearer":
        name = section.string("name", default="Authorization") or "Authorization"
        if name != "Authorization":
            raise section.error("name", "a bearer credential always goes in Authorization")
    else:
        name = section.required_string("name")
        if kind == "header" and not HEADER_PATTERN.match(name):
            raise section.error("name", f"{name!r} is not a header name")
    section.done()
    return Auth(kind, credential, name)


# --- the answer -------------------------------------------------------------------------------


def _condition(section: Section, *, required: bool) -> Condition | None:
    path = section.path("path", required=required)
    given = [name for name in ("equals", "one_of", "present") if section.has(name)]
    if path is None:
        if given:
            raise section.error(given[0], "needs a path")
        return None
    if len(given) > 1:
        raise section.error(given[1], f"give only one of equals, one_of, present (got {given})")
    equals = section.scalar("equals")
    one_of: tuple[Scalar, ...] | None = None
    raw = section.raw("one_of")
    if raw is not None:
        if not isinstance(raw, list) or not raw:
            raise section.error("one_of", "expected a non-empty array")
        for index, item in enumerate(raw):
            if not isinstance(item, str | int | float | bool):
                raise section.error(f"one_of[{index}]", "expected a string, number or boolean")
        one_of = tuple(raw)
    present = section.boolean("present", default=True) if section.has("present") else None
    return Condition(path, equals, one_of, present)


def _status(section: Section) -> StatusSection:
    path = section.required_path("path")
    mapping: dict[str, OrderState] = {}
    table = section.table("map", required=True)
    assert table is not None
    for raw, _ in table.free():
        state = _state(table, raw, table.required_string(raw))
        key = status_key(raw)
        if not key:
            raise table.error(raw, "a status may not be empty")
        if key in mapping:
            raise table.error(raw, f"maps the status {key!r} a second time (case is ignored)")
        mapping[key] = state
    if not mapping:
        raise table.error(None, "maps no status")
    rules = []
    for rule in section.tables("rules"):
        status = rule.string("status")
        condition = _condition(rule, required=False)
        if status is None and condition is None:
            raise rule.error(None, "a rule needs a status, a path, or both")
        if status is not None and status_key(status) not in mapping:
            raise rule.error("status", f"{status!r} is not in status.map")
        rule_state = rule.state("state")
        assert rule_state is not None
        rule.done()
        rules.append(StatusRule(rule_state, status_key(status) if status else None, condition))
    return StatusSection(path, mapping, section.path("substatus"), tuple(rules))


def _times(section: Section) -> tuple[TimeField, ...]:
    found = []
    for column, _ in section.free():
        if column not in TIME_COLUMNS:
            raise section.error(column, f"not a time column (columns: {', '.join(TIME_COLUMNS)})")
        entry = section.table(column)
        assert entry is not None
        found.append(
            TimeField(
                column,
                entry.required_path("path"),
                entry.required_string("format", choices=TIME_FORMATS),
            )
        )
        entry.done()
    return tuple(found)


def _fields(section: Section) -> Fields:
    amount = section.path("amount")
    unit = section.string("amount_unit")
    if amount is not None and unit is None:
        raise section.error("amount_unit", "missing (the unit fields.amount is in)")
    if unit is not None and amount is None:
        raise section.error("amount_unit", "given without fields.amount")
    return Fields(
        service=section.path("service"),
        country=section.path("country"),
        phone=section.path("phone"),
        code=section.path("code"),
        amount=amount,
        amount_unit=unit,
    )


def _paid(section: Section) -> Paid:
    return Paid(
        always=section.boolean("always"),
        statuses=frozenset(status_key(s) for s in section.strings("statuses")),
        from_paid_at=section.boolean("from_paid_at"),
        path=section.path("path"),
    )


def _errors(section: Section) -> Errors:
    http: dict[int, ErrorClass] = {}
    table = section.table("http")
    if table is not None:
        for code, _ in table.free():
            if not code.isdigit() or not 300 <= int(code) <= 599:
                raise table.error(code, "must be an HTTP status from 300 to 599")
            http[int(code)] = ErrorClass(table.required_string(code, choices=ERROR_CLASSES))
    body = []
    for shape in section.tables("body"):
        condition = _condition(shape, required=True)
        assert condition is not None
        error_class = shape.string("class", choices=ERROR_CLASSES)
        body.append(
            BodyError(
                condition=condition,
                message=shape.path("message"),
                prefix=shape.string("prefix", default="error in body") or "error in body",
                error_class=ErrorClass(error_class) if error_class else None,
            )
        )
        shape.done()
    return Errors(http, tuple(body))


def _redactions(section: Section) -> dict[str, str]:
    return {key: section.required_string(key, choices=REDACTION_KINDS) for key, _ in section.free()}


def _check_redacted(top: Section, fields: Fields, redactions: Mapping[str, str]) -> None:
    """The code and the phone number must never be stored whole."""
    for name, path, kinds in (
        ("code", fields.code, ("code",)),
        ("phone", fields.phone, ("phone", "hash", "code")),
    ):
        if path is not None and redactions.get(path.last_key) not in kinds:
            raise top.error(
                f"fields.{name}",
                f"its key {path.last_key!r} must be redacted as {kinds[0]} in [redactions]",
            )


# --- the sandbox ------------------------------------------------------------------------------


def _reply(
    section: Section, name: str, default: Reply, *, fixed_status: int | None = None
) -> Reply:
    table = section.table(name)
    if table is None:
        return default
    if fixed_status is not None and table.has("status"):
        raise table.error("status", f"is always {fixed_status} here")
    status = fixed_status or table.integer("status", default=default.status, minimum=100) or 0
    if status > 599:
        raise table.error("status", f"must be an HTTP status, got {status}")
    body = table.raw("body")
    if body is None:
        body = default.body
    elif not isinstance(body, str | dict):
        raise table.error("body", "expected a string (plain text) or a table (JSON)")
    table.done()
    return Reply(status, body)


def _sandbox(section: Section, spec: ProviderSpec, status: StatusSection) -> SandboxSection:
    ids = _done(section.table("ids", required=True), _ids)
    assert ids is not None
    _check_ids(section, ids, spec)
    body = section.table("body")
    body_data: dict[str, Any] = dict(body.free()) if body is not None else {}
    lifecycles_table = section.table("lifecycles", required=True)
    assert lifecycles_table is not None
    lifecycles: dict[str, Lifecycle] = {}
    for kind, _ in lifecycles_table.free():
        if kind not in spec.order_kinds:
            raise lifecycles_table.error(kind, f"{kind!r} is not among order_kinds")
        table = lifecycles_table.table(kind)
        assert table is not None
        lifecycles[kind] = _lifecycle(table)
        table.done()
    for kind in spec.order_kinds:
        if kind not in lifecycles:
            raise lifecycles_table.error(kind, "missing: every order kind needs a lifecycle")
    phases = frozenset(name for lc in lifecycles.values() for name in lc.phases)
    if problems := template_problems(body_data, phases):
        raise section.error("body", problems[0])
    services = _done(section.table("services"), _variations) or {}
    countries = _done(section.table("countries"), _variations) or {}
    create = _done(section.table("create"), _create)
    return SandboxSection(
        ids=ids,
        lifecycles=lifecycles,
        body=body_data,
        services=services,
        countries=countries,
        create=create,
        unknown_order=_reply(section, "unknown_order", SandboxSection.unknown_order),
        unauthorized=_reply(section, "unauthorized", SandboxSection.unauthorized),
        server_error=_reply(section, "server_error", SandboxSection.server_error, fixed_status=500),
        rate_limited=_reply(section, "rate_limited", SandboxSection.rate_limited, fixed_status=429),
        retry_after_header=section.boolean("retry_after_header", default=True),
    )


def _ids(section: Section) -> IdFormat:
    kind = section.required_string("kind", choices=ID_KINDS)
    length = section.integer("length", default=0, minimum=0) or 0
    if kind == "uuid" and section.has("length"):
        raise section.error("length", "a uuid has no length")
    if kind != "uuid" and not 1 <= length <= 64:
        raise section.error("length", "give a length from 1 to 64")
    return IdFormat(kind, length, section.string("prefix", default="") or "")


def new_order_id(ids: IdFormat, rng: random.Random) -> str:
    """A fresh order id in the declared format."""
    if ids.kind == "digits":
        body = str(rng.randrange(10 ** (ids.length - 1), 10**ids.length))
    elif ids.kind == "hex":
        body = f"{rng.getrandbits(4 * ids.length):0{ids.length}x}"
    else:
        body = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    return ids.prefix + body


def _check_ids(section: Section, ids: IdFormat, spec: ProviderSpec) -> None:
    rng = random.Random(0)
    for _ in range(SAMPLE_IDS):
        sample = new_order_id(ids, rng)
        if problem := spec.check_order_id(sample):
            raise section.error("ids", f"the sandbox's id {sample!r} is refused: {problem}")


def _duration(section: Section, name: str) -> Duration:
    value = section.raw(name, required=True)
    if value == "window":
        return Duration("window")
    if not isinstance(value, dict) or len(value) != 1:
        raise section.error(
            name,
            'expected "window" or one of { lognormal = [median_s, sigma] },'
            " { uniform = [low_s, high_s] }, { fixed = seconds }",
        )
    kind, params = next(iter(value.items()))
    where = f"{name}.{kind}"
    if kind not in DISTRIBUTIONS:
        raise section.error(where, f"unknown distribution (known: {', '.join(DISTRIBUTIONS)})")
    numbers = params if isinstance(params, list) else [params]
    if len(numbers) != (1 if kind == "fixed" else 2) or any(
        isinstance(n, bool) or not isinstance(n, int | float) or not math.isfinite(n)
        for n in numbers
    ):
        raise section.error(
            where, "expected " + ("a number" if kind == "fixed" else "[a, b] numbers")
        )
    a, b = float(numbers[0]), float(numbers[1]) if len(numbers) > 1 else 0.0
    if kind == "lognormal" and (a <= 0 or b < 0):
        raise section.error(where, "needs a median > 0 and a sigma >= 0")
    if kind == "uniform" and not 0 <= a <= b:
        raise section.error(where, "needs 0 <= low <= high")
    if kind == "fixed" and a < 0:
        raise section.error(where, "may not be negative")
    return Duration(kind, a, b)


def _lifecycle(section: Section) -> Lifecycle:
    window_s = section.number("window_s", positive=True)
    phases_table = section.table("phases", required=True)
    assert phases_table is not None
    phases: dict[str, Phase] = {}
    outcome_sections: dict[str, list[Section]] = {}
    for name, _ in phases_table.free():
        if not PHASE_PATTERN.match(name):
            raise phases_table.error(name, "phase names use a-z, 0-9 and '_'")
        if name in RESERVED_NAMES:
            raise phases_table.error(
                name, f"{name!r} is a placeholder name; call the phase otherwise"
            )
        table = phases_table.table(name)
        assert table is not None
        outcome_sections[name] = table.tables("outcomes")
        outcomes = []
        for outcome in outcome_sections[name]:
            outcomes.append(
                Outcome(
                    to=outcome.required_string("to"),
                    share=outcome.required_number("share", positive=True, maximum=1.0),
                    after=_duration(outcome, "after"),
                )
            )
            outcome.done()
        body = table.table("body")
        state = table.state("state")
        assert state is not None
        phases[name] = Phase(
            name=name,
            status=table.required_string("status"),
            state=state,
            outcomes=tuple(outcomes),
            on_window=table.string("on_window"),
            body=dict(body.free()) if body is not None else {},
            substatus=table.string("substatus"),
        )
        table.done()
    start = section.required_string("start")
    if start not in phases:
        raise section.error("start", f"{start!r} is not a phase")
    on_window = section.string("on_window")
    lifecycle = Lifecycle(start, phases, window_s, on_window)
    _check_phases(section, phases_table, lifecycle, outcome_sections)
    return lifecycle


def _check_phases(
    section: Section,
    phases_table: Section,
    lifecycle: Lifecycle,
    outcome_sections: Mapping[str, list[Section]],
) -> None:
    phases = lifecycle.phases
    if lifecycle.on_window is not None:
        _check_window_target(section, "on_window", lifecycle, lifecycle.on_window)
    for name, phase in phases.items():
        where = phases_table.table(name)
        assert where is not None
        total = sum(o.share for o in phase.outcomes)
        if total > 1 + SHARE_TOLERANCE:
            raise where.error("outcomes", f"shares add up to {total:g}, more than 1")
        for index, outcome in enumerate(phase.outcomes):
            entry = outcome_sections[name][index]
            if outcome.to not in phases:
                raise entry.error("to", f"{outcome.to!r} is not a phase")
            if outcome.after.kind == "window" and lifecycle.window_s is None:
                raise entry.error("after", '"window" needs the lifecycle\'s window_s')
        if phase.on_window is not None:
            _check_window_target(where, "on_window", lifecycle, phase.on_window)
        if problems := template_problems(dict(phase.body), frozenset(phases)):
            raise where.error("body", problems[0])
    if lifecycle.window_s is not None and lifecycle.on_window is None:
        open_phases = [n for n, p in phases.items() if not p.state.is_terminal and not p.on_window]
        if open_phases:
            raise section.error(
                "on_window",
                f"missing: what open phases ({open_phases[0]!r}, …) become when window_s ends",
            )
    _check_graph(section, lifecycle)


def _check_window_target(section: Section, name: str, lifecycle: Lifecycle, target: str) -> None:
    if lifecycle.window_s is None:
        raise section.error(name, "needs the lifecycle's window_s")
    phase = lifecycle.phases.get(target)
    if phase is None:
        raise section.error(name, f"{target!r} is not a phase")
    if phase.outcomes or not phase.state.is_terminal:
        raise section.error(name, f"{target!r} must be a terminal phase without outcomes")


def _check_graph(section: Section, lifecycle: Lifecycle) -> None:
    """Every phase is reachable from the start, and no phase can be entered twice."""
    phases = lifecycle.phases

    def successors(name: str) -> list[str]:
        return _following(lifecycle, phases[name])

    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for nxt in successors(name):
            if state.get(nxt) == 1:
                raise section.error("phases", f"phases loop: {' -> '.join([*trail, name, nxt])}")
            if nxt not in state:
                visit(nxt, [*trail, name])
        state[name] = 2

    visit(lifecycle.start, [])
    unreachable = sorted(set(phases) - set(state))
    if unreachable:
        raise section.error(f"phases.{unreachable[0]}", "is never reached from start")


def _variations(section: Section) -> dict[str, Variation]:
    found = {}
    for name, _ in section.free():
        table = section.table(name)
        assert table is not None
        found[name] = Variation(
            weight=table.number("weight", default=1.0, positive=True) or 1.0,
            success_factor=table.number("success", default=1.0, minimum=0) or 0.0,
            speed_factor=table.number("speed", default=1.0, positive=True) or 1.0,
            failure_factor=table.number("failure", default=1.0, minimum=0) or 0.0,
            price=table.number("price", minimum=0),
            prefix=table.string(
                "prefix", pattern=re.compile(r"^\+[0-9]{1,4}$"), hint="+ and 1-4 digits"
            ),
        )
        table.done()
    return found


def _create(section: Section) -> CreateRoute:
    method = section.string("method", default="POST", choices=METHODS) or "POST"
    path = section.required_string("path")
    if not path.startswith("/") or "?" in path:
        raise section.error("path", "must start with '/' and hold no query")
    try:
        names = template_fields(path)
    except ValueError as exc:
        raise section.error("path", f"malformed template ({exc})") from None
    for name in names:
        if name not in ("service", "country"):
            raise section.error(
                "path", f"unknown placeholder {{{name}}} (only {{service}}, {{country}})"
            )
    return CreateRoute(method, path, section.required_path("id_path"))


# --- the sandbox answers must read as the lifecycle says ---------------------------------------


def _check_sandbox_answers(declaration: Declaration) -> None:
    """Render every phase of every lifecycle for a sample order and parse it with the
    provider's own adapter: the state must be the phase's, without a poll error."""
    from pipeline.providers.declarative.adapter import DeclarativeAdapter

    adapter = DeclarativeAdapter(declaration)
    sandbox = declaration.sandbox
    order_id = new_order_id(sandbox.ids, random.Random(1))
    service = next(iter(sandbox.services), None)
    country = next(iter(sandbox.countries), None)
    for kind, lifecycle in sandbox.lifecycles.items():
        window_end = (
            SAMPLE_CREATED_AT + timedelta(seconds=lifecycle.window_s)
            if lifecycle.window_s
            else None
        )
        for name, trail in _trails(lifecycle).items():
            milestones = {step: SAMPLE_CREATED_AT + SAMPLE_STEP * i for i, step in enumerate(trail)}
            now = milestones[name] + SAMPLE_STEP / 2
            view = OrderView(
                order_id=order_id,
                service=service,
                country=country,
                created_at=SAMPLE_CREATED_AT,
                window_ends_at=window_end,
                milestones=milestones,
                phase=lifecycle.phases[name],
                changed_at=milestones[name],
                now=now,
                price=sandbox.services[service].price if service else None,
                phone_prefix=sandbox.countries[country].prefix if country else None,
            )
            key = f"sandbox.lifecycles.{kind}.phases.{name}"
            try:
                body = render_status(sandbox, declaration.status, lifecycle.phases, view)
            except RenderError as exc:
                raise DeclarationError(declaration.path, key, str(exc)) from None
            observation = adapter.parse(
                200,
                {"Content-Type": "application/json"},
                json.dumps(body).encode("utf-8"),
                order=TrackedOrder(declaration.slug, order_id, kind, SAMPLE_CREATED_AT),
                polled_at=now,
                code_key=b"declaration-check",
            )
            phase = lifecycle.phases[name]
            if observation.error_class is not None:
                raise DeclarationError(
                    declaration.path,
                    key,
                    f"the sandbox's answer in this phase is a poll error for the adapter"
                    f" ({observation.error_class}: {observation.error_message})",
                )
            if observation.state != phase.state:
                raise DeclarationError(
                    declaration.path,
                    key,
                    f"the adapter reads this phase's answer (status {phase.status!r}) as"
                    f" {observation.state!r}, but the phase says {phase.state.value!r}",
                )
            wants_code = (
                declaration.fields.code is not None
                and kind in declaration.spec.code_kinds
                and phase.state is OrderState.CODE_RECEIVED
            )
            if wants_code and not observation.has_code:
                raise DeclarationError(
                    declaration.path,
                    key,
                    f"the answer in this phase carries no code at {declaration.fields.code}",
                )


def _following(lifecycle: Lifecycle, phase: Phase) -> list[str]:
    """The phases that can follow `phase`: its outcomes, and its window target while open."""
    found = [o.to for o in phase.outcomes]
    target = lifecycle.window_target(phase)
    if target is not None:
        found.append(target)
    return found


def _trails(lifecycle: Lifecycle) -> dict[str, list[str]]:
    """For every phase, one sequence of phases from the start that reaches it."""
    trails = {lifecycle.start: [lifecycle.start]}
    queue = [lifecycle.start]
    while queue:
        name = queue.pop(0)
        for nxt in _following(lifecycle, lifecycle.phases[name]):
            if nxt not in trails:
                trails[nxt] = [*trails[name], nxt]
                queue.append(nxt)
    return trails
