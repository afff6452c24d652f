"""Benchmark: `pipeline refresh` and the report on this tree against another commit's code.

Builds `analytics_scale.py`'s warehouse after a tick (its `load`, `full`, `tick` and `command`
steps, with this tree's code), checks the baseline commit out into a temporary worktree, compiles
both trees' modules, then alternates between the two on the same warehouse, so a machine that
speeds up or slows down hits both alike:

- `refresh`: `pipeline refresh` as its own process, as cron runs it (every run after the first
  finds nothing new, as between polls): wall time and peak memory;
- `report`: a process that imports the report and builds it from the published copy: the
  report's share of a refresh, with its imports.

Usage:
    .venv/bin/python bench/refresh_ab.py --baseline 4daff22      # 1 M observations, 5 rounds
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from own_process import run_measured
from results_file import write_results

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results" / "refresh_ab.json"
REPORT = """
import sys, time
started = time.perf_counter()
from pathlib import Path
from pipeline.report import build_report
build_report(Path(sys.argv[1]), Path(sys.argv[2]))
print(time.perf_counter() - started)
"""


def _timed(command: list[str], tree: Path, data_dir: Path) -> dict[str, float]:
    """Run `command` in `tree` (whose `pipeline` it imports): wall time and peak RSS."""
    env = {**os.environ, "PIPELINE_DATA_DIR": str(data_dir), "PYTHONPATH": str(tree)}
    return run_measured(command, env=env, cwd=tree)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="the commit to compare against")
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    baseline = subprocess.run(
        ["git", "rev-parse", "--short", args.baseline], cwd=ROOT, check=True,
        capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    current = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=True, capture_output=True,
        text=True,
    ).stdout.strip()  # fmt: skip
    runs: dict[str, dict[str, list[dict[str, float]]]] = {
        name: {"refresh": [], "report": []} for name in ("baseline", "current")
    }
    with tempfile.TemporaryDirectory() as tmp:
        data_dir, old_tree = Path(tmp) / "data", Path(tmp) / "baseline"
        data_dir.mkdir()
        subprocess.run(
            ["git", "worktree", "add", "--detach", "-q", str(old_tree), baseline],
            cwd=ROOT, check=True,
        )  # fmt: skip
        try:
            trees = {"baseline": old_tree, "current": ROOT}
            for tree in trees.values():
                subprocess.run(
                    [sys.executable, "-m", "compileall", "-q", str(tree / "pipeline")], check=True
                )
            for step in ("load", "full", "tick", "command"):
                subprocess.run(
                    [sys.executable, str(BENCH / "analytics_scale.py"), "--size",
                     str(args.size), "--step", step, "--dir", str(data_dir)],
                    check=True, capture_output=True,
                )  # fmt: skip
            published = data_dir / "published" / "warehouse.duckdb"
            page = Path(tmp) / "report.html"
            for _ in range(args.rounds):
                for name, tree in trees.items():
                    refresh = [sys.executable, "-m", "pipeline.cli", "refresh"]
                    runs[name]["refresh"].append(_timed(refresh, tree, data_dir))
                    report = [sys.executable, "-c", REPORT, str(published), str(page)]
                    runs[name]["report"].append(_timed(report, tree, data_dir))
                    print(name, {k: v[-1] for k, v in runs[name].items()}, flush=True)
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(old_tree)], cwd=ROOT, check=False
            )
    summary = {
        name: {
            step: {
                "median_s": statistics.median(r["seconds"] for r in results),
                "min_s": min(r["seconds"] for r in results),
                "max_s": max(r["seconds"] for r in results),
                "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
            }
            for step, results in steps.items()
        }
        for name, steps in runs.items()
    }
    command = (
        f"python bench/refresh_ab.py --baseline {baseline} --size {args.size} "
        f"--rounds {args.rounds}"
    )
    write_results(args.out, command, baseline=baseline, current=current, summary=summary, runs=runs)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
