"""Truth benchmark: the product's time-to-event and expiry estimates against the sandbox's truth.

Each replication runs the real path on simulated time: the workload creates orders through the
sandbox's create endpoints (HTTP over an in-process transport), intake registers them in a DuckDB
warehouse, the real scheduler (`ProviderLoop`: per-order phase, cadence per state, due slack,
refresh every 5 s) polls them through the real `Poller` and adapters, the real writer stores every
answer, and at the stop the real status history and analytics are built. The sandbox runs on a
fake clock that the loop moves from one event (a due poll, an arrival, a refresh) to the next, as
the provider's loop sleeps until its next order is due; so hours of polling take seconds, and the
scheduler's decisions are the ones it makes live.

Per replication: one provider, one seed, one cadence/event-time ratio (every cadence of the
provider's policy is scaled so that its cadence in `processing` is `ratio` x the population median
time to the event), and a stop time that leaves a varying share of orders open. Each replication
draws its own orders (`Replication.sandbox_seed`), so coverage counts independent samples.
Three truths:

- *same orders*: the tracked orders' median from their full sandbox timelines (exact times, every
  order followed to its end), the yardstick of the issue's target;
- *as seen*: the same orders' exact timelines cut at the stop (open orders censored there): what
  continuous watching would have shown, so the estimate's distance to it is what polling costs;
- *population*: the lifecycle's median and expiry rate, from `PILOT_ORDERS` drawn timelines. A
  95 % interval is a statement about these: against the same orders it must over-cover (their
  figures are closer to the data than the population's are), and fully resolved exact data
  would need no interval.

Targets, per provider:
- |median - same orders' median| <= max(cadence / 4, 5 % of it) in >= 95 % of replications;
- the 95 % CI of the median covers the population median in 93-97 % of replications;
- the same for the expiry rate at its horizon (error <= 5 points of the same orders' share,
  its interval covering the population's rate in 93-97 %).

With many orders still open, the unseen outcomes alone move the same orders' median by more than
5 % at a few hundred orders: the "as seen" score shows how much of a miss is polling's.

Command (see bench/README.md for the time it took):

    .venv/bin/python bench/truth.py --jobs 2 --seeds 8  # every provider, 4 ratios x 8 seeds
    .venv/bin/python bench/truth.py --providers baanx --seeds 4 --jobs 2 --append  # add a run
    .venv/bin/python bench/truth.py --providers baanx --first-seed 4 --seeds 4 --append  # more
    .venv/bin/python bench/truth.py --providers smsonline --seeds 3 --out look.json  # a look
    .venv/bin/python bench/truth.py --rescore --out bench/results/truth.json  # today's pilot

Results: `bench/results/truth.json` (every replication, and the summary per provider; 800
orders each), `bench/results/truth_200.json` (the same at 200 orders).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import copy
import dataclasses
import json
import math
import multiprocessing
import os
import platform
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx

from pipeline.analytics.survival import Z_95
from pipeline.analytics.truth import measures_code, true_medians
from pipeline.derived import refresh_derived
from pipeline.intake import make_order, register
from pipeline.model import OrderState
from pipeline.polling.client import Poller
from pipeline.polling.provider_loop import MIN_SLEEP_S, ProviderLoop
from pipeline.polling.retry import RetryPolicy
from pipeline.polling.schedule import DUE_SLACK_S
from pipeline.polling.writer import BatchWriter
from pipeline.providers.base import ProviderAdapter
from pipeline.providers.registry import PROVIDERS, REGISTRY, get_adapter
from pipeline.providers.spec import EXPIRY_GRACE_S
from pipeline.settings import Settings
from pipeline.simulator.app import SandboxConfig, build_app, sandbox_of
from pipeline.simulator.clock import FakeClock
from pipeline.simulator.options import ProviderOptions
from pipeline.simulator.provider import sandbox_provider
from pipeline.simulator.workload import Workload, WorkloadConfig
from pipeline.warehouse import Warehouse

RESULTS = Path(__file__).with_name("results") / "truth.json"
BASE_URL = "http://sandbox.test"
START = datetime(2026, 1, 1, tzinfo=UTC)
RATIOS = (0.05, 0.25, 1.0, 2.0)
SEEDS = 6
ORDERS = 800
"""Orders per replication: at 200 the same orders' own median moves past 5 % with outcomes
nobody has seen yet (`bench/results/truth_200.json`); at 800 that noise is inside tolerance."""
FOLLOW_UPS = (0.5, 1.5, None)
"""Stop this many population medians after the last arrival (cycled over seeds), from many
orders open to most resolved; None: one median past the expiry horizon (expiry is measured)."""
ARRIVAL_WINDOW_MEDIANS = 2.0
REFRESH_S = 5.0
"""The loop's refresh period, as live: it stays at 5 s whatever the ratio, as when a provider's
events are faster or slower than the sandbox's."""
PILOT_ORDERS = 400_000
"""Orders in the population pilot. Its median has a sampling error of its own, which moves
every replication's coverage the same way: at 20,000 it is a fifth of one replication's, and
sms4sats' 20,000-order pilot read 112.2 s where 100,000 orders read 111.0 s and the 150
replications' own orders 110.3 s on average; judged against 112.2 s their intervals covered 93 %.
At 400,000 the error is a twentieth of a replication's (about 0.2 s for sms4sats)."""
PILOT_SEED = 1_000_003
"""The population pilot's first sandbox seed (its batches count up from it; replications use
seeds below 10,000)."""
NOMINAL = 0.95
ERROR_SHARE = 0.05
EXPIRY_TOLERANCE = 0.05
TARGETS = {
    "within_tolerance": ">= 0.95 (max(cadence/4, 5 % of the same orders' median))",
    "ci_coverage_population": "0.93 - 0.97",
    "expiry_within_5_points": ">= 0.95",
    "expiry_ci_coverage_population": "0.93 - 0.97",
}
NO_LIMITS: dict[str, dict[str, Any]] = {
    "ordinalsbot": {"status_limit_per_minute": 10**9, "create_limit": 10**9}
}
"""Sandbox options lifting rate limits: simulated time runs far faster than real clients."""


