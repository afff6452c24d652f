"""Ingestion assets: one `observations/<provider>` asset per provider, filled by one polling window.

Why one multi-asset rather than five assets or a partitioned asset: DuckDB allows a single
read-write process, and a Dagster run costs seconds of start-up on two cores. One run per minute
polls every selected provider concurrently in one process (one writer, in the `warehouse_writer`
pool) for a window of just under a minute, running the sub-minute ticks in-process. Each provider
is still its own asset (subsettable: `can_subset=True`), with its own metadata and checks. A
provider in outage gets no materialization: the healthy providers are materialized first, then the
step fails naming the failed ones, so only their assets show the failure in the UI.
"""

import asyncio
import statistics
from collections.abc import Mapping
from datetime import UTC, datetime

import dagster as dg

from pipeline.assets.checks import CHECK_NAMES, run_checks
from pipeline.assets.resources import ProvidersResource, WarehouseResource
from pipeline.intake import process_inbox
from pipeline.model import PROVIDERS
from pipeline.polling.client import Poller
from pipeline.polling.tick import ProviderTick, TickResult, run_window
from pipeline.providers.registry import ADAPTERS
from pipeline.warehouse import Warehouse

WRITER_POOL = "warehouse_writer"
INGESTION_GROUP = "ingestion"
# Leaves room for run start-up so one run per minute never queues behind the previous one.
DEFAULT_WINDOW_S = 45.0
DEFAULT_TICK_S = 5.0


def observations_key(provider: str) -> dg.AssetKey:
    """The asset key of a provider's observations."""
    return dg.AssetKey(["observations", provider])


class IngestionConfig(dg.Config):
    """How long one run polls, and how often it ticks inside that window."""

    window_s: float = DEFAULT_WINDOW_S
    tick_s: float = DEFAULT_TICK_S


@dg.asset(
    group_name=INGESTION_GROUP,
    pool=WRITER_POOL,
    kinds={"duckdb"},
    description="Orders registered for tracking (CLI, CSV drops in data/inbox/, SQL inserts).",
)
def orders(warehouse: WarehouseResource, providers: ProvidersResource) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """Register CSV files waiting in the inbox, then report the tracked orders per provider."""
    settings = providers.settings(warehouse.data_dir, warehouse.lock_timeout_s)
    store = warehouse.warehouse()
    outcomes = process_inbox(store, settings.inbox_dir) if settings.inbox_dir.is_dir() else []
    rejected = [path.name for path, outcome in outcomes if isinstance(outcome, str)]
    counts = store.read(
        "SELECT provider, count(*) AS n FROM orders GROUP BY provider ORDER BY provider"
    )
    per_provider = dict(counts.iter_rows())
    metadata: dict[str, dg.MetadataValue] = {
        "row_count": dg.MetadataValue.int(sum(per_provider.values())),
        "inbox_files": dg.MetadataValue.int(len(outcomes)),
        "inbox_rejected": dg.MetadataValue.json(rejected),
    }
    for provider in PROVIDERS:
        metadata[f"orders_{provider}"] = dg.MetadataValue.int(int(per_provider.get(provider, 0)))
    return dg.MaterializeResult(metadata=metadata)


