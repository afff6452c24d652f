"""Ingestion assets: one `observations/<provider>` asset per provider, filled by a long polling run.

Why one multi-asset rather than five assets or a partitioned asset: DuckDB allows a single
read-write process, and a Dagster run costs seconds of start-up on two cores. One run polls every
selected provider concurrently in one process for a long window (30 minutes by default; the
`ingestion_sensor` chains the runs so polling pauses only a few seconds between them). Each
provider is still its own asset (subsettable: `can_subset=True`), with its own metadata and checks.

A run reports to the UI every `report_every_s` (a minute by default), not only at its end: the
polling runs on an asyncio loop in a background thread, and the op's own thread (the only one
allowed to hand events to Dagster) waits on a queue for each minute's figures. Per provider and
minute it records an `AssetMaterialization` with the minute's metadata and evaluates the checks.
Check *results* are op outputs, which Dagster accepts once per run, so the minutes in between
report them as bare `AssetCheckEvaluation` events (allowed any number of times; the UI shows the
latest), and the last report of the run yields the `MaterializeResult`s and `AssetCheckResult`s.

A provider in outage (asked and never answered validly, or not askable: circuit open, credentials
refused) gets no materialization for that minute and a failed `answering` check; the others carry
on. At the end the step fails naming every provider that had such a minute, and a provider still
down in the last report gets no output, so only its asset shows the failure in the UI.
"""

import asyncio
import collections
import contextlib
import dataclasses
import queue
import statistics
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import duckdb

from pipeline.assets.checks import CHECK_NAMES, run_checks
from pipeline.assets.resources import ProvidersResource, WarehouseResource
from pipeline.intake import process_inbox
from pipeline.polling import event_loop
from pipeline.polling.client import Poller
from pipeline.polling.tick import ProviderTick, TickResult, run_window
from pipeline.providers.registry import ADAPTERS, PROVIDERS, get_spec
from pipeline.warehouse import Warehouse, WarehouseLockedError

WRITER_POOL = "warehouse_writer"
# Ingestion holds a pool of its own for its whole run: one polling op at a time (runs launched by
# hand included), while the derived assets, in `warehouse_writer`, still run during a long window
# and take turns with it on DuckDB's file lock (both sides wait with backoff).
INGESTION_POOL = "ingestion"
INGESTION_GROUP = "ingestion"
# 30 minutes: 48 runs a day. Longer runs mean fewer hand-overs and less instance history.
DEFAULT_WINDOW_S = 1800.0
DEFAULT_TICK_S = 5.0
DEFAULT_REPORT_EVERY_S = 60.0
ANSWERING_CHECK = "answering"
# Run tag set when polling starts: when the window ends (epoch seconds), for the ingestion sensor.
POLLS_UNTIL_TAG = "pipeline/polls_until"
# The op's thread wakes this often while waiting for a report, so an interruption is seen soon.
QUEUE_WAIT_S = 1.0
# How long a cancelled polling thread gets to close its connections before the op gives up on it.
STOP_TIMEOUT_S = 30.0
# Pauses between attempts at reading one report's figures: the file may be held a while by a
# derived run, which must not end a 30-minute run.
REPORT_RETRY_PAUSES_S = (0.5, 2.0)

ReportEvent = (
    dg.MaterializeResult  # type: ignore[type-arg]
    | dg.AssetMaterialization
    | dg.AssetCheckResult
    | dg.AssetCheckEvaluation
)


def observations_key(provider: str) -> dg.AssetKey:
    """The asset key of a provider's observations."""
    return dg.AssetKey(["observations", provider])


class IngestionConfig(dg.Config):
    """How long one run polls, how often it re-reads due orders, and how often it reports.

    Attributes:
        window_s: length of the run's polling window, in seconds.
        tick_s: how often due orders are re-read and the inbox is registered.
        report_every_s: how often each provider's figures and checks reach the UI.
    """

    window_s: float = DEFAULT_WINDOW_S
    tick_s: float = DEFAULT_TICK_S
    report_every_s: float = DEFAULT_REPORT_EVERY_S


@dg.asset(
    group_name=INGESTION_GROUP,
    pool=WRITER_POOL,
    kinds={"duckdb"},
    description="Orders registered for tracking (CLI, CSV drops in data/inbox/, SQL inserts).",
)
def orders(warehouse: WarehouseResource, providers: ProvidersResource) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """Register CSV files waiting in the inbox, then report the tracked orders per provider."""
    settings = providers.settings(warehouse)
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


@dataclasses.dataclass
class IntervalReport:
    """What polling did since the previous report, handed from the polling thread to the op."""

    result: TickResult
    interval_s: float
    final: bool


@dataclasses.dataclass
class WindowEnded:
    """The polling thread is done: the window's totals, or what stopped it."""

    total: TickResult | None
    error: BaseException | None


