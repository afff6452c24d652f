"""Order lifecycles: per-provider state machines, their duration and outcome tables, ground truth.

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
provider's own word for the phase: sms4sats receive orders have none on the wire, so they get the
derived `paid=…;number=…;code=…;error=…` form of PROVIDERS.md §6.2; sms4sats send orders before
payment are `unpaid`; Altinn's hidden `Processed` phase is recorded as `Processed` (the wire shows
it as `Completed` with the Processed description). Raw statuses follow the default wire options.

Durations are drawn from `Dist`s (seconds, `realistic` profile); a `Profile` multiplies every
duration and window (`fast` = x0.1). Success and speed vary by service and country for the SMS
providers, by product for Baanx and by channel for Altinn (`Traits` tables below), so analytics
has real differences to find. `DEFAULT_CONFIG` holds every figure; pass another `LifecycleConfig`
to `draw_order(config=...)` to change them.
"""

from __future__ import annotations

import dataclasses
import math
import random
import uuid
from bisect import bisect_right
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.model import ORDER_KINDS, OrderKind, OrderState, Provider

SQRT2 = math.sqrt(2.0)
MAX_PROBABILITY = 0.99
MIN_PROBABILITY = 0.0


# --- distributions ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Dist:
    """A duration distribution in seconds.

    Attributes:
        kind: `lognormal` (a = median, b = sigma of the log), `uniform` (a = low, b = high) or
            `fixed` (a = value).
        a: first parameter.
        b: second parameter.
    """

    kind: str
    a: float
    b: float = 0.0

    def draw(self, rng: random.Random, scale: float = 1.0) -> float:
        """One duration, multiplied by `scale`."""
        if self.kind == "lognormal":
            return rng.lognormvariate(math.log(self.a), self.b) * scale
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b) * scale
        return self.a * scale

    def cdf(self, x: float, scale: float = 1.0) -> float:
        """P(duration <= x) for the distribution multiplied by `scale`."""
        x = x / scale
        if self.kind == "lognormal":
            if x <= 0:
                return 0.0
            return 0.5 * (1.0 + math.erf((math.log(x) - math.log(self.a)) / (self.b * SQRT2)))
        if self.kind == "uniform":
            return min(1.0, max(0.0, (x - self.a) / (self.b - self.a)))
        return 1.0 if x >= self.a else 0.0

    @property
    def median(self) -> float:
        """The median duration (unscaled)."""
        if self.kind == "uniform":
            return (self.a + self.b) / 2.0
        return self.a


def lognormal(median_s: float, sigma: float) -> Dist:
    """A log-normal duration with the given median and log-scale sigma."""
    return Dist("lognormal", median_s, sigma)


def uniform(low_s: float, high_s: float) -> Dist:
    """A duration uniform on [low_s, high_s]."""
    return Dist("uniform", low_s, high_s)


def fixed(value_s: float) -> Dist:
    """Always `value_s`."""
    return Dist("fixed", value_s)


# --- variation tables -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Traits:
    """How a service, country, product or channel shifts an order's odds and speed.

    Attributes:
        weight: relative share in the workload mix.
        success_factor: multiplies the probability of success (code, completion, delivery).
        speed_factor: multiplies the median time to success (> 1 is slower).
        failure_factor: multiplies the probability of an early failure (e.g. no number).
    """

    weight: float = 1.0
    success_factor: float = 1.0
    speed_factor: float = 1.0
    failure_factor: float = 1.0


NEUTRAL = Traits()

