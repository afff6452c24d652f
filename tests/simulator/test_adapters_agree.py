"""The pipeline's own provider adapters read the sandbox's answers as the ground truth says.

For every provider and order kind, orders are polled just after each true transition and long
after the end; the adapter's canonical state must equal the true one, except where an adapter
policy knowingly differs (sms4sats judges auto-cancel by its own 22-minute clock; a send order
left `sent` becomes `completed` after 10 minutes).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from pipeline.model import OrderState, TrackedOrder
from pipeline.providers.registry import REGISTRY, get_adapter

ORDERS_PER_KIND = 15
LONG_AFTER = timedelta(hours=2)
STEP = timedelta(milliseconds=1)
KINDS = [(spec.slug, kind) for spec in REGISTRY.specs() for kind in spec.order_kinds]


def allowed_difference(kind: str, truth_state: str, seen: str, provider_status: str) -> bool:
    """Known, documented policy differences between adapter and truth."""
    if kind == "sms_receive" and truth_state == OrderState.EXPIRED and seen == OrderState.PENDING:
        return True  # sms4sats: the adapter waits for its own 21 min + grace window
    return (
        kind == "sms_send" and provider_status == "sent" and seen == OrderState.COMPLETED
    )  # sent without a delivery report for 10 minutes


@pytest.mark.parametrize(("provider", "kind"), KINDS)
def test_adapter_reads_the_true_state(harness, provider: str, kind: str) -> None:
    adapter = get_adapter(provider)
    start = harness.clock.now()
    orders = [
        harness.order(provider, harness.create(provider, kind if provider == "sms4sats" else ""))
        for _ in range(ORDERS_PER_KIND)
    ]
    moments = sorted(
        {t.at + STEP for o in orders for t in o.truth.transitions}
        | {max(o.truth.final.at for o in orders) + LONG_AFTER}
    )
    seen_states: set[str] = set()
    for moment in moments:
        if moment < harness.clock.now():
            continue
        harness.clock.set(moment)
        for order in orders:
            truth = order.truth
            response = harness.status(provider, truth.order_id)
            tracked = TrackedOrder(
                provider=provider,
                order_id=truth.order_id,
                order_kind=truth.order_kind,
                registered_at=start,
                created_at=truth.created_at,
            )
            observation = adapter.parse(
                response.status_code,
                dict(response.headers),
                response.content,
                order=tracked,
                polled_at=moment,
            )
            expected = truth.state_at(moment)
            assert expected is not None and observation.error_class is None, observation
            seen_states.add(observation.state)
            if observation.state != expected.state:
                assert allowed_difference(
                    kind, expected.state, observation.state, expected.provider_status
                ), (provider, truth.order_id, expected, observation.state)
    assert len(seen_states) >= 3  # the orders went through several states