class IntervalReporter:
    """Folds `run_window`'s tick results into one report every `report_every_s`.

    `on_tick` runs on the event-loop thread and only moves plain data onto a queue; the op's
    thread takes the reports off with `reports()`. A report due less than half an interval before
    the window ends is folded into the final one, so the last minute never shows as a stub.
    """

    def __init__(
        self,
        providers: list[str],
        *,
        window_s: float,
        report_every_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._providers = providers
        self._report_every_s = report_every_s
        self._clock = clock
        now = clock()
        self._deadline = now + window_s
        self._interval_started = now
        self._next_report_at = now + report_every_s
        self._interval = self._empty()
        self._queue: queue.Queue[IntervalReport | WindowEnded] = queue.Queue()
        self.ended: WindowEnded | None = None

    def _empty(self) -> TickResult:
        return TickResult({slug: ProviderTick(slug) for slug in self._providers})

    def on_tick(self, result: TickResult) -> None:
        """Add one tick's result; hand over a report when one is due."""
        self._interval.merge(result)
        now = self._clock()
        if now >= self._next_report_at and self._deadline - now >= self._report_every_s / 2:
            self._hand_over(now, final=False)
            while self._next_report_at <= now:
                self._next_report_at += self._report_every_s

    def finish(self, total: TickResult | None, error: BaseException | None = None) -> None:
        """Hand over the last report and the end of the window (called once, at the end).

        A window that failed has no last report: its figures would pass for a quiet minute.
        """
        if error is None:
            self._hand_over(self._clock(), final=True)
        self._queue.put(WindowEnded(total, error))

    def _hand_over(self, now: float, *, final: bool) -> None:
        self._queue.put(IntervalReport(self._interval, now - self._interval_started, final))
        self._interval = self._empty()
        self._interval_started = now

    def reports(self, wait_s: float = QUEUE_WAIT_S) -> Iterator[IntervalReport]:
        """Each report as it arrives, until the window has ended (then `ended` is set)."""
        while True:
            try:
                item = self._queue.get(timeout=wait_s)
            except queue.Empty:
                continue
            if isinstance(item, WindowEnded):
                self.ended = item
                return
            yield item


class PollingThread(threading.Thread):
    """Runs one coroutine (the polling window) on its own event loop in a daemon thread.

    Whatever ends it (the window's end, an error, `cancel()`), it calls `on_end` with the result
    or the error, so whoever waits on the reports is never left waiting.
    """

    def __init__(
        self,
        window: Callable[[], Coroutine[Any, Any, TickResult]],
        on_end: Callable[[TickResult | None, BaseException | None], None],
    ) -> None:
        super().__init__(name="ingestion-polling", daemon=True)
        self._window = window
        self._on_end = on_end
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None

    def run(self) -> None:
        total: TickResult | None = None
        error: BaseException | None = None
        try:
            total = event_loop.run(self._main())
        except BaseException as caught:  # handed to the op's thread, which raises it
            error = caught
        finally:
            self._on_end(total, error)

    async def _main(self) -> TickResult:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        return await self._window()

    def cancel(self) -> None:
        """Ask the window to stop now (from any thread); its connections close on the way out."""
        loop, task = self._loop, self._task
        if loop is None or task is None:
            return
        # A loop that has already closed has nothing left to stop.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(task.cancel)


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
        for name in (ANSWERING_CHECK, *CHECK_NAMES)
    ],
    can_subset=True,
    pool=INGESTION_POOL,
)
def provider_observations(
    context: dg.AssetExecutionContext,
    config: IngestionConfig,
    warehouse: WarehouseResource,
    providers: ProvidersResource,
) -> Iterator[ReportEvent]:
    """Poll every selected provider for one window, reporting each provider every minute.

    CSV files dropped in the inbox are registered on every tick, so new orders are polled
    within seconds (the inbox sensor materializes `orders` only while no run polls).
    """
    selected = [s for s in PROVIDERS if observations_key(s) in context.selected_asset_keys]
    settings = providers.settings(warehouse)
    store = warehouse.warehouse()
    reporter = IntervalReporter(
        selected, window_s=config.window_s, report_every_s=config.report_every_s
    )

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
                on_tick=reporter.on_tick,
                before_tick=register_inbox,
            )

    polling = PollingThread(window, reporter.finish)
    outage_reports: collections.Counter[str] = collections.Counter()
    still_down: list[str] = []
    report_count = 0
    context.instance.add_run_tags(
        context.run.run_id, {POLLS_UNTIL_TAG: f"{time.time() + config.window_s:.0f}"}
    )
    polling.start()
    try:
        for report in reporter.reports():
            report_count += 1
            for error in report.result.write_errors:
                context.log.error(error)
            down = [
                slug
                for slug in selected
                if in_outage(report.result.providers[slug], was_down=slug in still_down)
            ]
            outage_reports.update(down)
            still_down = down
            yield from report_with_retries(context, store, selected, report, down)
    finally:
        if polling.is_alive():  # interrupted (run cancelled): stop polling before leaving
            polling.cancel()
            polling.join(timeout=STOP_TIMEOUT_S)
    ended = reporter.ended
    if ended is not None and ended.error is not None:
        raise ended.error
    if outage_reports:
        raise dg.Failure(
            description="no valid answer from "
            + ", ".join(
                f"{slug} in {outage_reports[slug]} of {report_count} reports"
                + (" (still down at the end)" if slug in still_down else " (recovered)")
                for slug in selected
                if slug in outage_reports
            ),
            metadata={
                slug: dg.MetadataValue.json(
                    dict(ended.total.providers[slug].errors) if ended and ended.total else {}
                )
                for slug in outage_reports
            },
        )


