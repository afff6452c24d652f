"""Child processes that the `dev` and `demo` commands start, and always stop.

Each child runs in its own session (process group), so stopping it reaches everything it spawned
(`dagster dev` starts a webserver, a daemon and code servers). `dagster dev` started from a
non-interactive shell ignores SIGINT and SIGTERM sent only to itself; a signal to its whole group
stops it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

import httpx

STOP_GRACE_S = 15.0
# After SIGKILL the kernel ends the group at once; this only bounds the wait for it to be reaped.
KILL_WAIT_S = 5.0
POLL_S = 0.1
PROC = Path("/proc")


def start(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    quiet: bool = False,
    stdout: IO[bytes] | None = None,
) -> subprocess.Popen[bytes]:
    """Start `argv` in a new process group; output to `stdout`, nowhere if `quiet`, else ours."""
    output: IO[bytes] | int | None = subprocess.DEVNULL if quiet else stdout
    return subprocess.Popen(
        list(argv),
        env={**os.environ, **(env or {})},
        start_new_session=True,
        stdout=output,
        stderr=output,
    )


def stop(process: subprocess.Popen[bytes], *, grace_s: float = STOP_GRACE_S) -> int:
    """SIGTERM the process group and wait for all of it; SIGKILL what is left after `grace_s`.

    Returns once the whole group is gone (at most about `grace_s + KILL_WAIT_S` seconds).

    Returns:
        The group leader's exit code.

    Raises:
        subprocess.TimeoutExpired: the leader outlived even SIGKILL (e.g. stuck in the kernel).
    """
    _signal_group(process.pid, signal.SIGTERM)
    if not _wait_for_group(process, timeout_s=grace_s):
        _signal_group(process.pid, signal.SIGKILL)
        _wait_for_group(process, timeout_s=KILL_WAIT_S)
    return process.wait(timeout=POLL_S)


def group_alive(pgid: int) -> bool:
    """Whether any process of group `pgid` is still running (zombies, already dead, are not)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers signal 0 until its parent (for orphans: init, which in some
    # containers reaps late) collects it; /proc tells the living from the dead.
    if not PROC.is_dir():
        return True
    return any(state != "Z" for state in _group_states(pgid))


def _group_states(pgid: int) -> Iterator[str]:
    """The state letter of each process of group `pgid`, read from /proc."""
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # exited meanwhile
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        state, _ppid, pgrp = stat.rpartition(")")[2].split()[:3]
        if int(pgrp) == pgid:
            yield state


def _wait_for_group(process: subprocess.Popen[bytes], *, timeout_s: float) -> bool:
    """Wait until the leader has exited and the rest of its group is gone; False on timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        # poll() reaps the leader, so it does not linger as a zombie of ours.
        if process.poll() is not None and not group_alive(process.pid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_S)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


@contextlib.contextmanager
def running(
    argv: Sequence[str], *, env: Mapping[str, str] | None = None, quiet: bool = False
) -> Iterator[subprocess.Popen[bytes]]:
    """A child process for the duration of the block, stopped however the block ends."""
    process = start(argv, env=env, quiet=quiet)
    try:
        yield process
    finally:
        stop(process)


def python_module(module: str, *args: str) -> list[str]:
    """argv to run `python -m module args` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def wait_for_http(
    url: str, *, timeout_s: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until `url` answers (any status); fail early if `process` dies.

    Raises:
        TimeoutError: nothing answered within `timeout_s`.
        RuntimeError: the process exited while we waited.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"process exited with code {process.returncode} before {url} answered"
            )
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout_s:.0f} s")
