"""The pipeline's own provider adapters read the sandbox's answers as the ground truth says.

For every registered provider (declared ones included), orders are created through its own create
call and polled with its adapter's own request just after each true transition, just before the
next one and long after the end; the adapter's canonical state must equal the true one, except
where an adapter policy knowingly differs (sms4sats judges auto-cancel by its own 22-minute clock
and cannot tell an expired unpaid invoice from a live one; a send order left `sent` becomes
`completed` after 10 minutes).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from conftest import SandboxHarness

from pipeline.model import OrderState
from pipeline.providers.registry import PROVIDERS, get_spec
from pipeline.simulator.lifecycles import OrderTruth

ORDERS = 40
LONG_AFTER = timedelta(hours=2)
STEP = timedelta(milliseconds=1)


def allowed_difference(kind: str, truth_state: str, seen: str, provider_status: str) -> bool:
    """Known, documented policy differences between adapter and truth."""
    if kind.startswith("sms_") and truth_state == OrderState.EXPIRED and seen == OrderState.PENDING:
        return True  # sms4sats: its own 21 min + grace window; an unpaid invoice never changes
    return (
        kind == "sms_send" and provider_status == "sent" and seen == OrderState.COMPLETED
    )  # sent without a delivery report for 10 minutes


def moments(truth: OrderTruth) -> list[datetime]:
    """Just after each transition, just before the next, and long after the end."""
    starts = [t.at for t in truth.transitions]
    inside = [at + STEP for at in starts] + [at - STEP for at in starts[1:]]
    return [*inside, truth.final.at + LONG_AFTER]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_adapter_reads_the_true_state(harness: SandboxHarness, provider: str) -> None:
    orders = {o.order_id: o for o in harness.create_as_user(provider, ORDERS)}
    assert {o.order_kind for o in orders.values()} == set(get_spec(provider).order_kinds)
    truths = {order_id: harness.order(provider, order_id).truth for order_id in orders}
    visits = sorted((m, order_id) for order_id, truth in truths.items() for m in moments(truth))
    seen_states: set[str] = set()
    for moment, order_id in visits:
        if moment < harness.clock.now():
            continue
        harness.clock.set(moment)
        order = orders[order_id]
        _, observation = harness.poll(order)
        expected = truths[order_id].state_at(moment)
        assert expected is not None and observation.error_class is None, observation
        seen_states.add(observation.state)
        if observation.state != expected.state:
            assert allowed_difference(
                order.order_kind, expected.state, observation.state, expected.provider_status
            ), (provider, order_id, expected, observation.state)
    assert len(seen_states) >= 3  # the orders went through several states
