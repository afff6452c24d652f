"""Incidents: one per provider and rule while it fires, kept in `alert_incidents`.

An incident opens when a rule's verdict fires, escalates when it fires at a more urgent
severity, and resolves when a verdict with data no longer fires (an unknown verdict changes
nothing: no data is not a recovery). An open incident whose rule is no longer configured
resolves too. Only these changes make messages: the evaluations in between update the figures
quietly, so one incident means one firing message (plus one per escalation) and one recovery
message, however often it is evaluated, and across restarts, since the state is in the warehouse.

Messages go out through an outbox: `queue_messages` writes one `alerts` row per change and
target in the same transaction as the incident, and `pipeline.alerts.delivery` sends the pending
rows. The row key (incident, state, severity, target) makes a message impossible to queue twice.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime

import duckdb
import polars as pl

from pipeline.alerts.config import SEVERITY_RANK, Target
from pipeline.alerts.messages import Message, State
from pipeline.alerts.verdicts import Verdict
from pipeline.warehouse import query
from pipeline.warehouse.store import registered

FIRING: State = "firing"
RESOLVED: State = "resolved"
PENDING = "pending"
"""`alerts.status` of a message not delivered yet."""

INCIDENT_COLUMNS: dict[str, pl.DataType] = {
    "incident_id": pl.String(),
    "provider": pl.String(),
    "rule": pl.String(),
    "severity": pl.String(),
    "state": pl.String(),
    "opened_at": pl.Datetime("us", "UTC"),
    "resolved_at": pl.Datetime("us", "UTC"),
    "value": pl.Float64(),
    "threshold": pl.Float64(),
    "summary": pl.String(),
    "updated_at": pl.Datetime("us", "UTC"),
}

ALERT_COLUMNS: dict[str, pl.DataType] = {
    "alert_id": pl.String(),
    "incident_id": pl.String(),
    "created_at": pl.Datetime("us", "UTC"),
    "provider": pl.String(),
    "rule": pl.String(),
    "severity": pl.String(),
    "state": pl.String(),
    "value": pl.Float64(),
    "threshold": pl.Float64(),
    "target": pl.String(),
    "status": pl.String(),
    "delivered": pl.Boolean(),
    "attempts": pl.Int32(),
    "summary": pl.String(),
    "message_json": pl.String(),
}
"""The columns `queue_messages` fills; delivery fills error, last_attempt_at, delivered_at."""


@dataclasses.dataclass(frozen=True)
class Incident:
    """One row of `alert_incidents`."""

    incident_id: str
    provider: str
    rule: str
    severity: str
    state: str
    opened_at: datetime
    resolved_at: datetime | None
    value: float | None
    threshold: float | None
    summary: str
    updated_at: datetime


@dataclasses.dataclass(frozen=True)
class Change:
    """An incident change that deserves a message: it opened or escalated (firing), or resolved."""

    incident: Incident
    state: State


def incident_id(provider: str, rule: str, opened_at: datetime) -> str:
    """A stable id: the same provider, rule and opening instant give the same id."""
    key = f"{provider}|{rule}|{opened_at.isoformat()}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def open_incidents(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], Incident]:
    """The firing incidents, by (provider, rule)."""
    rows = query(con, "SELECT * FROM alert_incidents WHERE state = 'firing'")
    return {
        (row["provider"], row["rule"]): Incident(**{c: row[c] for c in INCIDENT_COLUMNS})
        for row in rows.iter_rows(named=True)
    }


def reconcile(
    current: Mapping[tuple[str, str], Incident],
    verdicts: Iterable[Verdict],
    now: datetime,
    *,
    evaluated: set[tuple[str, str]],
) -> tuple[list[Incident], list[Change]]:
    """Apply `verdicts` to the open incidents.

    Args:
        current: the open incidents, by (provider, rule).
        verdicts: this evaluation's verdicts.
        now: the evaluation time.
        evaluated: every (provider, rule) configured now; open incidents outside it resolve.

    Returns:
        The incidents to store (new or changed) and the changes that deserve a message.
    """
    changed: list[Incident] = []
    changes: list[Change] = []
    for verdict in verdicts:
        key = (verdict.provider, verdict.rule)
        incident = current.get(key)
        if not verdict.known:
            continue
        if verdict.severity is not None:
            if incident is None:
                opened = Incident(
                    incident_id=incident_id(*key, now),
                    provider=verdict.provider,
                    rule=verdict.rule,
                    severity=verdict.severity,
                    state=FIRING,
                    opened_at=now,
                    resolved_at=None,
                    value=verdict.value,
                    threshold=verdict.threshold,
                    summary=verdict.detail,
                    updated_at=now,
                )
                changed.append(opened)
                changes.append(Change(opened, FIRING))
                continue
            updated = dataclasses.replace(
                incident,
                severity=verdict.severity,
                value=verdict.value,
                threshold=verdict.threshold,
                summary=verdict.detail,
                updated_at=now,
            )
            changed.append(updated)
            if verdict.rank > SEVERITY_RANK.get(incident.severity, 0):
                changes.append(Change(updated, FIRING))
        elif incident is not None:
            resolved = dataclasses.replace(
                incident,
                state=RESOLVED,
                resolved_at=now,
                value=verdict.value,
                threshold=verdict.threshold,
                summary=verdict.detail,
                updated_at=now,
            )
            changed.append(resolved)
            changes.append(Change(resolved, RESOLVED))
    for key, incident in current.items():
        if key not in evaluated:
            resolved = dataclasses.replace(
                incident,
                state=RESOLVED,
                resolved_at=now,
                summary=f"{incident.rule} is no longer configured for {incident.provider}",
                updated_at=now,
            )
            changed.append(resolved)
            changes.append(Change(resolved, RESOLVED))
    return changed, changes


def store_incidents(con: duckdb.DuckDBPyConnection, incidents: list[Incident]) -> None:
    """Insert or update `incidents` in `alert_incidents`."""
    if not incidents:
        return
    frame = pl.DataFrame(
        [dataclasses.asdict(i) for i in incidents], schema=INCIDENT_COLUMNS, orient="row"
    )
    with registered(con, "_incidents", frame):
        con.execute("INSERT OR REPLACE INTO alert_incidents BY NAME SELECT * FROM _incidents")


def message_for(change: Change, provider_name: str, status_url: str | None) -> Message:
    """The message a change sends."""
    incident = change.incident
    return Message(
        incident_id=incident.incident_id,
        provider=incident.provider,
        provider_name=provider_name,
        rule=incident.rule,
        severity=incident.severity,
        state=change.state,
        detail=incident.summary,
        value=incident.value,
        threshold=incident.threshold,
        opened_at=incident.opened_at,
        resolved_at=incident.resolved_at,
        status_url=status_url,
    )


def queue_messages(
    con: duckdb.DuckDBPyConnection,
    messages: list[Message],
    targets: Iterable[Target],
    now: datetime,
) -> int:
    """One pending `alerts` row per message and target; returns the rows queued (a message
    already queued for a target is not queued again)."""
    rows = [
        {
            "alert_id": f"{m.incident_id}/{m.state}/{m.severity}/{t.name}",
            "incident_id": m.incident_id,
            "created_at": now,
            "provider": m.provider,
            "rule": m.rule,
            "severity": m.severity,
            "state": m.state,
            "value": m.value,
            "threshold": m.threshold,
            "target": t.name,
            "status": PENDING,
            "delivered": False,
            "attempts": 0,
            "summary": m.title,
            "message_json": m.to_json(),
        }
        for m in messages
        for t in targets
    ]
    if not rows:
        return 0
    frame = pl.DataFrame(rows, schema=ALERT_COLUMNS)
    with registered(con, "_queued", frame):
        inserted = con.execute(
            "INSERT OR IGNORE INTO alerts BY NAME SELECT * FROM _queued"
        ).fetchall()
    return int(inserted[0][0]) if inserted else 0
