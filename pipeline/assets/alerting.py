"""The `alerts` asset: every minute, evaluate the alert rules and SLOs, deliver firing and
recovery messages, and rewrite the provider status page.

It reads the poll log directly (not the derived tables), so an outage is noticed while ingestion
runs, within a minute of the rule's window filling. It writes its own tables (`alert_incidents`,
`alerts`, `slo_events`, `slo_status`), so it shares the `warehouse_writer` pool. Its check,
`no_firing_incidents`, shows in the UI whether any provider has an incident open; the metadata
carries the error budgets and burn rates.
"""

from __future__ import annotations

import dagster as dg

from pipeline.alerts import AlertConfig, evaluate_and_notify, write_status_page
from pipeline.assets.analytics import markdown_table
from pipeline.assets.automation import derived_condition
from pipeline.assets.ingestion import WRITER_POOL, observations_key
from pipeline.assets.resources import ProvidersResource, WarehouseResource
from pipeline.providers.registry import PROVIDERS

ALERTS_CRON = "* * * * *"
"""Rules look at windows of minutes: evaluate every minute."""
ALERTS_GROUP = "alerts"
INCIDENTS_CHECK = "no_firing_incidents"


@dg.asset(
    name="alerts",
    group_name=ALERTS_GROUP,
    deps=[observations_key(slug) for slug in PROVIDERS],
    pool=WRITER_POOL,
    automation_condition=derived_condition(ALERTS_CRON),
    kinds={"duckdb"},
    check_specs=[dg.AssetCheckSpec(INCIDENTS_CHECK, asset="alerts")],
    description="Alert rules and SLOs per provider: incidents, messages, budgets, status page.",
)
def alerts(
    warehouse: WarehouseResource,  # type: ignore[type-arg]
    providers: ProvidersResource,  # type: ignore[type-arg]
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """Evaluate, notify, and write the status page; firing incidents fail the check (WARN)."""
    settings = providers.settings(warehouse)
    config = AlertConfig.from_env(data_dir=settings.data_dir)
    store = warehouse.warehouse()
    run = evaluate_and_notify(store, config)
    page = write_status_page(store, config.status_dir)
    budgets = store.read(
        "SELECT provider, slo, window_name, good, total, error_budget_remaining, burn_rate "
        "FROM slo_status ORDER BY provider, slo, window_s"
    )
    firing = [f"{provider}: {rule} ({severity})" for provider, rule, severity in run.firing]
    return dg.MaterializeResult(
        metadata={
            "summary": dg.MetadataValue.text(run.summary()),
            "firing": dg.MetadataValue.json(firing),
            "error_budgets": dg.MetadataValue.md(
                markdown_table(budgets) if not budgets.is_empty() else "No SLO evaluated yet."
            ),
            "status_page": dg.MetadataValue.path(str(page.index.resolve())),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=INCIDENTS_CHECK,
                passed=not run.firing,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"firing": dg.MetadataValue.json(firing)},
            )
        ],
    )