SMS4SATS_SERVICES: dict[str, Traits] = {
    "openAI": Traits(3.0, 1.00, 1.0),
    "telegram": Traits(2.0, 0.95, 1.2),
    "whatsapp": Traits(2.0, 0.85, 1.6),
    "google": Traits(2.0, 1.05, 0.8),
    "discord": Traits(1.0, 1.00, 1.0),
}
SMS4SATS_COUNTRIES: dict[str, Traits] = {
    "India": Traits(3.0, 1.00, 1.0, 1.0),
    "USA": Traits(2.0, 0.85, 1.4, 2.0),
    "United Kingdom": Traits(1.0, 1.05, 0.9, 1.0),
    "Indonesia": Traits(2.0, 0.90, 1.2, 1.5),
    "Germany": Traits(1.0, 1.10, 0.8, 0.5),
}
SMSONLINE_SERVICES: dict[str, Traits] = {
    "Discord": Traits(2.0, 1.00, 1.0),
    "Telegram": Traits(3.0, 0.95, 1.1),
    "WhatsApp": Traits(2.0, 0.80, 1.5),
    "Google": Traits(2.0, 1.05, 0.8),
    "OpenAI": Traits(1.0, 0.90, 1.2),
}
SMSONLINE_COUNTRIES: dict[str, Traits] = {
    "United States": Traits(3.0, 0.90, 1.3),
    "United Kingdom": Traits(2.0, 1.05, 0.9),
    "India": Traits(2.0, 1.00, 1.0),
    "Germany": Traits(1.0, 1.10, 0.8),
}
BAANX_PRODUCTS: dict[str, Traits] = {
    "virtual-card": Traits(3.0, 1.05, 0.8),
    "card-topup": Traits(2.0, 1.00, 1.0),
    "metal-card": Traits(1.0, 0.90, 1.6),
}


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


ALTINN_CHANNELS: dict[str, Channel] = {
    "Email": Channel(7.0, lognormal(180.0, 0.6), 0.95),
    "Sms": Channel(3.0, lognormal(90.0, 0.6), 0.90),
}


# --- per-provider configuration (realistic profile, seconds) ----------------------------------


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
    auto_cancel_s: float = 21 * 60.0
    """Measured from payment (PROVIDERS.md §1.6)."""
    services: Mapping[str, Traits] = dataclasses.field(default_factory=lambda: SMS4SATS_SERVICES)
    countries: Mapping[str, Traits] = dataclasses.field(default_factory=lambda: SMS4SATS_COUNTRIES)


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
class SmsOnlineConfig:
    """SMSOnline rented numbers: prepaid, 20-minute lease, `completed` once an SMS arrives."""

    p_code: float = 0.80
    time_to_code: Dist = Dist("lognormal", 45.0, 0.6)
    lease_s: float = 20 * 60.0
    services: Mapping[str, Traits] = dataclasses.field(default_factory=lambda: SMSONLINE_SERVICES)
    countries: Mapping[str, Traits] = dataclasses.field(default_factory=lambda: SMSONLINE_COUNTRIES)


@dataclasses.dataclass(frozen=True)
class OrdinalsBotConfig:
    """OrdinalsBot managed inscriptions (PROVIDERS.md §3.6, §3.8).

    waiting-payment → waiting-confirmation → prep → queued → completed | error; unpaid orders
    expire with their invoice. Two confirmations take ~20 minutes.
    """

    pay_delay: Dist = Dist("lognormal", 60.0, 0.8)
    p_never_paid: float = 0.10
    invoice_expiry_s: float = 600.0
    confirmations: Dist = Dist("lognormal", 1200.0, 0.5)
    prep: Dist = Dist("uniform", 5.0, 60.0)
    queue: Dist = Dist("lognormal", 120.0, 0.7)
    p_error: float = 0.04


@dataclasses.dataclass(frozen=True)
class BaanxConfig:
    """Baanx product orders: STARTED → COMPLETED | FAILED | EXPIRED (PROVIDERS.md §4.5)."""

    p_completed: float = 0.85
    p_failed: float = 0.07
    """The rest expires at the end of the payment window."""
    pay_time: Dist = Dist("lognormal", 45.0, 0.6)
    fail_time: Dist = Dist("lognormal", 60.0, 0.8)
    payment_window_s: float = 900.0
    """[UNKNOWN] payment window length (PROVIDERS.md §8.5)."""
    p_refund_note: float = 0.4
    """Share of failures whose `metadata.note` is `payment_refunded` (canonical `refunded`)."""
    products: Mapping[str, Traits] = dataclasses.field(default_factory=lambda: BAANX_PRODUCTS)


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
    channels: Mapping[str, Channel] = dataclasses.field(default_factory=lambda: ALTINN_CHANNELS)


@dataclasses.dataclass(frozen=True)
class LifecycleConfig:
    """Every lifecycle figure, per provider and order kind."""

    sms4sats_receive: Sms4satsReceiveConfig = Sms4satsReceiveConfig()
    sms4sats_send: Sms4satsSendConfig = Sms4satsSendConfig()
    smsonline: SmsOnlineConfig = SmsOnlineConfig()
    ordinalsbot: OrdinalsBotConfig = OrdinalsBotConfig()
    baanx: BaanxConfig = BaanxConfig()
    altinn: AltinnConfig = AltinnConfig()


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


