"""`pipeline refresh`: the derived tables, the published copy and the report, without Dagster.

For teams that run `pipeline poll` from cron. It does what the Dagster derived assets do
(`status_history`, `analytics`, `published_warehouse`, `report`, `alerts`), with the same
functions: the poll log of sharded pollers is folded in (`pipeline.polllog`); the status history
is folded in incrementally (only observations past the last refresh), with the per-order records
of the orders it touched; every analytics table is recomputed; the published read-only copy is
brought up to date; the HTML report is rendered from that copy; and the alert rules and SLOs are
evaluated (messages, status page). With `PIPELINE_KEEP_POLLS_DAYS` set, per-poll rows older
than that move to the Parquet archive after the refresh (`pipeline prune`). The warehouse is
held from the fold through the publish, opened and checkpointed once (a poller writing to it
waits for it meanwhile, as for any writer); the report is rendered after it is released.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time

EXIT_LOCKED = 1
"""Another process held the warehouse past `PIPELINE_LOCK_TIMEOUT_S`: try again later."""
EXIT_NO_WAREHOUSE = 2
"""No warehouse in the data directory (nothing polled yet, or the wrong `PIPELINE_DATA_DIR`)."""


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of `pipeline refresh` (locations come from `PIPELINE_DATA_DIR`)."""
    parser.add_argument(
        "--no-alerts",
        action="store_true",
        help="skip evaluating alert rules and SLOs (and the status page) at the end",
    )


def run(args: argparse.Namespace) -> int:
    """Refresh everything derived and print what was written; non-zero if the warehouse is
    missing or locked."""
    from pipeline.derived import HISTORY_TABLE, METRIC_TABLES, refresh_derived
    from pipeline.polllog import fold_poll_logs
    from pipeline.report import build_report, default_report_path, sandbox_truth_path
    from pipeline.settings import Settings
    from pipeline.warehouse import Warehouse, WarehouseLockedError
    from pipeline.warehouse.connection import connection
    from pipeline.warehouse.publish import publish

    started = time.monotonic()
    settings = Settings.from_env()
    if not settings.warehouse_path.is_file():
        print(
            f"refresh: no warehouse at {settings.warehouse_path}; run `pipeline poll` first "
            "or set PIPELINE_DATA_DIR to the data directory that holds it",
            file=sys.stderr,
        )
        return EXIT_NO_WAREHOUSE
    warehouse = Warehouse(settings.warehouse_path, lock_timeout_s=settings.lock_timeout_s)
    # Held open through the publish: every step's connection then joins this one DuckDB
    # instance, so the warehouse is opened once, and checkpointed once, when it closes.
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(warehouse.connect())
            folded = fold_poll_logs(warehouse, settings.poll_log(), settings.shards_dir)
            if folded.error is not None:  # the rest is refreshed from what the warehouse holds
                print(
                    f"refresh: {folded.error}; the log is folded at the next refresh",
                    file=sys.stderr,
                )
            if folded.unreadable:
                print(
                    f"refresh: {len(folded.unreadable)} poll log files could not be read and are "
                    f"left where they are: {', '.join(folded.unreadable[:5])}",
                    file=sys.stderr,
                )
            written = refresh_derived(warehouse)
        except WarehouseLockedError as error:
            print(f"refresh: nothing refreshed: {error}", file=sys.stderr)
            return EXIT_LOCKED
        if settings.keep_polls_days is not None:  # after the refresh: it folded the rows in
            from pipeline.commands.prune import describe
            from pipeline.retention import prune_older_than

            try:
                pruned = prune_older_than(warehouse, settings.keep_polls_days, settings.archive_dir)
                print(describe(pruned))
            except WarehouseLockedError as error:
                print(f"refresh: refreshed, nothing pruned: {error}", file=sys.stderr)
        if not args.no_alerts:  # before publishing, so the report shows this evaluation
            from pipeline.commands.alerts import notify

            notify(settings, warehouse)
        try:
            published = publish(warehouse, settings.published_path)
        except WarehouseLockedError as error:
            print(f"refresh: tables refreshed, copy not published: {error}", file=sys.stderr)
            return EXIT_LOCKED
    tables = (HISTORY_TABLE, *METRIC_TABLES)
    with connection(published, read_only=True) as con:
        rows = {
            table: con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0] for table in tables
        }
    report = build_report(
        published, default_report_path(settings), truth_path=sandbox_truth_path(settings)
    )
    width = max(len(table) for table in tables)
    for table in tables:
        line = f"{table:<{width}}  {rows[table]:>9,} rows"
        if table == HISTORY_TABLE:
            line += f"  ({written[table]:,} new or updated)"
        print(line)
    size_mb = published.stat().st_size / 1e6
    print(f"published  {published}  (read-only copy, {size_mb:.1f} MB)")
    print(
        f"report     {report.out_path}  ({len(report.sections)} sections, {report.n_images} charts)"
    )
    print(f"refresh: done in {time.monotonic() - started:.1f} s")
    return 0
