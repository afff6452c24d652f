"""sms4sats lifecycles: receive and send orders, their figures, services and countries.

Receive orders have no status on the wire, so their raw status is the derived
`paid=…;number=…;code=…;error=…` form of PROVIDERS.md §6.2; send orders before payment are
`unpaid`. Success and speed vary by service and country (`SERVICES`, `COUNTRIES`).
"""

# ruff: noqa: RUF009  (a `Dist` is a frozen dataclass, so sharing one as a default is safe)

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping

from pipeline.model import OrderKind, OrderState
from pipeline.providers.sms4sats.spec import SPEC
from pipeline.simulator.distributions import NEUTRAL, Dist, Traits, clamp_probability
from pipeline.simulator.timeline import Timeline

SERVICES: dict[str, Traits] = {
    "openAI": Traits(3.0, 1.00, 1.0),
    "telegram": Traits(2.0, 0.95, 1.2),
    "whatsapp": Traits(2.0, 0.85, 1.6),
    "google": Traits(2.0, 1.05, 0.8),
    "discord": Traits(1.0, 1.00, 1.0),
}
COUNTRIES: dict[str, Traits] = {
    "India": Traits(3.0, 1.00, 1.0, 1.0),
    "USA": Traits(2.0, 0.85, 1.4, 2.0),
    "United Kingdom": Traits(1.0, 1.05, 0.9, 1.0),
    "Indonesia": Traits(2.0, 0.90, 1.2, 1.5),
    "Germany": Traits(1.0, 1.10, 0.8, 0.5),
}


@dataclasses.dataclass(frozen=True)
class Sms4satsReceiveConfig:
    """sms4sats receive orders (PROVIDERS.md §1.6, §1.8, §1.12).

    Pay → (no number | number) → code within the 21-minute window, else auto-cancel. Most codes
    arrive 30–120 s after payment ([SEED]); the log-normal below puts ~80 % there.
    """

    pay_delay: Dist = Dist("lognormal", 15.0, 0.6)
    p_never_paid: float = 0.03
    invoice_expiry_s: float = 600.0
    """[INF] Lightning invoice lifetime; an unpaid order is dead after it."""
    p_no_number: float = 0.04
    no_number_delay: Dist = Dist("uniform", 3.0, 20.0)
    number_delay: Dist = Dist("uniform", 2.0, 10.0)
    p_code: float = 0.85
    """P(code) once a number is assigned, before service/country factors."""
    time_to_code: Dist = Dist("lognormal", 60.0, 0.54)
    """From payment to code; the median is multiplied by service and country speed factors."""
    auto_cancel_s: float = SPEC.expiry_windows[0].window_s
    """Measured from payment (PROVIDERS.md §1.6)."""
    services: Mapping[str, Traits] = dataclasses.field(default_factory=lambda: SERVICES)
    countries: Mapping[str, Traits] = dataclasses.field(default_factory=lambda: COUNTRIES)


@dataclasses.dataclass(frozen=True)
class Sms4satsSendConfig:
    """sms4sats send orders: unpaid → created → sent → delivered | failed (| no report)."""

    pay_delay: Dist = Dist("lognormal", 15.0, 0.6)
    p_never_paid: float = 0.03
    invoice_expiry_s: float = 600.0
    send_delay: Dist = Dist("uniform", 2.0, 10.0)
    report_delay: Dist = Dist("lognormal", 20.0, 0.7)
    p_delivered: float = 0.85
    p_failed: float = 0.08
    """The rest stays `sent` with no delivery report."""


@dataclasses.dataclass(frozen=True)
class Sms4satsFigures:
    """Every sms4sats lifecycle figure, per order kind."""

    receive: Sms4satsReceiveConfig = Sms4satsReceiveConfig()
    send: Sms4satsSendConfig = Sms4satsSendConfig()


def receive_status(*, paid: bool, number: bool, code: bool, error: bool) -> str:
    """The derived raw status of an sms4sats receive order (PROVIDERS.md §6.2)."""

    def flag(value: bool) -> str:
        return "true" if value else "false"

    return f"paid={flag(paid)};number={flag(number)};code={flag(code)};error={flag(error)}"


