"""Registering orders to track: from the CLI, from CSV files, and from CSV files in the inbox.

Ids are checked per provider before anything is stored. Registering an order twice is harmless:
the first registration wins. An inbox file is registered whole or not at all; processed files
move to `inbox/processed/`, rejected ones to `inbox/rejected/` beside a `.reason.txt`. Whatever is
wrong with one inbox file (bad lines, binary content, a huge file, one that vanishes) rejects that
file only; the files after it are processed as usual.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import os
import shutil
import stat
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from pipeline.model import TrackedOrder
from pipeline.providers.registry import PROVIDERS, default_kind, get_adapter, get_spec
from pipeline.warehouse import Warehouse, append
from pipeline.warehouse.frames import orders_frame

CSV_COLUMNS = ("provider", "order_id", "order_kind", "created_at", "service", "country")
REQUIRED_COLUMNS = ("provider", "order_id")
PROCESSED_DIR = "processed"
REJECTED_DIR = "rejected"
MAX_FILE_BYTES = 50 * 1024 * 1024
# No legitimate provider, id, kind, timestamp, service or country comes near this.
MAX_FIELD_CHARS = 4096
# Values quoted in reasons are cut to this, so a reason never echoes a huge field.
QUOTE_CHARS = 40
# A reason file names this many bad lines at most, then says how many more there were.
MAX_REASONS = 100
# A header missing a required column is shown with this many names at most.
SHOWN_COLUMNS = 10
BYTE_ORDER_MARK = "\ufeff"

# The csv module's own field limit (131,072 by default) raises mid-file without saying which
# column; lifted to the file-size cap so that `MAX_FIELD_CHARS` is checked here, by line and
# column. It is process-wide, and only ever raised.
csv.field_size_limit(max(csv.field_size_limit(), MAX_FILE_BYTES))

logger = logging.getLogger(__name__)


class IntakeError(ValueError):
    """An order (or a file of orders) that cannot be registered, with every reason."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__("; ".join(reasons))


@dataclasses.dataclass(frozen=True)
class IntakeResult:
    """How many orders were new and how many were already tracked."""

    new: int
    already_tracked: int


def make_order(
    provider: str,
    order_id: str,
    *,
    order_kind: str | None = None,
    created_at: datetime | None = None,
    service: str | None = None,
    country: str | None = None,
    registered_at: datetime | None = None,
) -> TrackedOrder:
    """A checked `TrackedOrder`.

    Raises:
        IntakeError: unknown provider or kind, or an id the provider would never issue.
    """
    provider = provider.strip().lower()
    order_id = order_id.strip()
    if provider not in PROVIDERS:
        raise IntakeError([f"unknown provider {_quote(provider)} (known: {', '.join(PROVIDERS)})"])
    kind = (order_kind or "").strip() or default_kind(provider)
    kinds = get_spec(provider).order_kinds
    if kind not in kinds:
        raise IntakeError(
            [f"{provider} has no order kind {_quote(kind)} (known: {', '.join(kinds)})"]
        )
    reason = get_adapter(provider).validate_order_id(order_id)
    if reason:
        raise IntakeError([f"{provider} order id rejected: {reason}"])
    return TrackedOrder(
        provider=provider,
        order_id=order_id,
        order_kind=kind,
        registered_at=registered_at or datetime.now(UTC),
        created_at=created_at,
        service=service or None,
        country=country or None,
    )


def register(warehouse: Warehouse, orders: Iterable[TrackedOrder], *, source: str) -> IntakeResult:
    """Store `orders` in the registry; already-tracked ones are left as they were."""
    frame = orders_frame(orders, source=source)
    with warehouse.transaction() as con:
        new = append(con, "orders", frame)
    return IntakeResult(new=new, already_tracked=frame.height - new)


