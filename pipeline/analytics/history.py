"""Status history: each order's observation log folded into state intervals with bounds.

One row per (order, state interval). Polling only shows that a change happened between the last
poll still in the old state and the first poll in the new one, so every interval keeps both:

- `entered_after`: the last poll that still showed the previous state (null for the first
  interval: we do not know how long the order was in its first observed state before we looked);
- `entered_by`: the first poll that showed this state;
- `last_seen_at`: the last poll that showed this state; `exited_by`: the first poll in the next
  state (null while the interval is current, `is_current`);
- `min_duration_s` / `max_duration_s`: the time in the state is at least last_seen_at −
  entered_by and at most exited_by − entered_after (null when a bound is unknown);
- `n_polls`: valid answers in the interval.

Only valid, recognised answers make intervals: poll errors (`error_class` not null) repeat the
previous state and `unknown` answers say nothing about the order, so both are skipped here (they
are counted in provider reliability instead).

Where the provider reports its own event time, the interval carries it as `provider_event_at`
(each provider spec's `event_time`). Transitions that the lifecycle forbids are kept but flagged
(`is_impossible_transition`, `transition_issue`): leaving a terminal state (`left_terminal`,
except a failed outcome becoming `refunded`) and moving back to an earlier stage
(`backwards`, e.g. processing → pending).

`update_status_history` folds new observations into an existing history, touching only the
orders that have new observations and seeding each from its current (last) interval, so a tick
costs work proportional to its new observations. The result equals a full rebuild as long as new
observations are newer than what the history has seen or replay what it has seen;
`late_observations` finds the others, so the caller can rebuild those orders from the log.
"""

from __future__ import annotations

import polars as pl

from pipeline.analytics.inputs import (
    ORDER_KEY,
    STATE,
    UTC_TIME,
    conform,
    conform_observations,
    is_state_evidence,
)
from pipeline.model import OrderState
from pipeline.providers.registry import REGISTRY

HISTORY_COLUMNS: dict[str, pl.DataType] = {
    "provider": pl.String(),
    "order_id": pl.String(),
    "order_kind": pl.String(),
    "interval_seq": pl.Int32(),
    "state": STATE,
    "previous_state": STATE,
    "is_terminal": pl.Boolean(),
    "entered_after": UTC_TIME,
    "entered_by": UTC_TIME,
    "last_seen_at": UTC_TIME,
    "exited_by": UTC_TIME,
    "is_current": pl.Boolean(),
    "n_polls": pl.Int32(),
    "min_duration_s": pl.Float64(),
    "max_duration_s": pl.Float64(),
    "provider_created_at": UTC_TIME,
    "provider_updated_at": UTC_TIME,
    "provider_paid_at": UTC_TIME,
    "provider_event_at": UTC_TIME,
    "is_impossible_transition": pl.Boolean(),
    "transition_issue": pl.String(),
}
"""Columns of the `status_history` table, in order."""

HISTORY_REQUIRED = frozenset(
    {"provider", "order_id", "interval_seq", "state", "entered_by", "last_seen_at"}
)

STATE_RANK: dict[str, int] = {
    OrderState.PENDING.value: 0,
    OrderState.PROCESSING.value: 1,
    OrderState.CODE_RECEIVED.value: 2,
    OrderState.COMPLETED.value: 2,
    OrderState.FAILED.value: 2,
    OrderState.EXPIRED.value: 2,
    OrderState.CANCELLED.value: 2,
    OrderState.REFUNDED.value: 2,
}
"""Lifecycle position of each state; moving to a lower rank is flagged as `backwards`."""

ALLOWED_AFTER_TERMINAL: frozenset[tuple[str, str]] = frozenset(
    {
        (OrderState.FAILED.value, OrderState.REFUNDED.value),
        (OrderState.EXPIRED.value, OrderState.REFUNDED.value),
        (OrderState.CANCELLED.value, OrderState.REFUNDED.value),
    }
)
"""Moves out of a terminal state that are legitimate: funds returned after a failed outcome."""

ISSUE_LEFT_TERMINAL = "left_terminal"
ISSUE_BACKWARDS = "backwards"

_PROVIDER_TIMES = ("provider_created_at", "provider_updated_at", "provider_paid_at")
_SEED_COLUMNS = {
    "seed_seq": pl.Int32(),
    "seed_previous_state": STATE,
    "seed_entered_after": UTC_TIME,
    "seed_issue": pl.String(),
}


