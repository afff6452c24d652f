"""An order's true timeline: `Transition`, `OrderTruth`, and the `Timeline` drawers build.

A drawer (one provider's state machine for one order kind) enters transitions into a `Timeline`;
`draw_order` (`pipeline.simulator.lifecycles`) turns it into the order's `OrderTruth`.
"""

from __future__ import annotations

import dataclasses
from bisect import bisect_right
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.model import OrderState


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


class Timeline:
    """Builds an order's transitions as offsets in seconds from creation (what drawers fill).

    Attributes:
        created_at: the order's creation time.
        transitions: entered so far, in time order.
        milestones: named instants the wire bodies use.
        facts: drawn outcome details; `draw_order` seeds it with request facts (e.g.
            `requested_send_time`, `recipients`) before the drawer runs.
    """

    def __init__(self, created_at: datetime) -> None:
        self.created_at = created_at
        self.transitions: list[Transition] = []
        self.milestones: dict[str, datetime] = {}
        self.facts: dict[str, Any] = {}

    def time(self, offset_s: float) -> datetime:
        """The instant `offset_s` seconds after creation."""
        return self.created_at + timedelta(seconds=offset_s)

    def enter(
        self, offset_s: float, state: OrderState, provider_status: str, milestone: str = ""
    ) -> None:
        """Enter `state` at `offset_s` (never before the previous transition)."""
        at = self.time(offset_s)
        if self.transitions and at < self.transitions[-1].at:
            at = self.transitions[-1].at
        self.transitions.append(Transition(state.value, provider_status, at))
        if milestone:
            self.milestones[milestone] = at
