"""OrdinalsBot lifecycle: managed inscriptions (PROVIDERS.md §3.6, §3.8).

waiting-payment → waiting-confirmation → prep → queued → completed | error; unpaid orders expire
with their invoice. Two confirmations take ~20 minutes.
"""

# ruff: noqa: RUF009  (a `Dist` is a frozen dataclass, so sharing one as a default is safe)

from __future__ import annotations

import dataclasses
import random
import uuid

from pipeline.model import OrderKind, OrderState
from pipeline.providers.ordinalsbot.spec import SPEC
from pipeline.simulator.distributions import Dist
from pipeline.simulator.timeline import Timeline


@dataclasses.dataclass(frozen=True)
class OrdinalsBotConfig:
    """OrdinalsBot managed inscriptions (PROVIDERS.md §3.6, §3.8).

    waiting-payment → waiting-confirmation → prep → queued → completed | error; unpaid orders
    expire with their invoice. Two confirmations take ~20 minutes.
    """

    pay_delay: Dist = Dist("lognormal", 60.0, 0.8)
    p_never_paid: float = 0.10
    invoice_expiry_s: float = SPEC.expiry_windows[0].window_s
    confirmations: Dist = Dist("lognormal", 1200.0, 0.5)
    prep: Dist = Dist("uniform", 5.0, 60.0)
    queue: Dist = Dist("lognormal", 120.0, 0.7)
    p_error: float = 0.04


def draw_inscription(
    tl: Timeline,
    rng: random.Random,
    figures: OrdinalsBotConfig,
    f: float,
    service: str | None,
    country: str | None,
) -> None:
    """Paid → confirmed → prepared → queued → inscribed (or error), or expired unpaid."""
    c = figures
    expiry = c.invoice_expiry_s * f
    tl.facts["invoice_expires_at"] = tl.time(expiry)
    tl.enter(0.0, OrderState.PENDING, "waiting-payment")
    paid = c.pay_delay.draw(rng, f)
    if rng.random() < c.p_never_paid or paid >= expiry:
        tl.enter(expiry, OrderState.EXPIRED, "expired", "expired")
        return
    tl.enter(paid, OrderState.PROCESSING, "waiting-confirmation", "paid")
    confirmed = paid + c.confirmations.draw(rng, f)
    tl.enter(confirmed, OrderState.PROCESSING, "prep", "confirmed")
    queued = confirmed + c.prep.draw(rng, f)
    tl.enter(queued, OrderState.PROCESSING, "queued", "queued")
    done = queued + c.queue.draw(rng, f)
    if rng.random() < c.p_error:
        tl.enter(done, OrderState.FAILED, "error", "error")
    else:
        tl.enter(done, OrderState.COMPLETED, "completed", "completed")


LIFECYCLES = {OrderKind.INSCRIPTION.value: draw_inscription}
"""Order kind → state machine."""


def new_order_id(rng: random.Random) -> str:
    """A lower-case UUID4."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))
