"""Altinn lifecycle: notification orders (PROVIDERS.md §5.6).

Registered (until the requested send time) → Processing → Processed (wire: Completed with the
Processed description) → Completed once every notification has a final status; or
SendConditionNotMet. Speed and delivery vary by channel (`CHANNELS`).
"""

# ruff: noqa: RUF009  (a `Dist` is a frozen dataclass, so sharing one as a default is safe)

from __future__ import annotations

import dataclasses
import random
import uuid
from collections.abc import Mapping

from pipeline.model import OrderKind, OrderState
from pipeline.simulator.distributions import Dist, lognormal
from pipeline.simulator.timeline import Timeline


@dataclasses.dataclass(frozen=True)
class Channel:
    """An Altinn notification channel.

    Attributes:
        weight: relative share in the workload mix.
        delivery: time from generation to every notification having a final status.
        p_delivered: probability that one notification is delivered.
    """

    weight: float
    delivery: Dist
    p_delivered: float


CHANNELS: dict[str, Channel] = {
    "Email": Channel(7.0, lognormal(180.0, 0.6), 0.95),
    "Sms": Channel(3.0, lognormal(90.0, 0.6), 0.90),
}
DEFAULT_CHANNEL = "Email"


@dataclasses.dataclass(frozen=True)
class AltinnConfig:
    """Altinn notification orders (PROVIDERS.md §5.6).

    Registered (until the requested send time) → Processing → Processed (wire: Completed with
    the Processed description) → Completed with a final status; or SendConditionNotMet.
    """

    pickup: Dist = Dist("uniform", 5.0, 60.0)
    """Batch pick-up after the requested send time."""
    generation: Dist = Dist("uniform", 5.0, 60.0)
    p_condition_not_met: float = 0.03
    recipients: tuple[int, int] = (1, 3)
    channels: Mapping[str, Channel] = dataclasses.field(default_factory=lambda: CHANNELS)


def draw_notification_order(
    tl: Timeline,
    rng: random.Random,
    figures: AltinnConfig,
    f: float,
    service: str | None,
    country: str | None,
) -> None:
    """Wait for the requested send time (`requested_send_time` fact), generate the
    notifications (`recipients` fact, else drawn), then deliver them."""
    c = figures
    channel = c.channels.get(service or "", CHANNELS[DEFAULT_CHANNEL])
    scheduled = tl.facts.get("requested_send_time") or tl.created_at
    wait = max(0.0, (scheduled - tl.created_at).total_seconds())
    tl.enter(0.0, OrderState.PENDING, "Registered")
    processing = wait + c.pickup.draw(rng, f)
    tl.enter(processing, OrderState.PROCESSING, "Processing", "processing")
    generated_at = processing + c.generation.draw(rng, f)
    if rng.random() < c.p_condition_not_met:
        tl.facts.update(generated=0, delivered=0)
        tl.enter(generated_at, OrderState.CANCELLED, "SendConditionNotMet", "condition_not_met")
        return
    recipients = tl.facts.get("recipients") or rng.randint(*c.recipients)
    delivered = sum(1 for _ in range(recipients) if rng.random() < channel.p_delivered)
    tl.facts.update(generated=recipients, delivered=delivered)
    tl.enter(generated_at, OrderState.PROCESSING, "Processed", "generated")
    final = generated_at + channel.delivery.draw(rng, f)
    tl.enter(final, OrderState.COMPLETED, "Completed", "final")


LIFECYCLES = {OrderKind.NOTIFICATION_ORDER.value: draw_notification_order}
"""Order kind → state machine."""


def channels(kind: str, figures: AltinnConfig) -> Mapping[str, Channel]:
    """The channels orders are drawn from (their `service`)."""
    return figures.channels


def new_order_id(rng: random.Random) -> str:
    """A lower-case UUID4."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))
