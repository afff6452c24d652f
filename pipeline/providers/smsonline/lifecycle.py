"""SMSOnline lifecycle: a prepaid rented number, `completed` once an SMS arrives within the lease.

Success and speed vary by service and country (`SERVICES`, `COUNTRIES`).
"""

# ruff: noqa: RUF009  (a `Dist` is a frozen dataclass, so sharing one as a default is safe)

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping

from pipeline.model import OrderKind, OrderState
from pipeline.providers.smsonline.spec import SPEC
from pipeline.simulator.distributions import NEUTRAL, Dist, Traits, clamp_probability
from pipeline.simulator.timeline import Timeline

SERVICES: dict[str, Traits] = {
    "Discord": Traits(2.0, 1.00, 1.0),
    "Telegram": Traits(3.0, 0.95, 1.1),
    "WhatsApp": Traits(2.0, 0.80, 1.5),
    "Google": Traits(2.0, 1.05, 0.8),
    "OpenAI": Traits(1.0, 0.90, 1.2),
}
COUNTRIES: dict[str, Traits] = {
    "United States": Traits(3.0, 0.90, 1.3),
    "United Kingdom": Traits(2.0, 1.05, 0.9),
    "India": Traits(2.0, 1.00, 1.0),
    "Germany": Traits(1.0, 1.10, 0.8),
}


@dataclasses.dataclass(frozen=True)
class SmsOnlineConfig:
    """SMSOnline rented numbers: prepaid, 20-minute lease, `completed` once an SMS arrives."""

    p_code: float = 0.80
    time_to_code: Dist = Dist("lognormal", 45.0, 0.6)
    lease_s: float = SPEC.expiry_windows[0].window_s
    services: Mapping[str, Traits] = dataclasses.field(default_factory=lambda: SERVICES)
    countries: Mapping[str, Traits] = dataclasses.field(default_factory=lambda: COUNTRIES)


def draw_receive(
    tl: Timeline,
    rng: random.Random,
    figures: SmsOnlineConfig,
    f: float,
    service: str | None,
    country: str | None,
) -> None:
    """pending → completed (an SMS) before the lease ends, else expired."""
    c = figures
    svc, ctry = c.services.get(service or "", NEUTRAL), c.countries.get(country or "", NEUTRAL)
    lease_end = c.lease_s * f
    tl.facts["expires_at"] = tl.time(lease_end)
    tl.enter(0.0, OrderState.PROCESSING, "pending")
    if rng.random() < clamp_probability(c.p_code * svc.success_factor * ctry.success_factor):
        to_code = c.time_to_code.draw(rng, f * svc.speed_factor * ctry.speed_factor)
        if to_code < lease_end:
            tl.enter(to_code, OrderState.CODE_RECEIVED, "completed", "code")
            return
    tl.enter(lease_end, OrderState.EXPIRED, "expired", "lease_expired")


LIFECYCLES = {OrderKind.SMS_RECEIVE.value: draw_receive}
"""Order kind → state machine."""


def services(kind: str, figures: SmsOnlineConfig) -> Mapping[str, Traits]:
    """The services numbers are rented for."""
    return figures.services


def countries(kind: str, figures: SmsOnlineConfig) -> Mapping[str, Traits]:
    """The countries numbers are rented in."""
    return figures.countries


def new_order_id(rng: random.Random) -> str:
    """8 digits."""
    return str(rng.randrange(10_000_000, 100_000_000))