_PIECE_ORDER = [
    *ORDER_KEY,
    "piece_order",
    "order_kind",
    "state",
    "is_terminal",
    "entered_by",
    "last_seen_at",
    "n_polls",
    *_PROVIDER_TIMES,
    "is_seed",
    *_SEED_COLUMNS,
]


def build_status_history(observations: pl.DataFrame) -> pl.DataFrame:
    """The full status history of every order in `observations`.

    Args:
        observations: rows shaped like the `observations` table (at least provider, order_id,
            polled_at, state; error_class, is_terminal and the provider_* times when present).

    Returns:
        One row per state interval, columns `HISTORY_COLUMNS`, sorted by order and interval.
    """
    pieces = _pieces_from_observations(conform_observations(observations))
    return _finalize(_merge_runs(pieces))


def status_history_delta(
    existing_history: pl.DataFrame, new_observations: pl.DataFrame
) -> pl.DataFrame:
    """The history rows that change when `new_observations` arrive.

    Only orders with new valid observations are touched. Each is seeded from its last interval in
    `existing_history`; the result holds that interval (updated) and every interval after it, so
    the caller replaces rows with the same (provider, order_id, interval_seq) or later.
    Observations at or before the seed's `last_seen_at` are ignored, which makes replaying a tick
    harmless; use `late_observations` to find genuinely late ones.

    Only each touched order's current interval is read, so `existing_history` may be just
    those rows (e.g. `WHERE is_current` for the orders in the tick): the work is then
    proportional to the new observations, not to the stored history.

    Args:
        existing_history: a status history, whole or only the touched orders' current rows.
        new_observations: observations not yet folded into the history.

    Returns:
        Rows with columns `HISTORY_COLUMNS` for the touched orders, from their seed onward.
    """
    new = conform_observations(new_observations).filter(is_state_evidence())
    seeds = _current_intervals(existing_history, new.select(ORDER_KEY).unique())
    new = (
        new.join(seeds.select(*ORDER_KEY, "last_seen_at"), on=ORDER_KEY, how="left")
        .filter(pl.col("last_seen_at").is_null() | (pl.col("polled_at") > pl.col("last_seen_at")))
        .drop("last_seen_at")
    )
    seeds = seeds.join(new.select(ORDER_KEY).unique(), on=ORDER_KEY, how="semi")
    pieces = pl.concat([_pieces_from_seeds(seeds), _pieces_from_observations(new)])
    return _finalize(_merge_runs(pieces))


def update_status_history(
    existing_history: pl.DataFrame, new_observations: pl.DataFrame
) -> pl.DataFrame:
    """`existing_history` with `new_observations` folded in, recomputing touched orders only.

    Equal to `build_status_history` over the old and new observations together whenever
    `late_observations(existing_history, new_observations)` is empty.

    Args:
        existing_history: the current status history.
        new_observations: observations not yet folded into it.

    Returns:
        The whole updated history, columns `HISTORY_COLUMNS`, sorted by order and interval.
    """
    existing = conform_history(existing_history)
    delta = status_history_delta(existing, new_observations)
    first_replaced = delta.group_by(ORDER_KEY).agg(pl.col("interval_seq").min().alias("_from"))
    kept = (
        existing.join(first_replaced, on=ORDER_KEY, how="left")
        .filter(pl.col("_from").is_null() | (pl.col("interval_seq") < pl.col("_from")))
        .drop("_from")
    )
    return pl.concat([kept, delta]).sort([*ORDER_KEY, "interval_seq"])


