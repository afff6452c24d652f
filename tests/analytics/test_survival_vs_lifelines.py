"""Survival estimators against lifelines, an independent implementation.

Pins: the group-vectorised Kaplan–Meier (survival and exponential-Greenwood interval) and
Aalen–Johansen (cumulative incidence, delta-method variance and log(−log) interval) equal
lifelines' `KaplanMeierFitter` and `AalenJohansenFitter` to 1e-6 at every time, for several
groups in one call; the median read off the cumulative incidence and its interval inversion
agree with the same quantities read off lifelines' curves; and the Wilson interval matches
published values.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import polars as pl
import pytest
from lifelines import AalenJohansenFitter, KaplanMeierFitter
from lifelines.utils import median_survival_times

from pipeline.analytics.survival import (
    QUANTILE_TOLERANCE,
    cif_quantiles,
    event_table,
    known_until,
    values_at,
    wilson_interval,
)

TOLERANCE = 1e-6
GROUPS = {"a": 250, "b": 80, "c": 30}


def sample(seed: int, *, ties: bool = False) -> pl.DataFrame:
    """Per group: exponential event and competing times, with independent censoring.

    Continuous times have no ties between event types, so lifelines' Aalen–Johansen does not
    jitter them; `ties=True` rounds to whole seconds (for Kaplan–Meier only).
    """
    rng = np.random.default_rng(seed)
    parts = []
    for group, n in GROUPS.items():
        event = rng.exponential(90.0, n)
        competing = rng.exponential(300.0, n)
        censor = rng.uniform(20.0, 600.0, n)
        time = np.minimum.reduce([event, competing, censor])
        code = np.select([time == event, time == competing], [1, 2], 0)
        if ties:
            time = np.ceil(time)
        parts.append(pl.DataFrame({"group": group, "time_s": time, "event_code": code}))
    return pl.concat(parts)


def ours(table: pl.DataFrame, group: str, column: str) -> pd.Series:
    rows = table.filter(pl.col("group") == group)
    return pd.Series(rows[column].to_numpy(), index=rows["time_s"].to_numpy(), dtype=float)


def assert_close(mine: pd.Series, theirs: pd.Series) -> int:
    """Compare on the times both define; returns how many values were compared."""
    theirs = theirs[theirs.index.isin(mine.index)]
    both = pd.concat([mine.reindex(theirs.index), theirs], axis=1).dropna()
    np.testing.assert_allclose(both.iloc[:, 0], both.iloc[:, 1], rtol=0, atol=TOLERANCE)
    return len(both)


@pytest.mark.parametrize("ties", [False, True])
def test_kaplan_meier_and_its_interval_equal_lifelines(ties: bool) -> None:
    data = sample(1, ties=ties)
    table = event_table(data, ["group"])
    for group, n in GROUPS.items():
        rows = data.filter(pl.col("group") == group)
        kmf = KaplanMeierFitter().fit(
            rows["time_s"].to_numpy(), event_observed=(rows["event_code"] == 1).to_numpy()
        )
        compared = assert_close(ours(table, group, "km_event"), kmf.survival_function_.iloc[:, 0])
        assert compared >= n // 2
        interval = kmf.confidence_interval_
        low, high = interval.iloc[:, 0], interval.iloc[:, 1]
        assert_close(ours(table, group, "km_event_low"), low)
        assert_close(ours(table, group, "km_event_high"), high)


def test_aalen_johansen_incidence_variance_and_interval_equal_lifelines() -> None:
    data = sample(2)
    table = event_table(data, ["group"])
    for group, n in GROUPS.items():
        rows = data.filter(pl.col("group") == group)
        ajf = AalenJohansenFitter(calculate_variance=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a jitter warning would mean the data had ties
            ajf.fit(rows["time_s"].to_numpy(), rows["event_code"].to_numpy(), event_of_interest=1)
        compared = assert_close(ours(table, group, "cif"), ajf.cumulative_density_.iloc[:, 0])
        assert compared >= n
        assert_close(ours(table, group, "cif_var"), ajf.variance_)
        # lifelines labels its two bound columns the other way round; compare by value.
        interval = ajf.confidence_interval_
        low = np.minimum(interval.iloc[:, 0], interval.iloc[:, 1])
        high = np.maximum(interval.iloc[:, 0], interval.iloc[:, 1])
        assert_close(ours(table, group, "cif_low"), low)
        assert_close(ours(table, group, "cif_high"), high)


def test_median_without_competing_events_equals_the_kaplan_meier_median() -> None:
    data = sample(3).with_columns(pl.col("event_code").replace(2, 0))
    medians = cif_quantiles(event_table(data, ["group"]), ["group"])
    for group in GROUPS:
        rows = data.filter(pl.col("group") == group)
        kmf = KaplanMeierFitter().fit(
            rows["time_s"].to_numpy(), event_observed=(rows["event_code"] == 1).to_numpy()
        )
        mine = medians.filter(pl.col("group") == group)["quantile_s"].item()
        expected = kmf.median_survival_time_
        assert (mine is None and np.isinf(expected)) or mine == pytest.approx(expected, abs=1e-9)


def test_median_interval_inverts_the_pointwise_interval_of_lifelines() -> None:
    data = sample(4)
    table = event_table(data, ["group"])
    medians = cif_quantiles(table, ["group"])
    # Ours stop where the orders followed past the last open one cannot vouch for the rest.
    limits = dict(table.group_by("group").agg(known_until()).iter_rows())
    assert any(np.isfinite(limit) for limit in limits.values())
    for group in GROUPS:
        rows = data.filter(pl.col("group") == group)
        ajf = AalenJohansenFitter().fit(
            rows["time_s"].to_numpy(), rows["event_code"].to_numpy(), event_of_interest=1
        )
        interval = ajf.confidence_interval_
        low = np.minimum(interval.iloc[:, 0], interval.iloc[:, 1])
        high = np.maximum(interval.iloc[:, 0], interval.iloc[:, 1])
        cif = ajf.cumulative_density_.iloc[:, 0]
        # Survival-style curves that fall through 0.5 where the incidence reaches it. A sum of
        # fifteen 1/30 steps lands a hair under 0.5: both sides allow the same slack.
        slack = QUANTILE_TOLERANCE
        expected = median_survival_times(
            pd.DataFrame(
                {
                    "point": 1 - cif - slack,
                    "lo": 1 - high.fillna(cif) - slack,
                    "hi": 1 - low.fillna(cif) - slack,
                }
            )
        )
        row = medians.filter(pl.col("group") == group).row(0, named=True)
        for mine, theirs in [
            (row["quantile_s"], expected["point"].item()),
            (row["quantile_ci_low_s"], expected["lo"].item()),
            (row["quantile_ci_high_s"], expected["hi"].item()),
        ]:
            if theirs > limits[group]:
                assert mine is None
            else:
                assert mine == pytest.approx(theirs, abs=1e-9)


def test_values_at_horizons_follow_the_step_function_and_stop_at_follow_up() -> None:
    data = pl.DataFrame(
        {"group": "g", "time_s": [10.0, 20.0, 30.0, 40.0], "event_code": [1, 0, 1, 0]}
    )
    table = event_table(data, ["group"])
    at = values_at(table, ["group"], [5.0, 10.0, 25.0, 40.0, 41.0], columns=("cif", "survival"))
    cif = at["cif"].to_list()
    assert cif[:4] == pytest.approx([0.0, 0.25, 0.25, 0.625])
    assert cif[4] is None  # someone was still open at 40 s: 41 s is beyond follow-up
    assert at["survival"].to_list()[:4] == pytest.approx([1.0, 0.75, 0.75, 0.375])


def test_all_resolved_groups_keep_their_final_value_past_follow_up() -> None:
    data = pl.DataFrame({"group": "g", "time_s": [10.0, 20.0], "event_code": [1, 2]})
    at = values_at(event_table(data, ["group"]), ["group"], [1000.0])
    assert at["cif"].item() == pytest.approx(0.5)


def test_a_tail_resting_on_few_orders_is_not_read_past_follow_up() -> None:
    # Orders open at up to 85 s; one order was followed past that and completed at 90 s.
    # Survival reaches 0, but one order cannot say what share of the open ones would still be
    # open at 1,000 s.
    def records(censored: list[float], resolved: list[float]) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "group": "g",
                "time_s": censored + resolved,
                "event_code": [0] * len(censored) + [2] * len(resolved),
            }
        )

    few = event_table(records([10.0 + 75.0 * i / 39 for i in range(40)],
                              [5.0 + i for i in range(59)] + [90.0]), ["group"])  # fmt: skip
    assert few["survival"].min() == 0.0
    assert values_at(few, ["group"], [1000.0])["cif"].item() is None
    # 600 orders followed past the last censoring, all resolved: at most 0.5 % of the rest
    # could have outlived them, and the curve is read past its last time.
    many = event_table(records([10.0 + 20.0 * i / 39 for i in range(40)],
                               [31.0 + 0.4 * i for i in range(600)]), ["group"])  # fmt: skip
    at = values_at(many, ["group"], [1000.0], columns=("cif", "survival"))
    assert at["cif"].item() == 0.0
    assert at["survival"].item() == 0.0


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [
        # Newcombe (1998), Statistics in Medicine 17:857, Table I, method 3.
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_interval_matches_published_values(
    successes: int, trials: int, low: float, high: float
) -> None:
    frame = pl.DataFrame({"k": [successes], "n": [trials]})
    lo, hi = wilson_interval(pl.col("k"), pl.col("n"))
    got = frame.select(lo.alias("lo"), hi.alias("hi")).row(0)
    assert got == pytest.approx((low, high), abs=1e-4)


def test_wilson_interval_is_null_without_trials() -> None:
    lo, hi = wilson_interval(pl.col("k"), pl.col("n"))
    assert pl.DataFrame({"k": [0], "n": [0]}).select(lo, hi.alias("h")).row(0) == (None, None)
