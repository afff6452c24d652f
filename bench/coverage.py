"""Coverage of the median's 95 % interval on simulated polling, many replications per setting.

`truth.py` runs the real path, but 32 replications per provider cannot tell 93 % coverage from
97 %. This runs the estimator alone (`npmle.fit_records` and `npmle.quantiles`, as the
analytics call them) on orders polled the way the poller polls: each order from its
registration at a random phase, then every `ratio` × the population median. Events of interest
are log-normal, a fifth of the orders end in a competing outcome (expiry) at a uniform time,
orders register over ten medians, and the stop leaves 0, 40 or 60 % of them open. The truth is
the population median of the event's cumulative incidence, known in closed form.

Per setting: the share of intervals covering the truth (with its own 95 % Wilson interval),
the spread of the estimates against the spread the intervals imply ((high − low) / 3.92), and
the same with the interval read off the raw NPMLE's variance, as the estimator did before
(`raw_*`).

    .venv/bin/python bench/coverage.py                # 300 replications per setting, ~6 min
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import polars as pl
from results_file import write_results

from pipeline.analytics import npmle
from pipeline.analytics.survival import wilson_interval

RESULTS = Path(__file__).parent / "results" / "coverage.json"
EVENT_SHARE = 0.8
"""Orders whose outcome is the event of interest; the rest expire."""
LOG_MEDIAN, LOG_SD = math.log(60.0), 0.6
"""Log-normal event time: median 60 s, moderate spread."""
ORDERS = (200, 800)
RATIOS = (0.05, 0.25, 1.0, 2.0)
OPEN_SHARES = (0.0, 0.4, 0.6)


def true_median() -> float:
    """Where EVENT_SHARE · Φ((log t − μ) / σ) reaches ½."""
    from statistics import NormalDist

    return math.exp(LOG_MEDIAN + LOG_SD * NormalDist().inv_cdf(0.5 / EVENT_SHARE))


def polled_records(
    rng: np.random.Generator, orders: int, ratio: float, open_share: float
) -> pl.DataFrame:
    """One replication's per-order records: event code and its polling bounds."""
    median = true_median()
    every = ratio * median
    cause = np.where(rng.random(orders) < EVENT_SHARE, 1, 2)
    time = np.where(
        cause == 1, rng.lognormal(LOG_MEDIAN, LOG_SD, orders), rng.uniform(0, 4 * median, orders)
    )
    registered = rng.uniform(0, 10 * median, orders)
    phase = rng.uniform(0, every, orders)
    done_at = registered + time
    stop = np.quantile(done_at, 1 - open_share) if open_share else np.inf
    seen_poll = np.maximum(np.ceil((time - phase) / every), 0)
    seen_at = phase + seen_poll * every
    last_poll = np.floor(np.minimum((stop - registered - phase) / every, 1e12))
    seen = seen_poll <= last_poll
    after = np.where(seen, np.where(seen_poll > 0, seen_at - every, 0.0), phase + last_poll * every)
    polled = last_poll >= 0  # an order registered too late for one poll is not tracked yet
    return pl.DataFrame(
        {
            "g": np.zeros(orders, dtype=np.int64),
            "event_code": np.where(seen, cause, 0),
            npmle.EVENT_AFTER: after,
            npmle.EVENT_BY: np.where(seen, seen_at, np.nan),
        }
    ).filter(pl.Series(polled))


def _interval(curve: npmle.Curve, variance: np.ndarray) -> tuple[float, float]:
    low, high = npmle.log_log_band(curve.cif, variance)
    return (
        curve.first_reaching(np.where(np.isnan(high), curve.cif, high), 0.5),
        curve.first_reaching(np.where(np.isnan(low), curve.cif, low), 0.5),
    )


def _estimate(quantiles: pl.DataFrame) -> tuple[float, float, float]:
    row = quantiles.row(0, named=True)
    return row["quantile_s"], row["quantile_ci_low_s"], row["quantile_ci_high_s"]


def run_setting(orders: int, ratio: float, open_share: float, replications: int) -> dict:
    """Every replication of one setting, summarised."""
    rng = np.random.default_rng([orders, int(ratio * 100), int(open_share * 100)])
    truth = true_median()
    rows = []
    for _ in range(replications):
        fitted = npmle.fit_records(polled_records(rng, orders, ratio, open_share), ["g"])
        smoothed, raw = fitted.fit.smoothed[0], fitted.fit.curves[0]
        raw_low, raw_high = _interval(smoothed, raw.at(smoothed.time)[1])
        rows.append((*_estimate(npmle.quantiles(fitted)), raw_low, raw_high))
    table = pl.DataFrame(rows, schema=["point", "low", "high", "raw_low", "raw_high"], orient="row")
    table = table.fill_nan(None)
    read = table.drop_nulls()

    def covered(low: str, high: str) -> dict:
        hits = int(((read[low] <= truth) & (read[high] >= truth)).sum())
        bounds = wilson_interval(pl.lit(hits), pl.lit(read.height))
        share_low, share_high = pl.select(bounds[0].alias("low"), bounds[1].alias("high")).row(0)
        implied = float(((read[high] - read[low]) / (2 * 1.959964)).median() or math.nan)
        return {
            "coverage": hits / read.height,
            "coverage_interval": [share_low, share_high],
            "implied_sd_s": implied,
        }

    return {
        "orders": orders,
        "ratio": ratio,
        "open_share": open_share,
        "replications": replications,
        "read": read.height,
        "true_median_s": truth,
        "estimate_sd_s": float(read["point"].std() or math.nan),
        "estimate_bias_s": float((read["point"].mean() or math.nan) - truth),
        **covered("low", "high"),
        **{f"raw_{name}": value for name, value in covered("raw_low", "raw_high").items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replications", type=int, default=300)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    settings = []
    for orders in ORDERS:
        for ratio in RATIOS:
            for open_share in OPEN_SHARES:
                result = run_setting(orders, ratio, open_share, args.replications)
                settings.append(result)
                print(
                    f"{orders:4d} orders, ratio {ratio:4.2f}, {open_share:.0%} open: "
                    f"covers {result['coverage']:.3f} (raw {result['raw_coverage']:.3f}); "
                    f"spread {result['estimate_sd_s']:.1f} s, "
                    f"implied {result['implied_sd_s']:.1f} s "
                    f"(raw {result['raw_implied_sd_s']:.1f} s)",
                    flush=True,
                )
    command = f"python bench/coverage.py --replications {args.replications}"
    write_results(args.out, command, settings=settings)


if __name__ == "__main__":
    main()
