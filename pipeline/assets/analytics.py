"""Derived assets: the status history, the analytics tables and the published warehouse.

They refresh by declarative automation (see `pipeline.assets.automation.derived_condition`) and
write the warehouse, so they share the `warehouse_writer` pool with ingestion.
"""

import base64

import dagster as dg
import polars as pl

from pipeline.assets.automation import derived_condition
from pipeline.assets.ingestion import WRITER_POOL, observations_key
from pipeline.assets.resources import ProvidersResource, WarehouseResource
from pipeline.derived import (
    HISTORY_TABLE,
    METRIC_TABLES,
    ROLLUPS_STATE,
    refresh_rollups,
    refresh_status_history,
    write_metrics,
)
from pipeline.polllog import FoldResult, fold_poll_logs
from pipeline.providers.registry import PROVIDERS
from pipeline.records import RECORD_TABLES
from pipeline.report import build_report, default_report_path, sandbox_truth_path
from pipeline.retention import OBSERVATION_ARCHIVE, prune_older_than
from pipeline.warehouse.publish import publish_copy


@dg.asset(
    name=HISTORY_TABLE,
    group_name="history",
    deps=[observations_key(slug) for slug in PROVIDERS],
    pool=WRITER_POOL,
    automation_condition=derived_condition(),
    kinds={"duckdb", "polars"},
    description=(
        "One row per order and state interval, with the polls that bound each change; and the "
        "per-order time-to-event records of the orders it changed (tables code_records, "
        "completion_records, expiry_records)."
    ),
)
def status_history(
    warehouse: WarehouseResource, providers: ProvidersResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """Fold the poll log and the observations since the last refresh into the history."""
    folded = _fold_log(warehouse, providers)
    with warehouse.warehouse().transaction() as con:
        update = refresh_status_history(con)
        totals = con.sql(
            f"SELECT count(*) AS n, count(*) FILTER (WHERE is_impossible_transition) AS bad "
            f"FROM {HISTORY_TABLE}"
        ).fetchall()[0]
        records = {
            table: int(con.sql(f"SELECT count(*) FROM {table}").fetchall()[0][0])
            for table in RECORD_TABLES
        }
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(int(totals[0])),
            "mode": dg.MetadataValue.text(update.mode),
            "new_observations": dg.MetadataValue.int(update.new_observations),
            "rows_written": dg.MetadataValue.int(update.rows_written),
            "impossible_transitions": dg.MetadataValue.int(int(totals[1])),
            **_fold_metadata(folded),
            **{f"{table}_rows": dg.MetadataValue.int(n) for table, n in records.items()},
        }
    )


def _fold_log(warehouse: WarehouseResource, providers: ProvidersResource) -> FoldResult:
    """Fold in what sharded pollers wrote to the poll log (`pipeline.polllog`)."""
    settings = providers.settings(warehouse)
    return fold_poll_logs(warehouse.warehouse(), settings.poll_log(), settings.shards_dir)


def _fold_metadata(folded: FoldResult) -> dict[str, dg.MetadataValue]:  # type: ignore[type-arg]
    """The fold's file count, and why the log could not be folded when it could not (what was
    not folded stays in the log for the next materialization)."""
    metadata: dict[str, dg.MetadataValue] = {  # type: ignore[type-arg]
        "log_files_folded": dg.MetadataValue.int(folded.files)
    }
    if folded.error is not None:
        metadata["log_not_folded"] = dg.MetadataValue.text(folded.error)
    if folded.unreadable:
        metadata["log_files_unreadable"] = dg.MetadataValue.text(", ".join(folded.unreadable))
    return metadata


