"""The write path of observations: one batch in one transaction, or many providers' at once.

Set aside rows the warehouse would refuse, validate the rest with pandera; append valid rows to
`observations` and their redacted bodies to `payloads` (once per hash); send failing rows to
`quarantine` with reasons; update `order_tracking`, the scheduler's per-order memory. Keys are
deterministic, so re-writing a batch changes nothing. Should the warehouse still refuse the
batch, each row is written on its own and the rows it refuses are quarantined: one bad row never
costs the others.

`write_batches` is the polling writer's path: a validation, a connection and a transaction each
cost about the same for 10 rows as for 1,000, so every provider's rows are validated together
once and written in one transaction; only if the warehouse refuses it does each provider's
batch get a transaction of its own.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import duckdb
import polars as pl

from pipeline.model import Observation
from pipeline.warehouse import Warehouse, WarehouseLockedError, append
from pipeline.warehouse.connection import is_lock_error
from pipeline.warehouse.frames import (
    Refused,
    observation_id,
    observations_frame,
    payloads_frame,
    split_storable,
)
from pipeline.warehouse.store import registered

logger = logging.getLogger(__name__)

_TRACKING_VIEW = "_tracking_batch"

TRACKING_UPSERT = f"""
INSERT INTO order_tracking AS t (provider, order_id, last_polled_at, last_state, last_ok_at,
    is_terminal, terminal_seen_at, grace_checked, polls, consecutive_errors, not_found_since_ok)
SELECT provider, order_id, last_polled_at, last_state, last_ok_at,
    coalesce(is_terminal, false), terminal_seen_at, false, polls, trailing_errors,
    trailing_not_found
FROM {_TRACKING_VIEW}
ON CONFLICT (provider, order_id) DO UPDATE SET
    last_polled_at = greatest(t.last_polled_at, excluded.last_polled_at),
    last_state = coalesce(excluded.last_state, t.last_state),
    last_ok_at = coalesce(excluded.last_ok_at, t.last_ok_at),
    grace_checked = t.grace_checked OR (t.is_terminal AND excluded.last_ok_at IS NOT NULL),
    is_terminal = coalesce(excluded.is_terminal, t.is_terminal),
    terminal_seen_at = CASE WHEN coalesce(excluded.is_terminal, t.is_terminal)
        THEN coalesce(t.terminal_seen_at, excluded.terminal_seen_at) END,
    polls = t.polls + excluded.polls,
    consecutive_errors = CASE WHEN excluded.last_ok_at IS NULL
        THEN t.consecutive_errors + excluded.polls ELSE excluded.consecutive_errors END,
    not_found_since_ok = CASE WHEN excluded.last_ok_at IS NULL
        THEN coalesce(t.not_found_since_ok, 0) + excluded.not_found_since_ok
        ELSE excluded.not_found_since_ok END
