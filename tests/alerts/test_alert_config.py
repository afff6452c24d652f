"""Alert configuration: defaults, overrides from the file and the environment in the documented
order (a provider's own setting beats the all-provider one; the environment beats the file),
targets with secrets that never show, and mistakes that stop the start with where they are."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from alert_support import NOW, WEBHOOK_TOKEN, WebhookReceiver, polls, write

from pipeline.alerts import evaluate_and_notify
from pipeline.alerts.config import DEFAULT_RULES, AlertConfig, EmailTarget, Slo, WebhookTarget
from pipeline.settings import Settings
from pipeline.warehouse import Warehouse

SLUGS = ("baanx", "smsonline")
HOOK = "https://hooks.example.org/services/T0/B0/very-secret-token-123"


def _read(
    env: dict[str, str], toml: str | None = None, tmp_path: Path | None = None
) -> AlertConfig:
    if toml is not None and tmp_path is not None:
        path = tmp_path / "alerts.toml"
        path.write_text(toml)
        env = {**env, "PIPELINE_ALERTS_FILE": str(path)}
    return AlertConfig.from_env(env, providers=SLUGS)


def test_defaults_without_configuration() -> None:
    config = _read({})
    assert [r.name for r in config.rules_for("baanx")] == [r.name for r in DEFAULT_RULES]
    assert [(s.name, s.objective, s.within_s) for s in config.slos_for("baanx")] == [
        ("time_to_code", 0.95, 120.0),
        ("expiry", 0.90, None),
    ]
    assert config.targets == () and config.status_dir == Path("data/status")
    assert config.delivery.retry_attempts == 3 and config.delivery.max_per_hour == 20


def test_overrides_follow_scope_then_source(tmp_path: Path) -> None:
    toml = """
[rules.availability]
page = { threshold = 0.7 }
[providers.smsonline.rules.availability]
page = { threshold = 0.5, window_s = 600 }
[slos.time_to_code]
objective = 0.9
within_s = 180
[providers.baanx.slos.expiry]
enabled = false
[rules.quarantine_15m]
measure = "quarantine_rate"
ticket = { window_s = 900, threshold = 0.2 }
"""
    env = {
        "PIPELINE_ALERTS_AVAILABILITY_PAGE_THRESHOLD": "0.75",  # beats the file's 0.7
        "PIPELINE_ALERTS_SMSONLINE_TIME_TO_CODE_OBJECTIVE": "0.8",
    }
    config = _read(env, toml, tmp_path)

    def page(provider: str) -> tuple[float, float]:
        rule = next(r for r in config.rules_for(provider) if r.name == "availability")
        level = next(lv for lv in rule.levels if lv.severity == "page")
        return level.threshold, level.window_s

    assert page("baanx") == (0.75, 300.0)
    assert page("smsonline") == (0.5, 600.0)  # the provider's file section beats all-provider
    codes = {p: next(s for s in config.slos_for(p) if s.name == "time_to_code") for p in SLUGS}
    assert (codes["baanx"].objective, codes["baanx"].within_s) == (0.9, 180.0)
    assert (codes["smsonline"].objective, codes["smsonline"].within_s) == (0.8, 180.0)
    assert [s.name for s in config.slos_for("baanx")] == ["time_to_code"]
    custom = next(r for r in config.rules_for("baanx") if r.name == "quarantine_15m")
    assert custom.measure == "quarantine_rate" and custom.levels[0].window_s == 900.0


def test_targets_keep_their_secrets(tmp_path: Path) -> None:
    toml = """