def full_record(truth: Any) -> dict[str, Any]:
    """A truth record followed to its end (nothing censored before its last transition)."""
    record: dict[str, Any] = truth.to_record()
    record["recorded_at"] = (truth.final.at + timedelta(days=365)).isoformat()
    return record


def _record_at(truth: Any, stop: datetime) -> dict[str, Any]:
    """A truth record as continuous watching would have seen it at `stop`."""
    record: dict[str, Any] = truth.to_record(until=stop)
    record["recorded_at"] = stop.isoformat()
    return record


@dataclasses.dataclass(frozen=True)
class Population:
    """What a provider's lifecycle gives over many orders: the truths a 95 % interval is about."""

    median_s: float
    """Median time to the event (exact times, other outcomes competing)."""
    expiry_rate: float | None
    """Share of the orders of its first expiry window that expired by the horizon (window +
    grace), as `_expiry` counts the same orders' share; None without an expiry window."""


def population(slug: str, orders: int = PILOT_ORDERS) -> Population:
    """The provider's population truths over `orders` orders made as the replications make
    theirs: by the workload, through the sandbox's create endpoint (what a create asks for,
    such as a scheduled send, shapes the lifecycle), `ORDERS` at a time arriving over the
    replications' window, each batch on its own seeds (the sandbox's and the workload's), none
    a replication uses. Each batch needs its own workload choices: batches that all repeated
    one mix of 5SIM's services and countries had a median of 79.8 s over 400,000 orders,
    where orders whose choices are all drawn afresh have 82.6 s. The window is sized from a
    first pilot whose orders arrive at one instant (`arrival_window_s`)."""
    window_s = arrival_window_s(slug)
    rng = random.Random(f"pilot:{slug}")
    batches = [
        sorted(rng.uniform(0, window_s) for _ in range(ORDERS)) for _ in range(-(-orders // ORDERS))
    ]
    return asyncio.run(_pilot(slug, batches))


def arrival_window_s(slug: str, seed: int = PILOT_SEED) -> float:
    """The window the replications' orders arrive over (`ARRIVAL_WINDOW_MEDIANS` medians),
    its median from `ORDERS` orders created at one instant on `seed`."""
    first = asyncio.run(_pilot(slug, [[0.0] * ORDERS], seed=seed))
    return ARRIVAL_WINDOW_MEDIANS * first.median_s


async def _pilot(
    slug: str, batches: list[list[float]], *, seed: int = PILOT_SEED, mix_seed: int | None = None
) -> Population:
    """The truths over batches of orders created at the given seconds from the start, batch
    `b` on seed `seed + b` for the sandbox's draws and the workload's choices; with
    `mix_seed`, every batch repeats the workload choices of that one seed instead
    (`bench/workload_mix.py` measures what that does)."""
    records: dict[tuple[str, str], dict[str, Any]] = {}
    expired = _ExpiredShare(slug)
    for batch, arrivals in enumerate(batches):
        choices = seed + batch if mix_seed is None else mix_seed
        for truth in await created_orders(slug, arrivals, seed + batch, choices):
            records[(slug, f"{batch}:{truth.order_id}")] = full_record(truth)
            expired.count(truth)
    value = true_medians(records, set(records)).get(slug)
    if value is None:
        raise RuntimeError(f"{slug}: fewer than half the orders reach the event")
    return Population(float(value), expired.share)


async def created_orders(
    slug: str, arrivals: list[float], seed: int, choices_seed: int
) -> list[Any]:
    """The sandbox's truth of orders the workload creates at the given seconds from the start
    (the sandbox's draws on `seed`, the workload's choices on `choices_seed`), each followed
    to its end."""
    clock = FakeClock(START)
    app = _sandbox_app(slug, seed, clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        workload = Workload(client, WorkloadConfig(seed=choices_seed), clock=clock)
        for at_s in arrivals:
            clock.set(START + timedelta(seconds=at_s))
            if await workload.create(slug) is None:
                raise RuntimeError(f"{slug}: the sandbox refused a create")
    return [order.truth for order in sandbox_of(app).list_orders(slug)]


def _sandbox_app(slug: str, seed: int, clock: FakeClock) -> Any:
    """The sandbox app on `clock`, the realistic profile, rate limits lifted for `slug`."""
    imitation = sandbox_provider(slug)
    options = dataclasses.replace(imitation.options, **NO_LIMITS.get(slug, {}))
    return build_app(
        SandboxConfig(profile="realistic", seed=seed, options=ProviderOptions(**{slug: options})),
        clock=clock,
    )


def scaled_adapter(slug: str, factor: float) -> ProviderAdapter:
    """The provider's adapter with every cadence and the grace re-check scaled by `factor`, and
    a tracking age long enough for the whole run."""
    adapter = copy.copy(get_adapter(slug))
    spec = adapter.spec  # type: ignore[attr-defined]
    policy = spec.policy
    scaled = dataclasses.replace(
        policy,
        cadence_s={k: v * factor for k, v in policy.cadence_s.items()},
        default_cadence_s=policy.default_cadence_s * factor,
        terminal_grace_s=policy.terminal_grace_s * factor,
        max_tracking_age_s=max(policy.max_tracking_age_s, 10 * 24 * 3600.0),
    )
    adapter.spec = dataclasses.replace(spec, policy=scaled)  # type: ignore[attr-defined]
    return adapter


@dataclasses.dataclass(frozen=True)
class Replication:
    """One run: a provider, a seed, a cadence/event-time ratio and a stop."""

    slug: str
    seed: int
    ratio: float
    follow_up: float | None
    orders: int
    median_s: float
    """The provider's population median time to its event."""

    @property
    def sandbox_seed(self) -> int:
        """The seed of this replication's orders, for the sandbox's draws and the workload's
        choices alike (service, country, channel, product, fee, a scheduled send): its own for
        every seed and ratio, so the replications are independent samples (one set of orders
        shared by the ratios of a seed would count each miss of the population median once per
        ratio; one mix of choices shared by every replication narrows their spread below what
        an interval for independent orders allows)."""
        return self.seed * 100 + round(self.ratio * 20)  # ratios up to 5 stay within 100

    @property
    def cadence_s(self) -> float:
        """The provider's cadence in `processing`, scaled to `ratio` x the population median."""
        return self.ratio * self.median_s

    @property
    def follow_up_s(self) -> float:
        """From the last possible arrival to the stop."""
        if self.follow_up is not None:
            return self.follow_up * self.median_s
        windows = REGISTRY.spec(self.slug).expiry_windows
        horizon = max((w.window_s for w in windows), default=0.0) + EXPIRY_GRACE_S
        return horizon + self.median_s

    @property
    def factor(self) -> float:
        base = REGISTRY.spec(self.slug).policy.cadence_for(OrderState.PROCESSING.value)
        return self.cadence_s / base


async def simulate(rep: Replication, workdir: Path) -> dict[str, Any]:
    """Run one replication; its estimates, truths and counts."""
    clock = FakeClock(START)
    app = _sandbox_app(rep.slug, rep.sandbox_seed, clock)
    warehouse = Warehouse(workdir / "warehouse.duckdb")
    # Held open for the run, so the many short transactions share one database instance
    # instead of opening (and checkpointing) the file each time; live, a poller releases the
    # file between writes for other processes.
    keeper = duckdb.connect(str(warehouse.path))
    try:
        return await _run(rep, warehouse, clock, app)
    finally:
        keeper.close()


async def _run(
    rep: Replication, warehouse: Warehouse, clock: FakeClock, app: Any
) -> dict[str, Any]:
    """`simulate`'s run with the warehouse open."""
    transport = httpx.ASGITransport(app=app)
    settings = Settings.from_env(
        {"PIPELINE_SANDBOX_URL": BASE_URL, "PIPELINE_DATA_DIR": str(warehouse.path.parent)}
    )
    rng = random.Random(f"truth:{rep.slug}:{rep.seed}:{rep.ratio}")
    window_s = ARRIVAL_WINDOW_MEDIANS * rep.median_s
    arrivals = sorted(
        START + timedelta(seconds=rng.uniform(0, window_s)) for _ in range(rep.orders)
    )
    stop = START + timedelta(seconds=window_s + rep.follow_up_s)
    adapter = scaled_adapter(rep.slug, rep.factor)
    retry = RetryPolicy(max_attempts=1)
    async with (
        httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client,
        Poller(
            settings, {rep.slug: adapter}, transport=transport, limits=False,
            seed=rep.sandbox_seed,
            retry=retry, clock=clock.now,
        ) as poller,
    ):  # fmt: skip
        workload = Workload(client, WorkloadConfig(seed=rep.sandbox_seed), clock=clock)
        writer = BatchWriter(warehouse)
        loop = ProviderLoop(rep.slug, warehouse, poller, writer, refresh_every_s=REFRESH_S)
        now = START
        new_orders = []  # registered in one batch just before the refresh that first reads them
        # The live loop re-reads its orders every `REFRESH_S` and otherwise polls from its own
        # memory of what it asked. Re-reading changes something only when orders were
        # registered since or some were held back (`ProviderLoop.refresh`), so only those
        # refreshes run, at the times of the live loop's ticks.
        refresh_at: datetime | None = None
        while now < stop:
            clock.set(now)
            while arrivals and arrivals[0] <= now:
                arrivals.pop(0)
                created = await workload.create(rep.slug)
                if created is None:
                    raise RuntimeError(f"{rep.slug}: the sandbox refused a create")
                new_orders.append(
                    make_order(
                        rep.slug,
                        created.order_id,
                        order_kind=created.order_kind,
                        created_at=now,
                        registered_at=now,
                        service=created.service,
                        country=created.country,
                    )
                )
                refresh_at = refresh_at or _next_tick(now)
            if refresh_at is not None and now >= refresh_at:
                if new_orders:
                    register(warehouse, new_orders, source="truth-bench")
                    new_orders = []
                # The writer's answers reach the file before the loop re-reads its orders (live,
                # the loop's memory of its own answers bridges the gap; here both line up).
                await writer.flush()
                await loop.refresh(now)
                refresh_at = None
            wait = loop.start_due(now, None, slack_s=DUE_SLACK_S)
            await loop.wait_in_flight()
            if loop.take_period().skipped:  # held back until the next refresh
                refresh_at = refresh_at or _next_tick(now)
            following = [stop]
            if refresh_at is not None:
                following.append(refresh_at)
            if wait is not None:  # as the provider's loop: sleep until the next order is due
                following.append(now + timedelta(seconds=max(wait, MIN_SLEEP_S)))
            if arrivals:
                following.append(arrivals[0])
            now = max(min(following), now + timedelta(microseconds=1))
        await writer.flush()
    await asyncio.to_thread(refresh_derived, warehouse)
    return _compare(rep, warehouse, sandbox_of(app), stop)


def _next_tick(moment: datetime) -> datetime:
    """The live loop's first refresh after `moment` (every `REFRESH_S` from the start)."""
    ticks = math.floor((moment - START).total_seconds() / REFRESH_S) + 1
    return START + timedelta(seconds=ticks * REFRESH_S)


def run_replication(rep: Replication) -> dict[str, Any]:
    """One replication in a scratch directory, with the seconds it took."""
    with tempfile.TemporaryDirectory() as workdir:
        started = time.perf_counter()
        row = asyncio.run(simulate(rep, Path(workdir)))
    row["seconds"] = round(time.perf_counter() - started, 2)
    return row


def _compare(
    rep: Replication, warehouse: Warehouse, sandbox: Any, stop: datetime
) -> dict[str, Any]:
    """Estimates at the stop beside the same orders' truth."""
    table = "time_to_code" if measures_code(rep.slug) else "time_to_completion"
    estimate = warehouse.read(
        f"SELECT median_s, median_ci_low_s, median_ci_high_s, n_orders, n_censored, "
        f"midpoint_median_s FROM {table} WHERE provider = ? AND group_level = 'provider'",
        [rep.slug],
    )
    tracked = warehouse.read("SELECT provider, order_id FROM orders")
    keys = set(tracked.iter_rows())
    orders = sandbox.list_orders(rep.slug)
    full = {(rep.slug, o.truth.order_id): full_record(o.truth) for o in orders}
    seen = {(rep.slug, o.truth.order_id): _record_at(o.truth, stop) for o in orders}
    truth_median = true_medians(full, keys).get(rep.slug)
    row = estimate.row(0, named=True) if not estimate.is_empty() else {}
    open_share = warehouse.read(
        "SELECT avg(CASE WHEN coalesce(t.is_terminal, false) THEN 0.0 ELSE 1.0 END) AS s "
        "FROM orders o LEFT JOIN order_tracking t USING (provider, order_id)"
    )["s"][0]
    result: dict[str, Any] = {
        "provider": rep.slug,
        "seed": rep.seed,
        "sandbox_seed": rep.sandbox_seed,
        "ratio": rep.ratio,
        "follow_up_s": round(rep.follow_up_s, 1),
        "cadence_s": round(rep.cadence_s, 3),
        "orders": len(keys),
        "open_share_at_stop": round(float(open_share or 0.0), 3),
        "true_median_s": truth_median,
        "seen_median_s": true_medians(seen, keys).get(rep.slug),
        "population_median_s": rep.median_s,
        "median_s": row.get("median_s"),
        "ci_low_s": row.get("median_ci_low_s"),
        "ci_high_s": row.get("median_ci_high_s"),
        "midpoint_median_s": row.get("midpoint_median_s"),
        "polls": int(warehouse.read("SELECT count(*) AS n FROM observations")["n"][0]),
    }
    result.update(_expiry(rep, warehouse, sandbox, keys))
    return result


class _ExpiredShare:
    """Counts orders of a provider's first expiry window, and those whose first terminal state
    is `expired` within its horizon (window + grace): the truth an expiry rate estimates."""

    def __init__(self, slug: str) -> None:
        windows = REGISTRY.spec(slug).expiry_windows
        self.window = windows[0] if windows else None
        self.orders = self.expired = 0

    def count(self, truth: Any) -> None:
        if self.window is None or truth.order_kind != self.window.order_kind:
            return
        self.orders += 1
        first = next((t for t in truth.transitions if OrderState(t.state).is_terminal), None)
        if first is not None and first.state == OrderState.EXPIRED.value:
            waited = (first.at - truth.created_at).total_seconds()
            self.expired += waited <= self.window.window_s + EXPIRY_GRACE_S

    @property
    def share(self) -> float | None:
        return self.expired / self.orders if self.orders else None


def _expiry(rep: Replication, warehouse: Any, sandbox: Any, keys: set[Any]) -> dict[str, Any]:
    """The expiry rate at the horizon (window + grace) beside the same orders' true share."""
    expired = _ExpiredShare(rep.slug)
    if expired.window is None:
        return {}
    estimate = warehouse.read(
        "SELECT expiry_rate, ci_low, ci_high FROM expiry_rates WHERE provider = ? "
        "AND order_kind = ?",
        [rep.slug, expired.window.order_kind],
    )
    for order in sandbox.list_orders(rep.slug):
        if (rep.slug, order.truth.order_id) in keys:
            expired.count(order.truth)
    row = estimate.row(0, named=True) if not estimate.is_empty() else {}
    return {
        "expiry_true": expired.share,
        "expiry_rate": row.get("expiry_rate"),
        "expiry_ci_low": row.get("ci_low"),
        "expiry_ci_high": row.get("ci_high"),
    }


def _within(row: dict[str, Any], truth: str = "true_median_s") -> bool | None:
    """Whether the median is within max(cadence / 4, 5 %) of `truth` (None: either missing)."""
    if row["median_s"] is None or row.get(truth) is None:
        return None
    tolerance = max(row["cadence_s"] / 4, ERROR_SHARE * row[truth])
    return bool(abs(row["median_s"] - row[truth]) <= tolerance)


def _covers(row: dict[str, Any], truth: str) -> bool | None:
    """Whether the median's interval covers `truth`; a missing bound is an open interval (the
    data cannot bound the median on that side). None: no median or no truth."""
    if row["median_s"] is None or row.get(truth) is None:
        return None
    return bool((row["ci_low_s"] or 0.0) <= row[truth] <= (row["ci_high_s"] or math.inf))


def _scores(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The median's scores over `rows`."""
    return {
        "replications": len(rows),
        "within_tolerance": _share([_within(r) for r in rows]),
        "within_tolerance_of_seen": _share([_within(r, "seen_median_s") for r in rows]),
        "ci_coverage_population": _share([_covers(r, "population_median_s") for r in rows]),
        "ci_coverage_population_interval": _wilson(
            [_covers(r, "population_median_s") for r in rows]
        ),
        "ci_coverage_same_orders": _share([_covers(r, "true_median_s") for r in rows]),
        "mean_relative_error": _mean(
            [
                (r["median_s"] - r["true_median_s"]) / r["true_median_s"]
                for r in rows
                if r["median_s"] is not None and r["true_median_s"]
            ]
        ),
        "mean_open_share": _mean([r["open_share_at_stop"] for r in rows]),
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per provider (and over every provider): the median's scores, by ratio and by how much
    was open at the stop, the midpoint comparison, and the expiry rate's scores."""
    summary: dict[str, Any] = {}
    for slug in [*sorted({r["provider"] for r in rows}), "all"]:
        mine = [r for r in rows if slug in ("all", r["provider"])]
        expiry = [
            r for r in mine if r.get("expiry_true") is not None and r.get("expiry_rate") is not None
        ]
        midpoint = [{**r, "median_s": r["midpoint_median_s"]} for r in mine]
        summary[slug] = {
            **_scores(mine),
            "median_estimated": sum(r["median_s"] is not None for r in mine),
            "midpoint_within_tolerance": _share([_within(r) for r in midpoint]),
            "by_ratio": {
                str(ratio): _scores([r for r in mine if r["ratio"] == ratio])
                for ratio in sorted({r["ratio"] for r in mine})
            },
            "by_stop": {
                label: _scores([r for r in mine if _stop(r) == label])
                for label in ("many_open", "some_open", "all_resolved")
            },
            "expiry_replications": len(expiry),
            "expiry_within_5_points": _share(
                [abs(r["expiry_rate"] - r["expiry_true"]) <= EXPIRY_TOLERANCE for r in expiry]
            ),
            "expiry_ci_coverage": _share([_expiry_covers(r, "expiry_true") for r in expiry]),
            "expiry_ci_coverage_population": _share(
                [_expiry_covers(r, "population_expiry") for r in expiry]
            ),
            "expiry_ci_coverage_population_interval": _wilson(
                [_expiry_covers(r, "population_expiry") for r in expiry]
            ),
        }
    return summary


def _expiry_covers(row: dict[str, Any], truth: str) -> bool | None:
    """Whether the expiry rate's interval covers `truth` (None: no truth; an interval missing
    where the rate is estimated covers nothing)."""
    if row.get(truth) is None:
        return None
    return bool(
        row["expiry_ci_low"] is not None
        and row["expiry_ci_low"] <= row[truth] <= row["expiry_ci_high"]
    )


def _stop(row: dict[str, Any]) -> str:
    """How much was still open at the stop."""
    share = row["open_share_at_stop"]
    if share >= 0.25:
        return "many_open"
    return "some_open" if share > 0.0 else "all_resolved"


def _share(flags: list[bool | None]) -> float | None:
    """The share of true flags among those that are not None."""
    known = [f for f in flags if f is not None]
    return round(sum(known) / len(known), 3) if known else None


def _wilson(flags: list[bool | None]) -> list[float] | None:
    """The 95 % Wilson interval of the share of true flags: how far a coverage measured over
    these replications can be from the coverage itself (30 of 32 covered, 94 %, is 80-98 %)."""
    known = [f for f in flags if f is not None]
    if not known:
        return None
    n, share, z = len(known), sum(known) / len(known), Z_95
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(centre - half, 3), round(centre + half, 3)]


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--providers", nargs="*", default=list(PROVIDERS))
    parser.add_argument("--ratios", nargs="*", type=float, default=list(RATIOS))
    parser.add_argument("--seeds", type=int, default=SEEDS)
    parser.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="seeds run are first-seed .. first-seed + seeds - 1 (more seeds with --append)",
    )
    parser.add_argument("--orders", type=int, default=ORDERS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--jobs", type=int, default=1, help="replications run at once")
    parser.add_argument(
        "--append", action="store_true", help="add to the replications already in --out"
    )
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="run no replication: measure the population medians of --out's providers again "
        "with today's pilot (PILOT_ORDERS) and score its replications against them",
    )
    args = parser.parse_args(argv)
    if args.rescore:
        return rescore(args.out, argv)
    started = time.perf_counter()
    populations = {slug: population(slug) for slug in args.providers}
    replications = [
        Replication(
            slug,
            seed,
            ratio,
            FOLLOW_UPS[seed % len(FOLLOW_UPS)],
            args.orders,
            populations[slug].median_s,
        )
        for slug in args.providers
        for ratio in args.ratios
        for seed in range(args.first_seed, args.first_seed + args.seeds)
    ]
    # Spawned, not forked: polars' thread pool does not survive a fork.
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(args.jobs, mp_context=spawn) as pool:
        rows = []
        for row in pool.map(run_replication, replications):
            row["population_expiry"] = populations[row["provider"]].expiry_rate
            rows.append(row)
            print(json.dumps(row), flush=True)
    command = "python bench/truth.py " + " ".join(argv if argv is not None else sys.argv[1:])
    seconds = round(time.perf_counter() - started, 1)
    runs = [{"command": command, "replications": len(rows), "seconds": seconds}]
    medians = {slug: p.median_s for slug, p in populations.items()}
    expiry = {slug: p.expiry_rate for slug, p in populations.items()}
    if args.append and args.out.exists():
        # Another run's replications (other providers or seeds), kept with its command.
        earlier = json.loads(args.out.read_text())
        rows = earlier["replications"] + rows
        runs = earlier["runs"] + runs
        medians = {**earlier["population_median_s"], **medians}
        expiry = {**earlier.get("population_expiry", {}), **expiry}
    _write(args.out, runs, medians, expiry, rows)
    return 0


def rescore(path: Path, argv: list[str] | None) -> int:
    """Score the replications in `path` against population truths measured again with
    `PILOT_ORDERS` orders; the run is kept in its `runs` with the truths before and after.
    Only the coverage of the population's figures can change: the replications, their cadences
    (set from the pilot they ran with) and every other score stay as they were."""
    earlier = json.loads(path.read_text())
    rows = earlier["replications"]
    started = time.perf_counter()
    populations = {slug: population(slug) for slug in sorted({r["provider"] for r in rows})}
    for row in rows:
        row["population_median_s"] = populations[row["provider"]].median_s
        row["population_expiry"] = populations[row["provider"]].expiry_rate
    command = "python bench/truth.py " + " ".join(argv if argv is not None else sys.argv[1:])
    run = {
        "command": command,
        "replications": 0,
        "seconds": round(time.perf_counter() - started, 1),
        "pilot_orders": PILOT_ORDERS,
        "population_median_s_before": earlier["population_median_s"],
        "population_expiry_before": earlier.get("population_expiry"),
    }
    medians = {slug: p.median_s for slug, p in populations.items()}
    expiry = {slug: p.expiry_rate for slug, p in populations.items()}
    _write(path, [*earlier["runs"], run], medians, expiry, rows)
    return 0


def _write(
    path: Path,
    runs: list[dict[str, Any]],
    medians: dict[str, float],
    expiry: dict[str, float | None],
    rows: list[dict[str, Any]],
) -> None:
    """The results file: runs, machine, population truths, targets, summary, replications."""
    result = {
        "runs": runs,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "population_median_s": medians,
        "population_expiry": expiry,
        "targets": TARGETS,
        "summary": summarise(rows),
        "replications": rows,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["summary"], indent=2))


if __name__ == "__main__":
    raise SystemExit(main())
