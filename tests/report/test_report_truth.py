"""On sandbox data the report shows the true median beside each estimate: given the sandbox's
truth file, the time-to-code and time-to-completion tables get a "Truth (sandbox)" column (the
same orders' median from their exact transition times, `true_medians`), in readable units and
escaped, for the providers each table is about, and a sentence says what it is; a provider whose
truth is not complete yet (the sandbox still running) gets none. Without the file the tables are
as before: no column, no sentence."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline.report import ReportSummary, build_report, sandbox_truth_path, sections
from pipeline.report.data import load
from pipeline.settings import Settings
from pipeline.warehouse import Warehouse

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TRUTH_HEADER = "Truth (sandbox)"
TRUTH_SENTENCE = "Truth (sandbox): the median of the same orders from the sandbox’s exact"
HOSTILE_PROVIDER = "<img src=x onerror=alert(1)>"
CODE_RECEIVED_SHARE = 36
"""sms4sats receive orders (of 70) that get their code at 45 s; the other 34 fail at 20 s."""
# What the truth file below makes the true medians, as the report should print them.
TRUE_CODE = {"sms4sats": "45 s", "SMSOnline": "2.5 min"}
TRUE_COMPLETION = {
    # 36 codes at 45 s of 90 orders are 40 %; the 20 sends completing at 3 h make it 62 %.
    "sms4sats": "3.0 h",
    "SMSOnline": "2.5 min",
    "Baanx": "90.0 min",
    "Altinn": "not reached",  # every order failed
    "OrdinalsBot": "–",  # one order missing from the truth: not complete yet
}


def _at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def _record(
    provider: str, order_id: str, kind: str, steps: list[tuple[str, float]]
) -> dict[str, Any]:
    return {
        "provider": provider,
        "order_id": order_id,
        "order_kind": kind,
        "created_at": _at(0),
        "transitions": [{"state": state, "at": _at(s)} for state, s in steps],
        "state": steps[-1][0],
        "is_final": True,
        "recorded_at": _at(steps[-1][1]),
    }


def _steps(provider: str, kind: str, index: int) -> list[tuple[str, float]] | None:
    """The true transitions of the `index`-th tracked order of a provider and kind."""
    if provider == "sms4sats" and kind == "sms_receive":
        if index < CODE_RECEIVED_SHARE:
            return [("processing", 0), ("code_received", 45)]
        return [("processing", 0), ("failed", 20)]
    if provider == "sms4sats":
        return [("pending", 0), ("completed", 3 * 3600)]
    if provider == "smsonline":
        return [("processing", 0), ("code_received", 150)]
    if provider == "baanx":
        return [("pending", 0), ("completed", 5400)]
    if provider == "altinn":
        return [("pending", 0), ("failed", 30)]
    if provider == "ordinalsbot":
        return None if index == 0 else [("pending", 0), ("completed", 60)]
    raise AssertionError(f"no truth for {provider}")


def write_truth(published: Path, path: Path) -> Path:
    """A truth file for the orders of `published`, with the medians `TRUE_CODE` and
    `TRUE_COMPLETION`, and an untracked order of a provider named like markup."""
    orders = Warehouse(published).read(
        "SELECT provider, order_kind, order_id FROM orders ORDER BY ALL", read_only=True
    )
    lines, seen = [], dict[tuple[str, str], int]()
    for provider, kind, order_id in orders.iter_rows():
        index = seen[(provider, kind)] = seen.get((provider, kind), -1) + 1
        steps = _steps(provider, kind, index)
        if steps is not None:
            lines.append(_record(provider, order_id, kind, steps))
    lines.append(_record(HOSTILE_PROVIDER, "x", "sms_receive", [("code_received", 1)]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def truth_path(published: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_truth(published, tmp_path_factory.mktemp("sandbox") / "truth.jsonl")


@pytest.fixture(scope="module")
def truth_report(
    published: Path, truth_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[ReportSummary, str]:
    out = tmp_path_factory.mktemp("reports") / "report.html"
    summary = build_report(published, out, truth_path=truth_path)
    return summary, out.read_text(encoding="utf-8")


def _section(html: str, anchor: str) -> str:
    match = re.search(rf'<section id="{anchor}">(.*?)</section>', html, re.S)
    assert match, anchor
    return match.group(1)


def _plain(cell: str) -> str:
    return re.sub(r"<[^>]+>", "", cell).strip()


def _table(section: str) -> tuple[list[str], dict[str, list[str]]]:
    """The header and the rows (by provider) of a section's first table."""
    table = section[section.index("<table>") : section.index("</table>")]
    header = [_plain(c) for c in re.findall(r"<th[^>]*>(.*?)</th>", table, re.S)]
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], re.S):
        cells = re.findall(r"<td[^>]*>.*?</td>", row, re.S)
        rows[_plain(cells[0])] = cells
    return header, rows


@pytest.mark.parametrize(
    ("anchor", "expected"),
    [("time-to-code", TRUE_CODE), ("time-to-completion", TRUE_COMPLETION)],
)
def test_the_true_median_stands_beside_each_estimate(
    truth_report: tuple[ReportSummary, str], anchor: str, expected: dict[str, str]
) -> None:
    _, html = truth_report
    header, rows = _table(_section(html, anchor))
    column = header.index(TRUTH_HEADER)
    assert header[column - 1] == "Median (95 % CI)"
    assert set(rows) == set(expected)
    for provider, truth in expected.items():
        cell = rows[provider][column]
        assert cell.startswith('<td class="truth">'), cell
        assert _plain(cell) == truth, provider
        estimate = _plain(rows[provider][column - 1])  # still there, left of it
        assert re.fullmatch(r"not reached|\S+ \S+ \(.+\)", estimate), estimate


def test_a_sentence_says_what_the_truth_is_and_which_is_missing(
    truth_report: tuple[ReportSummary, str],
) -> None:
    _, html = truth_report
    code, completion = _section(html, "time-to-code"), _section(html, "time-to-completion")
    for section in (code, completion):
        assert section.count(TRUTH_SENTENCE) == 1
    # Only the completion table has OrdinalsBot, whose truth is not complete.
    assert "No truth yet for OrdinalsBot:" in completion
    assert "No truth yet" not in code
    # By service stays as it was.
    by_service = code[code.index("<h3>By service</h3>") :]
    assert TRUTH_HEADER not in by_service


def test_truth_from_the_file_is_never_markup(truth_report: tuple[ReportSummary, str]) -> None:
    _, html = truth_report
    assert "<img src=x" not in html and "onerror" not in html


def test_without_a_truth_file_there_is_no_truth_column(
    published: Path, report_data_dir: Path, tmp_path: Path
) -> None:
    settings = Settings.from_env({"PIPELINE_DATA_DIR": str(report_data_dir)})
    assert sandbox_truth_path(settings) is None  # no sandbox here: not sandbox data
    for truth_path in (None, tmp_path / "sandbox" / "truth.jsonl"):
        data = load(published, truth_path)
        assert data.truth is None
        for section in (sections.time_to_code(data), sections.time_to_completion(data)):
            assert "Median (95 % CI)" in section.body
            assert "Truth" not in section.body and 'class="truth"' not in section.body


def test_the_sandbox_truth_path_is_found_in_the_data_dir(tmp_path: Path, published: Path) -> None:
    settings = Settings.from_env({"PIPELINE_DATA_DIR": str(tmp_path)})
    path = write_truth(published, settings.sandbox_dir / "truth.jsonl")
    assert sandbox_truth_path(settings) == path
