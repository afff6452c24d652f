"""What the product knows about a provider, as data: `ProviderSpec`.

Every module outside a provider's own package learns about providers only through its spec, read
from the registry (`pipeline.providers.registry`): settings read its credentials, Dagster's
resources expose them, intake checks kinds and ids, analytics read its expiry windows and event
times, the report its name and colour.
"""

from __future__ import annotations

import dataclasses
import re

from pipeline.providers.base import PollingPolicy

SLUG_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
"""A slug names a provider in tables, URLs, asset keys and variable prefixes."""
COLOUR_PATTERN = re.compile(r"^#[0-9A-Fa-f]{6}$")
EVENT_TIME_COLUMNS = ("provider_created_at", "provider_updated_at", "provider_paid_at")
"""Observation columns the status history reads a provider's event time from."""
EXPIRY_GRACE_S = 300.0
"""Added to an expiry window: the clock may start at payment rather than creation, and the expiry
is only seen at the next poll, so expiries land a little after the window."""


@dataclasses.dataclass(frozen=True)
class Credential:
    """One secret a provider's requests carry.

    Attributes:
        variable: the environment variable it is read from (e.g. `BAANX_ACCESS_TOKEN`).
        name: how the adapter asks for it (`ProviderSettings.secret(name)`).
        sandbox_value: what the sandbox accepts; used when the provider points at the sandbox
            and the variable is not set. Not a secret: it opens only the local imitation.
    """

    variable: str
    name: str
    sandbox_value: str


@dataclasses.dataclass(frozen=True)
class Option:
    """A non-secret setting for a detail real clients of a provider disagree on.

    Attributes:
        variable: the environment variable it is read from (e.g. `BAANX_CLIENT_KEY_HEADER`).
        name: how the adapter asks for it (`ProviderSettings.option(name)`).
        default: the documented choice.
        choices: the allowed values (empty: any text).
        note: what each choice means and where it was seen.
    """

    variable: str
    name: str
    default: str
    choices: tuple[str, ...] = ()
    note: str = ""

    def problem(self, value: str) -> str | None:
        """Why `value` is not allowed, or None."""
        if self.choices and value not in self.choices:
            return f"{self.variable}={value!r}: choose one of {', '.join(self.choices)}"
        return None


@dataclasses.dataclass(frozen=True)
class ExpiryWindow:
    """How long a provider gives an order of one kind before it ends on its own.

    Attributes:
        order_kind: the order kind it applies to.
        window_s: the window, seconds from creation (or payment, where the provider says so).
        documented: whether the provider documents it (else it is our inference).
        note: where the figure comes from.
        expires_from: the non-terminal states an order can still expire from (None: any).
            Seen in another one (an invoice paid, say) it no longer can, and the expiry rate
            counts it as resolved otherwise from then: left at risk, an order polled rarely
            would be credited the expiry chance of orders still unpaid.
    """

    order_kind: str
    window_s: float
    documented: bool
    note: str
    expires_from: frozenset[str] | None = None


@dataclasses.dataclass(frozen=True)
class EventTime:
    """A provider-written time that dates a state change better than our polls can.

    Attributes:
        column: the observation column holding it (e.g. `provider_updated_at`).
        states: canonical states whose entry it dates.
    """

    column: str
    states: frozenset[str]


@dataclasses.dataclass(frozen=True)
class ProviderSpec:
    """One provider's facts.

    Attributes:
        slug: the provider's name in tables, URLs and asset keys; the upper-cased slug prefixes
            its environment variables (`<SLUG>_BASE_URL`).
        display_name: how people write it.
        family: what it sells, in words (`SMS activation`, `inscriptions`, ...).
        order_kinds: the order kinds it sells; the first is the default.
        code_kinds: the order kinds whose deliverable is a code (time-to-code is measured).
        id_pattern: a regular expression every order id must match in full, or None.
        id_hint: what a valid id looks like, for error messages.
        credentials: the secrets its requests carry.
        options: non-secret settings for details its real clients disagree on.
        policy: how often and how hard it is polled.
        expiry_windows: per order kind, the window after which an order ends on its own.
        event_time: the provider-written time that dates state changes, if it gives one.
        colour: its colour in charts (`#RRGGBB`).
        sources: the documentation and code its contract was taken from.
    """

    slug: str
    display_name: str
    family: str
    order_kinds: tuple[str, ...]
    policy: PollingPolicy
    colour: str
    code_kinds: tuple[str, ...] = ()
    id_pattern: str | None = None
    id_hint: str = ""
    credentials: tuple[Credential, ...] = ()
    options: tuple[Option, ...] = ()
    expiry_windows: tuple[ExpiryWindow, ...] = ()
    event_time: EventTime | None = None
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ValueError(f"provider spec {self.slug!r}: " + "; ".join(problems))

    def problems(self) -> list[str]:
        """What is wrong with this spec (empty when it is usable)."""
        found = []
        if not SLUG_PATTERN.match(self.slug):
            found.append(f"slug must match {SLUG_PATTERN.pattern}")
        if not self.order_kinds:
            found.append("order_kinds may not be empty")
        if not COLOUR_PATTERN.match(self.colour):
            found.append("colour must be #RRGGBB")
        if unknown := set(self.code_kinds) - set(self.order_kinds):
            found.append(f"code_kinds not among order_kinds: {sorted(unknown)}")
        if unknown := {w.order_kind for w in self.expiry_windows} - set(self.order_kinds):
            found.append(f"expiry_windows name unknown order kinds: {sorted(unknown)}")
        if self.event_time is not None and self.event_time.column not in EVENT_TIME_COLUMNS:
            found.append(f"event_time column must be one of {', '.join(EVENT_TIME_COLUMNS)}")
        prefix = f"{self.slug.upper()}_"
        for credential in self.credentials:
            if not credential.variable.startswith(prefix):
                found.append(f"credential variable {credential.variable} must start with {prefix}")
        for option in self.options:
            if not option.variable.startswith(prefix):
                found.append(f"option variable {option.variable} must start with {prefix}")
            if problem := option.problem(option.default):
                found.append(f"option default: {problem}")
        if self.id_pattern is not None:
            try:
                re.compile(self.id_pattern)
            except re.error as error:
                found.append(f"id_pattern is not a regular expression ({error})")
        return found

    @property
    def base_url_variable(self) -> str:
        """The variable that points this provider at its real API."""
        return f"{self.slug.upper()}_BASE_URL"

    @property
    def variables(self) -> tuple[str, ...]:
        """Every environment variable this provider reads."""
        return (
            self.base_url_variable,
            *(c.variable for c in self.credentials),
            *(o.variable for o in self.options),
        )

    @property
    def resolution_window_s(self) -> float:
        """An open order older than this should have resolved: the longest expiry window plus
        `EXPIRY_GRACE_S`, or the policy's tracking age when the provider has no window."""
        if not self.expiry_windows:
            return self.policy.max_tracking_age_s
        return max(w.window_s for w in self.expiry_windows) + EXPIRY_GRACE_S

    def expiry_window(self, order_kind: str) -> ExpiryWindow | None:
        """The expiry window of `order_kind`, if the provider has one."""
        return next((w for w in self.expiry_windows if w.order_kind == order_kind), None)

    def check_order_id(self, order_id: str) -> str | None:
        """None if `order_id` matches `id_pattern` (or there is none), else why not."""
        if self.id_pattern is None or re.fullmatch(self.id_pattern, order_id):
            return None
        return f"{self.display_name} order ids look like {self.id_hint or self.id_pattern}"