UNPAID = receive_status(paid=False, number=False, code=False, error=False)
PAID = receive_status(paid=True, number=False, code=False, error=False)
NUMBER = receive_status(paid=True, number=True, code=False, error=False)
CODE = receive_status(paid=True, number=True, code=True, error=False)
NO_NUMBER = receive_status(paid=True, number=False, code=False, error=True)


def draw_receive(
    tl: Timeline,
    rng: random.Random,
    figures: Sms4satsFigures,
    f: float,
    service: str | None,
    country: str | None,
) -> None:
    """Pay → number → code, or no number, or auto-cancel after the window, or never paid."""
    c = figures.receive
    svc, ctry = c.services.get(service or "", NEUTRAL), c.countries.get(country or "", NEUTRAL)
    tl.enter(0.0, OrderState.PENDING, UNPAID)
    expiry = c.invoice_expiry_s * f
    paid = c.pay_delay.draw(rng, f)
    if rng.random() < c.p_never_paid or paid >= expiry:
        tl.enter(expiry, OrderState.EXPIRED, UNPAID, "invoice_expired")
        return
    tl.enter(paid, OrderState.PROCESSING, PAID, "paid")
    if rng.random() < clamp_probability(c.p_no_number * ctry.failure_factor):
        tl.enter(paid + c.no_number_delay.draw(rng, f), OrderState.FAILED, NO_NUMBER, "error")
        return
    number_delay = c.number_delay.draw(rng, f)
    window_end = paid + c.auto_cancel_s * f
    if rng.random() < clamp_probability(c.p_code * svc.success_factor * ctry.success_factor):
        to_code = c.time_to_code.draw(rng, f * svc.speed_factor * ctry.speed_factor)
        if paid + to_code < window_end:
            tl.enter(paid + min(number_delay, to_code / 2), OrderState.PROCESSING, NUMBER, "number")
            tl.enter(paid + to_code, OrderState.CODE_RECEIVED, CODE, "code")
            return
    tl.enter(paid + number_delay, OrderState.PROCESSING, NUMBER, "number")
    tl.enter(window_end, OrderState.EXPIRED, UNPAID, "auto_cancel")


def draw_send(
    tl: Timeline,
    rng: random.Random,
    figures: Sms4satsFigures,
    f: float,
    service: str | None,
    country: str | None,
) -> None:
    """unpaid → created → sent → delivered | failed | (no report), or never paid."""
    c = figures.send
    tl.enter(0.0, OrderState.PENDING, "unpaid")
    expiry = c.invoice_expiry_s * f
    paid = c.pay_delay.draw(rng, f)
    if rng.random() < c.p_never_paid or paid >= expiry:
        tl.enter(expiry, OrderState.EXPIRED, "unpaid", "invoice_expired")
        return
    tl.enter(paid, OrderState.PROCESSING, "created", "paid")
    sent = paid + c.send_delay.draw(rng, f)
    tl.enter(sent, OrderState.PROCESSING, "sent", "sent")
    report = sent + c.report_delay.draw(rng, f)
    outcome = rng.random()
    if outcome < c.p_delivered:
        tl.enter(report, OrderState.CODE_RECEIVED, "delivered", "delivered")
    elif outcome < c.p_delivered + c.p_failed:
        tl.enter(report, OrderState.FAILED, "failed", "failed")


LIFECYCLES = {OrderKind.SMS_RECEIVE.value: draw_receive, OrderKind.SMS_SEND.value: draw_send}
"""Order kind → state machine."""


def services(kind: str, figures: Sms4satsFigures) -> Mapping[str, Traits] | None:
    """Receive orders are drawn from `figures.receive.services`; send orders have none."""
    return figures.receive.services if kind == OrderKind.SMS_RECEIVE else None


def countries(kind: str, figures: Sms4satsFigures) -> Mapping[str, Traits] | None:
    """Receive orders are drawn from `figures.receive.countries`; send orders have none."""
    return figures.receive.countries if kind == OrderKind.SMS_RECEIVE else None


def new_order_id(rng: random.Random) -> str:
    """64 hex characters."""
    return f"{rng.getrandbits(256):064x}"
