"""pandera models for observation batches, and the split of a batch into valid rows and quarantine.

A batch is validated eagerly (`lazy=True` collects every failure). Rows that fail a check go to
`quarantine` with the names of the checks they failed; failures that concern the whole batch
(a wrong dtype, a wrong time zone) quarantine every row of it. Nothing is dropped silently and
nothing raises: a bad batch is recorded and the run carries on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime
from typing import Annotated, Any

import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaErrors

from pipeline.model import STATE_VALUES, TERMINAL_STATES, ErrorClass
from pipeline.providers.registry import PROVIDERS
from pipeline.warehouse.schema import QUARANTINE_COLUMNS

ERROR_CLASSES = [e.value for e in ErrorClass]
_TERMINAL = [s.value for s in TERMINAL_STATES]
SHA256_HEX = r"^[0-9a-f]{64}$"
# At most four trailing digits may stay visible; anything longer is an unmasked phone number.
MASKED_PHONE = r"^\*+[0-9]{0,4}$"
MAX_CODE_LENGTH = 32
MAX_REASON_LENGTH = 120
MAX_QUARANTINED_TEXT = 1_000


class ObservationModel(pa.DataFrameModel):
    """What every stored observation must satisfy."""

    observation_id: str = pa.Field(str_length={"min_value": 16, "max_value": 64})
    provider: str = pa.Field(isin=list(PROVIDERS))
    order_id: str = pa.Field(str_length={"min_value": 1, "max_value": 128})
    order_kind: str = pa.Field(nullable=True)
    polled_at: Annotated[pl.Datetime, "us", "UTC"]
    attempt: pl.Int32 = pa.Field(ge=1, le=100)
    http_status: pl.Int32 = pa.Field(nullable=True, ge=100, le=599)
    latency_ms: float = pa.Field(nullable=True, ge=0)
    error_class: str = pa.Field(nullable=True, isin=ERROR_CLASSES)
    state: str = pa.Field(isin=list(STATE_VALUES))
    is_terminal: bool = pa.Field()
    code_sha256: str = pa.Field(nullable=True, str_matches=SHA256_HEX)
    code_length: pl.Int32 = pa.Field(nullable=True, ge=1, le=MAX_CODE_LENGTH)
    phone_masked: str = pa.Field(nullable=True, str_matches=MASKED_PHONE)
    payload_sha256: str = pa.Field(nullable=True, str_matches=SHA256_HEX)

    class Config:
        strict = False
        coerce = False

    @pa.dataframe_check(error="terminal flag on a non-terminal state")
    @classmethod
    def terminal_flag_matches_state(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """`is_terminal` may be set only on terminal states."""
        return data.lazyframe.select(~pl.col("is_terminal") | pl.col("state").is_in(_TERMINAL))

    @pa.dataframe_check(error="an answer without error has no HTTP status")
    @classmethod
    def answers_have_a_status(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """A successful poll must carry the HTTP status it succeeded with."""
        return data.lazyframe.select(
            pl.col("error_class").is_not_null() | pl.col("http_status").is_not_null()
        )


@dataclasses.dataclass(frozen=True)
class ValidatedBatch:
    """A batch split by validation."""

    valid: pl.DataFrame
    quarantine: pl.DataFrame
    """`quarantine`-shaped rows: one per failing observation, reasons as a JSON list."""


def split_valid(batch: pl.DataFrame, *, batch_id: str | None = None) -> ValidatedBatch:
    """Validate `batch` and separate the rows that fail, with the checks they failed."""
    batch = batch.with_row_index("_row")
    try:
        ObservationModel.validate(batch, lazy=True)
    except SchemaErrors as errors:
        reasons = _reasons_by_row(errors.failure_cases, batch.height)
    else:
        return ValidatedBatch(batch.drop("_row"), _empty_quarantine())
    failing = pl.DataFrame(
        {"_row": list(reasons), "reasons": [json.dumps(r) for r in reasons.values()]},
        schema={"_row": pl.UInt32, "reasons": pl.String},
    )
    valid = batch.join(failing, on="_row", how="anti").drop("_row")
    rejected = batch.join(failing, on="_row", how="inner")
    return ValidatedBatch(valid, _quarantine_rows(rejected, batch_id))


def _reasons_by_row(failure_cases: pl.DataFrame, height: int) -> dict[int, list[str]]:
    reasons: dict[int, list[str]] = {}
    for case in failure_cases.iter_rows(named=True):
        column = case.get("column") or "batch"
        reason = f"{column}: {case.get('check')}"[:MAX_REASON_LENGTH]
        index = case.get("index")
        # Schema-level failures (dtype, time zone) have no row: they condemn the whole batch.
        rows = range(height) if index is None else [int(index)]
        for row in rows:
            if reason not in reasons.setdefault(row, []):
                reasons[row].append(reason)
    return reasons


def _quarantine_rows(rejected: pl.DataFrame, batch_id: str | None) -> pl.DataFrame:
    rows = list(rejected.drop("_row", "reasons").iter_rows(named=True))
    reasons = [json.loads(r) for r in rejected["reasons"]]
    return quarantine_frame(rows, reasons, batch_id=batch_id)


def quarantine_frame(
    rows: list[dict[str, Any]], reasons: list[list[str]], *, batch_id: str | None = None
) -> pl.DataFrame:
    """`quarantine`-shaped rows for `rows` (observation rows as dicts) failing for `reasons`.

    `row_json` keeps the row as JSON with non-ASCII escaped (so even text that is not valid
    Unicode is stored faithfully) and every long text cut to `MAX_QUARANTINED_TEXT` characters.
    """
    now = datetime.now(UTC)
    batch_id = batch_id or hashlib.sha256(now.isoformat().encode()).hexdigest()[:16]
    records = []
    for row, why in zip(rows, reasons, strict=True):
        row = {k: _cut(v) for k, v in row.items() if k != "payload_redacted"}
        # A row can fail precisely because it carries an unmasked number: mask before storing.
        row["phone_masked"] = mask_digits(row.get("phone_masked"))
        row_json = json.dumps(row, default=str, sort_keys=True, ensure_ascii=True)
        records.append(
            {
                "quarantine_id": hashlib.sha256(row_json.encode()).hexdigest()[:32],
                "batch_id": batch_id,
                "quarantined_at": now,
                "provider": _as_text(row.get("provider")),
                "order_id": _as_text(row.get("order_id")),
                "polled_at": _as_time(row.get("polled_at")),
                "reasons": json.dumps([r[:MAX_REASON_LENGTH] for r in why]),
                "row_json": row_json,
            }
        )
    return pl.DataFrame(records, schema=QUARANTINE_COLUMNS)


def _cut(value: object) -> object:
    if isinstance(value, str) and len(value) > MAX_QUARANTINED_TEXT:
        return value[:MAX_QUARANTINED_TEXT] + f"…[{len(value) - MAX_QUARANTINED_TEXT} more]"
    return value


def mask_digits(value: object) -> str | None:
    """Keep at most the last four characters of a value that should have been masked."""
    if value is None:
        return None
    text = str(value)
    return "*" * max(len(text) - 4, 1) + text[-4:] if len(text) > 4 else "*" * len(text)


def _as_text(value: object) -> str | None:
    return None if value is None else str(value)


def _as_time(value: object) -> datetime | None:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    return None


def _empty_quarantine() -> pl.DataFrame:
    return pl.DataFrame(schema=QUARANTINE_COLUMNS)
