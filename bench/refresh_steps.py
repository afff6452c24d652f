"""Benchmark: where a steady `pipeline refresh` spends its time, step by step and statement by
statement, on a warehouse kept by `refresh_sql_filled.py --keep`.

`refresh_sql_filled.py` times the whole command from outside; this says where the time goes.
Each round adds a tick (1,000 polls by SQL, `refresh_sql_filled.add_tick`) and then runs, as
its own process as cron would, the steps `pipeline refresh` takes with the same functions:
importing them, opening the warehouse (held open through the publish, as the command holds
it), folding the poll log, `refresh_derived` (history, records, rollups, analytics, commit),
the alerts, the publish, closing the warehouse (its checkpoint) and the report.
Each step is timed in that process; with `--statements` every SQL statement of the derived step,
the publish and the close is timed too (through a connection that times what it runs), and the
slowest are reported by what they do. The process's own peak memory comes with each round
(`own_process.run_measured`).

Usage:
    .venv/bin/python bench/refresh_sql_filled.py --orders 8300000 --keep kept    # once
    .venv/bin/python bench/refresh_steps.py kept/8300000 --first-tick 10 \\
        --out bench/results/refresh_steps_100m.json
Each round polls other orders: `--first-tick` names the first round's (`add_tick`), so pass a
new one for each run on the same warehouse. `--old-orders N` makes N of each tick's polls
polls of orders drawn from the whole history instead (late polls, long-running orders).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from own_process import run_measured
from results_file import write_results

RESULTS = Path(__file__).with_name("results") / "refresh_steps_100m.json"
STEPS = ("imports", "open", "fold", "derived", "alerts", "publish", "close", "report")
SLOWEST = 12
"""Statements reported per round, slowest first."""


class TimedConnection:
    """A DuckDB connection that times each statement it runs (`execute` and `sql`, the
    latter to the end of its `.pl()`)."""

    def __init__(self, con: Any, log: list[tuple[float, str]]) -> None:
        self._con = con
        self._log = log

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._con, name)
        if name == "execute":
            return lambda sql, *args, **kwargs: self._timed(sql, attr, args, kwargs)
        if name == "sql":
            return lambda sql, *args, **kwargs: _TimedRelation(
                attr(sql, *args, **kwargs), sql, self._log
            )
        return attr

    def _timed(self, sql: str, run: Callable[..., Any], args: Any, kwargs: Any) -> Any:
        started = time.perf_counter()
        result = run(sql, *args, **kwargs)
        self._log.append((time.perf_counter() - started, sql))
        return result


class _TimedRelation:
    def __init__(self, relation: Any, sql: str, log: list[tuple[float, str]]) -> None:
        self._relation, self._sql, self._log = relation, sql, log
        self._started = time.perf_counter()

    def pl(self) -> Any:
        frame = self._relation.pl()
        self._log.append((time.perf_counter() - self._started, self._sql))
        return frame

    def __getattr__(self, name: str) -> Any:
        return getattr(self._relation, name)


def what_it_does(sql: str) -> str:
    """A statement named by what it does: its first words, literals left out, so the same
    statement on other values reads the same."""
    words = re.sub(r"'[^']*'|\b\d+\b", "?", " ".join(sql.split()))
    return words[:110]


def _round(data_dir: Path, statements: bool) -> dict[str, Any]:
    """One refresh's steps, in this process (the child of `main`)."""
    started = time.perf_counter()
    from pipeline.commands.alerts import notify
    from pipeline.derived import refresh_derived
    from pipeline.polllog import fold_poll_logs
    from pipeline.report import build_report, default_report_path, sandbox_truth_path
    from pipeline.settings import Settings
    from pipeline.warehouse import Warehouse, connection, store
    from pipeline.warehouse.publish import publish

    seconds = {"imports": time.perf_counter() - started}
    log: list[tuple[float, str]] = []
    if statements:
        _time_statements(connection, store, log)
    settings = Settings.from_env()
    warehouse = Warehouse(settings.warehouse_path)
    timed: dict[str, list[tuple[float, str]]] = {}
    held = contextlib.ExitStack()  # as `pipeline refresh` holds it: one instance, one checkpoint
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("open", lambda: held.enter_context(warehouse.connect())),
        ("fold", lambda: fold_poll_logs(warehouse, settings.poll_log(), settings.shards_dir)),
        ("derived", lambda: refresh_derived(warehouse)),
        ("alerts", lambda: notify(settings, warehouse)),
        ("publish", lambda: publish(warehouse, settings.published_path)),
        ("close", held.close),
    ]
    for name, step in steps:
        log.clear()
        began = time.perf_counter()
        step()
        seconds[name] = time.perf_counter() - began
        timed[name] = list(log)
    began = time.perf_counter()
    build_report(
        settings.published_path,
        default_report_path(settings),
        truth_path=sandbox_truth_path(settings),
    )
    seconds["report"] = time.perf_counter() - began
    return {
        "seconds": seconds,
        "statements": {
            step: {
                "seconds": sum(t for t, _ in timed[step]),
                "count": len(timed[step]),
                "slowest": [
                    [round(t, 4), what_it_does(sql)]
                    for t, sql in sorted(timed[step])[::-1][:SLOWEST]
                ],
            }
            for step in ("derived", "publish", "close")
        }
        if statements
        else {},
    }


def _time_statements(connection: Any, store: Any, log: list[tuple[float, str]]) -> None:
    """Make every connection the warehouse opens time its statements into `log`."""
    opened, closed = connection.connect, connection.close

    def connect(*args: Any, **kwargs: Any) -> TimedConnection:
        return TimedConnection(opened(*args, **kwargs), log)

    def close(con: Any) -> None:
        began = time.perf_counter()
        closed(con._con if isinstance(con, TimedConnection) else con)
        # Only the close of the held connection, the instance's last, checkpoints.
        log.append((time.perf_counter() - began, "close"))

    store.connect, store.close = connect, close


def _rounds(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    from refresh_sql_filled import add_tick

    for tick in range(args.first_tick, args.first_tick + args.rounds):
        add_tick(args.data_dir, tick, args.old_orders)
        with tempfile.TemporaryDirectory() as scratch:
            out = Path(scratch) / "round.json"
            command = [sys.executable, __file__, "--child", str(out)]
            if args.statements:
                command.append("--statements")
            usage = run_measured(
                [*command, str(args.data_dir)],
                env={**os.environ, "PIPELINE_DATA_DIR": str(args.data_dir)},
            )
            found = json.loads(out.read_text())
        found["process"] = usage
        print(tick, {k: round(v, 3) for k, v in found["seconds"].items()}, usage, flush=True)
        yield found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, help="a warehouse kept by refresh_sql_filled.py")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--first-tick", type=int, default=0)
    parser.add_argument("--statements", action="store_true", help="time every statement too")
    parser.add_argument(
        "--old-orders",
        type=int,
        default=0,
        help="of each tick's polls, this many of orders drawn from the whole history",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        args.child.write_text(json.dumps(_round(args.data_dir, args.statements)))
        return
    rounds = list(_rounds(args))
    median = {step: statistics.median(r["seconds"][step] for r in rounds) for step in STEPS}
    command = "python " + " ".join("DIR" if arg == str(args.data_dir) else arg for arg in sys.argv)
    write_results(args.out, command, median_seconds=median, rounds=rounds)


if __name__ == "__main__":
    main()
