"""Another process holding the warehouse file, for tests of what happens while it is locked."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
print("released", flush=True)
time.sleep(30)
"""


def hold(path: Path, seconds: float = 60.0) -> subprocess.Popen[str]:
    """Start a process that opens `path` read-write, holds it `seconds`, then closes it."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "holding"
    return holder


@contextlib.contextmanager
def held(path: Path, seconds: float = 60.0) -> Iterator[subprocess.Popen[str]]:
    """`hold` for the duration of the block; the holder is killed when it ends."""
    holder = hold(path, seconds)
    try:
        yield holder
    finally:
        holder.kill()
        holder.wait()
