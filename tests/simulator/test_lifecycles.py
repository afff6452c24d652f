"""The lifecycle model, without HTTP: timelines are well formed and deterministic, and drawn
durations and outcome rates match their configuration.

Statistical checks use a fixed seed and 4-sigma binomial bounds from the sample size: for an
expected proportion p over n draws the observed share must lie within 4·sqrt(p(1-p)/n) of p.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.model import OrderState
from pipeline.providers.registry import REGISTRY
from pipeline.simulator.lifecycles import (
    DEFAULT_CONFIG,
    OrderTruth,
    draw_order,
    get_profile,
)

ORDER_KINDS = {spec.slug: spec.order_kinds for spec in REGISTRY.specs()}
CREATED = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
N = 4000
SIGMAS = 4.0


def draws(
    provider: str, kind: str, n: int = N, profile: str = "realistic", **kwargs
) -> list[OrderTruth]:
    rng = random.Random(20260101)
    return [draw_order(provider, kind, rng, CREATED, profile, **kwargs) for _ in range(n)]


def assert_share(observed: list[bool], expected: float) -> None:
    """The share of True in `observed` is within 4 sigma of `expected`."""
    n = len(observed)
    assert n > 100, "sample too small for the check"
    share = sum(observed) / n
    tolerance = SIGMAS * math.sqrt(max(expected * (1 - expected), 1e-9) / n)
    assert abs(share - expected) <= tolerance, (share, expected, tolerance, n)


def seconds(truth: OrderTruth, start: str, end: str) -> float:
    return (truth.milestones[end] - truth.milestones[start]).total_seconds()


def test_every_kind_draws_a_well_formed_timeline() -> None:
    for provider, kinds in ORDER_KINDS.items():
        for kind in kinds:
            for truth in draws(provider, kind, n=200):
                times = [t.at for t in truth.transitions]
                assert times[0] == CREATED and times == sorted(times)
                assert all(OrderState(t.state) for t in truth.transitions)
                assert truth.state_at(CREATED - timedelta(seconds=1)) is None
                assert truth.state_at(CREATED) == truth.transitions[0]
                final = truth.final
                stuck_in_sent = kind == "sms_send" and final.provider_status == "sent"
                assert OrderState(final.state).is_terminal or stuck_in_sent, (provider, final)


def test_same_seed_same_orders() -> None:
    first, second = draws("baanx", "product_order", n=50), draws("baanx", "product_order", n=50)
    assert [t.to_record() for t in first] == [t.to_record() for t in second]


def test_state_at_is_a_pure_function_of_time() -> None:
    truth = next(
        t for t in draws("ordinalsbot", "inscription", n=50) if "completed" in t.milestones
    )
    moments = [CREATED + timedelta(seconds=s) for s in (0, 30, 600, 1500, 3000, 10**5)]
    assert [truth.state_at(m) for m in moments] == [truth.state_at(m) for m in moments]
    assert truth.state_at(truth.milestones["completed"]).provider_status == "completed"
    assert truth.is_terminal_at(truth.milestones["completed"])


def test_interrupt_replaces_the_future() -> None:
    truth = next(t for t in draws("sms4sats", "sms_receive", n=50) if "code" in t.milestones)
    cut = truth.milestones["paid"] + timedelta(seconds=1)
    truth.interrupt(cut, OrderState.CANCELLED, "x", "cancelled")
    assert truth.final.state == OrderState.CANCELLED and "code" not in truth.milestones
    assert truth.terminal_at == cut


def test_record_shape() -> None:
    truth = draws("smsonline", "sms_receive", n=1)[0]
    record = truth.to_record(until=CREATED)
    assert set(record) == {
        "provider",
        "order_id",
        "order_kind",
        "service",
        "country",
        "created_at",
        "transitions",
        "state",
        "is_terminal",
    }
    assert record["created_at"] == "2026-01-01T12:00:00.000000Z"
    assert record["transitions"] == [
        {"state": "processing", "provider_status": "pending", "at": "2026-01-01T12:00:00.000000Z"}
    ]


def test_order_ids_follow_each_providers_format() -> None:
    checks: dict[str, Callable[[str], bool]] = {
        "sms4sats": lambda i: len(i) == 64 and all(c in "0123456789abcdef" for c in i),
        "smsonline": lambda i: i.isdigit() and len(i) == 8,
        "ordinalsbot": lambda i: len(i) == 36 and i[14] == "4",
        "baanx": lambda i: i.startswith("ord_"),
        "altinn": lambda i: len(i) == 36 and i == i.lower(),
    }
    for provider, check in checks.items():
        kind = ORDER_KINDS[provider][0]
        assert all(check(t.order_id) for t in draws(provider, kind, n=20))


# --- distributions ----------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["realistic", "fast"])
def test_sms4sats_time_to_code_matches_its_distribution(profile: str) -> None:
    config = DEFAULT_CONFIG.of("sms4sats").receive
    factor = get_profile(profile).factor("sms4sats")
    orders = draws("sms4sats", "sms_receive", profile=profile, service="openAI", country="India")
    coded = [seconds(t, "paid", "code") for t in orders if "code" in t.milestones]
    window = config.auto_cancel_s * factor
    for x in (30.0, 60.0, 120.0, 300.0):
        expected = config.time_to_code.cdf(x * factor, factor) / config.time_to_code.cdf(
            window, factor
        )
        assert_share([value <= x * factor for value in coded], expected)
    # The documented "most codes arrive within 30-120 s".
    assert sum(30 * factor <= v <= 120 * factor for v in coded) / len(coded) > 0.7


def test_sms4sats_outcome_rates_match_their_configuration() -> None:
    c = DEFAULT_CONFIG.of("sms4sats").receive
    orders = draws("sms4sats", "sms_receive", service="openAI", country="India")
    p_paid_late = 1 - c.pay_delay.cdf(c.invoice_expiry_s)
    assert_share(
        ["invoice_expired" in t.milestones for t in orders],
        c.p_never_paid + (1 - c.p_never_paid) * p_paid_late,
    )
    paid = [t for t in orders if "paid" in t.milestones]
    assert_share(["error" in t.milestones for t in paid], c.p_no_number)
    numbered = [t for t in paid if "number" in t.milestones]
    assert_share(
        ["code" in t.milestones for t in numbered], c.p_code * c.time_to_code.cdf(c.auto_cancel_s)
    )
    # Orders that never get a code exist, and are auto-cancelled 21 minutes after payment.
    cancelled = [t for t in numbered if "auto_cancel" in t.milestones]
    assert cancelled
    assert all(
        seconds(t, "paid", "auto_cancel") == pytest.approx(c.auto_cancel_s) for t in cancelled
    )


def test_sms4sats_rates_vary_by_country() -> None:
    c = DEFAULT_CONFIG.of("sms4sats").receive
    for country in ("USA", "Germany"):
        traits = c.countries[country]
        orders = draws("sms4sats", "sms_receive", service="openAI", country=country)
        coded = [seconds(t, "paid", "code") for t in orders if "code" in t.milestones]
        median = c.time_to_code.median * traits.speed_factor
        window_share = c.time_to_code.cdf(c.auto_cancel_s, traits.speed_factor)
        assert_share([v <= median for v in coded], 0.5 / window_share)
        numbered = [t for t in orders if "number" in t.milestones]
        expected = min(0.99, c.p_code * traits.success_factor) * window_share
        assert_share(["code" in t.milestones for t in numbered], expected)


def test_sms4sats_send_outcomes() -> None:
    c = DEFAULT_CONFIG.of("sms4sats").send
    paid = [t for t in draws("sms4sats", "sms_send") if "paid" in t.milestones]
    assert_share(["delivered" in t.milestones for t in paid], c.p_delivered)
    assert_share(["failed" in t.milestones for t in paid], c.p_failed)


def test_smsonline_lease_and_code_rate() -> None:
    c = DEFAULT_CONFIG.of("smsonline")
    orders = draws("smsonline", "sms_receive", service="Discord", country="India")
    assert all(t.facts["expires_at"] == CREATED + timedelta(seconds=c.lease_s) for t in orders)
    assert_share(["code" in t.milestones for t in orders], c.p_code * c.time_to_code.cdf(c.lease_s))
    coded = [
        (t.milestones["code"] - CREATED).total_seconds() for t in orders if "code" in t.milestones
    ]
    assert_share([v <= c.time_to_code.median for v in coded], 0.5 / c.time_to_code.cdf(c.lease_s))


def test_ordinalsbot_confirmation_and_queue_times() -> None:
    c = DEFAULT_CONFIG.of("ordinalsbot")
    orders = [t for t in draws("ordinalsbot", "inscription") if "confirmed" in t.milestones]
    assert_share([seconds(t, "paid", "confirmed") <= c.confirmations.median for t in orders], 0.5)
    prep = [seconds(t, "confirmed", "queued") for t in orders]
    assert_share([v <= 20.0 for v in prep], c.prep.cdf(20.0))
    finished = [t for t in orders if "completed" in t.milestones or "error" in t.milestones]
    assert_share(["error" in t.milestones for t in finished], c.p_error)


def test_baanx_outcome_rates() -> None:
    c = DEFAULT_CONFIG.of("baanx")
    orders = draws("baanx", "product_order", service="card-topup")
    completed = c.p_completed * c.pay_time.cdf(c.payment_window_s)
    assert_share([t.final.provider_status == "COMPLETED" for t in orders], completed)
    assert_share([t.final.provider_status == "FAILED" for t in orders], c.p_failed)
    failed = [t for t in orders if t.final.provider_status == "FAILED"]
    assert_share([t.final.state == OrderState.REFUNDED for t in failed], c.p_refund_note)


def test_altinn_waits_for_the_requested_send_time() -> None:
    send_at = CREATED + timedelta(minutes=10)
    orders = draws("altinn", "notification_order", n=300, requested_send_time=send_at)
    assert all(t.milestones["processing"] >= send_at for t in orders)
    assert all(t.state_at(send_at).provider_status == "Registered" for t in orders)
    c = DEFAULT_CONFIG.of("altinn")
    assert_share(
        ["condition_not_met" in t.milestones for t in draws("altinn", "notification_order")],
        c.p_condition_not_met,
    )


def test_fast_profile_scales_every_duration() -> None:
    realistic = draws("baanx", "product_order", n=300)
    fast = draws("baanx", "product_order", n=300, profile="fast")
    for slow, quick in zip(realistic, fast, strict=True):
        quick_s = (quick.final.at - CREATED).total_seconds()
        assert quick_s == pytest.approx((slow.final.at - CREATED).total_seconds() * 0.1, abs=1e-5)
