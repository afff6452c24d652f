"""`pipeline prune`: move old per-poll rows and payload bodies out of the warehouse.

Every published figure stays as it was: the status history and the rollups already hold what
those rows said (`pipeline.retention`). The rows go to Parquet under `<data dir>/archive/`
unless `--no-archive` is given. `pipeline refresh` does the same on its own when
`PIPELINE_KEEP_POLLS_DAYS` is set.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.retention import PruneResult

EXIT_LOCKED = 1
"""Another process held the warehouse past `PIPELINE_LOCK_TIMEOUT_S`: try again later."""
EXIT_NO_WAREHOUSE = 2
"""No warehouse in the data directory."""
EXIT_USAGE = 64
"""No age given, on the command line or in `PIPELINE_KEEP_POLLS_DAYS`."""


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of `pipeline prune`."""
    parser.add_argument(
        "--older-than-days",
        type=_days,
        default=None,
        help="prune polls older than this many days (default: PIPELINE_KEEP_POLLS_DAYS)",
    )
    parser.add_argument(
        "--no-archive",
        action="store_true",
        help="delete the rows instead of moving them to Parquet under <data dir>/archive/",
    )


def run(args: argparse.Namespace) -> int:
    """Prune and print what moved; non-zero if the warehouse is missing or locked."""
    from pipeline.retention import prune_older_than
    from pipeline.settings import Settings
    from pipeline.warehouse import Warehouse, WarehouseLockedError

    settings = Settings.from_env()
    days = args.older_than_days or settings.keep_polls_days
    if days is None:
        print(
            "prune: say how old: --older-than-days N or PIPELINE_KEEP_POLLS_DAYS", file=sys.stderr
        )
        return EXIT_USAGE
    if not settings.warehouse_path.is_file():
        print(f"prune: no warehouse at {settings.warehouse_path}", file=sys.stderr)
        return EXIT_NO_WAREHOUSE
    warehouse = Warehouse(settings.warehouse_path, lock_timeout_s=settings.lock_timeout_s)
    try:
        result = prune_older_than(
            warehouse, days, settings.archive_dir, keep_archive=not args.no_archive
        )
    except WarehouseLockedError as error:
        print(f"prune: nothing pruned: {error}", file=sys.stderr)
        return EXIT_LOCKED
    print(describe(result))
    return 0


def describe(result: PruneResult) -> str:
    """One line saying what a prune did."""
    if result.cutoff is None:
        return "prune: nothing pruned: run `pipeline refresh` first (no derived tables yet)"
    where = f"moved to {result.archive_dir}" if result.archive_dir else "deleted"
    return (
        f"prune: {result.observations:,} observations and {result.payloads:,} payload bodies "
        f"polled before {result.cutoff:%Y-%m-%d %H:%M:%S} UTC {where}"
    )


def _days(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("expected a positive number of days")
    return value
