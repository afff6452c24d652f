"""The published tables: time_to_code / time_to_completion, expiry_rates, provider_reliability.

Pins, on small hand-built data with answers worked out by hand: counts, the median read off the
NPMLE of the cumulative incidence beside the midpoint one, horizon values, the naive figures, the
minimum group size; expiry as a
cumulative incidence at the provider's window beside the share among resolved orders; and
reliability's rates, latency percentiles, score formula and ranking rule.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pipeline.analytics.history import build_status_history
from pipeline.analytics.metrics import (
    EXPIRY_GRACE_S,
    completion_records,
    expiry_rates,
    expiry_rates_over_time,
    expiry_records,
    expiry_summary,
    time_to_code,
    time_to_completion,
    time_to_event_summary,
)
from pipeline.analytics.rollups import (
    error_mix,
    latency_quantiles,
    latency_rollups,
    merge_rollups,
    poll_rollups,
)
from pipeline.analytics.scorecard import (
    LATENCY_BUDGET_MS,
    SCORE_WEIGHTS,
    provider_reliability,
    provider_scorecard,
)
from pipeline.analytics.survival import WEIGHT, event_table

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
UTC_US = pl.Datetime("us", "UTC")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def records(rows: list[tuple[str, str | None, int, float]]) -> pl.DataFrame:
    """(provider, service, event_code, time_s) → a minimal record frame: events seen between
    polls 2 s either side of `time_s`, open orders last seen at `time_s`."""
    return pl.DataFrame(
        [
            {
                "provider": p,
                "service": s,
                "country": "de",
                "order_kind": "sms_receive",
                "event_code": code,
                "time_s": t,
                "lower_s": t - 2.0 if code else None,
                "upper_s": t + 2.0 if code else None,
                "event_after_s": t - 2.0 if code else t,
                "event_by_s": t + 2.0 if code else None,
            }
            for p, s, code, t in rows
        ],
        schema_overrides={"event_code": pl.Int8(), "event_by_s": pl.Float64()},
    )


def test_summary_counts_median_horizons_and_naive_figures() -> None:
    # Events seen within (8, 12], (18, 22], (28, 32]; one competing in (38, 42]; one open since
    # 50 s.
    data = records(
        [
            ("sms4sats", "tg", 1, 10.0),
            ("sms4sats", "tg", 1, 20.0),
            ("sms4sats", "tg", 1, 30.0),
            ("sms4sats", "tg", 2, 40.0),
            ("sms4sats", "tg", 0, 50.0),
        ]
    )
    out = time_to_event_summary(data, horizons_s={"10s": 10.0, "15s": 15.0, "1m": 60.0})
    row = out.row(0, named=True)
    assert (row["provider"], row["group_level"], row["group_value"]) == (
        "sms4sats",
        "provider",
        "all",
    )
    assert (row["n_orders"], row["n_events"], row["n_competing"], row["n_censored"]) == (5, 3, 1, 1)
    # The intervals do not overlap and the open order was last seen after all of them, so the
    # NPMLE puts 1/5 on each, rising linearly across it: F = 0.1 at 10 s, 0.2 from 12 s, 0.4
    # from 22 s, 0.5 halfway through (28, 32]. The midpoint estimate steps at 10, 20, 30 s.
    assert row["median_s"] == pytest.approx(30.0)
    assert row["midpoint_median_s"] == 30.0
    assert row["median_ci_low_s"] < 30.0
    assert row["midpoint_median_ci_low_s"] < 30.0
    assert row["cif_10s"] == pytest.approx(0.1)
    assert row["cif_15s"] == pytest.approx(0.2)
    assert row["cif_15s_low"] < 0.2 < row["cif_15s_high"]
    assert row["cif_1m"] is None  # the open order was last seen at 50 s
    assert (row["naive_median_s"], row["naive_mean_s"]) == (20.0, 20.0)
    assert row["median_resolution_s"] == 4.0


def test_rows_standing_for_several_orders_count_as_that_many() -> None:
    """Records collapsed into cells (one row per identical orders, with their count in
    `orders`) give the summary, the curves' fit and the expiry figures of the orders one by
    one; the naive medians become lower weighted medians."""
    rng = np.random.default_rng(5)
    times = rng.choice([12.0, 20.0, 31.0, 47.0, 60.0], 200)
    codes = rng.choice([0, 1, 1, 1, 2], 200)
    one_by_one = records(
        [("sms4sats", "tg", int(c), float(t)) for c, t in zip(codes, times, strict=True)]
    )
    cells = one_by_one.group_by(one_by_one.columns).agg(pl.len().cast(pl.Int64).alias(WEIGHT))
    assert cells.height < 30
    summary, collapsed = time_to_event_summary(one_by_one), time_to_event_summary(cells)
    naive = ["naive_median_s", "median_resolution_s"]
    assert_frame_equal(summary.drop(naive), collapsed.drop(naive))
    assert collapsed["median_resolution_s"].item() == 4.0
    events = np.sort(times[codes == 1])
    assert collapsed["naive_median_s"].item() == events[(events.size - 1) // 2]
    assert_frame_equal(event_table(one_by_one, ["provider"]), event_table(cells, ["provider"]))
    windows = one_by_one.with_columns(
        pl.lit(600.0).alias("window_s"),
        pl.lit(40.0).alias("horizon_s"),
        pl.lit(True).alias("window_documented"),
    )
    expiry_cells = windows.group_by(windows.columns).agg(pl.len().cast(pl.Int64).alias(WEIGHT))
    assert_frame_equal(
        expiry_summary(windows, ["provider", "order_kind"]),
        expiry_summary(expiry_cells, ["provider", "order_kind"]),
    )


def test_finer_groups_need_the_minimum_size_and_the_provider_row_is_always_there() -> None:
    rows = [("smsonline", "tg", 1, float(t)) for t in range(1, 11)]
    rows += [("smsonline", "wa", 1, float(t)) for t in range(1, 4)]
    rows += [("smsonline", None, 1, 5.0)]
    out = time_to_event_summary(records(rows), levels=("provider", "service"), min_group_orders=5)
    assert out.select("group_level", "group_value", "n_orders").rows() == [
        ("provider", "all", 14),
        ("service", "tg", 10),
    ]


def _receive_log() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Five sms4sats receive orders created at 0 s: code at ~30 s, cancelled at ~200 s, two
    expired at ~1300 s, one still processing at its last poll (2000 s)."""
    outcomes = {
        "o1": [(20, "processing"), (40, "code_received")],
        "o2": [(20, "processing"), (190, "processing"), (210, "cancelled")],
        "o3": [(20, "processing"), (1290, "processing"), (1310, "expired")],
        "o4": [(20, "processing"), (1290, "processing"), (1310, "expired")],
        "o5": [(20, "processing"), (2000, "processing")],
    }
    rows = [
        {
            "provider": "sms4sats",
            "order_id": order_id,
            "order_kind": "sms_receive",
            "polled_at": at(t),
            "state": state,
            "is_terminal": state not in {"processing", "pending"},
        }
        for order_id, polls in outcomes.items()
        for t, state in polls
    ]
    orders = pl.DataFrame(
        [
            {
                "provider": "sms4sats",
                "order_id": order_id,
                "order_kind": "sms_receive",
                "registered_at": at(1),
                "created_at": at(0),
                "service": "tg",
                "country": None,
            }
            for order_id in outcomes
        ]
    )
    observations = pl.DataFrame(rows, schema_overrides={"polled_at": UTC_US})
    return observations, orders


