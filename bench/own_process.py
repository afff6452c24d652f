"""Run a command as its own process and read its wall time and its own peak memory.

Linux carries a process's peak RSS across `exec`: a child forked from a process holding 3 GB
reports at least 3 GB as its `ru_maxrss`, whatever it used itself (measured: a child running
`pass`, forked from a parent holding 2 GB, reported 2,062 MB). A benchmark that has just
filled a warehouse in-process is such a parent. So the command is started by a small
launcher process, and the launcher reports its child's `wait4` figures: that child is forked
from a process of a few MB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

_LAUNCHER = """
import json, os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as out:
    json.dump({"exit_code": os.waitstatus_to_exitcode(status), "peak_kb": usage.ru_maxrss}, out)
"""


def run_measured(
    command: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    stdout: int | IO[Any] | None = subprocess.DEVNULL,
    stderr: int | IO[Any] | None = subprocess.PIPE,
) -> dict[str, float]:
    """Run `command` to its end: {"seconds", "peak_rss_mb"} (the command's own peak). Raises
    RuntimeError with the end of its stderr when it fails."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "usage.json"
        started = time.perf_counter()
        launcher = subprocess.run(
            [sys.executable, "-c", _LAUNCHER, str(report), *command],
            env=env,
            cwd=cwd,
            stdout=stdout,
            stderr=stderr,
            check=False,
        )
        seconds = time.perf_counter() - started
        usage = json.loads(report.read_text()) if report.is_file() else None
    if usage is None or usage["exit_code"] or launcher.returncode:
        stderr = launcher.stderr
        error = stderr.decode(errors="replace") if isinstance(stderr, bytes) else ""
        raise RuntimeError(f"{command} failed: {error[-2000:]}")
    return {"seconds": seconds, "peak_rss_mb": usage["peak_kb"] / 1024}


def _demo() -> None:
    """`python bench/own_process.py`: the same `pass`, measured both ways while holding 1 GB."""
    ballast = bytearray(1024**3)
    for page in range(0, len(ballast), 4096):
        ballast[page] = 1
    measured = run_measured([sys.executable, "-c", "pass"])
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    _, _, usage = os.wait4(child.pid, 0)
    print(
        f"holding 1 GB: `pass` through the launcher {measured['peak_rss_mb']:.0f} MB, "
        f"forked directly {usage.ru_maxrss / 1024:.0f} MB"
    )


if __name__ == "__main__":
    _demo()