@dg.multi_asset(
    name="poll_providers",
    specs=[
        dg.AssetSpec(
            observations_key(slug),
            group_name=INGESTION_GROUP,
            deps=[orders],
            skippable=True,
            kinds={"duckdb", "httpx"},
            description=f"Every poll of {slug}'s status endpoint, one row per attempt.",
        )
        for slug in PROVIDERS
    ],
    check_specs=[
        dg.AssetCheckSpec(name, asset=observations_key(slug))
        for slug in PROVIDERS
        for name in CHECK_NAMES
    ],
    can_subset=True,
    pool=WRITER_POOL,
)
def provider_observations(
    context: dg.AssetExecutionContext,
    config: IngestionConfig,
    warehouse: WarehouseResource,
    providers: ProvidersResource,
):  # type: ignore[no-untyped-def]
    """Poll every selected provider for one window; materialize each healthy provider.

    CSV files dropped in the inbox are registered before every tick, so new orders are polled
    within seconds (the inbox sensor still materializes `orders` for the UI's record).
    """
    selected = [s for s in PROVIDERS if observations_key(s) in context.selected_asset_keys]
    settings = providers.settings(warehouse.data_dir, warehouse.lock_timeout_s)
    store = warehouse.warehouse()

    def register_inbox() -> None:
        if settings.inbox_dir.is_dir():
            process_inbox(store, settings.inbox_dir)

    async def window() -> TickResult:
        async with Poller(settings, {s: ADAPTERS[s] for s in selected}) as poller:
            return await run_window(
                store,
                poller,
                duration_s=config.window_s,
                providers=selected,
                tick_s=config.tick_s,
                before_tick=register_inbox,
            )

    result = asyncio.run(window())
    for error in result.write_errors:
        context.log.error(error)
    failed = [slug for slug in selected if in_outage(result.providers[slug])]
    now = datetime.now(UTC)
    with store.connect() as con:
        for slug in selected:
            if slug in failed:
                continue
            key = observations_key(slug)
            totals = provider_totals(store, slug)
            yield dg.MaterializeResult(
                asset_key=key, metadata=window_metadata(result.providers[slug], totals)
            )
            for check in run_checks(con, key, slug, ADAPTERS[slug].policy, now):
                if (
                    dg.AssetCheckKey(key, check.check_name or "")
                    in context.selected_asset_check_keys
                ):
                    yield check
    if failed:
        raise dg.Failure(
            description=f"no valid answer this window from: {', '.join(failed)}",
            metadata={
                slug: dg.MetadataValue.json(dict(result.providers[slug].errors)) for slug in failed
            },
        )


def in_outage(tick: ProviderTick) -> bool:
    """A provider asked at least once that never answered validly, or was not asked at all
    because its circuit was open or its credentials were refused."""
    return tick.ok == 0 and (tick.attempts > 0 or bool(tick.skipped))


def provider_totals(store: Warehouse, provider: str) -> dict[str, int]:
    """Rows stored so far for a provider, and its orders still open."""
    frame = store.read(
        "SELECT (SELECT count(*) FROM observations WHERE provider = ?) AS row_count, "
        "(SELECT count(*) FROM orders o LEFT JOIN order_tracking t USING (provider, order_id) "
        " WHERE o.provider = ? AND NOT coalesce(t.is_terminal, false)) AS open_orders",
        [provider, provider],
    )
    return {k: int(v) for k, v in frame.row(0, named=True).items()}


def window_metadata(tick: ProviderTick, totals: dict[str, int]) -> dict[str, dg.MetadataValue]:
    """Numeric metadata (Dagster plots it over time) and a short Markdown summary."""
    latencies = sorted(tick.latencies_ms)
    p50 = statistics.median(latencies) if latencies else 0.0
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))] if latencies else 0.0
    availability = tick.ok / tick.attempts if tick.attempts else 1.0
    metadata: dict[str, dg.MetadataValue] = {
        "dagster/row_count": dg.MetadataValue.int(totals["row_count"]),
        "open_orders": dg.MetadataValue.int(totals["open_orders"]),
        "polls": dg.MetadataValue.int(tick.attempts),
        "orders_polled": dg.MetadataValue.int(tick.polled),
        "availability": dg.MetadataValue.float(availability),
        "latency_p50_ms": dg.MetadataValue.float(p50),
        "latency_p95_ms": dg.MetadataValue.float(p95),
        "errors": dg.MetadataValue.int(sum(tick.errors.values())),
        "error_mix": dg.MetadataValue.json(dict(sorted(tick.errors.items()))),
    }
    for state, count in sorted(tick.states.items()):
        metadata[f"state_{state}"] = dg.MetadataValue.int(count)
    metadata["summary"] = dg.MetadataValue.md(
        f"**{tick.attempts} polls** of {tick.polled} orders, availability "
        f"{availability:.1%}, latency p50 {p50:.0f} ms / p95 {p95:.0f} ms; "
        f"{totals['open_orders']} orders still open.\n\n"
        + _markdown_table(("state", "answers"), tick.states)
        + "\n"
        + _markdown_table(("error", "count"), tick.errors)
    )
    return metadata


def _markdown_table(header: tuple[str, str], counts: Mapping[str, int]) -> str:
    rows = [f"| {k} | {v} |" for k, v in sorted(counts.items())] or ["| - | 0 |"]
    return "\n".join([f"| {header[0]} | {header[1]} |", "|---|---|", *rows]) + "\n"
