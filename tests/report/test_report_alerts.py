"""The report's "Alerts and SLOs" section: with what the alerting stored in the published
warehouse (`slo_status`, `alert_incidents`, `alerts`) it shows each SLO's objective, compliance,
error budget left and burn rates, the data window's incidents (open ones first) and how many
messages were delivered or failed, with every text escaped; without an evaluation (empty
tables) or without the tables (a warehouse from before alerting) it says so in one sentence."""

from __future__ import annotations

import re
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipeline.alerts.incidents import ALERT_COLUMNS, Incident, store_incidents
from pipeline.alerts.slo import STATUS_COLUMNS, write_status
from pipeline.report import build_report, sections
from pipeline.report.data import ALERT_TABLES, load
from pipeline.report.markup import burn_rate, objective, text
from pipeline.report.providers import provider_name
from pipeline.warehouse import Warehouse
from pipeline.warehouse.schema import migrate
from pipeline.warehouse.store import registered

HOSTILE = '<script src="https://evil.example/x.js"></script>'
HOSTILE_SLO = '<script src="https://evil.example/slo.js"></script>'
NO_EVALUATION = "No alert evaluation yet: "
DAY_S, HOUR_S = 86400.0, 3600.0
# (window name, seconds, good, total) of each SLO, the compliance period (30 d) last.
CODE_WINDOWS = (
    ("5m", 300.0, 2.0, 10),  # burn (1 − 0.2) / 0.05 = 16
    ("30m", 1800.0, 40.0, 50),  # 4
    ("1h", HOUR_S, 28.0, 100),  # 14.4
    ("6h", 6 * HOUR_S, 450.0, 500),  # 2
    ("30d", 30 * DAY_S, 962.4, 1000),  # 0.752: 24.8 % of the budget left
)
EXPIRY_WINDOWS = (
    ("5m", 300.0, 0.0, 0),  # no order judged: no burn rate
    ("30m", 1800.0, 9.0, 10),
    ("1h", HOUR_S, 18.0, 20),
    ("6h", 6 * HOUR_S, 90.0, 100),
    ("30d", 30 * DAY_S, 800.0, 1000),  # burn 2: the budget is overspent (−100 %)
)


def _status_rows(
    provider: str,
    slo: str,
    goal: float,
    windows: tuple[tuple[str, float, float, int], ...],
    at: datetime,
) -> list[dict[str, object]]:
    def burn(good: float, total: int) -> float | None:
        return (1.0 - good / total) / (1.0 - goal) if total else None

    period = burn(*windows[-1][2:])
    return [
        {
            "provider": provider,
            "slo": slo,
            "objective": goal,
            "window_name": name,
            "window_s": seconds,
            "good": good,
            "total": total,
            "error_budget_remaining": None if period is None else 1.0 - period,
            "burn_rate": burn(good, total),
            "evaluated_at": at,
        }
        for name, seconds, good, total in windows
    ]


def _incident(
    key: str,
    provider: str,
    rule: str,
    severity: str,
    opened_at: datetime,
    resolved_at: datetime | None,
    value: float,
    threshold: float,
    updated_at: datetime | None = None,
) -> Incident:
    return Incident(
        incident_id=key,
        provider=provider,
        rule=rule,
        severity=severity,
        state="firing" if resolved_at is None else "resolved",
        opened_at=opened_at,
        resolved_at=resolved_at,
        value=value,
        threshold=threshold,
        summary=f"{rule} reading",
        updated_at=updated_at or resolved_at or opened_at,
    )


def _message(key: str, created_at: datetime, target: str, status: str) -> dict[str, object]:
    return {
        "alert_id": key,
        "incident_id": key,
        "created_at": created_at,
        "provider": "smsonline",
        "rule": "time_to_code",
        "severity": "page",
        "state": "firing",
        "value": 16.0,
        "threshold": 14.4,
        "target": target,
        "status": status,
        "delivered": status == "delivered",
        "attempts": 1,
        "summary": "[FIRING · page] SMSOnline: time_to_code",
        "message_json": "{}",
    }


def _copy(published: Path, to: Path) -> Path:
    to.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(published, to)
    return to


