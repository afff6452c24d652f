"""A warehouse file held by another process: bounded retry, then a clear error naming the holder."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from warehouse_holder import hold

from pipeline.warehouse import Warehouse, WarehouseLockedError


def test_lock_held_past_the_timeout_fails_naming_file_and_pid(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    Warehouse(path).initialise()
    holder = hold(path, 60)
    try:
        started = time.monotonic()
        with (
            pytest.raises(WarehouseLockedError) as raised,
            Warehouse(path, lock_timeout_s=1.0).connect(),
        ):
            pass
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    error = raised.value
    assert error.holder_pid == holder.pid
    assert str(path) in str(error) and f"PID {holder.pid}" in str(error)
    assert error.waited_s >= 1.0
    assert waited >= 1.0  # it retried rather than failing at once


def test_lock_released_within_the_timeout_is_waited_for(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    Warehouse(path).initialise()
    holder = hold(path, 1.0)
    try:
        # The holder releases after about a second; a generous timeout must let us in.
        wh = Warehouse(path, lock_timeout_s=60.0)
        assert wh.read("SELECT 42 AS answer")["answer"].item() == 42
    finally:
        holder.kill()
        holder.wait()


def test_other_errors_are_not_mistaken_for_a_lock(tmp_path: Path) -> None:
    not_a_database = tmp_path / "garbage.duckdb"
    not_a_database.write_bytes(b"this is not a duckdb file" * 100)
    with pytest.raises(Exception) as raised:
        Warehouse(not_a_database, lock_timeout_s=5.0).initialise()
    assert not isinstance(raised.value, WarehouseLockedError)
