"""Coverage of the median's 95 % interval on a provider's own lifecycle, polled as the scheduler
polls, many replications per setting.

`truth.py` runs the whole path but affords about a hundred replications per provider, which
resolve coverage to ±5 points; `coverage.py` runs thousands, but of log-normal times polled at
one cadence. This takes the middle way for the providers whose events are seen only between
two polls (no event time in their spec): a pool of sandbox timelines made as `truth.py`
makes its orders (the workload's creates through the sandbox, each batch on its own seeds),
then replications of `truth.ORDERS` creates drawn from the pool, each polled by the
scheduler's rules (`pipeline.polling.schedule`) on the orders' true states:

- the first poll at the refresh after registration (`truth.REFRESH_S`);
- the second at the order's phase: a random fraction of the cadence of the state it was seen
  in, after registration;
- then every cadence of the state last seen, the provider's policy scaled as `truth.py`
  scales it (its `processing` cadence `ratio` × the population median);
- arrivals over `truth.ARRIVAL_WINDOW_MEDIANS` medians, and the stop `truth.FOLLOW_UPS`
  medians after the last (or once every order could have ended), leaving many, some or no
  orders open.

The estimate and its interval are the product's (`npmle.fit_records`, `npmle.quantiles`), the
truth the pool's median. Per setting: coverage with its Wilson interval, the estimates'
bias and spread against the spread the intervals imply ((high − low) / 3.92), and coverage
among the intervals under `NARROW` of the setting's median width, where it is lowest.

    .venv/bin/python bench/lifecycle_coverage.py   # 400 replications a setting, about 4 minutes
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import random
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

import truth  # the benchmark beside this file
from results_file import write_results

from pipeline.analytics import npmle
from pipeline.analytics.survival import wilson_interval
from pipeline.analytics.truth import exact_outcomes, true_medians
from pipeline.model import OrderState
from pipeline.polling.schedule import DUE_SLACK_S, PHASE_STEPS
from pipeline.providers.registry import PROVIDERS, REGISTRY
from pipeline.providers.spec import EXPIRY_GRACE_S

RESULTS = Path(__file__).with_name("results") / "lifecycle_coverage.json"
POOL_BATCHES = 200
"""Batches of `truth.ORDERS` creates in a provider's pool."""
POOL_SEED = 2_000_003
"""First seed of the pool's batches: none a replication of `truth.py` or its pilot uses."""
RATIOS = (0.25, 1.0, 2.0)
NARROW = 0.6
"""Intervals narrower than this share of their setting's median width are counted apart."""


@dataclasses.dataclass(frozen=True)
class Pool:
    """A provider's sandbox timelines, one row per created order.

    Attributes:
        counts: whether the order counts for the provider's figure (its code kinds).
        time: seconds from creation to its outcome (∞ for an order that never had one).
        cause: 1 the event, 2 another outcome, 0 none.
        moves: seconds from creation of each state change, padded with ∞ (orders × changes).
        states: the state entered at each change, as an index into `state_names`.
        state_names: the states the timelines pass through.
        median_s: the pool's median time to the event (the truth a replication is scored by).
    """

    counts: np.ndarray
    time: np.ndarray
    cause: np.ndarray
    moves: np.ndarray
    states: np.ndarray
    state_names: list[str]
    median_s: float


def polled_providers() -> list[str]:
    """Providers whose events are seen only between polls: their spec gives no event time."""
    return [slug for slug in PROVIDERS if REGISTRY.spec(slug).event_time is None]


def make_pool(slug: str, batches: int = POOL_BATCHES) -> Pool:
    """`batches` × `truth.ORDERS` timelines, arriving as a replication's do."""
    window_s = truth.arrival_window_s(slug)
    rng = random.Random(f"lifecycle:{slug}")
    records: dict[tuple[str, str], dict] = {}
    for batch in range(batches):
        arrivals = sorted(rng.uniform(0, window_s) for _ in range(truth.ORDERS))
        seed = POOL_SEED + batch
        for made in asyncio.run(truth.created_orders(slug, arrivals, seed, seed)):
            records[(slug, f"{batch}:{made.order_id}")] = truth.full_record(made)
    keys = list(records)
    outcomes = exact_outcomes(records, keys).with_columns(counts=pl.lit(True))
    rows = pl.DataFrame({"order_id": [k[1] for k in keys]}).join(
        outcomes.select("order_id", "time_s", "event_code", "counts"),
        on="order_id",
        how="left",
        maintain_order="left",
    )
    median = true_medians(records, keys)[slug]
    names = sorted({t["state"] for r in records.values() for t in r["transitions"]})
    width = max(len(r["transitions"]) for r in records.values())
    moves = np.full((len(keys), width), np.inf)
    states = np.zeros((len(keys), width), dtype=np.int64)
    for i, key in enumerate(keys):
        record = records[key]
        origin = datetime.fromisoformat(record["created_at"])
        for j, change in enumerate(record["transitions"]):
            moves[i, j] = (datetime.fromisoformat(change["at"]) - origin).total_seconds()
            states[i, j] = names.index(change["state"])
    cause = rows["event_code"].fill_null(0).to_numpy()
    return Pool(
        counts=rows["counts"].fill_null(False).to_numpy(),
        time=np.where(cause > 0, rows["time_s"].fill_null(np.inf).to_numpy(), np.inf),
        cause=cause,
        moves=moves,
        states=states,
        state_names=names,
        median_s=float(median),
    )


