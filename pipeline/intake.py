"""Registering orders to track: from the CLI, from CSV files, and from CSV files in the inbox.

Ids are checked per provider before anything is stored. Registering an order twice is harmless:
the first registration wins. An inbox file is registered whole or not at all; processed files
move to `inbox/processed/`, rejected ones to `inbox/rejected/` beside a `.reason.txt`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import shutil
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from pipeline.model import ORDER_KINDS, PROVIDERS, TrackedOrder, default_kind
from pipeline.providers.registry import get_adapter
from pipeline.warehouse import Warehouse, append
from pipeline.warehouse.frames import orders_frame

CSV_COLUMNS = ("provider", "order_id", "order_kind", "created_at", "service", "country")
REQUIRED_COLUMNS = ("provider", "order_id")
PROCESSED_DIR = "processed"
REJECTED_DIR = "rejected"


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
        raise IntakeError([f"unknown provider {provider!r} (known: {', '.join(PROVIDERS)})"])
    kind = (order_kind or "").strip() or default_kind(provider)
    if kind not in ORDER_KINDS[provider]:
        raise IntakeError(
            [f"{provider} has no order kind {kind!r} (known: {', '.join(ORDER_KINDS[provider])})"]
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


def read_orders_csv(text: str, *, registered_at: datetime | None = None) -> list[TrackedOrder]:
    """Parse a CSV of orders (header: provider,order_id[,order_kind,created_at,service,country]).

    Raises:
        IntakeError: listing every bad line; nothing from the file should then be registered.
    """
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise IntakeError([f"missing column(s): {', '.join(missing)}; header was {header}"])
    registered_at = registered_at or datetime.now(UTC)
    orders, reasons = [], []
    for line_number, row in enumerate(reader, start=2):
        values = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        try:
            orders.append(
                make_order(
                    values.get("provider", ""),
                    values.get("order_id", ""),
                    order_kind=values.get("order_kind"),
                    created_at=_parse_time(values.get("created_at")),
                    service=values.get("service"),
                    country=values.get("country"),
                    registered_at=registered_at,
                )
            )
        except (IntakeError, ValueError) as error:
            reasons.append(f"line {line_number}: {error}")
    if reasons:
        raise IntakeError(reasons)
    return orders


def process_inbox(warehouse: Warehouse, inbox: Path) -> list[tuple[Path, IntakeResult | str]]:
    """Register every `*.csv` in `inbox`, then move it aside; returns each file's outcome."""
    outcomes: list[tuple[Path, IntakeResult | str]] = []
    for path in sorted(inbox.glob("*.csv")):
        try:
            orders = read_orders_csv(path.read_text(encoding="utf-8"))
            result = register(warehouse, orders, source=f"inbox:{path.name}")
        except (IntakeError, UnicodeDecodeError) as error:
            reason = "\n".join(getattr(error, "reasons", [str(error)]))
            _move(path, inbox / REJECTED_DIR).with_suffix(".reason.txt").write_text(reason + "\n")
            outcomes.append((path, reason))
            continue
        _move(path, inbox / PROCESSED_DIR)
        outcomes.append((path, result))
    return outcomes


def _move(path: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    if target.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        target = folder / f"{path.stem}.{stamp}{path.suffix}"
    shutil.move(path, target)
    return target


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"created_at {text!r} has no time zone; use e.g. 2026-01-01T12:00:00Z")
    return value.astimezone(UTC)