def late_observations(
    existing_history: pl.DataFrame, new_observations: pl.DataFrame
) -> pl.DataFrame:
    """New observations that an incremental update cannot place correctly.

    A valid answer no newer than its order's last poll in `existing_history` is a replay when an
    interval of that order already covers its time with the same state (it changes nothing);
    otherwise it is late. Pass the touched orders' whole history. When the result is not empty,
    rebuild the affected orders from the observation log.

    Returns:
        The offending rows of `new_observations` (conformed columns).
    """
    new = conform_observations(new_observations).filter(is_state_evidence())
    history = conform_history(existing_history).join(
        new.select(ORDER_KEY).unique(), on=ORDER_KEY, how="semi"
    )
    last_poll = history.group_by(ORDER_KEY).agg(pl.col("last_seen_at").max().alias("_last_poll"))
    covering = history.select(
        *ORDER_KEY,
        pl.col("entered_by").alias("_from"),
        pl.col("last_seen_at").alias("_to"),
        pl.col("state").cast(pl.String).alias("_state"),
    ).sort("_from")
    checked = (
        new.join(last_poll, on=ORDER_KEY, how="inner")
        .filter(pl.col("polled_at") <= pl.col("_last_poll"))
        .sort("polled_at")
        .join_asof(
            covering,
            left_on="polled_at",
            right_on="_from",
            by=ORDER_KEY,
            strategy="backward",
            check_sortedness=False,
        )
    )
    is_replay = (pl.col("polled_at") <= pl.col("_to")) & (pl.col("state") == pl.col("_state"))
    return (
        checked.filter(~is_replay.fill_null(False))
        .select(new.columns)
        .sort([*ORDER_KEY, "polled_at"])
    )


def conform_history(history: pl.DataFrame) -> pl.DataFrame:
    """A stored history (e.g. read back from DuckDB) in the dtypes `HISTORY_COLUMNS` names."""
    return conform(history, HISTORY_COLUMNS, HISTORY_REQUIRED, name="status_history")


def empty_history() -> pl.DataFrame:
    """A status history with no rows."""
    return pl.DataFrame(schema=HISTORY_COLUMNS)


def _current_intervals(history: pl.DataFrame, orders: pl.DataFrame) -> pl.DataFrame:
    """The last interval of each order in `orders` that `history` knows."""
    return (
        conform_history(history)
        .join(orders, on=ORDER_KEY, how="semi")
        .filter(pl.col("interval_seq") == pl.col("interval_seq").max().over(ORDER_KEY))
    )


def _run_index() -> pl.Expr:
    """0-based index of the run of equal consecutive states within an order (frame sorted)."""
    changed = (pl.col("state") != pl.col("state").shift(1)).fill_null(True)
    return (changed.cast(pl.Int32).cum_sum() - 1).over(ORDER_KEY)


def _pieces_from_observations(observations: pl.DataFrame) -> pl.DataFrame:
    """Valid observations collapsed into maximal same-state runs ("pieces") per order."""
    runs = (
        observations.filter(is_state_evidence())
        .with_columns(pl.col("state").cast(STATE))
        .sort([*ORDER_KEY, "polled_at"], maintain_order=True)
        .with_columns(_run_index().alias("piece_order"))
    )
    return (
        runs.group_by([*ORDER_KEY, "piece_order"], maintain_order=True)
        .agg(
            pl.col("order_kind").first(),
            pl.col("state").first(),
            pl.col("is_terminal").first(),
            pl.col("polled_at").first().alias("entered_by"),
            pl.col("polled_at").last().alias("last_seen_at"),
            pl.len().cast(pl.Int32).alias("n_polls"),
            *[pl.col(c).first(ignore_nulls=True) for c in _PROVIDER_TIMES],
        )
        .with_columns(
            pl.lit(False).alias("is_seed"),
            *[pl.lit(None, dtype).alias(c) for c, dtype in _SEED_COLUMNS.items()],
        )
        .select(_PIECE_ORDER)
    )


def _pieces_from_seeds(seeds: pl.DataFrame) -> pl.DataFrame:
    """Current history intervals as pieces that sort before any new observation's piece."""
    return seeds.select(
        *ORDER_KEY,
        pl.lit(-1, pl.Int32).alias("piece_order"),
        "order_kind",
        "state",
        "is_terminal",
        "entered_by",
        "last_seen_at",
        "n_polls",
        *_PROVIDER_TIMES,
        pl.lit(True).alias("is_seed"),
        pl.col("interval_seq").alias("seed_seq"),
        pl.col("previous_state").alias("seed_previous_state"),
        pl.col("entered_after").alias("seed_entered_after"),
        pl.col("transition_issue").alias("seed_issue"),
    ).select(_PIECE_ORDER)