def polled_records(
    pool: Pool, slug: str, rng: np.random.Generator, ratio: float, follow_up: float | None
) -> pl.DataFrame:
    """One replication: `truth.ORDERS` creates drawn from the pool, polled by the scheduler's
    rules until the stop (module docstring), as per-order records of the orders that count."""
    policy = REGISTRY.spec(slug).policy
    factor = ratio * pool.median_s / policy.cadence_for(OrderState.PROCESSING.value)
    cadence = np.array([policy.cadence_for(name) * factor for name in pool.state_names])
    pick = rng.integers(0, pool.time.size, truth.ORDERS)
    pick = pick[pool.counts[pick]]
    time, cause, moves, states = (
        pool.time[pick],
        pool.cause[pick],
        pool.moves[pick],
        pool.states[pick],
    )
    n = pick.size
    window_s = truth.ARRIVAL_WINDOW_MEDIANS * pool.median_s
    if follow_up is None:
        windows = REGISTRY.spec(slug).expiry_windows
        follow_up_s = max((w.window_s for w in windows), default=0.0) + EXPIRY_GRACE_S
        follow_up_s += pool.median_s
    else:
        follow_up_s = follow_up * pool.median_s
    registered = rng.uniform(0, window_s, n)
    limit = window_s + follow_up_s - registered  # the stop, in each order's own seconds
    phase = rng.integers(0, PHASE_STEPS, n) / PHASE_STEPS
    now = rng.uniform(0, truth.REFRESH_S, n)  # the first poll, at the next refresh
    after = np.zeros(n)  # the last poll that had not seen the outcome
    seen = np.full(n, np.nan)
    active = now <= limit
    tracked = active.copy()
    rows = np.arange(n)
    while active.any():
        came = active & (now >= time)
        seen[came] = now[came]
        active &= ~came
        after[active] = now[active]
        done_moves = (moves <= now[:, None]).sum(axis=1)
        state = states[rows, np.maximum(done_moves - 1, 0)]
        every = cadence[state]
        anchor = phase * every
        due = np.where(now < anchor - 2 * DUE_SLACK_S, anchor, now + every)
        now = np.where(active, due, now)
        active &= now <= limit
    is_seen = ~np.isnan(seen)
    return pl.DataFrame(
        {
            "g": np.zeros(n, dtype=np.int64),
            "event_code": np.where(is_seen, cause, 0),
            npmle.EVENT_AFTER: after,
            npmle.EVENT_BY: seen,
        }
    ).filter(pl.Series(tracked))


def run_setting(
    pool: Pool, slug: str, ratio: float, follow_up: float | None, replications: int
) -> dict:
    """Every replication of one setting, summarised."""
    stop = 0 if follow_up is None else round(follow_up * 10) + 1
    rng = np.random.default_rng([PROVIDERS.index(slug), round(ratio * 100), stop])
    found = []
    open_shares = []
    for _ in range(replications):
        records = polled_records(pool, slug, rng, ratio, follow_up)
        open_shares.append(float((records["event_code"] == 0).mean()))
        row = npmle.quantiles(npmle.fit_records(records, ["g"])).row(0, named=True)
        found.append((row["quantile_s"], row["quantile_ci_low_s"], row["quantile_ci_high_s"]))
    table = pl.DataFrame(found, schema=["point", "low", "high"], orient="row", strict=False)
    read = table.fill_nan(None).drop_nulls()
    truth_s = pool.median_s
    covers = (read["low"] <= truth_s) & (read["high"] >= truth_s)
    width = read["high"] - read["low"]
    narrow = width < NARROW * float(width.median() or 0.0)
    return {
        "ratio": ratio,
        "follow_up_medians": follow_up,
        "replications": replications,
        "read": read.height,
        "mean_open_share": round(float(np.mean(open_shares)), 3),
        "coverage": float(covers.mean() or 0.0),
        "coverage_interval": _wilson(int(covers.sum()), read.height),
        "estimate_bias_s": float((read["point"].mean() or math.nan) - truth_s),
        "estimate_rmse_s": float(math.sqrt(((read["point"] - truth_s) ** 2).mean() or 0.0)),
        "implied_sd_s": float((width / (2 * 1.959964)).median() or math.nan),
        "narrow_share": float(narrow.mean() or 0.0),
        "narrow_coverage": float(covers.filter(narrow).mean()) if narrow.any() else None,
    }


def _wilson(hits: int, trials: int) -> list[float]:
    low, high = wilson_interval(pl.lit(hits), pl.lit(trials))
    return list(pl.select(low.alias("low"), high.alias("high")).row(0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", nargs="*", default=polled_providers())
    parser.add_argument("--replications", type=int, default=400)
    parser.add_argument("--batches", type=int, default=POOL_BATCHES)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    results = {}
    for slug in args.providers:
        pool = make_pool(slug, args.batches)
        settings = []
        for ratio in RATIOS:
            for follow_up in truth.FOLLOW_UPS:
                result = run_setting(pool, slug, ratio, follow_up, args.replications)
                settings.append(result)
                print(slug, json.dumps(result), flush=True)
        results[slug] = {"median_s": pool.median_s, "pool_orders": int(pool.counts.sum()),
                         "settings": settings}  # fmt: skip
    command = "python bench/lifecycle_coverage.py " + " ".join(sys.argv[1:])
    write_results(args.out, command.strip(), results=results)


if __name__ == "__main__":
    main()
