"""Ground truth on disk: one JSON line per order (`data/sandbox/truth.jsonl` by default).

A line is written once an order is final (terminal), when it is evicted from memory, or when the
sandbox stops; in the last two cases it holds the transitions up to that moment and
`"is_final": false` if the order was still open. If an order appears twice (it was written open,
then changed), the later line wins. Each line is `OrderTruth.to_record()` plus `recorded_at` and
`is_final`:

    {"provider": "sms4sats", "order_id": "…", "order_kind": "sms_receive", "service": "openAI",
     "country": "India", "created_at": "2026-…Z",
     "transitions": [{"state": "pending", "provider_status": "paid=false;…", "at": "…Z"}, …],
     "state": "code_received", "is_terminal": true, "is_final": true, "recorded_at": "…Z"}
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


class TruthLog:
    """Appends ground-truth records to a JSONL file.

    Args:
        path: the file; its directory is created when needed.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.written = 0

    def write(self, records: Iterable[dict[str, Any]]) -> int:
        """Append `records`, one line each; returns how many were written."""
        lines = [json.dumps(record, separators=(",", ":")) + "\n" for record in records]
        if not lines:
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.writelines(lines)
        self.written += len(lines)
        logger.debug("wrote %d truth records to %s", len(lines), self.path)
        return len(lines)


def read_truth(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """The records of a truth file by (provider, order_id); a later line wins."""
    records: dict[tuple[str, str], dict[str, Any]] = {}
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                records[(record["provider"], record["order_id"])] = record
    return records