"""


@dataclasses.dataclass(frozen=True)
class BatchResult:
    """What writing a batch did."""

    received: int
    written: int
    quarantined: int
    payloads_new: int

    def __add__(self, other: BatchResult) -> BatchResult:
        return BatchResult(
            self.received + other.received,
            self.written + other.written,
            self.quarantined + other.quarantined,
            self.payloads_new + other.payloads_new,
        )


def write_batch(
    warehouse: Warehouse, observations: Sequence[Observation], *, batch_id: str | None = None
) -> BatchResult:
    """Validate and store `observations` in one transaction (row by row if it is refused).

    Raises:
        WarehouseLockedError: another process holds the warehouse; nothing was stored.
    """
    if not observations:
        return BatchResult(0, 0, 0, 0)
    try:
        with warehouse.transaction() as con:
            return _store(con, observations, [], batch_id)
    except WarehouseLockedError:
        raise
    except Exception as error:  # whatever the cause, one refused row must not cost the others
        if is_lock_error(error):
            raise
        logger.warning(
            "batch of %d refused by the warehouse (%s); storing row by row",
            len(observations),
            type(error).__name__,
        )
    return _store_one_by_one(warehouse, observations, batch_id)


def write_batches(
    warehouse: Warehouse, observations: Sequence[Observation], *, batch_id: str | None = None
) -> tuple[BatchResult, dict[str, Exception]]:
    """Store many providers' observations over one connection, validated together once.

    All of them go in one transaction; should the warehouse refuse it, each provider's rows are
    written in a transaction of their own (row by row if refused again), so a provider whose
    rows the warehouse refuses never costs another provider's rows.

    Returns:
        What was stored, and per provider the error that kept its rows out (rare: a row the
        warehouse refuses is quarantined instead).

    Raises:
        WarehouseLockedError: another process holds the warehouse; nothing was stored.
    """
    if not observations:
        return BatchResult(0, 0, 0, 0), {}
    with warehouse.connect() as con:
        try:
            return _apply_in_transaction(con, prepare_batch(observations, [], batch_id)), {}
        except Exception as error:
            if is_lock_error(error):
                raise
            logger.warning(
                "joint batch of %d refused (%s); storing provider by provider",
                len(observations),
                type(error).__name__,
            )
        return _store_by_provider(con, observations, batch_id)


def _store_by_provider(
    con: duckdb.DuckDBPyConnection, observations: Sequence[Observation], batch_id: str | None
) -> tuple[BatchResult, dict[str, Exception]]:
    """Each provider's rows in a transaction of their own, row by row if refused."""
    by_provider: dict[str, list[Observation]] = {}
    for observation in observations:
        by_provider.setdefault(observation.provider, []).append(observation)
    totals = BatchResult(0, 0, 0, 0)
    failed: dict[str, Exception] = {}
    for provider, rows in by_provider.items():
        try:
            totals = totals + _in_transaction(con, rows, [], batch_id)
            continue
        except Exception as error:
            if is_lock_error(error):
                raise
            logger.warning(
                "%s batch of %d refused by the warehouse (%s); storing row by row",
                provider,
                len(rows),
                type(error).__name__,
            )
        try:
            totals = totals + _store_rows(con, rows, batch_id)
        except Exception as error:
            if is_lock_error(error):
                raise
            failed[provider] = error
    return totals, failed


@dataclasses.dataclass(frozen=True)
class PreparedBatch:
    """A batch ready to append: validated rows, quarantine rows, their bodies."""

    received: int
    valid: pl.DataFrame
    quarantine: pl.DataFrame
    payloads: pl.DataFrame


def prepare_batch(
    observations: Sequence[Observation], refused: list[Refused], batch_id: str | None
) -> PreparedBatch:
    """Set aside the rows a store would refuse and validate the rest (module docstring)."""
    # Imported here: pandera takes half a second to import, which `pipeline refresh` (run
    # every few minutes from cron) would pay on every run with no batch to validate.
    from pipeline.validation import quarantine_frame, split_valid

    kept, unstorable = split_storable(observations)
    refused = refused + unstorable
    validated = split_valid(observations_frame(kept), batch_id=batch_id)
    if validated.valid.height == len(kept):  # the usual batch: every row passed
        payloads = payloads_frame(kept)
    else:
        valid_ids = set(validated.valid["observation_id"].to_list())
        payloads = payloads_frame(o for o in kept if _observation_key(o) in valid_ids)
    quarantine = pl.concat(
        [
            validated.quarantine,
            quarantine_frame(
                [_quarantine_row(o) for o, _ in refused],
                [reasons for _, reasons in refused],
                batch_id=batch_id,
            ),
        ]
    )
    return PreparedBatch(len(observations), validated.valid, quarantine, payloads)


def _apply(con: duckdb.DuckDBPyConnection, prepared: PreparedBatch) -> BatchResult:
    written = append(con, "observations", prepared.valid)
    payloads_new = append(con, "payloads", prepared.payloads)
    quarantined = append(con, "quarantine", prepared.quarantine)
    update_tracking(con, prepared.valid, prepared.quarantine)
    return BatchResult(prepared.received, written, quarantined, payloads_new)


def _store(
    con: duckdb.DuckDBPyConnection,
    observations: Sequence[Observation],
    refused: list[Refused],
    batch_id: str | None,
) -> BatchResult:
    return _apply(con, prepare_batch(observations, refused, batch_id))


