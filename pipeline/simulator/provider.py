"""What the sandbox needs from one provider: `SandboxProvider`.

Each provider's package exports one as `SANDBOX` from `pipeline/providers/<slug>/sandbox.py`
(declared providers build theirs from the declaration); the registry hands it out through
`REGISTRY.sandbox(slug)`. The sandbox app mounts its `wire`, `draw_order` runs its `lifecycles`
with its `figures`, the workload calls its `create`, and `--option <slug>.<field>=<value>`
changes its `options`. No other simulator module names a provider.

    SANDBOX = SandboxProvider(
        slug="example",
        wire=WIRE,                                   # routes and error bodies
        lifecycles={"sms_receive": draw_receive},    # order kind -> drawer
        figures=ExampleFigures(),                    # durations and probabilities
        options=ExampleOptions(),                    # undocumented behaviour switches
        option_choices={"empty_sms": ("empty", "absent")},
        new_order_id=lambda rng: f"{rng.getrandbits(64):016x}",
        services=lambda kind, figures: figures.services,
        create=create,                               # async (Creator) -> CreatedOrder
    )

This module imports nothing from the registry at import time (the registry's declarative loader
builds `SandboxProvider`s while the registry itself is being imported).
"""

from __future__ import annotations

import dataclasses
import functools
import random
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from pipeline.simulator.distributions import Weighted
from pipeline.simulator.timeline import Timeline, iso_utc
from pipeline.simulator.wire import ProviderWire

if TYPE_CHECKING:
    from pipeline.providers.spec import ProviderSpec

Drawer = Callable[[Timeline, random.Random, Any, float, str | None, str | None], None]
"""One order kind's state machine: `(timeline, rng, figures, factor, service, country)`.

It enters every transition of one order into `timeline`, drawing from `rng`. `figures` is the
provider's lifecycle figures object (`SandboxProvider.figures` or its override); `factor` is the
profile's duration factor (multiply every duration and window by it); `service` and `country` are
the order's (None when the provider has no such table).
"""

Table = Callable[[str, Any], Mapping[str, Weighted] | None]
"""`(order kind, figures)` -> the table (name -> weighted traits) orders are drawn from, or None."""


def no_table(kind: str, figures: Any) -> Mapping[str, Weighted] | None:
    """The provider has no such table."""
    return None


# --- creating orders (the workload) -----------------------------------------------------------


