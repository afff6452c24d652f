"""Benchmark: the notebook (`notebooks/order_outcomes.ipynb`) against a large published warehouse.

Executes the committed notebook top to bottom, as Jupyter would, with `PIPELINE_DATA_DIR`
pointing at a data directory whose published copy a refresh keeps (for example the warehouse
`refresh_sql_filled.py --keep` leaves, after `refresh_steps.py` ran on it). Reports each code
cell's wall time (its first line names it) and the kernel's own peak memory, read inside the
kernel by a cell added at the end. Several rounds, each in a new kernel: the first pays the
operating system's cache as well.

Usage:
    .venv/bin/python bench/notebook_scale.py kept/8300000 --rounds 3 \\
        --out bench/results/notebook_scale_100m.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from results_file import write_results

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "order_outcomes.ipynb"
RESULTS = Path(__file__).with_name("results") / "notebook_scale_100m.json"
KERNEL = "python3"
TIMEOUT_S = 600
_PEAK_CELL = "import resource\nprint('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"


def kernel_env(scratch: Path) -> None:
    """Jupyter's folders in `scratch`, and a `python3` kernel that runs this interpreter."""
    os.environ["IPYTHONDIR"] = str(scratch / "ipython")
    os.environ["JUPYTER_RUNTIME_DIR"] = str(scratch / "runtime")
    os.environ["MPLCONFIGDIR"] = str(scratch / "mpl")
    os.environ["JUPYTER_PATH"] = str(scratch / "jupyter")
    spec_dir = scratch / "jupyter" / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))


def _seconds(cell: Any) -> float:
    timing = cell.metadata["execution"]
    started = datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))
    ended = datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
    return (ended - started).total_seconds()


def _name(cell: Any) -> str:
    lines = [line.strip() for line in cell.source.splitlines() if line.strip()]
    return lines[0][:70] if lines else ""


def run_notebook() -> dict[str, Any]:
    """One execution in a new kernel: each code cell's seconds, the whole run's and the
    kernel's peak RSS. Raises on any cell's error."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(_PEAK_CELL))
    client = NotebookClient(
        nb,
        timeout=TIMEOUT_S,
        kernel_name=KERNEL,
        record_timing=True,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    started = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - started
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    printed = "".join(
        out.get("text", "") for out in code[-1].outputs if out.output_type == "stream"
    )
    peak_kb = int(printed.split("PEAK_KB", 1)[1].split()[0])
    return {
        "seconds": seconds,
        "kernel_peak_rss_mb": peak_kb / 1024,
        "cells": [[round(_seconds(cell), 3), _name(cell)] for cell in code[:-1]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, help="a data directory with a published copy")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    os.environ["PIPELINE_DATA_DIR"] = str(args.data_dir.resolve())
    with tempfile.TemporaryDirectory() as scratch:
        kernel_env(Path(scratch))
        rounds = []
        for number in range(args.rounds):
            found = run_notebook()
            print(number, round(found["seconds"], 2), round(found["kernel_peak_rss_mb"]))
            for seconds, name in found["cells"]:
                print(f"   {seconds:7.3f}  {name}", flush=True)
            rounds.append(found)
    command = "python " + " ".join("DIR" if arg == str(args.data_dir) else arg for arg in sys.argv)
    write_results(
        args.out,
        command,
        median_seconds=statistics.median(r["seconds"] for r in rounds),
        peak_rss_mb=max(r["kernel_peak_rss_mb"] for r in rounds),
        rounds=rounds,
    )


if __name__ == "__main__":
    main()
