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


_ORDER_INDEX = "_order_index"
"""Each order's integer index within one fold, in the order of its ids. Sorting, grouping and
neighbours by it instead of by the two id strings took a fold of 2 M polls of 167 k orders with
ids in no order (a full build's slice) from 7.0 to 2.6 s."""

_PIECE_ORDER = [
    _ORDER_INDEX,
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
    new = conform_observations(observations).filter(is_state_evidence())
    orders = _order_index(new)
    pieces = _pieces_from_observations(_indexed(new, orders))
    return _finalize(_merge_runs(pieces), orders)


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
    orders = _order_index(new)
    new = _indexed(new, orders)
    seeds = _indexed(_current_intervals(existing_history, orders), orders)
    new = (
        new.join(seeds.select(_ORDER_INDEX, "last_seen_at"), on=_ORDER_INDEX, how="left")
        .filter(pl.col("last_seen_at").is_null() | (pl.col("polled_at") > pl.col("last_seen_at")))
        .drop("last_seen_at")
    )
    seeds = seeds.join(new.select(_ORDER_INDEX).unique(), on=_ORDER_INDEX, how="semi")
    pieces = pl.concat([_pieces_from_seeds(seeds), _pieces_from_observations(new)])
    return _finalize(_merge_runs(pieces), orders)


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


def _order_index(observations: pl.DataFrame) -> pl.DataFrame:
    """The orders of `observations`, sorted by their ids, each with its `_ORDER_INDEX`."""
    return observations.select(ORDER_KEY).unique().sort(ORDER_KEY).with_row_index(_ORDER_INDEX)


def _indexed(frame: pl.DataFrame, orders: pl.DataFrame) -> pl.DataFrame:
    """`frame`'s rows of `orders`, their ids replaced by the order's `_ORDER_INDEX`; in their
    order, so polls of one order at one instant keep theirs."""
    return frame.join(orders, on=ORDER_KEY, how="inner", maintain_order="left").drop(ORDER_KEY)


def _run_numbers() -> pl.Expr:
    """Increasing numbers of the runs of equal consecutive states in a frame sorted by order:
    one number across all orders, cheaper than numbering each order's runs from 0."""
    order = pl.col(_ORDER_INDEX)
    starts = (pl.col("state") != pl.col("state").shift(1)) | (order != order.shift(1))
    return starts.fill_null(True).cast(pl.Int64).cum_sum()


def _pieces_from_observations(observations: pl.DataFrame) -> pl.DataFrame:
    """Valid observations (`is_state_evidence`) collapsed into maximal same-state runs
    ("pieces") per order."""
    runs = (
        observations.with_columns(pl.col("state").cast(STATE))
        .sort([_ORDER_INDEX, "polled_at"], maintain_order=True)
        .with_columns(_run_numbers().alias("piece_order"))
    )
    return (
        runs.group_by([_ORDER_INDEX, "piece_order"], maintain_order=True)
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
        _ORDER_INDEX,
        pl.lit(-1, pl.Int64).alias("piece_order"),
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
    """Pieces merged where consecutive pieces of an order share a state (seed + first new run),
    each numbered from its order's seed interval (0 for an order new to the history)."""
    pieces = pieces.sort([_ORDER_INDEX, "piece_order"]).with_columns(_run_numbers().alias("_run"))
    order = pl.col(_ORDER_INDEX)
    first_of_order = (order != order.shift(1)).fill_null(True)
    return (
        pieces.group_by([_ORDER_INDEX, "_run"], maintain_order=True)
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
            # A seed is its order's first piece, so its number starts the order's count.
            pl.when(first_of_order)
            .then(pl.col("seed_seq").fill_null(0) - pl.col("_run"))
            .forward_fill()
            .add(pl.col("_run"))
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
    return _transition_issue(
        pl.col("state").shift(1).over(ORDER_KEY), pl.col("is_terminal").shift(1).over(ORDER_KEY)
    )


def _transition_issue(previous_state: pl.Expr, previous_terminal: pl.Expr) -> pl.Expr:
    """`transition_issue` given the previous interval's state and terminal flag (null for an
    order's first interval)."""
    previous = previous_state.cast(pl.String)
    current = pl.col("state").cast(pl.String)
    rank_now = current.replace_strict(STATE_RANK, default=None, return_dtype=pl.Int8)
    rank_before = previous.replace_strict(STATE_RANK, default=None, return_dtype=pl.Int8)
    allowed = pl.concat_str([previous, current], separator=">").is_in(
        [f"{a}>{b}" for a, b in sorted(ALLOWED_AFTER_TERMINAL)]
    )
    return (
        pl.when(previous_terminal & ~allowed)
        .then(pl.lit(ISSUE_LEFT_TERMINAL))
        .when(rank_now < rank_before)
        .then(pl.lit(ISSUE_BACKWARDS))
        .otherwise(pl.lit(None, pl.String))
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


def _finalize(merged: pl.DataFrame, orders: pl.DataFrame) -> pl.DataFrame:
    """Per-order neighbour columns (bounds, flags), the orders' ids back from `orders` and the
    output column order; sorted by order and interval."""
    seed = pl.col("is_seed")
    merged = merged.sort(_ORDER_INDEX, "interval_seq")
    ids = orders.select(ORDER_KEY)[merged[_ORDER_INDEX]]
    frame = merged.hstack(ids).with_columns(
        pl.when(seed)
        .then(pl.col("seed_previous_state"))
        .otherwise(_before("state"))
        .alias("previous_state"),
        pl.when(seed)
        .then(pl.col("seed_entered_after"))
        .otherwise(_before("last_seen_at"))
        .alias("entered_after"),
        _after("entered_by").alias("exited_by"),
        pl.when(seed)
        .then(pl.col("seed_issue"))
        .otherwise(_transition_issue(_before("state"), _before("is_terminal")))
        .alias("transition_issue"),
        provider_event_at().alias("provider_event_at"),
    )
    return frame.with_columns(
        pl.col("exited_by").is_null().alias("is_current"),
        _seconds(pl.col("last_seen_at") - pl.col("entered_by")).alias("min_duration_s"),
        _seconds(pl.col("exited_by") - pl.col("entered_after")).alias("max_duration_s"),
        pl.col("transition_issue").is_not_null().alias("is_impossible_transition"),
    ).select([pl.col(c).cast(dtype) for c, dtype in HISTORY_COLUMNS.items()])


def _before(column: str) -> pl.Expr:
    """`column` of the row before, where it is of the same order (frame sorted by order): a
    shift within the order that, unlike a window over it, finds no groups (0.18 s each at
    500 k rows)."""
    order = pl.col(_ORDER_INDEX)
    return pl.when(order == order.shift(1)).then(pl.col(column).shift(1))


def _after(column: str) -> pl.Expr:
    """`column` of the row after, where it is of the same order (frame sorted by order)."""
    order = pl.col(_ORDER_INDEX)
    return pl.when(order == order.shift(-1)).then(pl.col(column).shift(-1))