def report_with_retries(
    context: dg.AssetExecutionContext,
    store: Warehouse,
    selected: list[str],
    report: IntervalReport,
    down: list[str],
) -> list[ReportEvent]:
    """`report_events`, tried again when the warehouse could not be read; a report in the
    middle of the run that still fails is skipped (the polling carries on), the final one raises.
    """
    for pause_s in (*REPORT_RETRY_PAUSES_S, None):
        try:
            return report_events(context, store, selected, report, down)
        except (duckdb.Error, WarehouseLockedError) as error:
            if pause_s is None and report.final:
                raise
            context.log.warning(f"report figures not read: {type(error).__name__}: {error}")
            if pause_s is not None:
                time.sleep(pause_s)
    return []


def report_events(
    context: dg.AssetExecutionContext,
    store: Warehouse,
    selected: list[str],
    report: IntervalReport,
    down: list[str],
) -> list[ReportEvent]:
    """One report's events: a materialization per provider not in outage, then its checks.

    The final report yields outputs (`MaterializeResult`, `AssetCheckResult`); the ones before
    it yield events Dagster accepts any number of times in a run.
    """
    events: list[ReportEvent] = []
    now = datetime.now(UTC)
    with store.connect() as con:
        for slug in selected:
            key = observations_key(slug)
            tick = report.result.providers[slug]
            if slug not in down:
                metadata = window_metadata(tick, provider_totals(store, slug))
                metadata["interval_s"] = dg.MetadataValue.float(round(report.interval_s, 1))
                events.append(
                    dg.MaterializeResult(asset_key=key, metadata=metadata)
                    if report.final
                    else dg.AssetMaterialization(asset_key=key, metadata=metadata)
                )
            checks = [
                answering_check(key, tick, report.interval_s, down=slug in down),
                *run_checks(con, key, get_spec(slug), now),
            ]
            for check in checks:
                check_key = dg.AssetCheckKey(key, check.check_name or "")
                if check_key not in context.selected_asset_check_keys:
                    continue
                events.append(check if report.final else as_evaluation(check_key, check))
    return events


def as_evaluation(key: dg.AssetCheckKey, result: dg.AssetCheckResult) -> dg.AssetCheckEvaluation:
    """A check result as a bare evaluation event, which (unlike an `AssetCheckResult`, an op
    output) may be yielded many times in one run."""
    return dg.AssetCheckEvaluation(
        asset_key=key.asset_key,
        check_name=key.name,
        passed=result.passed,
        metadata=result.metadata,
        severity=result.severity,
        description=result.description,
        blocking=False,
    )


def in_outage(tick: ProviderTick, *, was_down: bool = False) -> bool:
    """A provider asked at least once that never answered validly, or was not asked at all
    because its circuit was open or its credentials were refused.

    A provider not asked at all (nothing due, or backing off after errors) proves nothing
    either way: it keeps its previous verdict (`was_down`).
    """
    if tick.ok:
        return False
    return tick.attempts > 0 or bool(tick.skipped) or was_down


def answering_check(
    key: dg.AssetKey, tick: ProviderTick, interval_s: float, *, down: bool
) -> dg.AssetCheckResult:
    """Whether the provider answered validly since the previous report (`down`: it did not).

    Fails (ERROR) for a provider in outage; a provider with nothing to ask passes.
    """
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=ANSWERING_CHECK,
        passed=not down,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "polls": dg.MetadataValue.int(tick.attempts),
            "valid_answers": dg.MetadataValue.int(tick.ok),
            "interval_s": dg.MetadataValue.float(round(interval_s, 1)),
            "error_mix": dg.MetadataValue.json(dict(sorted(tick.errors.items()))),
            "not_asked": dg.MetadataValue.json(dict(sorted(tick.skipped.items()))),
        },
    )


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