def _store_one_by_one(
    warehouse: Warehouse, observations: Sequence[Observation], batch_id: str | None
) -> BatchResult:
    """Each row in its own transaction; a row the warehouse refuses is quarantined instead."""
    with warehouse.connect() as con:
        return _store_rows(con, observations, batch_id)


def _store_rows(
    con: duckdb.DuckDBPyConnection, observations: Sequence[Observation], batch_id: str | None
) -> BatchResult:
    """`_store_one_by_one` on an open connection."""
    totals = BatchResult(0, 0, 0, 0)
    for observation in observations:
        try:
            result = _in_transaction(con, [observation], [], batch_id)
        except WarehouseLockedError:
            raise
        except Exception as error:
            if is_lock_error(error):
                raise
            reason = f"warehouse refused the row ({type(error).__name__})"
            result = _in_transaction(con, [], [(observation, [reason])], batch_id)
        totals = totals + result
    return dataclasses.replace(totals, received=len(observations))


def _in_transaction(
    con: duckdb.DuckDBPyConnection,
    observations: Sequence[Observation],
    refused: list[Refused],
    batch_id: str | None,
) -> BatchResult:
    return _apply_in_transaction(con, prepare_batch(observations, refused, batch_id))


def _apply_in_transaction(con: duckdb.DuckDBPyConnection, prepared: PreparedBatch) -> BatchResult:
    con.execute("BEGIN TRANSACTION")
    try:
        result = _apply(con, prepared)
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
    return result


def _observation_key(observation: Observation) -> str:
    return observation_id(
        observation.provider, observation.order_id, observation.polled_at, observation.attempt
    )


def _quarantine_row(observation: Observation) -> dict[str, object]:
    row = observation.as_row()
    row["observation_id"] = _observation_key(observation)
    return row


def update_tracking(
    con: duckdb.DuckDBPyConnection, valid: pl.DataFrame, quarantined: pl.DataFrame
) -> None:
    """Fold a batch into `order_tracking`: last poll, last valid state, terminal bookkeeping."""
    summary = tracking_summary(valid, quarantined)
    if summary.is_empty():
        return
    with registered(con, _TRACKING_VIEW, summary):
        con.execute(TRACKING_UPSERT)


def tracking_summary(valid: pl.DataFrame, quarantined: pl.DataFrame) -> pl.DataFrame:
    """Per order: latest poll, latest answered state, first terminal sighting, and the errors
    (and among them the not-found answers) since its last valid answer."""
    polls = pl.concat(
        [
            valid.select(
                "provider",
                "order_id",
                "polled_at",
                "state",
                "is_terminal",
                ok=pl.col("error_class").is_null(),
                not_found=pl.col("error_class") == "not_found",
            ),
            # A quarantined answer still counts as a poll, but says nothing about the state.
            quarantined.select(
                "provider",
                "order_id",
                "polled_at",
                state=pl.lit(None, pl.String),
                is_terminal=pl.lit(None, pl.Boolean),
                ok=pl.lit(False),
                not_found=pl.lit(False),
            ),
        ],
        how="vertical_relaxed",
    ).filter(pl.col("polled_at").is_not_null())
    ok_polled_at = pl.when(pl.col("ok")).then(pl.col("polled_at"))
    epoch = pl.datetime(1970, 1, 1, time_zone="UTC")
    after_last_ok = pl.col("polled_at") > ok_polled_at.max().fill_null(epoch)
    return (
        polls.sort("polled_at")
        .group_by("provider", "order_id")
        .agg(
            last_polled_at=pl.col("polled_at").max(),
            last_state=pl.col("state").filter(pl.col("ok")).last(),
            last_ok_at=ok_polled_at.max(),
            is_terminal=pl.col("is_terminal").filter(pl.col("ok")).last(),
            terminal_seen_at=pl.col("polled_at").filter(pl.col("ok") & pl.col("is_terminal")).min(),
            polls=pl.len().cast(pl.Int32),
            trailing_errors=after_last_ok.sum().cast(pl.Int32),
            trailing_not_found=(after_last_ok & pl.col("not_found")).sum().cast(pl.Int32),
        )
    )
