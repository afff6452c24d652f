"""Benchmark: `pipeline poll --duration N` under every sandbox fault scenario.

For each scenario a fresh sandbox (its CLI, on loopback) runs a workload that drops orders into
the inbox; `pipeline poll --duration N` then polls them as a cron user would. Recorded per
scenario: the command's wall time against N, its exit code, the attempts it counted against the
rows stored (observations + quarantine), and each provider's polls.

    .venv/bin/python bench/poll_under_faults.py --duration 60
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
from results_file import write_results

from pipeline.commands.processes import python_module, start, stop, wait_for_http
from pipeline.simulator.faults import scenario_names

RESULTS = Path(__file__).resolve().parent / "results" / "poll_under_faults.json"
WARM_UP_S = 15.0
# A provider's line of the `poll` summary: provider, due, polled, asks (attempts), ok, ...
_SUMMARY_LINE = re.compile(r"^(\w+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s")


def run_scenario(scenario: str, duration_s: float, port: int) -> dict[str, Any]:
    """One sandbox + one `poll --duration` run; what it took and what it stored."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        url = f"http://127.0.0.1:{port}"
        sandbox = start(
            python_module(
                "pipeline.cli",
                "simulator",
                "--profile",
                "fast",
                "--seed",
                "5",
                "--faults",
                scenario,
                "--workload-rate",
                "30",
                "--inbox",
                str(data / "inbox"),
                "--port",
                str(port),
            ),
            quiet=True,
        )
        try:
            wait_for_http(f"{url}/_sandbox/orders", timeout_s=30, process=sandbox)
            time.sleep(WARM_UP_S)  # orders pile up in the inbox, as between two cron runs
            env = {**os.environ, "PIPELINE_DATA_DIR": str(data), "PIPELINE_SANDBOX_URL": url}
            started = time.monotonic()
            done = subprocess.run(
                [sys.executable, "-m", "pipeline.cli", "poll", "--duration", str(duration_s)],
                env=env,
                capture_output=True,
                text=True,
                timeout=duration_s + 300,
            )
            wall_s = time.monotonic() - started
        finally:
            stop(sandbox)
        con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
        stored = con.execute(
            "SELECT (SELECT count(*) FROM observations), (SELECT count(*) FROM quarantine)"
        ).fetchall()[0]
        con.close()
    counted = 0
    polls: dict[str, int] = {}
    for line in done.stdout.splitlines():
        if match := _SUMMARY_LINE.match(line):
            polls[match.group(1)] = int(match.group(4))
            counted += int(match.group(4))
    return {
        "scenario": scenario,
        "duration_s": duration_s,
        "wall_s": round(wall_s, 1),
        "overrun_s": round(wall_s - duration_s, 1),
        "exit_code": done.returncode,
        "attempts_counted": counted,
        "rows_stored": int(stored[0]) + int(stored[1]),
        "quarantined": int(stored[1]),
        "attempts_per_provider": polls,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument("--scenario", action="append", help="default: every shipped scenario")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    rows = []
    for scenario in args.scenario or scenario_names():
        row = run_scenario(scenario, args.duration, args.port)
        print(json.dumps(row), flush=True)
        rows.append(row)
    if not args.no_save:
        command = "python bench/poll_under_faults.py " + " ".join(sys.argv[1:])
        write_results(RESULTS, command.replace("--no-save", "").strip(), results=rows)


if __name__ == "__main__":
    main()