def _merge_runs(pieces: pl.DataFrame) -> pl.DataFrame:
    """Pieces merged where consecutive pieces of an order share a state (seed + first new run)."""
    pieces = pieces.sort([*ORDER_KEY, "piece_order"]).with_columns(_run_index().alias("_run"))
    return (
        pieces.group_by([*ORDER_KEY, "_run"], maintain_order=True)
        .agg(
            pl.col("order_kind").first(),
            pl.col("state").first(),
            pl.col("is_terminal").first(),
            pl.col("entered_by").first(),
            pl.col("last_seen_at").last(),
            pl.col("n_polls").sum().cast(pl.Int32),
            *[pl.col(c).first(ignore_nulls=True) for c in _PROVIDER_TIMES],
            pl.col("is_seed").first(),
            *[pl.col(c).first() for c in _SEED_COLUMNS],
        )
        .with_columns(
            (pl.col("seed_seq").first().over(ORDER_KEY).fill_null(0) + pl.col("_run"))
            .cast(pl.Int32)
            .alias("interval_seq")
        )
        .drop("_run")
    )


def transition_issue() -> pl.Expr:
    """Why the move from the previous interval's state into this one is impossible, or null.

    The one definition of an impossible transition: the history flags it, and the ingestion
    asset check applies it to the provider's state changes. Rows must be state changes (no
    repeats), sorted by time within each order.
    """
    previous = pl.col("state").shift(1).cast(pl.String)
    current = pl.col("state").cast(pl.String)
    rank_now = current.replace_strict(STATE_RANK, default=None, return_dtype=pl.Int8)
    rank_before = previous.replace_strict(STATE_RANK, default=None, return_dtype=pl.Int8)
    allowed = pl.concat_str([previous, current], separator=">").is_in(
        [f"{a}>{b}" for a, b in sorted(ALLOWED_AFTER_TERMINAL)]
    )
    return (
        pl.when(pl.col("is_terminal").shift(1) & ~allowed)
        .then(pl.lit(ISSUE_LEFT_TERMINAL))
        .when(rank_now < rank_before)
        .then(pl.lit(ISSUE_BACKWARDS))
        .otherwise(pl.lit(None, pl.String))
        .over(ORDER_KEY)
    )


def provider_event_at() -> pl.Expr:
    """The provider's own time of entering the interval's state, where the provider's spec names
    an `event_time` for that state; null otherwise."""
    expr: pl.Expr = pl.lit(None, UTC_TIME)
    state = pl.col("state").cast(pl.String)
    for spec in REGISTRY.specs():
        if spec.event_time is None:
            continue
        expr = (
            pl.when((pl.col("provider") == spec.slug) & state.is_in(sorted(spec.event_time.states)))
            .then(pl.col(spec.event_time.column))
            .otherwise(expr)
        )
    return expr


def _seconds(delta: pl.Expr) -> pl.Expr:
    return delta.dt.total_microseconds().cast(pl.Float64) / 1e6


def _finalize(merged: pl.DataFrame) -> pl.DataFrame:
    """Per-order window columns (neighbours, bounds, flags) and the output column order."""
    seed = pl.col("is_seed")
    frame = merged.sort([*ORDER_KEY, "interval_seq"]).with_columns(
        pl.when(seed)
        .then(pl.col("seed_previous_state"))
        .otherwise(pl.col("state").shift(1).over(ORDER_KEY))
        .alias("previous_state"),
        pl.when(seed)
        .then(pl.col("seed_entered_after"))
        .otherwise(pl.col("last_seen_at").shift(1).over(ORDER_KEY))
        .alias("entered_after"),
        pl.col("entered_by").shift(-1).over(ORDER_KEY).alias("exited_by"),
        pl.when(seed)
        .then(pl.col("seed_issue"))
        .otherwise(transition_issue())
        .alias("transition_issue"),
        provider_event_at().alias("provider_event_at"),
    )
    return (
        frame.with_columns(
            pl.col("exited_by").is_null().alias("is_current"),
            _seconds(pl.col("last_seen_at") - pl.col("entered_by")).alias("min_duration_s"),
            _seconds(pl.col("exited_by") - pl.col("entered_after")).alias("max_duration_s"),
            pl.col("transition_issue").is_not_null().alias("is_impossible_transition"),
        )
        .select([pl.col(c).cast(dtype) for c, dtype in HISTORY_COLUMNS.items()])
        .sort([*ORDER_KEY, "interval_seq"])
    )
