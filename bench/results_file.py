"""How every benchmark writes its results file (`bench/results/<name>.json`): the command that
made it, the machine and the time, then the benchmark's own sections."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def machine() -> str:
    """The machine a result was measured on, as the results files name it."""
    return f"{platform.machine()}, Python {platform.python_version()}, {os.cpu_count()} cores"


def write_results(path: Path, command: str, **sections: Any) -> None:
    """`path` as indented JSON (its folder made if need be): `command`, `machine`,
    `measured_at`, then `sections` in the order given."""
    document = {
        "command": command,
        "machine": machine(),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **sections,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