def test_time_to_code_and_completion_tables_have_the_documented_columns() -> None:
    observations, orders = _receive_log()
    history = build_status_history(observations)
    code = time_to_code(history, orders)
    completion = time_to_completion(history, orders)
    for table in (code, completion):
        assert {
            "provider",
            "n_orders",
            "median_s",
            "median_ci_low_s",
            "median_ci_high_s",
            "midpoint_median_s",
            "midpoint_median_ci_low_s",
            "midpoint_median_ci_high_s",
        } <= set(table.columns)
        assert table.filter(group_level="provider")["n_orders"].item() == 5
    assert code.filter(group_level="provider")["n_events"].item() == 1


def test_expiry_rate_is_the_incidence_at_the_window_beside_the_resolved_share() -> None:
    observations, orders = _receive_log()
    out = expiry_rates(build_status_history(observations), orders)
    row = out.row(0, named=True)
    # At risk 5, 4, 3 at the code (30 s), the cancellation (200 s) and the expiries (1300 s):
    # S(1300−) = 4/5 · 3/4 = 3/5, so F_expired = 3/5 · 2/3 = 0.4.
    assert row["expiry_rate"] == pytest.approx(0.4)
    assert row["ci_low"] < 0.4 < row["ci_high"]
    assert (row["n_orders"], row["n_expired"], row["n_resolved"]) == (5, 2, 4)
    assert (row["window_s"], row["horizon_s"]) == (1260.0, 1260.0 + EXPIRY_GRACE_S)
    assert row["resolved_share_expired"] == 0.5
    # Wilson 95 % for 2/4.
    assert (row["resolved_share_ci_low"], row["resolved_share_ci_high"]) == pytest.approx(
        (0.15003, 0.84997), abs=1e-5
    )