@dg.asset(
    name=ROLLUPS_STATE,
    group_name="history",
    deps=[observations_key(slug) for slug in PROVIDERS],
    pool=WRITER_POOL,
    automation_condition=derived_condition(),
    kinds={"duckdb", "polars"},
    description=(
        "Per provider and minute (hour after two days): polls by error class, rate limiting, "
        "unrecognised statuses and latency buckets (tables poll_rollups, latency_rollups)."
    ),
)
def poll_rollups(
    warehouse: WarehouseResource, providers: ProvidersResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """Fold the poll log and the observations since the last refresh into the rollups."""
    folded = _fold_log(warehouse, providers)
    with warehouse.warehouse().transaction() as con:
        update = refresh_rollups(con)
    return dg.MaterializeResult(
        metadata={
            **_fold_metadata(folded),
            "mode": dg.MetadataValue.text(update.mode),
            "observations_read": dg.MetadataValue.int(update.observations_read),
            **{f"{table}_rows": dg.MetadataValue.int(n) for table, n in update.rows.items()},
        }
    )


@dg.asset(
    name=OBSERVATION_ARCHIVE,
    group_name="history",
    deps=[HISTORY_TABLE, ROLLUPS_STATE],
    pool=WRITER_POOL,
    automation_condition=derived_condition(),
    kinds={"duckdb", "parquet"},
    description=(
        "Polls older than PIPELINE_KEEP_POLLS_DAYS, with the payload bodies only they point "
        "at, moved from the warehouse to Parquet by provider and day (off when unset)."
    ),
)
def observation_archive(
    warehouse: WarehouseResource, providers: ProvidersResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """Move the polls the history and rollups have folded in and retention lets go."""
    if warehouse.keep_polls_days is None:
        return dg.MaterializeResult(metadata={"retention": dg.MetadataValue.text("off")})
    settings = providers.settings(warehouse)
    result = prune_older_than(
        warehouse.warehouse(), warehouse.keep_polls_days, settings.archive_dir
    )
    return dg.MaterializeResult(
        metadata={
            "retention": dg.MetadataValue.text(f"{warehouse.keep_polls_days:g} days"),
            "cutoff": dg.MetadataValue.text(f"{result.cutoff:%Y-%m-%d %H:%M:%S} UTC")
            if result.cutoff
            else dg.MetadataValue.text("none yet"),
            "observations_moved": dg.MetadataValue.int(result.observations),
            "payloads_moved": dg.MetadataValue.int(result.payloads),
            "archive": dg.MetadataValue.path(str(settings.archive_dir.resolve())),
        }
    )


@dg.multi_asset(
    name="analytics",
    specs=[
        dg.AssetSpec(
            table,
            group_name="analytics",
            deps=[HISTORY_TABLE, ROLLUPS_STATE],
            automation_condition=derived_condition(),
            kinds={"duckdb", "polars"},
            description=description,
        )
        for table, description in METRIC_TABLES.items()
    ],
    pool=WRITER_POOL,
)
def analytics(warehouse: WarehouseResource):  # type: ignore[no-untyped-def]
    """Recompute every analytics table from the history, the orders and the rollups."""
    with warehouse.warehouse().transaction() as con:
        written = write_metrics(con)
    for table, rows in written.rows.items():
        frame = written.frames.get(table)
        metadata = (
            headline_metadata(table, frame)
            if frame is not None
            else {"dagster/row_count": dg.MetadataValue.int(rows)}
        )
        yield dg.MaterializeResult(asset_key=table, metadata=metadata)


@dg.asset(
    group_name="reporting",
    deps=list(METRIC_TABLES),
    pool=WRITER_POOL,
    automation_condition=dg.AutomationCondition.eager(),
    kinds={"duckdb"},
    description="Read-only copy of the warehouse for notebooks, the report and BI tools.",
)
def published_warehouse(
    warehouse: WarehouseResource, providers: ProvidersResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """Bring the published copy up to date and swap it in atomically
    (`pipeline.warehouse.publish`)."""
    settings = providers.settings(warehouse)
    done = publish_copy(warehouse.warehouse(), settings.published_path)
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(done.path.absolute())),
            "size_mb": dg.MetadataValue.float(done.path.stat().st_size / 1e6),
            "copied_whole": dg.MetadataValue.bool(done.full),
            "log_rows_added": dg.MetadataValue.int(done.rows_added),
            "log_rows_removed": dg.MetadataValue.int(done.rows_removed),
        }
    )


def headline_metadata(table: str, frame: pl.DataFrame) -> dict[str, dg.MetadataValue]:
    """Row count plus each provider's headline number, as numeric metadata Dagster can plot."""
    metadata: dict[str, dg.MetadataValue] = {
        "dagster/row_count": dg.MetadataValue.int(frame.height)
    }
    if table == "provider_scorecard" and not frame.is_empty():
        columns = ("window", "provider", "polls", "availability", "latency_p95_ms", "score")
        metadata["preview"] = dg.MetadataValue.md(markdown_table(frame.select(columns)))
        return metadata
    headline = {
        "time_to_code": "median_s",
        "time_to_completion": "median_s",
        "expiry_rates": "expiry_rate",
        "provider_reliability": "score",
    }.get(table)
    if headline is None or frame.is_empty() or headline not in frame.columns:
        return metadata
    rows = frame
    if "group_level" in frame.columns:
        rows = frame.filter(pl.col("group_level") == "provider")
    if "order_kind" in rows.columns and table == "expiry_rates":
        rows = rows.group_by("provider").agg(pl.col(headline).mean())
    for row in rows.select("provider", headline).iter_rows():
        if row[1] is not None:
            metadata[f"{row[0]}_{headline}"] = dg.MetadataValue.float(float(row[1]))
    if "median_s" in frame.columns:
        md = rows.select("provider", "n_orders", "median_s", "median_ci_low_s", "median_ci_high_s")
        metadata["preview"] = dg.MetadataValue.md(markdown_table(md))
    return metadata


def markdown_table(frame: pl.DataFrame) -> str:
    """`frame` as a Markdown table for Dagster metadata (three significant digits)."""
    header = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * frame.width + "\n"
    body = "".join("| " + " | ".join(_cell(v) for v in row) + " |\n" for row in frame.iter_rows())
    return header + body


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    return str(value).replace("|", "/")


@dg.asset(
    group_name="reporting",
    deps=[published_warehouse],
    automation_condition=dg.AutomationCondition.eager(),
    kinds={"html"},
    description="Self-contained HTML report over the published warehouse.",
)
def report(warehouse: WarehouseResource, providers: ProvidersResource) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """Render `report.html` from the published copy (never blocks ingestion); on sandbox data
    (its truth file in the data directory) with the true medians beside the estimates."""
    settings = providers.settings(warehouse)
    summary = build_report(
        settings.published_path,
        default_report_path(settings),
        truth_path=sandbox_truth_path(settings),
    )
    metadata: dict[str, dg.MetadataValue] = {
        "path": dg.MetadataValue.path(str(summary.out_path.resolve())),
        "sections": dg.MetadataValue.int(len(summary.sections)),
        "images": dg.MetadataValue.int(summary.n_images),
        "polls": dg.MetadataValue.int(summary.n_polls),
        "orders": dg.MetadataValue.int(summary.n_orders),
        "scorecard": dg.MetadataValue.md(markdown_table(summary.scorecard)),
    }
    if summary.key_chart_svg:
        encoded = base64.b64encode(summary.key_chart_svg).decode()
        metadata["time_to_completion"] = dg.MetadataValue.md(
            f"![time to completion](data:image/svg+xml;base64,{encoded})"
        )
    return dg.MaterializeResult(metadata=metadata)