# --- ground truth -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Transition:
    """The order entered `state` (canonical) / `provider_status` (provider's word) at `at`."""

    state: str
    provider_status: str
    at: datetime


@dataclasses.dataclass
class OrderTruth:
    """One order's true timeline.

    Attributes:
        provider: provider slug.
        order_id: the provider's order id.
        order_kind: an `OrderKind` value.
        created_at: creation time (UTC); the first transition's time.
        service: service / product / channel, where the provider has one.
        country: country name, for SMS receive orders.
        transitions: in time order; later ones never precede earlier ones.
        milestones: named instants the wire bodies need (e.g. `paid`, `number`, `code`).
        facts: drawn outcome details (e.g. `generated`, `delivered`, `note`, `expires_at`).
    """

    provider: str
    order_id: str
    order_kind: str
    created_at: datetime
    service: str | None
    country: str | None
    transitions: list[Transition]
    milestones: dict[str, datetime] = dataclasses.field(default_factory=dict)
    facts: dict[str, Any] = dataclasses.field(default_factory=dict)

    def state_at(self, moment: datetime) -> Transition | None:
        """The transition in effect at `moment`, or None before creation."""
        index = bisect_right([t.at for t in self.transitions], moment)
        return self.transitions[index - 1] if index else None

    def reached(self, milestone: str, moment: datetime) -> bool:
        """Whether `milestone` happened at or before `moment`."""
        when = self.milestones.get(milestone)
        return when is not None and when <= moment

    @property
    def final(self) -> Transition:
        """The last transition of the timeline (which may lie in the future)."""
        return self.transitions[-1]

    @property
    def terminal_at(self) -> datetime | None:
        """When the order reaches a terminal state, or None if it never does."""
        last = self.final
        return last.at if OrderState(last.state).is_terminal else None

    def is_terminal_at(self, moment: datetime) -> bool:
        """Whether the order is in a terminal state at `moment`."""
        current = self.state_at(moment)
        return current is not None and OrderState(current.state).is_terminal

    def interrupt(
        self, at: datetime, state: str, provider_status: str, milestone: str | None = None
    ) -> None:
        """Replace everything after `at` by one transition (a cancel or refund at `at`)."""
        self.transitions = [t for t in self.transitions if t.at <= at]
        self.milestones = {name: when for name, when in self.milestones.items() if when <= at}
        self.transitions.append(Transition(state, provider_status, at))
        if milestone:
            self.milestones[milestone] = at

    def to_record(self, until: datetime | None = None) -> dict[str, Any]:
        """Ground truth as JSON-ready data, with the transitions up to `until` (all if None)."""
        shown = [t for t in self.transitions if until is None or t.at <= until]
        current = shown[-1] if shown else None
        return {
            "provider": self.provider,
            "order_id": self.order_id,
            "order_kind": self.order_kind,
            "service": self.service,
            "country": self.country,
            "created_at": iso_utc(self.created_at),
            "transitions": [
                {"state": t.state, "provider_status": t.provider_status, "at": iso_utc(t.at)}
                for t in shown
            ],
            "state": current.state if current else None,
            "is_terminal": bool(current and OrderState(current.state).is_terminal),
        }


