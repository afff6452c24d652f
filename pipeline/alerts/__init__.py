"""Tell people: alert rules, SLOs with error budgets, delivery, and a provider status page.

Entry points:

- `evaluate_and_notify(warehouse, config_or_settings, now=None) -> AlertRun`: evaluate every
  threshold rule and SLO per provider, update incidents and `slo_status`, queue and deliver
  firing and recovery messages. Call it every minute.
- `write_status_page(warehouse, out_dir) -> StatusPage`: `index.html` and shields.io badges.
- `AlertConfig.from_env()`: the configuration (environment variables, optional TOML file).

Modules: `config` (what to alert on, where to send), `rules` (threshold rules over the poll
log), `slo` (orders judged per SLO, budgets, burn rates), `verdicts` (what a rule says),
`incidents` (open / escalate / resolve, and the message outbox), `messages` (words and payload
shapes), `delivery` (webhook and SMTP with retries and a rate limit), `status_page`, `run`.

Tables: `alert_incidents`, `alerts` (one row per message and target), `slo_events` (one judged
order per SLO), `slo_status` (latest figures per provider, SLO and window).
"""

from pipeline.alerts.config import AlertConfig
from pipeline.alerts.run import AlertRun, evaluate_and_notify
from pipeline.alerts.status_page import StatusPage, write_status_page

__all__ = ["AlertConfig", "AlertRun", "StatusPage", "evaluate_and_notify", "write_status_page"]