def test_an_order_past_the_state_it_could_expire_from_no_longer_counts_toward_expiry() -> None:
    """OrdinalsBot inscriptions: only an unpaid invoice expires. Two orders seen paid at 50 s
    (still open), one expired at ~600 s. Paid orders leave the expiry risk at their payment
    (midpoint 30 s): S = 1/3 after it and the expiry takes F to 1/3. Left at risk as open
    orders, one order followed past them could not vouch for their fate: no rate at all."""
    polls = {
        "p1": [(10, "pending"), (50, "processing")],
        "p2": [(10, "pending"), (50, "processing")],
        "p3": [(10, "pending"), (590, "pending"), (610, "expired")],
    }
    observations = pl.DataFrame(
        [
            {
                "provider": "ordinalsbot",
                "order_id": order_id,
                "order_kind": "inscription",
                "polled_at": at(t),
                "state": state,
                "is_terminal": state == "expired",
            }
            for order_id, rows in polls.items()
            for t, state in rows
        ],
        schema_overrides={"polled_at": UTC_US},
    )
    orders = pl.DataFrame(
        [
            {
                "provider": "ordinalsbot",
                "order_id": order_id,
                "order_kind": "inscription",
                "registered_at": at(0),
                "created_at": at(0),
                "service": None,
                "country": None,
            }
            for order_id in polls
        ]
    )
    history = build_status_history(observations)
    outcomes = dict(expiry_records(history, orders).select("order_id", "outcome_state").iter_rows())
    assert outcomes == {"p1": "processing", "p2": "processing", "p3": "expired"}
    assert expiry_rates(history, orders)["expiry_rate"].item() == pytest.approx(1 / 3)


def test_expiry_over_time_buckets_by_origin() -> None:
    observations, orders = _receive_log()
    late = orders.filter(order_id="o4").with_columns(
        pl.col("order_id").replace({"o4": "o6"}), pl.col("created_at") + timedelta(hours=2)
    )
    late_obs = observations.filter(order_id="o4").with_columns(
        pl.col("order_id").replace({"o4": "o6"}), pl.col("polled_at") + timedelta(hours=2)
    )
    history = build_status_history(pl.concat([observations, late_obs]))
    out = expiry_rates_over_time(history, pl.concat([orders, late]), every="1h")
    assert out.select("bucket_start", "n_orders", "n_expired", "expiry_rate").rows() == [
        (T0, 5, 2, pytest.approx(0.4)),
        (T0 + timedelta(hours=2), 1, 1, pytest.approx(1.0)),
    ]