@pytest.fixture(scope="module")
def alerting(published: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, datetime]:
    """A copy of the published warehouse with SLO figures, incidents and messages in the alert
    tables (created by the migrations if the copy had none); the last poll's time."""
    path = _copy(published, tmp_path_factory.mktemp("alerting") / "published.duckdb")
    data = load(path)
    assert data.data_from is not None and data.data_to is not None
    first, last = data.data_from, data.data_to
    incidents = [
        # Opened before the resolved one below, listed first all the same: it is open.
        _incident("open", "smsonline", "time_to_code", "page", first + timedelta(minutes=30),
                  None, 16.0, 14.4, updated_at=last),
        _incident("resolved", "sms4sats", "availability", "ticket", first + timedelta(hours=2),
                  first + timedelta(hours=2, minutes=45), 0.97, 0.95),
        _incident("hostile", HOSTILE, HOSTILE, "ticket", first + timedelta(hours=1),
                  first + timedelta(hours=1, seconds=30), 0.2, 0.1),
        # Resolved before the first poll: not an incident of the data window.
        _incident("before", "baanx", "quarantine_rate", "ticket", first - timedelta(hours=3),
                  first - timedelta(hours=2), 0.2, 0.05),
    ]  # fmt: skip
    messages = pl.DataFrame(
        [
            _message("m1", first + timedelta(minutes=30), "oncall-slack", "delivered"),
            _message("m2", first + timedelta(hours=2), "oncall-slack", "delivered"),
            _message("m3", first + timedelta(hours=2), "oncall-slack", "failed"),
            _message("m4", first + timedelta(hours=2), "ops-mail", "pending"),
            _message("m5", first + timedelta(hours=1), HOSTILE, "delivered"),
            _message("m6", first - timedelta(hours=3), "oncall-slack", "delivered"),  # before
        ],
        schema=ALERT_COLUMNS,
        orient="row",
    )
    status = pl.DataFrame(
        [
            *_status_rows("smsonline", "time_to_code", 0.95, CODE_WINDOWS, last),
            *_status_rows("sms4sats", "expiry", 0.90, EXPIRY_WINDOWS, last),
            *_status_rows("baanx", HOSTILE_SLO, 0.5, CODE_WINDOWS, last),
        ],
        schema=STATUS_COLUMNS,
        orient="row",
    )
    with Warehouse(path).transaction() as con:  # read-write: migrated to the latest schema
        migrate(con)
        if not con.execute(
            "SELECT count(*) FROM duckdb_constraints() WHERE table_name = "
            "'alert_incidents' AND constraint_type = 'PRIMARY KEY'"
        ).fetchall()[0][0]:
            # A published copy keeps no keys (`pipeline.warehouse.publish`); the alerting's
            # own writes, done here, need the warehouse's.
            con.execute("ALTER TABLE alert_incidents ADD PRIMARY KEY (incident_id)")
        write_status(con, status)
        store_incidents(con, incidents)
        with registered(con, "_messages", messages):
            con.execute("INSERT INTO alerts BY NAME SELECT * FROM _messages")
    return path, last


@pytest.fixture(scope="module")
def body(alerting: tuple[Path, datetime]) -> str:
    return str(sections.alerts_and_slos(load(alerting[0])).body)


def _between(html: str, start: str, end: str) -> str:
    return html[html.index(start) : html.index(end)]


def _rows(table: str) -> list[str]:
    """The body rows of the first table in `table`."""
    return re.findall(r"<tr>.*?</tr>", _between(table, "<tbody>", "</tbody>"), re.S)


def _row_of(table: str, needle: str) -> str:
    return next(row for row in _rows(table) if needle in row)


def test_slo_figures_in_readable_form(body: str) -> None:
    slos = _between(body, "<h3>Error budgets and burn rates</h3>", "<h3>Incidents</h3>")
    for window in ("5m", "30m", "1h", "6h"):
        assert f">{window}</th>" in slos  # one burn-rate column per window
    assert ">30d</th>" not in slos  # the compliance period is the compliance column
    code = _row_of(slos, "time_to_code")
    assert "SMSOnline" in code and ">95 %<" in code  # display name, objective
    assert "96.2 %" in code and "962.4 / 1,000" in code  # compliance, good / total
    assert "24.8 %" in code  # error budget left
    for rate in ("16.0×", "4.0×", "14.4×", "2.0×"):
        assert rate in code
    expiry = _row_of(slos, ">expiry<")
    assert ">90 %<" in expiry and "80.0 %" in expiry
    assert '<td class="num over">-100.0 %</td>' in expiry  # overspent
    assert '<td class="num">–</td>' in expiry  # no order judged in the last 5 min
    assert '<td class="num">1.0×</td>' in expiry  # spending the budget exactly: not in red
    assert '<td class="num over">16.0×</td>' in code  # faster: in red
    assert ">50 %<" in _row_of(slos, "Baanx")
    assert "1 incident open" in body
    assert "least error budget is left for sms4sats, expiry (-100.0 %)" in body


