"""`evaluate_and_notify`: one evaluation of every rule and SLO, then delivery. Cheap enough to
run every minute: it reads the last hour of the poll log, the undecided orders of the SLO
lookback, and small aggregates of `slo_events`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from pipeline.alerts import incidents, rules, slo
from pipeline.alerts.config import AlertConfig
from pipeline.alerts.delivery import DeliveryReport, deliver_pending
from pipeline.alerts.verdicts import Verdict
from pipeline.providers.registry import REGISTRY
from pipeline.providers.spec import ProviderSpec
from pipeline.settings import Settings
from pipeline.warehouse import Warehouse, query

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class AlertRun:
    """What one evaluation found and did.

    Attributes:
        evaluated_at: the evaluation time.
        verdicts: every rule's and SLO's verdict, per provider.
        opened: incidents opened now, as (provider, rule, severity).
        escalated: incidents whose severity rose now.
        resolved: incidents resolved now, as (provider, rule).
        firing: every incident firing after this evaluation, as (provider, rule, severity).
        orders_judged: orders newly judged by an SLO.
        queued: messages queued (changes × targets).
        delivery: what delivery did with every pending message, old ones included.
        duration_s: wall time of the evaluation.
    """

    evaluated_at: datetime
    verdicts: tuple[Verdict, ...]
    opened: tuple[tuple[str, str, str], ...]
    escalated: tuple[tuple[str, str, str], ...]
    resolved: tuple[tuple[str, str], ...]
    firing: tuple[tuple[str, str, str], ...]
    orders_judged: int
    queued: int
    delivery: DeliveryReport
    duration_s: float

    def summary(self) -> str:
        """One line for logs and run metadata."""
        return (
            f"{len(self.verdicts)} verdicts, {len(self.firing)} firing "
            f"({len(self.opened)} opened, {len(self.escalated)} escalated, "
            f"{len(self.resolved)} resolved); {self.queued} messages queued, "
            f"{self.delivery.delivered} delivered, {self.delivery.failed} failed, "
            f"{self.delivery.waiting} waiting; {self.duration_s:.2f} s"
        )


def _config(source: AlertConfig | Settings | None) -> AlertConfig:
    if isinstance(source, AlertConfig):
        return source
    if isinstance(source, Settings):
        return AlertConfig.from_env(data_dir=source.data_dir)
    return AlertConfig.from_env()


def evaluate_and_notify(
    warehouse: Warehouse,
    config: AlertConfig | Settings | None = None,
    now: datetime | None = None,
    *,
    specs: Mapping[str, ProviderSpec] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> AlertRun:
    """Evaluate every rule and SLO for every provider, update incidents and `slo_status`, queue
    a message per incident change and target, and deliver pending messages.

    Args:
        warehouse: the read-write warehouse.
        config: the alert configuration; `Settings` (or None) reads it from the environment.
        now: the evaluation time (default: the clock).
        specs: provider specs by slug (default: the registry's).
        sleep: how retries wait (tests pass a recorder).

    Returns:
        What was found and done. A failed delivery is recorded in `alerts`, never raised.

    Raises:
        WarehouseLockedError: the warehouse stayed locked; nothing was changed.
    """
    started = time.monotonic()
    alert_config = _config(config)
    now = (now or datetime.now(UTC)).astimezone(UTC)
    specs = dict(specs if specs is not None else {s.slug: s for s in REGISTRY.specs()})
    names = {slug: spec.display_name for slug, spec in specs.items()}
    with warehouse.transaction() as con:
        current = incidents.open_incidents(con)
        polled = query(
            con,
            "SELECT DISTINCT provider FROM observations WHERE polled_at > ? ORDER BY provider",
            [now - _longest_window(alert_config)],
        )["provider"].to_list()
        # Registered providers, then any other the log or an open incident names.
        providers = list(dict.fromkeys([*specs, *polled, *(p for p, _ in current)]))
        rules_by_provider = {p: alert_config.rules_for(p) for p in providers}
        applicable = slo.applicable({p: alert_config.slos_for(p) for p in providers}, specs)
        judged = slo.judge_new_orders(con, applicable, now, alert_config.lookback_s)
        slo.prune(con, now, alert_config.budget_period_s + alert_config.lookback_s)
        status = slo.slo_windows(con, applicable, now, alert_config.budget_period_s)
        slo.write_status(con, status)
        verdicts = [
            *rules.evaluate_rules(con, rules_by_provider, now),
            *slo.burn_verdicts(status, applicable),
        ]
        evaluated = {(v.provider, v.rule) for v in verdicts}
        changed, changes = incidents.reconcile(current, verdicts, now, evaluated=evaluated)
        incidents.store_incidents(con, changed)
        messages = [
            incidents.message_for(
                change,
                names.get(change.incident.provider, change.incident.provider),
                alert_config.status_url,
            )
            for change in changes
        ]
        queued = incidents.queue_messages(con, messages, alert_config.targets, now)
        firing = query(
            con, "SELECT provider, rule, severity FROM alert_incidents WHERE state = 'firing'"
        )
    for message in messages:
        log = logger.warning if message.state == "firing" else logger.info
        log("%s — %s", message.title, message.detail)
    if messages and not alert_config.targets:
        logger.warning("no alert targets configured: incidents recorded, nothing sent")
    delivery = deliver_pending(
        warehouse, alert_config.targets, alert_config.delivery, now, sleep=sleep
    )
    firing_changes = [c.incident for c in changes if c.state == "firing"]
    run = AlertRun(
        evaluated_at=now,
        verdicts=tuple(verdicts),
        opened=tuple(
            (i.provider, i.rule, i.severity) for i in firing_changes if i.opened_at == now
        ),
        escalated=tuple(
            (i.provider, i.rule, i.severity) for i in firing_changes if i.opened_at != now
        ),
        resolved=tuple(
            (c.incident.provider, c.incident.rule) for c in changes if c.state == "resolved"
        ),
        firing=tuple(
            (r["provider"], r["rule"], r["severity"]) for r in firing.iter_rows(named=True)
        ),
        orders_judged=judged,
        queued=queued,
        delivery=delivery,
        duration_s=time.monotonic() - started,
    )
    logger.info("alerts evaluated: %s", run.summary())
    return run


def _longest_window(config: AlertConfig) -> timedelta:
    """The longest threshold-rule window: providers polled within it are evaluated."""
    rules_all = [*config.rules, *(r for rs in config.provider_rules.values() for r in rs)]
    longest = max((lv.window_s for r in rules_all for lv in r.levels), default=3600.0)
    return timedelta(seconds=longest)
