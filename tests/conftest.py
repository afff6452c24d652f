"""Shared fixtures: a temporary warehouse and settings that point at it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from demo_run import DemoRun

from pipeline.warehouse import Warehouse


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    """An empty, migrated warehouse in a temporary directory."""
    wh = Warehouse(tmp_path / "warehouse.duckdb", lock_timeout_s=5.0)
    wh.initialise()
    return wh


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    """One short demo (real sandbox, real Dagster assets), shared by the tests that read it."""
    data_dir = tmp_path_factory.mktemp("demo") / "data"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            "demo",
            "--minutes",
            "0.5",
            "--rate",
            "30",
            "--data-dir",
            str(data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    yield DemoRun(done.returncode, done.stdout, done.stderr, data_dir)
