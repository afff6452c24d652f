"""`bench/results_file.py`: every benchmark's results file says what made it, where and when,
before its own sections."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from results_file import write_results


def test_a_results_file_leads_with_command_machine_and_time_then_the_sections(
    tmp_path: Path,
) -> None:
    out = tmp_path / "results" / "bench.json"  # the folder is made
    write_results(out, "python bench/x.py --runs 2", summary={"s": 1.5}, runs=[1, 2])
    text = out.read_text()
    document = json.loads(text)
    assert list(document) == ["command", "machine", "measured_at", "summary", "runs"]
    assert document["command"] == "python bench/x.py --runs 2"
    assert document["machine"].endswith(f"{os.cpu_count()} cores")
    assert datetime.fromisoformat(document["measured_at"]).tzinfo is not None
    assert document["summary"] == {"s": 1.5} and document["runs"] == [1, 2]
    assert text.endswith("}\n")
