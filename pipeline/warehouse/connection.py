"""Opening the DuckDB warehouse: UTC sessions, migrations, and a bounded wait for the file lock.

DuckDB lets one process open a file read-write and then locks out every other process, readers
included. Ingestion runs are short, so a second opener waits with backoff for a bounded time and
then fails with a message naming the file and the process holding it.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import duckdb

logger = logging.getLogger(__name__)

# DuckDB caches up to 80 % of the machine's memory by default; on a shared machine the warehouse
# should not. Past this it spills to disk (bench/analytics_scale.py at 11.9 M observations: peak
# RSS 8.3 GB with this limit, 13.9 GB without).
DEFAULT_MEMORY_LIMIT = "4GB"
FIRST_BACKOFF_S = 0.05
MAX_BACKOFF_S = 2.0
# Threads of one process share a DuckDB instance per file; opening or closing it from two threads
# at once fails ("Unique file handle conflict"), so opens and closes take turns.
_OPEN_CLOSE = threading.Lock()
_LOCK_MESSAGE = re.compile(r"Could not set lock on file|Conflicting lock is held", re.IGNORECASE)
_HOLDER_PID = re.compile(r"\(PID (\d+)\)")


class WarehouseLockedError(RuntimeError):
    """Another process holds the warehouse file and did not release it in time."""

    def __init__(self, path: Path, holder_pid: int | None, waited_s: float) -> None:
        self.path = path
        self.holder_pid = holder_pid
        self.waited_s = waited_s
        holder = f"process PID {holder_pid}" if holder_pid else "another process"
        super().__init__(
            f"warehouse {path} is locked by {holder}; waited {waited_s:.1f} s. DuckDB allows a "
            "single writer: stop that process, wait for its run to finish, or read the published "
            "copy instead."
        )


def is_lock_error(error: BaseException) -> bool:
    """Whether a DuckDB error means another process holds the file lock."""
    return isinstance(error, duckdb.Error) and bool(_LOCK_MESSAGE.search(str(error)))


def holder_pid(error: BaseException) -> int | None:
    """The PID DuckDB names as the lock holder, if it names one."""
    match = _HOLDER_PID.search(str(error))
    return int(match.group(1)) if match else None


def connect(
    path: Path,
    *,
    read_only: bool = False,
    lock_timeout_s: float = 30.0,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    sleep: Callable[[float], None] = time.sleep,
) -> duckdb.DuckDBPyConnection:
    """Open `path` with the session in UTC and bounded memory, retrying while another process
    holds the lock.

    Raises:
        WarehouseLockedError: the lock was still held after `lock_timeout_s`.
    """
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    backoff = FIRST_BACKOFF_S
    while True:
        try:
            with _OPEN_CLOSE:
                con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.Error as error:
            if not is_lock_error(error):
                raise
            waited = time.monotonic() - started
            if waited >= lock_timeout_s:
                raise WarehouseLockedError(path, holder_pid(error), waited) from None
            logger.info("warehouse %s is locked (PID %s); retrying", path, holder_pid(error))
            sleep(min(backoff, max(lock_timeout_s - waited, 0.0)))
            backoff = min(backoff * 2, MAX_BACKOFF_S)
    # Set after connecting: passing TimeZone in the connect config fails (ICU autoload).
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    # A long copy would draw progress bars in cron logs. In a notebook kernel without
    # ipywidgets DuckDB refuses to touch the setting at all; there it stays as it was.
    with suppress(duckdb.InvalidInputException):
        con.execute("SET enable_progress_bar = false")
    return con


@contextmanager
def connection(
    path: Path, *, read_only: bool = False, lock_timeout_s: float = 30.0
) -> Iterator[duckdb.DuckDBPyConnection]:
    """`connect` as a context manager that always closes the connection."""
    con = connect(path, read_only=read_only, lock_timeout_s=lock_timeout_s)
    try:
        yield con
    finally:
        close(con)


@contextmanager
def memory_limit(
    con: duckdb.DuckDBPyConnection, limit: str, *, then: str = DEFAULT_MEMORY_LIMIT
) -> Iterator[None]:
    """DuckDB's memory held to `limit` for the block, then set to `then` (default: what
    `connect` sets; DuckDB shows a limit rounded down, so the one before cannot be read back
    and set again unchanged). Lowering it also drops cached blocks past it, leaving that
    memory to the block's own frames. The setting is the database instance's, shared by every
    connection of this process to the file."""
    con.execute(f"SET memory_limit = '{limit}'")
    try:
        yield
    finally:
        # After a failed statement the transaction is aborted and this may fail too; the
        # block's own error is the one to see.
        with suppress(duckdb.Error):
            con.execute(f"SET memory_limit = '{then}'")


def close(con: duckdb.DuckDBPyConnection) -> None:
    """Close a connection opened by `connect` (never while another thread opens one)."""
    with _OPEN_CLOSE:
        con.close()