def _reliability_inputs() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """sms4sats: 40 orders × 8 polls (30 codes, 10 expiries), 20 errors of which 8 are 429s,
    12 unrecognised answers. baanx: 3 orders, 6 polls: too few to be ranked."""
    rows: list[dict[str, Any]] = []
    orders: list[dict[str, Any]] = []
    for i in range(40):
        end = "code_received" if i < 30 else "expired"
        for k in range(8):
            state = "processing" if k < 7 else end
            error = None
            if i < 20 and k == 3:
                error = "rate_limited" if i < 8 else "server_error"
            if 20 <= i < 32 and k == 2:
                state = "unknown"
            rows.append(
                {
                    "provider": "sms4sats",
                    "order_id": f"s{i}",
                    "order_kind": "sms_receive",
                    "polled_at": at(10 * k),
                    "state": state,
                    "is_terminal": k == 7,
                    "error_class": error,
                    "http_status": 429 if error == "rate_limited" else 500 if error else 200,
                    "latency_ms": float(100 + i + k),
                }
            )
        orders.append({"provider": "sms4sats", "order_id": f"s{i}", "order_kind": "sms_receive"})
    for i in range(3):
        for k, state in enumerate(["pending", "completed"]):
            rows.append(
                {
                    "provider": "baanx",
                    "order_id": f"b{i}",
                    "order_kind": "product_order",
                    "polled_at": at(10 * k),
                    "state": state,
                    "is_terminal": state == "completed",
                    "error_class": None,
                    "http_status": 200,
                    "latency_ms": 50.0,
                }
            )
        orders.append({"provider": "baanx", "order_id": f"b{i}", "order_kind": "product_order"})
    observations = pl.DataFrame(rows, schema_overrides={"polled_at": UTC_US})
    order_frame = pl.DataFrame(orders).with_columns(pl.lit(T0).alias("registered_at"))
    quarantine = pl.DataFrame({"provider": ["sms4sats"] * 5 + ["altinn"]})
    return observations, order_frame, quarantine


def test_reliability_rates_score_and_ranking() -> None:
    observations, orders, quarantine = _reliability_inputs()
    history = build_status_history(observations)
    scorecard = provider_scorecard(
        poll_rollups(observations), latency_rollups(observations), quarantine,
        completion_records(history, orders), expiry_records(history, orders),
        as_of=T0 + timedelta(days=1),
    )  # fmt: skip
    out = provider_reliability(scorecard)
    assert out["provider"].to_list() == ["altinn", "baanx", "sms4sats"]
    sms = out.filter(provider="sms4sats").row(0, named=True)
    assert (sms["polls"], sms["valid_answers"], sms["n_errors"]) == (320, 300, 20)
    assert sms["availability"] == pytest.approx(300 / 320)
    assert sms["availability_ci_low"] < 300 / 320 < sms["availability_ci_high"]
    assert sms["rate_limited_rate"] == pytest.approx(8 / 320)
    latencies = observations.filter(provider="sms4sats")["latency_ms"].to_numpy()
    # Read off the latency buckets: within their 2.5 % of the exact quantiles.
    assert sms["latency_p50_ms"] == pytest.approx(np.percentile(latencies, 50), rel=0.025)
    assert sms["latency_p95_ms"] == pytest.approx(np.percentile(latencies, 95), rel=0.025)
    assert sms["n_orders"] == 40
    assert sms["success_rate"] == pytest.approx(0.75)  # every order resolved: 30 of 40
    assert sms["expiry_rate"] == pytest.approx(0.25)
    assert sms["quarantine_rate"] == pytest.approx(5 / 325)
    assert sms["unknown_status_rate"] == pytest.approx(12 / 300)
    expected_score = 100 * (
        SCORE_WEIGHTS["availability"] * 300 / 320
        + SCORE_WEIGHTS["success_rate"] * 0.75
        + SCORE_WEIGHTS["latency"] * (1 - sms["latency_p95_ms"] / LATENCY_BUDGET_MS)
        + SCORE_WEIGHTS["clean_data"] * (1 - 5 / 325)
        + SCORE_WEIGHTS["recognised_status"] * (1 - 12 / 300)
    )
    assert sms["score"] == pytest.approx(expected_score)
    assert (sms["is_ranked"], sms["rank"]) == (True, 1)
    baanx = out.filter(provider="baanx").row(0, named=True)
    assert baanx["score"] is not None and baanx["score"] > sms["score"]
    assert (baanx["is_ranked"], baanx["rank"]) == (False, None)  # 6 polls, 3 orders
    altinn = out.filter(provider="altinn").row(0, named=True)
    assert (altinn["polls"], altinn["quarantine_rate"], altinn["is_ranked"]) == (0, 1.0, False)