def read_orders_file(path: Path, *, registered_at: datetime | None = None) -> list[TrackedOrder]:
    """Read and parse a CSV file of orders, as `read_orders_csv` does.

    At most `MAX_FILE_BYTES` are read. The file must be UTF-8, with or without a byte-order mark
    (Excel's "CSV UTF-8" writes one).

    Raises:
        IntakeError: not a regular file, too big, not UTF-8 text, or bad lines.
        OSError: the file could not be read.
    """
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise IntakeError(["not a regular file"])
    with path.open("rb") as file:
        data = file.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise IntakeError(
            [f"file is larger than {MAX_FILE_BYTES // 2**20} MB; split it into smaller files"]
        )
    return read_orders_csv(_decode(data), registered_at=registered_at)


def read_orders_csv(text: str, *, registered_at: datetime | None = None) -> list[TrackedOrder]:
    """Parse a CSV of orders (header: provider,order_id[,order_kind,created_at,service,country]).

    Header names are matched ignoring case and surrounding spaces; a leading byte-order mark and
    CRLF line endings are fine. A row may leave out trailing columns, but not have extra ones.

    Raises:
        IntakeError: listing every bad line; nothing from the file should then be registered.
    """
    text = text.removeprefix(BYTE_ORDER_MARK)
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise IntakeError([f"line {line}: contains a NUL character; is this a binary file?"])
    records = _records(text)
    header = _header(next(records, None))
    registered_at = registered_at or datetime.now(UTC)
    orders: list[TrackedOrder] = []
    reasons: list[str] = []
    try:
        for line, fields in records:
            try:
                orders.append(_order_from_row(line, header, fields, registered_at))
            except IntakeError as error:
                reasons.extend(error.reasons)
    except IntakeError as error:  # not well-formed CSV: nothing after it can be trusted
        reasons.extend(error.reasons)
    if reasons:
        raise IntakeError(_capped(reasons))
    return orders


def process_inbox(warehouse: Warehouse, inbox: Path) -> list[tuple[Path, IntakeResult | str]]:
    """Register every `*.csv` in `inbox`, then move it aside; returns each file's outcome.

    A file that cannot be registered goes to `rejected/` (the outcome is the reason) and the
    others carry on. A failure to write to the warehouse is not the file's fault: it is raised,
    and the file stays in the inbox for the next attempt.
    """
    return [(path, _process_file(warehouse, inbox, path)) for path in sorted(inbox.glob("*.csv"))]


def _process_file(warehouse: Warehouse, inbox: Path, path: Path) -> IntakeResult | str:
    try:
        orders = read_orders_file(path)
    except FileNotFoundError:
        return "the file vanished before it could be read"
    except IntakeError as error:
        return _reject(path, inbox, error.reasons)
    except OSError as error:
        return _reject(path, inbox, [f"could not read the file: {error.strerror or error}"])
    except Exception as error:  # whatever one file does must not stop the files after it
        logger.exception("inbox file %s could not be parsed", path.name)
        return _reject(path, inbox, [f"could not be parsed: {type(error).__name__}"])
    result = register(warehouse, orders, source=f"inbox:{path.name}")
    try:
        _move(path, inbox / PROCESSED_DIR)
    except OSError as error:
        # Registered; it will be registered again, harmlessly, until it can be moved.
        logger.warning(
            "inbox file %s registered but not moved to %s/: %s", path.name, PROCESSED_DIR, error
        )
    return result


def _reject(path: Path, inbox: Path, reasons: list[str]) -> str:
    reason = "\n".join(reasons)
    try:
        target = _move(path, inbox / REJECTED_DIR)
        target.with_suffix(".reason.txt").write_text(reason + "\n", encoding="utf-8")
    except OSError as error:
        logger.warning(
            "rejected inbox file %s not moved to %s/: %s", path.name, REJECTED_DIR, error
        )
        reason += f"\n(could not move it to {REJECTED_DIR}/: {error.strerror or error})"
    return reason