class CreateError(Exception):
    """A create call that did not give an order id.

    Attributes:
        retryable: whether trying again may help (429, 5xx, connection problems).
        retry_after_s: the provider's `Retry-After`, if it sent one.
    """

    def __init__(self, message: str, *, retryable: bool, retry_after_s: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after_s = retry_after_s


@dataclasses.dataclass(frozen=True)
class CreatedOrder:
    """An order the workload created: one inbox CSV row."""

    provider: str
    order_id: str
    order_kind: str
    created_at: datetime
    service: str | None = None
    country: str | None = None

    def row(self) -> dict[str, str]:
        """The CSV row."""
        return {
            "provider": self.provider,
            "order_id": self.order_id,
            "order_kind": self.order_kind,
            "created_at": iso_utc(self.created_at),
            "service": self.service or "",
            "country": self.country or "",
        }


class Creator(Protocol):
    """What a provider's `create` function gets from the workload for one create call.

    Attributes:
        slug: the provider being created on.
        rng: the provider's workload random stream (services, countries, request details).
        credentials: variable -> value of the credentials to send (`SMSONLINE_API_KEY`, ...).
        schedule_scale: the profile factor, for times the request asks for (e.g. a send time).
        now: the client's current time, for times the request asks for.
    """

    @property
    def slug(self) -> str: ...

    @property
    def rng(self) -> random.Random: ...

    @property
    def credentials(self) -> Mapping[str, str]: ...

    @property
    def schedule_scale(self) -> float: ...

    def now(self) -> datetime:
        """The client's current time (aware, UTC): the sandbox's clock."""
        ...

    async def post(
        self,
        method: str,
        path: str,
        body: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> Any:
        """Send one create request to `path` under the provider's prefix (`/<slug><path>`).

        Returns the decoded JSON answer of a 2xx; raises `CreateError` (retryable for 429, 5xx
        and connection problems) otherwise.
        """
        ...

    def field(self, answer: Any, *path: str) -> str:
        """The non-empty string or integer at `path` in `answer`, as text, else `CreateError`."""
        ...

    def order(
        self,
        order_id: str,
        kind: str,
        service: str | None = None,
        country: str | None = None,
    ) -> CreatedOrder:
        """The created order, stamped now."""
        ...


CreateFunction = Callable[[Creator], Awaitable[CreatedOrder]]
"""Creates one order over HTTP the way a user would; raises `CreateError` when it cannot."""


# --- the provider's sandbox half --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Variant:
    """An answer shape a real provider sends and its doc page does not show, served by setting
    one option (`--option <slug>.<option>=<value>`, or at random under the `drift` scenario).

    Attributes:
        option: a field of the provider's options.
        value: the value that turns the variant on.
        source: where it was seen (repository and path, or a note in docs/providers/sources.md).
    """

    option: str
    value: Any
    source: str

    def apply(self, options: Any) -> Any:
        """`options` (the provider's options dataclass) with this variant switched on."""
        return dataclasses.replace(options, **{self.option: self.value})


@dataclasses.dataclass(frozen=True)
class SandboxProvider:
    """Everything the sandbox, the lifecycle model, the options and the workload need from one
    provider.

    Attributes:
        slug: the provider's slug (its registry key and URL prefix); equals `wire.slug`.
        wire: its HTTP surface (routes, error bodies, poll path).
        lifecycles: order kind -> the drawer of that kind's state machine; every kind of the
            provider's spec must have one.
        figures: the default lifecycle figures handed to its drawers (a frozen dataclass;
            `LifecycleConfig(<slug>=...)` overrides it).
        options: the default behaviour switches (a frozen dataclass of str/int/float/bool/tuple
            fields; `ProviderOptions(<slug>=...)` and `--option <slug>.<field>=<value>` override
            it).
        option_choices: field -> allowed values, for the enumerated string options.
        new_order_id: a fresh order id in the provider's format, drawn from the given rng.
        services: `(kind, figures)` -> the services (products, channels) its orders are drawn
            from, or None.
        countries: `(kind, figures)` -> the countries its orders are drawn from, or None.
        create: creates one order through its create endpoint (None: the workload skips it).
        variants: the real answer shapes it can serve beyond the doc page's (the `drift`
            scenario draws from them).
    """

    slug: str
    wire: ProviderWire
    lifecycles: Mapping[str, Drawer]
    figures: Any
    options: Any
    new_order_id: Callable[[random.Random], str]
    option_choices: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    services: Table = no_table
    countries: Table = no_table
    create: CreateFunction | None = None
    variants: tuple[Variant, ...] = ()

    def __post_init__(self) -> None:
        if self.wire.slug != self.slug:
            raise ValueError(f"sandbox {self.slug!r}: its wire is mounted as {self.wire.slug!r}")
        if not self.lifecycles:
            raise ValueError(f"sandbox {self.slug!r}: no lifecycles")
        for name, what in (("figures", self.figures), ("options", self.options)):
            if not (dataclasses.is_dataclass(what) and not isinstance(what, type)):
                raise ValueError(f"sandbox {self.slug!r}: {name} must be a dataclass instance")
        known = {f.name for f in dataclasses.fields(self.options)}
        if unknown := set(self.option_choices) - known:
            raise ValueError(f"sandbox {self.slug!r}: choices for unknown options {unknown}")
        for variant in self.variants:
            allowed = self.option_choices.get(variant.option)
            if variant.option not in known or (allowed and variant.value not in allowed):
                raise ValueError(f"sandbox {self.slug!r}: variant {variant} is not an option value")

    def problems(self, spec: ProviderSpec) -> list[str]:
        """What does not fit `spec` (empty when the imitation covers it)."""
        found = []
        if spec.slug != self.slug:
            found.append(f"slug {self.slug!r} is not the spec's {spec.slug!r}")
        if missing := [k for k in spec.order_kinds if k not in self.lifecycles]:
            found.append(f"no lifecycle for order kinds {missing}")
        if extra := [k for k in self.lifecycles if k not in spec.order_kinds]:
            found.append(f"lifecycles for order kinds the spec does not sell: {extra}")
        return found

    def drawer(self, kind: str) -> Drawer:
        """The state machine of `kind`.

        Raises:
            ValueError: the provider has no such order kind.
        """
        try:
            return self.lifecycles[kind]
        except KeyError:
            raise ValueError(f"{self.slug!r} has no order kind {kind!r}") from None


# --- lookup -----------------------------------------------------------------------------------


@functools.cache
def sandbox_provider(slug: str) -> SandboxProvider:
    """The sandbox half of the registered provider `slug` (loaded once).

    Raises:
        ValueError: no provider is registered under `slug`, or its imitation does not fit its
            spec.
    """
    from pipeline.providers.registry import REGISTRY

    if slug not in REGISTRY:
        known = ", ".join(REGISTRY)
        raise ValueError(f"unknown provider {slug!r} (known: {known})")
    sandbox = REGISTRY.sandbox(slug)
    if problems := sandbox.problems(REGISTRY.spec(slug)):
        raise ValueError(f"sandbox of {slug!r}: " + "; ".join(problems))
    return sandbox


def sandbox_providers() -> tuple[SandboxProvider, ...]:
    """The sandbox half of every registered provider, in registration order."""
    from pipeline.providers.registry import REGISTRY

    return tuple(sandbox_provider(slug) for slug in REGISTRY)


def sandbox_credential(spec: ProviderSpec, name: str) -> str:
    """The sandbox value of the credential `name` (as the adapter asks for it) of `spec`.

    Raises:
        KeyError: the spec has no such credential.
    """
    for credential in spec.credentials:
        if credential.name == name:
            return credential.sandbox_value
    raise KeyError(f"{spec.slug} has no credential {name!r}")
