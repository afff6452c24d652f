"""Benchmark: `pipeline refresh` as cron runs it, with its modules compiled or not.

A process that finds no compiled modules (`__pycache__`) compiles every module it imports, and
one run with `PYTHONDONTWRITEBYTECODE` set (as some machines and container images do) writes
none, so every later run compiles them all again. `make setup` compiles them at install. This
runs the refresh as its own process on the same warehouse (`analytics_scale.py`'s 1 M
observations, after a tick; every refresh but the first finds nothing new, as a cron refresh
between polls does), alternating runs that read the compiled modules with runs pointed at a
cache (`PYTHONPYCACHEPREFIX`) that holds the standard library's compiled modules only, as a
Python installation does, and reports each run's wall time and peak memory.

Usage:
    .venv/bin/python bench/refresh_start_up.py          # 1 M observations, 4 runs of each
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from own_process import run_measured
from results_file import write_results

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results" / "refresh_start_up.json"
MODES = ("compiled", "compiling")


def _refresh(data_dir: Path, mode: str, stdlib_cache: Path) -> dict[str, float]:
    """One `pipeline refresh` process: its wall time and its own peak RSS."""
    env = {**os.environ, "PIPELINE_DATA_DIR": str(data_dir), "PYTHONDONTWRITEBYTECODE": "1"}
    if mode == "compiling":
        env["PYTHONPYCACHEPREFIX"] = str(stdlib_cache)  # compiles ours and the dependencies
    return run_measured(
        [sys.executable, "-m", "pipeline.cli", "refresh"], env=env, stderr=subprocess.DEVNULL
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(BENCH.parent / "pipeline")], check=True
    )
    runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir, stdlib_cache = Path(tmp) / "data", Path(tmp) / "stdlib-only"
        data_dir.mkdir()
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", "-j", "0", sysconfig.get_paths()["stdlib"]],
            check=False,  # the standard library's test data holds files that do not compile
            capture_output=True,
            env={**os.environ, "PYTHONPYCACHEPREFIX": str(stdlib_cache)},
        )
        for step in ("load", "full", "tick", "command"):  # the warehouse after a tick
            subprocess.run(
                [sys.executable, str(BENCH / "analytics_scale.py"), "--size", str(args.size),
                 "--step", step, "--dir", str(data_dir)],
                check=True, capture_output=True,
            )  # fmt: skip
        for _ in range(args.runs):  # alternating, so a machine slowing down hits both alike
            for mode in MODES:
                runs[mode].append(_refresh(data_dir, mode, stdlib_cache))
                print(mode, runs[mode][-1], flush=True)
    summary = {
        mode: {
            "median_s": statistics.median(r["seconds"] for r in results),
            "min_s": min(r["seconds"] for r in results),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
        }
        for mode, results in runs.items()
    }
    command = f"python bench/refresh_start_up.py --size {args.size} --runs {args.runs}"
    write_results(args.out, command, summary=summary, runs=runs)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