def iso_utc(moment: datetime) -> str:
    """`moment` as ISO-8601 UTC with microseconds and a `Z` suffix (naive is taken as UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- drawing ----------------------------------------------------------------------------------


class _Timeline:
    """Builds transitions as offsets in seconds from creation."""

    def __init__(self, created_at: datetime) -> None:
        self.created_at = created_at
        self.transitions: list[Transition] = []
        self.milestones: dict[str, datetime] = {}
        self.facts: dict[str, Any] = {}

    def time(self, offset_s: float) -> datetime:
        return self.created_at + timedelta(seconds=offset_s)

    def enter(
        self, offset_s: float, state: OrderState, provider_status: str, milestone: str = ""
    ) -> None:
        at = self.time(offset_s)
        if self.transitions and at < self.transitions[-1].at:
            at = self.transitions[-1].at
        self.transitions.append(Transition(state.value, provider_status, at))
        if milestone:
            self.milestones[milestone] = at


def sms4sats_receive_status(*, paid: bool, number: bool, code: bool, error: bool) -> str:
    """The derived raw status of an sms4sats receive order (PROVIDERS.md §6.2)."""

    def flag(value: bool) -> str:
        return "true" if value else "false"

    return f"paid={flag(paid)};number={flag(number)};code={flag(code)};error={flag(error)}"


S4S_UNPAID = sms4sats_receive_status(paid=False, number=False, code=False, error=False)
S4S_PAID = sms4sats_receive_status(paid=True, number=False, code=False, error=False)
S4S_NUMBER = sms4sats_receive_status(paid=True, number=True, code=False, error=False)
S4S_CODE = sms4sats_receive_status(paid=True, number=True, code=True, error=False)
S4S_NO_NUMBER = sms4sats_receive_status(paid=True, number=False, code=False, error=True)


def clamp_probability(value: float) -> float:
    """`value` limited to [0, 0.99]."""
    return min(MAX_PROBABILITY, max(MIN_PROBABILITY, value))


def _sms4sats_receive(
    tl: _Timeline,
    rng: random.Random,
    cfg: LifecycleConfig,
    f: float,
    service: str | None,
    country: str | None,
) -> None:
    c = cfg.sms4sats_receive
    svc, ctry = c.services.get(service or "", NEUTRAL), c.countries.get(country or "", NEUTRAL)
    tl.enter(0.0, OrderState.PENDING, S4S_UNPAID)
    expiry = c.invoice_expiry_s * f
    paid = c.pay_delay.draw(rng, f)
    if rng.random() < c.p_never_paid or paid >= expiry:
        tl.enter(expiry, OrderState.EXPIRED, S4S_UNPAID, "invoice_expired")
        return
    tl.enter(paid, OrderState.PROCESSING, S4S_PAID, "paid")
    if rng.random() < clamp_probability(c.p_no_number * ctry.failure_factor):
        tl.enter(paid + c.no_number_delay.draw(rng, f), OrderState.FAILED, S4S_NO_NUMBER, "error")
        return
    number_delay = c.number_delay.draw(rng, f)
    window_end = paid + c.auto_cancel_s * f
    if rng.random() < clamp_probability(c.p_code * svc.success_factor * ctry.success_factor):
        to_code = c.time_to_code.draw(rng, f * svc.speed_factor * ctry.speed_factor)
        if paid + to_code < window_end:
            tl.enter(
                paid + min(number_delay, to_code / 2), OrderState.PROCESSING, S4S_NUMBER, "number"
            )
            tl.enter(paid + to_code, OrderState.CODE_RECEIVED, S4S_CODE, "code")
            return
    tl.enter(paid + number_delay, OrderState.PROCESSING, S4S_NUMBER, "number")
    tl.enter(window_end, OrderState.EXPIRED, S4S_UNPAID, "auto_cancel")


def _sms4sats_send(
    tl: _Timeline,
    rng: random.Random,
    cfg: LifecycleConfig,
    f: float,
    service: str | None,
    country: str | None,
) -> None:
    c = cfg.sms4sats_send
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


def _smsonline(
    tl: _Timeline,
    rng: random.Random,
    cfg: LifecycleConfig,
    f: float,
    service: str | None,
    country: str | None,
) -> None:
    c = cfg.smsonline
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


def _ordinalsbot(
    tl: _Timeline,
    rng: random.Random,
    cfg: LifecycleConfig,
    f: float,
    service: str | None,
    country: str | None,
) -> None:
    c = cfg.ordinalsbot
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


def _baanx(
    tl: _Timeline,
    rng: random.Random,
    cfg: LifecycleConfig,
    f: float,
    service: str | None,
    country: str | None,
) -> None:
    c = cfg.baanx
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


def _altinn(
    tl: _Timeline,
    rng: random.Random,
    cfg: LifecycleConfig,
    f: float,
    service: str | None,
    country: str | None,
) -> None:
    c = cfg.altinn
    channel = c.channels.get(service or "", ALTINN_CHANNELS["Email"])
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


Drawer = Callable[[_Timeline, random.Random, LifecycleConfig, float, str | None, str | None], None]

DRAWERS: dict[tuple[str, str], Drawer] = {
    (Provider.SMS4SATS, OrderKind.SMS_RECEIVE): _sms4sats_receive,
    (Provider.SMS4SATS, OrderKind.SMS_SEND): _sms4sats_send,
    (Provider.SMSONLINE, OrderKind.SMS_RECEIVE): _smsonline,
    (Provider.ORDINALSBOT, OrderKind.INSCRIPTION): _ordinalsbot,
    (Provider.BAANX, OrderKind.PRODUCT_ORDER): _baanx,
    (Provider.ALTINN, OrderKind.NOTIFICATION_ORDER): _altinn,
}
"""The state machine of each (provider, order kind)."""


def service_table(
    provider: str, kind: str, config: LifecycleConfig = DEFAULT_CONFIG
) -> Mapping[str, Traits] | Mapping[str, Channel] | None:
    """The services (products, channels) a provider's orders are drawn from, if any."""
    if provider == Provider.SMS4SATS and kind == OrderKind.SMS_RECEIVE:
        return config.sms4sats_receive.services
    if provider == Provider.SMSONLINE:
        return config.smsonline.services
    if provider == Provider.BAANX:
        return config.baanx.products
    if provider == Provider.ALTINN:
        return config.altinn.channels
    return None