def test_error_mix_counts_each_class_including_valid_answers() -> None:
    observations, _, _ = _reliability_inputs()
    out = (
        error_mix(poll_rollups(observations))
        .filter(provider="sms4sats")
        .select("error_class", "polls")
    )
    assert_frame_equal(
        out,
        pl.DataFrame(
            {"error_class": [None, "rate_limited", "server_error"], "polls": [300, 8, 12]},
            schema={"error_class": pl.String(), "polls": pl.Int64()},
        ),
    )


def test_scorecard_windows_count_only_their_polls_and_orders() -> None:
    """Polls two days old fall out of the 1h and 1d windows but stay in 7d, 30d and all; an
    order registered then counts only where its registration falls."""
    observations, orders, quarantine = _reliability_inputs()
    old = observations.filter(provider="baanx").with_columns(
        pl.col("order_id") + "-old", pl.col("polled_at") - timedelta(days=2)
    )
    old_orders = orders.filter(provider="baanx").with_columns(
        pl.col("order_id") + "-old", pl.col("registered_at") - timedelta(days=2)
    )
    log = pl.concat([observations, old])
    everything = pl.concat([orders, old_orders])
    history = build_status_history(log)
    scorecard = provider_scorecard(
        poll_rollups(log), latency_rollups(log), quarantine,
        completion_records(history, everything), expiry_records(history, everything),
        as_of=T0 + timedelta(minutes=30),
    )  # fmt: skip
    baanx = {
        row["window"]: (row["polls"], row["n_orders"])
        for row in scorecard.filter(provider="baanx").iter_rows(named=True)
    }
    assert baanx == {"1h": (6, 3), "1d": (6, 3), "7d": (12, 6), "30d": (12, 6), "all": (12, 6)}
    windows = scorecard.filter(provider="baanx").select("window", "window_start").rows()
    assert dict(windows)["all"] is None
    assert dict(windows)["1h"] == T0 - timedelta(minutes=30)


def test_rollups_of_parts_merge_into_the_rollup_of_the_whole() -> None:
    observations, _, _ = _reliability_inputs()
    first, second = observations[:150], observations[150:]
    for rollup, keys in (
        (poll_rollups, ["provider", "minute", "error_class"]),
        (latency_rollups, ["provider", "minute", "latency_bucket"]),
    ):
        merged = merge_rollups([rollup(first), rollup(second)], keys).sort(keys)
        assert_frame_equal(merged, rollup(observations).sort(keys))


def test_latency_quantiles_from_buckets_are_within_their_precision() -> None:
    rng = np.random.default_rng(5)
    latencies = rng.lognormal(np.log(120.0), 0.8, 20_000)
    frame = pl.DataFrame(
        {"provider": "p", "polled_at": T0, "latency_ms": latencies},
        schema_overrides={"polled_at": UTC_US},
    )
    out = latency_quantiles(latency_rollups(frame), ["provider"], (0.5, 0.95, 0.99)).row(
        0, named=True
    )
    for q in (50, 95, 99):
        assert out[f"latency_p{q}_ms"] == pytest.approx(np.percentile(latencies, q), rel=0.025)
