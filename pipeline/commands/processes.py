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
from typing import IO

import httpx

STOP_GRACE_S = 15.0


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

    Returns:
        The group leader's exit code.
    """
    _signal_group(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace_s)
    # Children (webserver, daemon, code servers) may outlive the leader by a moment.
    while group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if process.poll() is None or group_alive(process.pid):
        _signal_group(process.pid, signal.SIGKILL)
        process.wait()
    return process.returncode


def group_alive(pgid: int) -> bool:
    """Whether any process of group `pgid` is still running."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
