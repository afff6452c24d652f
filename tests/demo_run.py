"""The result of a short `pipeline demo`, shared by the tests that read what it built."""

from __future__ import annotations

import dataclasses
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class DemoRun:
    """A finished short `pipeline demo`: what it printed and where its data is."""

    returncode: int
    stdout: str
    stderr: str
    data_dir: Path
