"""Order lifecycles: drawing an order's whole timeline from its provider's state machine.

The model works without HTTP. Drawing an order fixes its whole timeline at creation (every
transition and its time), so the state at any moment is a pure function of the timeline and the
time. The sandbox serves these timelines over HTTP; a generator can use them directly:

    import random
    from pipeline.simulator.lifecycles import draw_order

    rng = random.Random(7)
    truth = draw_order("sms4sats", "sms_receive", rng, created_at, "realistic",
                       service="openAI", country="India")
    truth.transitions        # [Transition(state, provider_status, at), ...], first at created_at
    truth.state_at(moment)   # the Transition in effect at `moment` (None before creation)
    truth.milestones         # named instants the wire bodies use ("paid", "number", "code", ...)
    truth.facts              # drawn outcome details (counts, notes, deadlines)
    truth.to_record()        # JSON-ready ground truth (times as UTC ISO strings)

`Transition.state` is a canonical `OrderState` value (pipeline/model.py); `provider_status` is the
provider's own word for the phase. Each provider's state machines (one drawer per order kind),
its duration and outcome figures, and its service/country tables live in its package
(`pipeline/providers/<slug>/lifecycle.py`, exported through its `SANDBOX`); this module only
runs them.

Durations are drawn from `Dist`s (seconds, `realistic` profile); a `Profile` multiplies every
duration and window (`fast` = x0.1). `DEFAULT_CONFIG` takes every provider's default figures;
pass another `LifecycleConfig` to `draw_order(config=...)` to change them, e.g.
`LifecycleConfig(ordinalsbot=OrdinalsBotConfig(p_error=0.5))`.

Module map: `distributions` (`Dist`, `Traits`, `choose`), `timeline` (`Timeline`, `Transition`,
`OrderTruth`), `provider` (`SandboxProvider`, `Drawer`), this module (profiles, `draw_order`).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping
from datetime import datetime

from pipeline.simulator.distributions import (
    NEUTRAL,
    Dist,
    Traits,
    Weighted,
    choose,
    clamp_probability,
    fixed,
    lognormal,
    uniform,
)
from pipeline.simulator.per_provider import PerProvider
from pipeline.simulator.provider import sandbox_provider
from pipeline.simulator.timeline import OrderTruth, Timeline, Transition, iso_utc

__all__ = [
    "DEFAULT_CONFIG",
    "NEUTRAL",
    "PROFILES",
    "Dist",
    "LifecycleConfig",
    "OrderTruth",
    "Profile",
    "Timeline",
    "Traits",
    "Transition",
    "choose",
    "clamp_probability",
    "country_table",
    "draw_order",
    "fixed",
    "get_profile",
    "iso_utc",
    "lognormal",
    "new_order_id",
    "service_table",
    "uniform",
]


class LifecycleConfig(PerProvider):
    """Every lifecycle figure, per provider: `LifecycleConfig(<slug>=<figures>)`.

    A provider not named takes its `SandboxProvider.figures`; `config.of(slug)` (or
    `config[slug]`, `config.<slug>`) gives the figures its drawers get.
    """

    default_attribute = "figures"


DEFAULT_CONFIG = LifecycleConfig()


# --- profiles ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Profile:
    """A speed setting: every duration and window is multiplied by the provider's factor.

    Attributes:
        name: profile name.
        scale: default factor.
        provider_scale: per-provider factors overriding `scale`.
    """

    name: str
    scale: float
    provider_scale: Mapping[str, float] = dataclasses.field(default_factory=dict)

    def factor(self, provider: str) -> float:
        """The duration factor for `provider`."""
        return self.provider_scale.get(provider, self.scale)


PROFILES: dict[str, Profile] = {
    "realistic": Profile("realistic", 1.0),
    "fast": Profile("fast", 0.1),
}
"""`realistic` uses the documented figures; `fast` runs ten times faster (demos)."""


def get_profile(profile: str | Profile) -> Profile:
    """A `Profile` by name (or the profile itself)."""
    if isinstance(profile, Profile):
        return profile
    try:
        return PROFILES[profile]
    except KeyError:
        raise ValueError(f"unknown profile {profile!r} (known: {', '.join(PROFILES)})") from None


# --- drawing ----------------------------------------------------------------------------------


def service_table(
    provider: str, kind: str, config: LifecycleConfig = DEFAULT_CONFIG
) -> Mapping[str, Weighted] | None:
    """The services (products, channels) a provider's orders are drawn from, if any."""
    return sandbox_provider(provider).services(kind, config.of(provider))


def country_table(
    provider: str, kind: str, config: LifecycleConfig = DEFAULT_CONFIG
) -> Mapping[str, Weighted] | None:
    """The countries a provider's orders are drawn from, if any."""
    return sandbox_provider(provider).countries(kind, config.of(provider))


def new_order_id(provider: str, rng: random.Random) -> str:
    """A fresh order id in the provider's format, drawn from `rng`."""
    return sandbox_provider(provider).new_order_id(rng)


def draw_order(
    provider: str,
    kind: str,
    rng: random.Random,
    created_at: datetime,
    profile: str | Profile = "realistic",
    service: str | None = None,
    country: str | None = None,
    *,
    order_id: str | None = None,
    requested_send_time: datetime | None = None,
    recipients: int | None = None,
    config: LifecycleConfig = DEFAULT_CONFIG,
) -> OrderTruth:
    """Draw one order's whole timeline.

    Args:
        provider: provider slug.
        kind: order kind the provider sells.
        rng: the random source; the same seed and call sequence give the same orders.
        created_at: creation time (aware UTC).
        profile: `realistic`, `fast` or a `Profile`.
        service: service / product / channel; drawn from the provider's table when None
            (for providers that have one).
        country: country name; drawn from the provider's table when None (if it has one).
        order_id: the id to use; a fresh one is drawn when None.
        requested_send_time: a requested send time (the `requested_send_time` fact; providers
            that schedule orders wait for it).
        recipients: a number of recipients (the `recipients` fact; drawn by providers that
            use it when None).
        config: the lifecycle figures.

    Raises:
        ValueError: unknown provider, kind or profile.
    """
    sandbox = sandbox_provider(provider)
    drawer = sandbox.drawer(kind)
    factor = get_profile(profile).factor(provider)
    figures = config.of(provider)
    services = sandbox.services(kind, figures)
    countries = sandbox.countries(kind, figures)
    if service is None and services is not None:
        service = choose(services, rng)
    if country is None and countries is not None:
        country = choose(countries, rng)
    timeline = Timeline(created_at)
    if requested_send_time is not None:
        timeline.facts["requested_send_time"] = requested_send_time
    if recipients is not None:
        timeline.facts["recipients"] = recipients
    drawer(timeline, rng, figures, factor, service, country)
    return OrderTruth(
        provider=provider,
        order_id=order_id if order_id is not None else sandbox.new_order_id(rng),
        order_kind=kind,
        created_at=created_at,
        service=service,
        country=country,
        transitions=timeline.transitions,
        milestones=timeline.milestones,
        facts=timeline.facts,
    )