def country_table(
    provider: str, kind: str, config: LifecycleConfig = DEFAULT_CONFIG
) -> Mapping[str, Traits] | None:
    """The countries a provider's orders are drawn from, if any."""
    if provider == Provider.SMS4SATS and kind == OrderKind.SMS_RECEIVE:
        return config.sms4sats_receive.countries
    if provider == Provider.SMSONLINE:
        return config.smsonline.countries
    return None


def choose(table: Mapping[str, Traits] | Mapping[str, Channel], rng: random.Random) -> str:
    """A key of `table`, drawn with the entries' weights."""
    names = sorted(table)
    return rng.choices(names, weights=[table[name].weight for name in names])[0]


def new_order_id(provider: str, rng: random.Random) -> str:
    """A fresh order id in the provider's format, drawn from `rng`.

    sms4sats: 64 hex characters; SMSOnline: 8 digits; OrdinalsBot and Altinn: lower-case UUID4;
    Baanx: `ord_` + 12 hex characters.
    """
    if provider == Provider.SMS4SATS:
        return f"{rng.getrandbits(256):064x}"
    if provider == Provider.SMSONLINE:
        return str(rng.randrange(10_000_000, 100_000_000))
    if provider == Provider.BAANX:
        return f"ord_{rng.getrandbits(48):012x}"
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


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
        kind: order kind (`pipeline.model.OrderKind` value) the provider sells.
        rng: the random source; the same seed and call sequence give the same orders.
        created_at: creation time (aware UTC).
        profile: `realistic`, `fast` or a `Profile`.
        service: service / product / channel; drawn from the provider's table when None
            (for providers that have one).
        country: country name for SMS receive orders; drawn when None.
        order_id: the id to use; a fresh one is drawn when None.
        requested_send_time: Altinn: the order stays Registered until then.
        recipients: Altinn: number of notifications to generate (drawn when None).
        config: the lifecycle figures.

    Raises:
        ValueError: unknown provider, kind or profile.
    """
    if kind not in ORDER_KINDS.get(provider, ()):
        raise ValueError(f"{provider!r} has no order kind {kind!r}")
    factor = get_profile(profile).factor(provider)
    services = service_table(provider, kind, config)
    countries = country_table(provider, kind, config)
    if service is None and services is not None:
        service = choose(services, rng)
    if country is None and countries is not None:
        country = choose(countries, rng)
    tl = _Timeline(created_at)
    if requested_send_time is not None:
        tl.facts["requested_send_time"] = requested_send_time
    if recipients is not None:
        tl.facts["recipients"] = recipients
    DRAWERS[(provider, kind)](tl, rng, config, factor, service, country)
    return OrderTruth(
        provider=provider,
        order_id=order_id if order_id is not None else new_order_id(provider, rng),
        order_kind=kind,
        created_at=created_at,
        service=service,
        country=country,
        transitions=tl.transitions,
        milestones=tl.milestones,
        facts=tl.facts,
    )
