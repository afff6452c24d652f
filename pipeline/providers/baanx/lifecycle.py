"""Baanx lifecycle: STARTED → COMPLETED | FAILED | EXPIRED (PROVIDERS.md §4.5).

Success and speed vary by product (`PRODUCTS`).
"""

# ruff: noqa: RUF009  (a `Dist` is a frozen dataclass, so sharing one as a default is safe)

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping

from pipeline.model import OrderKind, OrderState
from pipeline.providers.baanx.spec import SPEC
from pipeline.simulator.distributions import NEUTRAL, Dist, Traits, clamp_probability
from pipeline.simulator.timeline import Timeline

PRODUCTS: dict[str, Traits] = {
    "virtual-card": Traits(3.0, 1.05, 0.8),
    "card-topup": Traits(2.0, 1.00, 1.0),
    "metal-card": Traits(1.0, 0.90, 1.6),
}


@dataclasses.dataclass(frozen=True)
class BaanxConfig:
    """Baanx product orders: STARTED → COMPLETED | FAILED | EXPIRED (PROVIDERS.md §4.5)."""

    p_completed: float = 0.85
    p_failed: float = 0.07
    """The rest expires at the end of the payment window."""
    pay_time: Dist = Dist("lognormal", 45.0, 0.6)
    fail_time: Dist = Dist("lognormal", 60.0, 0.8)
    payment_window_s: float = SPEC.expiry_windows[0].window_s
    """[UNKNOWN] payment window length (PROVIDERS.md §8.5)."""
    p_refund_note: float = 0.4
    """Share of failures whose `metadata.note` is `payment_refunded` (canonical `refunded`)."""
    products: Mapping[str, Traits] = dataclasses.field(default_factory=lambda: PRODUCTS)


def draw_product_order(
    tl: Timeline,
    rng: random.Random,
    figures: BaanxConfig,
    f: float,
    service: str | None,
    country: str | None,
) -> None:
    """Paid within the window, or failed (some refunded), or expired at its end."""
    c = figures
    product = c.products.get(service or "", NEUTRAL)
    window = c.payment_window_s * f
    tl.enter(0.0, OrderState.PENDING, "STARTED")
    p_completed = clamp_probability(c.p_completed * product.success_factor)
    outcome = rng.random()
    if outcome < p_completed:
        paid = c.pay_time.draw(rng, f * product.speed_factor)
        if paid < window:
            tl.enter(paid, OrderState.COMPLETED, "COMPLETED", "paid")
            return
    elif outcome < p_completed + c.p_failed:
        failed = min(c.fail_time.draw(rng, f), window * 0.99)
        refunded = rng.random() < c.p_refund_note
        tl.facts["note"] = "payment_refunded" if refunded else "payment_rejected"
        state = OrderState.REFUNDED if refunded else OrderState.FAILED
        tl.enter(failed, state, "FAILED", "failed")
        return
    tl.enter(window, OrderState.EXPIRED, "EXPIRED", "expired")


LIFECYCLES = {OrderKind.PRODUCT_ORDER.value: draw_product_order}
"""Order kind → state machine."""


def products(kind: str, figures: BaanxConfig) -> Mapping[str, Traits]:
    """The products orders are drawn from (their `service`)."""
    return figures.products


def new_order_id(rng: random.Random) -> str:
    """`ord_` + 12 hex characters."""
    return f"ord_{rng.getrandbits(48):012x}"