def test_incidents_of_the_data_window_open_first(body: str) -> None:
    table = _between(body, "<h3>Incidents</h3>", "<h3>Messages</h3>")
    rows = _rows(table)
    assert len(rows) == 3  # the one resolved before the first poll is left out
    assert "quarantine_rate" not in table
    first = rows[0]
    assert "SMSOnline" in first and "time_to_code" in first and "page" in first
    assert "<strong>open</strong>" in first and "so far" in first
    assert "16.0× vs 14.4×" in first  # an SLO's value and threshold are burn rates
    resolved = _row_of(table, "availability")
    assert provider_name("sms4sats") in resolved and "ticket" in resolved
    assert "45.0 min" in resolved and "97.0 % vs 95.0 %" in resolved  # shares
    assert "open" not in resolved
    assert rows.index(resolved) > 0


def test_messages_delivered_and_failed(body: str) -> None:
    messages = body[body.index("<h3>Messages</h3>") :]
    assert "3 delivered, 1 failed, 1 waiting for a retry" in messages  # m6 predates the window
    slack = _row_of(messages, "oncall-slack")
    assert re.findall(r">(\d+)</td>", slack) == ["3", "2", "1", "0"]
    assert re.findall(r">(\d+)</td>", _row_of(messages, "ops-mail")) == ["1", "0", "0", "1"]


def test_text_from_the_alert_tables_is_escaped(body: str) -> None:
    assert "<script" not in body.lower() and "https://" not in body
    assert body.count(str(text(HOSTILE))) == 3  # an incident's provider and rule, a target
    assert str(text(HOSTILE_SLO)) in body
    assert "20.0 % vs 10.0 %" in body  # a rule's value and threshold are shares


def test_the_section_follows_the_scorecard_in_the_page_and_contents(
    alerting: tuple[Path, datetime], tmp_path: Path
) -> None:
    summary = build_report(alerting[0], tmp_path / "report.html")
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    index = summary.sections.index("Alerts and SLOs")
    assert summary.sections[index - 1] == "Reliability scorecard"
    assert '<li><a href="#alerts">Alerts and SLOs</a></li>' in html
    assert html.index('id="reliability"') < html.index('id="alerts"')
    assert html.index('id="alerts"') < html.index('id="errors-latency"')
    assert "<script" not in html.lower()


def test_empty_alert_tables_say_no_evaluation_yet(published: Path) -> None:
    data = load(published)  # the fixture's tables exist, nothing evaluated them
    assert data.alert_tables and data.slo_status.is_empty()
    body = str(sections.alerts_and_slos(data).body)
    assert NO_EVALUATION in body and "holds no SLO figures" in body
    assert "<table" not in body and "<h3>" not in body


def test_a_warehouse_from_before_alerting_says_so(published: Path, tmp_path: Path) -> None:
    path = _copy(published, tmp_path / "published.duckdb")
    con = duckdb.connect(str(path))
    try:
        for table in (*ALERT_TABLES, "slo_events"):
            con.execute(f"DROP TABLE {table}")
    finally:
        con.close()
    data = load(path)
    assert not data.alert_tables
    body = str(sections.alerts_and_slos(data).body)
    assert NO_EVALUATION in body and "predates alerting" in body
    assert body.count(NO_EVALUATION) == 1 and "<table" not in body
    summary = build_report(path, tmp_path / "report.html")
    assert "Alerts and SLOs" in summary.sections


def test_formats() -> None:
    assert objective(0.95) == "95 %" and objective(0.999) == "99.9 %"
    assert objective(0.9995) == "99.95 %"  # never rounded up to 100 %
    assert burn_rate(14.4) == "14.4×" and burn_rate(None) == "–"