[[webhooks]]
name = "oncall-teams"
url_variable = "TEAMS_HOOK"
format = "teams"
"""
    env = {
        "PIPELINE_ALERTS_WEBHOOK_URL": HOOK,
        "PIPELINE_ALERTS_WEBHOOK_FORMAT": "slack",
        "TEAMS_HOOK": HOOK + "-teams",
        "PIPELINE_ALERTS_SMTP_HOST": "127.0.0.1",
        "PIPELINE_ALERTS_SMTP_PORT": "2525",
        "PIPELINE_ALERTS_SMTP_FROM": "pipeline@example.org",
        "PIPELINE_ALERTS_SMTP_TO": "a@example.org, b@example.org",
        "PIPELINE_ALERTS_SMTP_USER": "pipeline",
        "PIPELINE_ALERTS_SMTP_PASSWORD": "hunter2-hunter2",
        "PIPELINE_ALERTS_SMTP_STARTTLS": "false",
    }
    config = _read(env, toml, tmp_path)
    slack, teams, email = config.targets
    assert isinstance(slack, WebhookTarget) and (slack.name, slack.format) == ("webhook#1", "slack")
    assert isinstance(teams, WebhookTarget) and (teams.name, teams.format) == (
        "oncall-teams",
        "teams",
    )
    assert teams.url.reveal() == HOOK + "-teams"
    assert isinstance(email, EmailTarget)
    assert (email.port, email.recipients, email.starttls) == (
        2525,
        ("a@example.org", "b@example.org"),
        False,
    )
    shown = repr(config) + str(config)
    assert "very-secret-token" not in shown and "hunter2" not in shown


@pytest.mark.parametrize(
    ("env", "toml", "message"),
    [
        ({"PIPELINE_ALERTS_AVAILABILTY_PAGE_THRESHOLD": "0.5"}, None, "not a known alert variable"),
        ({"PIPELINE_ALERTS_AVAILABILITY_PAGE_THRESHOLD": "high"}, None, "could not convert"),
        ({"PIPELINE_ALERTS_AVAILABILITY_PAGE_THRESHOLD": "80"}, None, "threshold is a share"),
        ({}, "[slos.time_to_code]\nobjectiv = 0.9\n", "unknown key 'objectiv'"),
        ({}, "[providers.nosuch.rules.availability]\nenabled = false\n", "no such provider"),
        ({}, "[rules.mine]\nticket = { window_s = 60, threshold = 0.5 }\n", "measure must be"),
        ({"PIPELINE_ALERTS_WEBHOOK_URL": "ftp://x"}, None, "must start with http"),
        ({"PIPELINE_ALERTS_SMTP_HOST": "localhost"}, None, "SMTP_FROM and SMTP_TO"),
    ],
)
def test_mistakes_stop_with_where_they_are(
    env: dict[str, str], toml: str | None, message: str, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=message):
        _read(env, toml, tmp_path)


def test_unreachable_burn_rates_are_lowered_so_a_total_failure_still_fires() -> None:
    """ "≤ 10 % expire" can burn at most 10×: the default 14.4× page would never fire."""
    expiry = Slo("expiry", "no_expiry", objective=0.9, within_s=None)
    page, ticket = expiry.levels
    assert expiry.fires_at(page) == pytest.approx(9.0)
    assert expiry.fires_at(ticket) == 6.0
    strict = Slo("time_to_code", "code", objective=0.95, within_s=120.0)
    assert strict.fires_at(strict.levels[0]) == 14.4


def test_settings_mean_the_environment(
    warehouse: Warehouse,
    receiver: WebhookReceiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given the product's `Settings`, the alert variables are read from the environment (and
    `./.env`), with the settings' data directory."""
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("PIPELINE_ALERTS_WEBHOOK_URL", receiver.url(f"/env/{WEBHOOK_TOKEN}"))
    monkeypatch.setenv("PIPELINE_ALERTS_RETRY_BACKOFF_S", "0")
    settings = Settings.from_env({"PIPELINE_DATA_DIR": str(tmp_path / "data")})
    write(warehouse, polls("baanx", NOW - timedelta(minutes=60), NOW, 10))
    write(warehouse, polls("baanx", NOW, NOW + timedelta(minutes=5), 10, failing=True))
    run = evaluate_and_notify(warehouse, settings, NOW + timedelta(minutes=5))
    assert run.delivery.delivered == 1
    assert [b["state"] for b in receiver.bodies(f"/env/{WEBHOOK_TOKEN}")] == ["firing"]
