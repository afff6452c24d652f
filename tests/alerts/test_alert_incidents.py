"""Incidents change only when a verdict says so: open on firing, a message again only when the
severity rises, nothing on unknown (no data), resolve when a verdict with data stops firing or
the rule is no longer configured."""

from __future__ import annotations

from datetime import timedelta

from alert_support import NOW

from pipeline.alerts.incidents import Incident, reconcile
from pipeline.alerts.verdicts import Verdict

KEY = ("baanx", "availability")


def _verdict(severity: str | None, known: bool = True) -> Verdict:
    return Verdict(*KEY, severity, known, 0.5, 0.8, "availability 50.0 % over 5 min")  # type: ignore[arg-type]


def _step(
    current: dict[tuple[str, str], Incident], verdict: Verdict, minute: int
) -> tuple[dict[tuple[str, str], Incident], list[str]]:
    changed, changes = reconcile(
        current, [verdict], NOW + timedelta(minutes=minute), evaluated={KEY}
    )
    for incident in changed:
        if incident.state == "firing":
            current = {**current, (incident.provider, incident.rule): incident}
        else:
            current = {k: v for k, v in current.items() if k != KEY}
    return current, [f"{c.state}:{c.incident.severity}" for c in changes]


def test_messages_only_on_open_escalation_and_resolution() -> None:
    current: dict[tuple[str, str], Incident] = {}
    said = []
    for minute, verdict in enumerate(
        [
            _verdict(None),
            _verdict("ticket"),  # opens
            _verdict("ticket"),
            _verdict("page"),  # escalates
            _verdict("ticket"),  # eases: no message
            _verdict(None, known=False),  # no data: no change
            _verdict(None),  # resolves
            _verdict(None),
        ]
    ):
        current, changes = _step(current, verdict, minute)
        said += changes
    assert said == ["firing:ticket", "firing:page", "resolved:ticket"]
    assert current == {}


def test_an_incident_whose_rule_is_gone_resolves() -> None:
    current, _ = _step({}, _verdict("page"), 0)
    changed, changes = reconcile(current, [], NOW + timedelta(minutes=1), evaluated=set())
    assert [c.state for c in changes] == ["resolved"]
    assert "no longer configured" in changed[0].summary
