"""Where the first `pipeline refresh` peaks: RSS sampled every half second with the function the
refresh is in.

Fills DIR by plain SQL as `refresh_sql_filled.py` does (when it holds no warehouse yet), then
runs `pipeline refresh` in this process while a thread reads `/proc/self/status` and the main
thread's stack; prints the peak and the highest sample of each place. Results of the runs that
bounded the records build: `bench/results/full_refresh_memory_100m.json`.

    .venv/bin/python bench/refresh_memory.py filled 8300000   # about 10 minutes
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import threading
import time
import traceback
from pathlib import Path

import refresh_sql_filled

SAMPLE_EVERY_S = 0.5


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


def _where(thread_id: int) -> str:
    frame = sys._current_frames().get(thread_id)
    if frame is None:
        return ""
    names = [f.name for f in traceback.extract_stack(frame) if "/pipeline/" in f.filename]
    return " > ".join(names[-4:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("orders", type=int)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    if not (args.dir / "warehouse.duckdb").exists():
        print("fill", refresh_sql_filled.fill(args.dir, args.orders), flush=True)
    os.environ["PIPELINE_DATA_DIR"] = str(args.dir)
    from pipeline.commands import refresh

    main_thread = threading.main_thread().ident or 0
    samples: list[tuple[float, float, str]] = []
    done = threading.Event()

    def sample() -> None:
        started = time.perf_counter()
        while not done.wait(SAMPLE_EVERY_S):
            samples.append((time.perf_counter() - started, _rss_mb(), _where(main_thread)))

    threading.Thread(target=sample, daemon=True).start()
    started = time.perf_counter()
    refresh.run(argparse.Namespace(no_alerts=False))
    done.set()
    print(f"seconds {time.perf_counter() - started:.1f}")
    highest: dict[str, tuple[float, float, str]] = {}
    for at, rss, where in samples:
        if rss > highest.get(where, (0.0, 0.0, ""))[1]:
            highest[where] = (at, rss, where)
    for at, rss, where in sorted(highest.values(), key=lambda s: -s[1])[:25]:
        print(f"{rss:8.0f} MB at {at:6.1f} s  {where}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
