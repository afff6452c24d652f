"""Every real answer variant the sandbox can serve is read by the adapters as the truth says.

For each provider and each of its `SandboxProvider.variants` (answers its real clients have seen
and its doc page omits), two sandboxes with the same seed run the same orders: one as
documented, one with the variant switched on. Orders are created through the workload and polled
through the adapter's own request, just after every true transition and long after the end. The
variant must change at least one answer, and every answer must read as the true state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from conftest import BASE_URL, SandboxHarness

from pipeline.model import OrderState, TrackedOrder
from pipeline.providers.registry import REGISTRY, get_adapter
from pipeline.settings import Settings
from pipeline.simulator.options import ProviderOptions
from pipeline.simulator.provider import Variant, sandbox_provider

ORDERS = 200
UNLIMITED: dict[str, dict[str, Any]] = {"ordinalsbot": {"status_limit_per_minute": 10**9}}
"""Options lifting the sandbox's rate limits: the test polls far faster than real clients."""
LONG_AFTER = timedelta(hours=2)
STEP = timedelta(milliseconds=1)
UNKNOWN_ID_TRIES = ("00000000", "00000000-0000-4000-8000-000000000000", "ord_000000000000")

VARIANTS = [
    pytest.param(slug, variant, id=f"{slug}-{variant.option}={variant.value}")
    for slug in REGISTRY
    for variant in sandbox_provider(slug).variants
]


def allowed_difference(variant: Variant, kind: str, truth_state: str, seen: str) -> bool:
    """Differences the adapters knowingly make, as in `test_adapters_agree`, and the one a
    variant brings: Baanx's PENDING says a payment is under way where the truth (STARTED)
    does not distinguish it."""
    if kind.startswith("sms_") and truth_state == OrderState.EXPIRED and seen == OrderState.PENDING:
        return True  # an unpaid sms4sats invoice looks the same before and after it expires
    if kind == "sms_send" and seen == OrderState.COMPLETED:
        return True
    return (
        variant.option == "paid_status"
        and truth_state == OrderState.PENDING
        and seen == OrderState.PROCESSING
    )


def _moments(truth: Any) -> list[Any]:
    """Just after each transition and just before the next one (a variant may show late in a
    phase), and long after the end."""
    starts = [t.at for t in truth.transitions]
    moments = [at + STEP for at in starts] + [at - STEP for at in starts[1:]]
    return [*moments, truth.final.at + LONG_AFTER]


@pytest.mark.parametrize(("slug", "variant"), VARIANTS)
def test_every_real_variant_is_served_and_read_as_the_truth(
    make_harness: Callable[..., SandboxHarness], slug: str, variant: Variant
) -> None:
    imitation = sandbox_provider(slug)
    unlimited = dataclasses.replace(imitation.options, **UNLIMITED.get(slug, {}))
    documented = make_harness(options=ProviderOptions(**{slug: unlimited}))
    varied = make_harness(options=ProviderOptions(**{slug: variant.apply(unlimited)}))
    created = documented.create_as_user(slug, ORDERS)
    same = varied.create_as_user(slug, ORDERS)
    assert [o.order_id for o in same] == [o.order_id for o in created]
    orders = {o.order_id: o for o in created}
    truths = {order_id: varied.order(slug, order_id).truth for order_id in orders}
    visits = sorted(
        (moment, order_id) for order_id, truth in truths.items() for moment in _moments(truth)
    )
    unknown = next(i for i in UNKNOWN_ID_TRIES if get_adapter(slug).validate_order_id(i) is None)
    kind = next(iter(orders.values())).order_kind
    changed = 0
    for moment, order_id in [*visits, (visits[-1][0], unknown)]:
        if moment < varied.clock.now():
            continue
        documented.clock.set(moment)
        varied.clock.set(moment)
        order = orders.get(order_id) or TrackedOrder(slug, order_id, kind, moment)
        before, _ = documented.poll(order)
        after, observation = varied.poll(order)
        changed += before.content != after.content
        truth = truths.get(order_id)
        if truth is None:  # an id the provider never issued: an error, never a state
            assert observation.error_class is not None, observation
            continue
        expected = truth.state_at(moment)
        assert expected is not None and observation.error_class is None, observation
        if observation.state != expected.state:
            assert allowed_difference(
                variant, order.order_kind, expected.state, observation.state
            ), (
                variant,
                order_id,
                expected,
                observation,
            )
    assert changed, f"{variant} changed no answer"


def test_the_drift_scenario_draws_only_real_variants(make_harness: Any) -> None:
    from pipeline.simulator.faults import load_scenario

    drift = load_scenario("drift")
    kinds = {rule.kind for rules in drift.providers.values() for rule in rules}
    assert kinds == {"variant"}
    harness = make_harness(faults=drift)
    order_id = harness.create("baanx")
    for _ in range(200):
        harness.status("baanx", order_id)
    assert harness.sandbox.faults.counts["baanx"]["variant"] > 20


@pytest.mark.parametrize(
    ("sandbox_reads", "client_sends", "error"),
    [
        ("X-Client-ID", "X-Client-ID", None),
        ("x-client-key", "X-Client-ID", "client_key_missing"),
        ("x-client-key", "x-client-key", None),
        ("x-client-key", "both", None),
        ("X-Client-ID", "both", None),
    ],
)
def test_the_baanx_client_key_header_is_a_setting_with_the_documented_default(
    make_harness: Callable[..., SandboxHarness],
    sandbox_reads: str,
    client_sends: str,
    error: str | None,
) -> None:
    imitation = sandbox_provider("baanx")
    harness = make_harness(
        options=ProviderOptions(
            baanx=dataclasses.replace(imitation.options, client_key_header=sandbox_reads)
        )
    )
    (order,) = harness.create_as_user("baanx", 1)
    settings = Settings.from_env(
        {"PIPELINE_SANDBOX_URL": BASE_URL, "BAANX_CLIENT_KEY_HEADER": client_sends}
    )
    spec = get_adapter("baanx").build_request(order, settings.provider("baanx"))
    response = harness.client.get(spec.url, headers=dict(spec.headers))
    observation = get_adapter("baanx").parse(
        response.status_code, dict(response.headers), response.content, order=order,
        polled_at=harness.clock.now(),
    )  # fmt: skip
    assert observation.error_class == error
    assert "x-us-env" not in {name.lower() for name in spec.headers}


def test_a_provider_option_outside_its_choices_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="BAANX_CLIENT_KEY_HEADER='X-Client'"):
        Settings.from_env({"BAANX_CLIENT_KEY_HEADER": "X-Client"})