def _move(path: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    if target.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        target = folder / f"{path.stem}.{stamp}{path.suffix}"
    shutil.move(path, target)
    return target


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = error.object.count(b"\n", 0, error.start) + 1
        byte = error.object[error.start]
        raise IntakeError(
            [f"line {line}: not UTF-8 text (byte 0x{byte:02x}); save it as CSV UTF-8"]
        ) from None


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """Each non-blank record with the line it starts on.

    Raises:
        IntakeError: the text is not well-formed CSV (e.g. a quote never closed).
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            where = f"line {start}" + (f" to {reader.line_num}" if reader.line_num > start else "")
            raise IntakeError([f"{where}: not well-formed CSV ({error})"]) from None
        if fields:
            yield start, fields
        start = reader.line_num + 1


def _header(record: tuple[int, list[str]] | None) -> list[str]:
    """The column names, lower-cased and stripped.

    Raises:
        IntakeError: no header, a required column missing, a name too long or used twice.
    """
    line, fields = record or (1, [])
    too_long = [_field_too_long(line, i, None, value) for i, value in _long_fields(fields)]
    if too_long:
        raise IntakeError(_capped(too_long))
    header = [name.strip().lower() for name in fields]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        shown = ", ".join(_quote(name) for name in header[:SHOWN_COLUMNS])
        shown += ", ..." if len(header) > SHOWN_COLUMNS else ""
        raise IntakeError(
            [f"line {line}: missing column(s) {', '.join(missing)}; header was [{shown}]"]
        )
    duplicated = sorted({name for name in header if name and header.count(name) > 1})
    if duplicated:
        raise IntakeError([f"line {line}: column(s) named twice: {', '.join(duplicated)}"])
    return header


def _order_from_row(
    line: int, header: list[str], fields: list[str], registered_at: datetime
) -> TrackedOrder:
    if len(fields) > len(header):
        raise IntakeError([f"line {line}: {len(fields)} fields, but the header has {len(header)}"])
    too_long = [_field_too_long(line, i, header[i], v) for i, v in _long_fields(fields)]
    if too_long:
        raise IntakeError(too_long)
    values = dict(zip(header, (value.strip() for value in fields), strict=False))
    try:
        return make_order(
            values.get("provider", ""),
            values.get("order_id", ""),
            order_kind=values.get("order_kind"),
            created_at=_parse_time(values.get("created_at")),
            service=values.get("service"),
            country=values.get("country"),
            registered_at=registered_at,
        )
    except IntakeError as error:
        raise IntakeError([f"line {line}: {reason}" for reason in error.reasons]) from None
    except ValueError as error:
        raise IntakeError([f"line {line}: {str(error)[: QUOTE_CHARS * 4]}"]) from None


def _long_fields(fields: list[str]) -> list[tuple[int, str]]:
    return [(i, value) for i, value in enumerate(fields) if len(value) > MAX_FIELD_CHARS]


def _field_too_long(line: int, index: int, name: str | None, value: str) -> str:
    column = f"column {index + 1}" + (f" ({_quote(name)})" if name else "")
    return (
        f"line {line}, {column}: longer than the limit of {MAX_FIELD_CHARS:,} characters: "
        f"{_quote(value)}"
    )


def _capped(reasons: list[str]) -> list[str]:
    if len(reasons) <= MAX_REASONS:
        return reasons
    return [*reasons[:MAX_REASONS], f"... and {len(reasons) - MAX_REASONS} more"]


def _quote(value: str) -> str:
    """`value` quoted, cut short if long, so reasons stay readable."""
    if len(value) <= QUOTE_CHARS:
        return repr(value)
    return f"{value[:QUOTE_CHARS]!r}... ({len(value):,} characters)"


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise IntakeError(
            [f"created_at {_quote(text)} is not an ISO 8601 time, e.g. 2026-01-01T12:00:00Z"]
        ) from None
    if value.tzinfo is None:
        raise IntakeError(
            [f"created_at {_quote(text)} has no time zone; use e.g. 2026-01-01T12:00:00Z"]
        )
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise IntakeError([f"created_at {_quote(text)} is out of range"]) from None
