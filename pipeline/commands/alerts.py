"""`pipeline alerts`: evaluate the alert rules and SLOs once, deliver firing and recovery
messages, and rewrite the status page, without Dagster.

`pipeline poll` and `pipeline refresh` do the same at their end (unless `--no-alerts`), so a cron
recipe of the two alerts as Dagster does. Configuration: the `PIPELINE_ALERTS_*` variables (see
`pipeline/alerts/config.py`).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.settings import Settings
    from pipeline.warehouse import Warehouse

EXIT_FAILED = 1


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of `pipeline alerts` (none: locations come from `PIPELINE_DATA_DIR`)."""


def run(args: argparse.Namespace) -> int:
    """Evaluate once and print what happened; non-zero if it could not run."""
    from pipeline.settings import Settings
    from pipeline.warehouse import Warehouse

    settings = Settings.from_env()
    if not settings.warehouse_path.is_file():
        print(f"alerts: no warehouse at {settings.warehouse_path}", file=sys.stderr)
        return EXIT_FAILED
    warehouse = Warehouse(settings.warehouse_path, lock_timeout_s=settings.lock_timeout_s)
    return 0 if notify(settings, warehouse) else EXIT_FAILED


def notify(settings: Settings, warehouse: Warehouse) -> bool:
    """Evaluate, deliver and write the status page, printing a line each; False (and a reason
    on stderr) when the configuration is wrong or the warehouse stayed locked. Never raises:
    alerting must not break the poll or refresh it follows."""
    from pipeline.alerts import AlertConfig, evaluate_and_notify, write_status_page

    try:
        config = AlertConfig.from_env(data_dir=settings.data_dir)
        outcome = evaluate_and_notify(warehouse, config)
        page = write_status_page(warehouse, config.status_dir)
    except Exception as error:  # a broken alert setup is reported, never fatal to polling
        print(f"alerts: not evaluated: {error}", file=sys.stderr)
        return False
    print(f"alerts     {outcome.summary()}")
    for provider, rule, severity in outcome.firing:
        print(f"  firing   {provider}: {rule} ({severity})")
    print(f"status     {page.index}")
    return True
