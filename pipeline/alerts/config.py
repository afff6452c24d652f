"""What to alert on and where to send it: `AlertConfig`, read from the environment and a TOML file.

Every rule and SLO applies to every provider, with per-provider overrides. Where a value comes
from, lowest precedence first:

1. the built-in defaults (`DEFAULT_RULES`, `DEFAULT_SLOS`, `DeliveryPolicy`);
2. the file named by `PIPELINE_ALERTS_FILE`, all-provider sections (`[rules.availability]`);
3. all-provider variables (`PIPELINE_ALERTS_AVAILABILITY_PAGE_THRESHOLD=0.7`);
4. the file's per-provider sections (`[providers.smsonline.rules.availability]`);
5. per-provider variables (`PIPELINE_ALERTS_SMSONLINE_AVAILABILITY_PAGE_THRESHOLD=0.5`).

A provider's own setting beats the all-provider one; within one scope the environment beats the
file. A mistake (unknown key or variable, a value out of range) raises `ValueError` naming where
it was written: nothing starts half-configured.

Variables (all optional; `PIPELINE_ALERTS_` prefix left out):

    FILE                      the TOML file below
    WEBHOOK_URL               a webhook (secret); WEBHOOK_FORMAT generic|slack|teams (generic),
                              WEBHOOK_NAME how it is shown (webhook#1)
    SMTP_HOST, SMTP_PORT (587), SMTP_FROM, SMTP_TO (comma-separated), SMTP_USER,
    SMTP_PASSWORD (secret), SMTP_STARTTLS (true)
    RETRY_ATTEMPTS (3), RETRY_BACKOFF_S (1), TIMEOUT_S (5), MAX_PER_HOUR (20),
    GIVE_UP_AFTER_S (3600), DEADLINE_S (30)
    SLO_BUDGET_PERIOD_S (2592000 = 30 d), SLO_LOOKBACK_S (86400)
    STATUS_URL                where the status page is served, linked from messages
    [<SLUG>_]<RULE>_ENABLED, _MIN_SAMPLES,
        _<PAGE|TICKET>_THRESHOLD, _WINDOW_S, _SHORT_WINDOW_S, _ENABLED
    [<SLUG>_]<SLO>_ENABLED, _OBJECTIVE, _WITHIN_S, _MIN_EVENTS,
        _PAGE_BURN_RATE, _TICKET_BURN_RATE

and `PIPELINE_DATA_DIR` for where the status page goes (`<data dir>/status`).

The file, in full (every key optional):

    [rules.availability]              # a built-in rule: change it
    min_samples = 10
    page = { window_s = 300, threshold = 0.8 }
    ticket = { window_s = 3600, short_window_s = 300, threshold = 0.95, enabled = true }

    [rules.availability_15m]          # a rule of your own: name a measure
    measure = "availability"          # availability | quarantine_rate | unknown_status_rate
    ticket = { window_s = 900, threshold = 0.9 }

    [slos.time_to_code]               # outcome: code | no_expiry | success
    objective = 0.95
    within_s = 120                    # 0: no time limit
    page_burn_rate = 14.4
    ticket_burn_rate = 6.0
    min_events = 10

    [providers.smsonline.slos.expiry]
    enabled = false

    [[webhooks]]
    name = "oncall-slack"             # shown in the alerts table instead of the URL
    url_variable = "ONCALL_SLACK_URL" # or url = "https://…"
    format = "slack"                  # generic | slack | teams

    [email]                           # PIPELINE_ALERTS_SMTP_* variables win over these
    host = "smtp.example.org"
    port = 587
    from = "pipeline@example.org"
    to = ["oncall@example.org"]
    user = "pipeline"
    password_variable = "SMTP_PASSWORD"
    starttls = true

    [delivery]
    retry_attempts = 3
    retry_backoff_s = 1.0
    timeout_s = 5.0
    max_per_hour = 20
    give_up_after_s = 3600
    deadline_s = 30

    [slo]
    budget_period_s = 2592000
    lookback_s = 86400

    [status]
    url = "https://status.example.org/"   # linked from messages
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, cast

from pipeline.environment import environment
from pipeline.providers.registry import REGISTRY
from pipeline.secret import Secret

PREFIX = "PIPELINE_ALERTS_"
FILE_VARIABLE = "PIPELINE_ALERTS_FILE"
DATA_DIR_VARIABLE = "PIPELINE_DATA_DIR"
DEFAULT_DATA_DIR = "data"
STATUS_DIR = "status"
"""The status page is written to `<data dir>/status/`."""

Severity = Literal["page", "ticket"]
SEVERITIES: tuple[Severity, ...] = ("page", "ticket")
"""Most urgent first: a page wakes someone up, a ticket waits for working hours."""
SEVERITY_RANK: dict[str, int] = {"page": 2, "ticket": 1}

Measure = Literal["availability", "quarantine_rate", "unknown_status_rate"]
MEASURES: tuple[Measure, ...] = ("availability", "quarantine_rate", "unknown_status_rate")
FIRES_BELOW: frozenset[str] = frozenset({"availability"})
"""Measures that fire when they fall below the threshold; the others fire above it."""

Outcome = Literal["code", "no_expiry", "success"]
OUTCOMES: tuple[Outcome, ...] = ("code", "no_expiry", "success")
"""What an SLO counts as good: `code` an SMS code within `within_s` (code order kinds);
`no_expiry` an order ending any way but expired (kinds with an expiry window); `success` a
successful outcome within `within_s` (every kind)."""

WebhookFormat = Literal["generic", "slack", "teams"]
WEBHOOK_FORMATS: tuple[WebhookFormat, ...] = ("generic", "slack", "teams")

REACHABLE_SHARE = 0.9
"""An SLO's burn rate can never exceed 1 / (1 − objective) (every event bad): a configured burn
rate above that is lowered to this share of it, so a total failure still fires. With the default
14.4 this matters for objectives under 93 %, e.g. "≤ 10 % expire" pages at 9×."""

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
TARGET_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.#-]{0,39}$")

MINUTE_S = 60.0
HOUR_S = 3600.0
DAY_S = 86400.0


@dataclasses.dataclass(frozen=True)
class Level:
    """One severity of a threshold rule: it fires while the measure crosses `threshold` over
    `window_s` and, when set, over the last `short_window_s` too.

    The short window is the SRE workbook's second window: without it a one-hour level keeps
    firing until a short outage's bad polls age out of the hour; with it the incident resolves
    minutes after the problem stops. It needs one sample, not `min_samples`.
    """

    severity: Severity
    window_s: float
    threshold: float
    short_window_s: float | None = None


@dataclasses.dataclass(frozen=True)
class ThresholdRule:
    """A measure of the poll log compared with a threshold, at one or more severities.

    Attributes:
        name: the rule's name in incidents, messages and variables (`availability`).
        measure: what is measured, per provider (`MEASURES`).
        levels: the severities it can fire at, each with its window and threshold.
        min_samples: fewer polls (answers) than this in a window say nothing: the level neither
            fires nor resolves.
        enabled: whether the rule is evaluated at all.
    """

    name: str
    measure: Measure
    levels: tuple[Level, ...]
    min_samples: int = 10
    enabled: bool = True

    @property
    def fires_below(self) -> bool:
        """Whether a value under the threshold fires (availability) rather than over it."""
        return self.measure in FIRES_BELOW


@dataclasses.dataclass(frozen=True)
class BurnLevel:
    """One severity of an SLO's multi-window burn-rate alert (Google SRE workbook, ch. 5): it
    fires when the burn rate exceeds `burn_rate` over both the long and the short window."""

    severity: Severity
    long_s: float
    short_s: float
    burn_rate: float


DEFAULT_BURN_LEVELS: tuple[BurnLevel, ...] = (
    BurnLevel("page", long_s=HOUR_S, short_s=5 * MINUTE_S, burn_rate=14.4),
    BurnLevel("ticket", long_s=6 * HOUR_S, short_s=30 * MINUTE_S, burn_rate=6.0),
)
"""Page: 2 % of a 30-day budget spent in an hour; ticket: 5 % in six hours."""


@dataclasses.dataclass(frozen=True)
class Slo:
    """An outcome objective over orders, with an error budget and burn-rate alerts.

    Attributes:
        name: the SLO's name in `slo_status`, incidents and variables (`time_to_code`).
        outcome: what counts as good (`OUTCOMES`).
        objective: the share of orders that should be good (0.95).
        within_s: the time limit for `code` and `success` (None: whenever it happens).
        levels: the burn-rate alerts.
        min_events: decided orders the long window needs before a level may fire or resolve.
        enabled: whether the SLO is evaluated at all.
    """

    name: str
    outcome: Outcome
    objective: float
    within_s: float | None
    levels: tuple[BurnLevel, ...] = DEFAULT_BURN_LEVELS
    min_events: int = 10
    enabled: bool = True

    @property
    def definition(self) -> str:
        """What decides an order good or bad; orders decided under another one are not mixed in."""
        limit = "any" if self.within_s is None else f"{self.within_s:g}s"
        return f"{self.outcome}:{limit}"

    @property
    def max_burn_rate(self) -> float:
        """The burn rate when every order is bad."""
        return 1.0 / (1.0 - self.objective)

    def fires_at(self, level: BurnLevel) -> float:
        """The burn rate `level` fires above: its own, or lower where that is out of reach."""
        return min(level.burn_rate, REACHABLE_SHARE * self.max_burn_rate)

    def describe(self) -> str:
        """The objective in words: "95 % of orders get their code within 120 s"."""
        share = f"{100 * self.objective:g} %"
        within = f" within {self.within_s:g} s" if self.within_s is not None else ""
        if self.outcome == "code":
            return f"{share} of orders get their code{within}"
        if self.outcome == "no_expiry":
            allowed = f"{100 * (1 - self.objective):g} %"
            return f"{share} of orders end without expiring (≤ {allowed} expire)"
        return f"{share} of orders succeed{within}"


DEFAULT_RULES: tuple[ThresholdRule, ...] = (
    ThresholdRule(
        "availability",
        "availability",
        (
            Level("page", 5 * MINUTE_S, 0.80),
            Level("ticket", HOUR_S, 0.95, short_window_s=5 * MINUTE_S),
        ),
        min_samples=10,
    ),
    ThresholdRule(
        "quarantine_rate",
        "quarantine_rate",
        (Level("ticket", HOUR_S, 0.05, short_window_s=5 * MINUTE_S),),
        min_samples=20,
    ),
    ThresholdRule(
        "unknown_status_rate",
        "unknown_status_rate",
        (Level("ticket", HOUR_S, 0.10, short_window_s=5 * MINUTE_S),),
        min_samples=20,
    ),
)
"""Availability = polls with no error / all polls; quarantine rate = quarantined / (stored +
quarantined) answers; unknown-status rate = unrecognised / valid answers (as the asset checks)."""

DEFAULT_SLOS: tuple[Slo, ...] = (
    Slo("time_to_code", "code", objective=0.95, within_s=120.0),
    Slo("expiry", "no_expiry", objective=0.90, within_s=None),
)


@dataclasses.dataclass(frozen=True)
class WebhookTarget:
    """A URL that receives one JSON POST per message. The URL is a secret (it carries a token);
    `name` stands for it everywhere it is shown."""

    name: str
    url: Secret
    format: WebhookFormat = "generic"


@dataclasses.dataclass(frozen=True)
class EmailTarget:
    """An SMTP server that relays messages to `recipients`."""

    name: str
    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    user: str | None = None
    password: Secret | None = None
    starttls: bool = True


Target = WebhookTarget | EmailTarget


@dataclasses.dataclass(frozen=True)
class DeliveryPolicy:
    """How hard messages are pushed out.

    Attributes:
        retry_attempts: tries per message in one evaluation; a message still undelivered is
            tried again at the next evaluation.
        retry_backoff_s: wait before the second try, doubled before each later one.
        timeout_s: per request (HTTP or SMTP).
        max_per_hour: messages per target per hour; more wait for the next hour.
        give_up_after_s: a message undelivered this long after it was queued is dropped
            (status `failed`).
        deadline_s: an evaluation stops starting deliveries after this long; the rest wait.
    """

    retry_attempts: int = 3
    retry_backoff_s: float = 1.0
    timeout_s: float = 5.0
    max_per_hour: int = 20
    give_up_after_s: float = HOUR_S
    deadline_s: float = 30.0


@dataclasses.dataclass(frozen=True)
class AlertConfig:
    """Everything the alerting needs, resolved once. Build with `AlertConfig.from_env()`.

    Attributes:
        data_dir: the product's data directory; the status page goes to `status_dir`.
        rules: the threshold rules for a provider without overrides.
        slos: the SLOs for a provider without overrides.
        provider_rules: per provider slug, its rules where they differ.
        provider_slos: per provider slug, its SLOs where they differ.
        targets: where messages go (none: incidents are recorded, nothing is sent).
        delivery: retries, rate limit, timeouts.
        budget_period_s: the SLO compliance period the error budget is counted over.
        lookback_s: orders created this long ago or later are considered for SLO decisions.
        status_url: where the status page is served, linked from messages (optional).
    """

    data_dir: Path = Path(DEFAULT_DATA_DIR)
    rules: tuple[ThresholdRule, ...] = DEFAULT_RULES
    slos: tuple[Slo, ...] = DEFAULT_SLOS
    provider_rules: Mapping[str, tuple[ThresholdRule, ...]] = dataclasses.field(
        default_factory=dict
    )
    provider_slos: Mapping[str, tuple[Slo, ...]] = dataclasses.field(default_factory=dict)
    targets: tuple[Target, ...] = ()
    delivery: DeliveryPolicy = DeliveryPolicy()
    budget_period_s: float = 30 * DAY_S
    lookback_s: float = DAY_S
    status_url: str | None = None

    @property
    def status_dir(self) -> Path:
        """Where `write_status_page` puts the page and the badges by default."""
        return self.data_dir / STATUS_DIR

    def rules_for(self, provider: str) -> tuple[ThresholdRule, ...]:
        """The enabled threshold rules of `provider`."""
        return tuple(r for r in self.provider_rules.get(provider, self.rules) if r.enabled)

    def slos_for(self, provider: str) -> tuple[Slo, ...]:
        """The enabled SLOs of `provider`."""
        return tuple(s for s in self.provider_slos.get(provider, self.slos) if s.enabled)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        dotenv: Path | None = None,
        data_dir: Path | None = None,
        providers: tuple[str, ...] | None = None,
    ) -> AlertConfig:
        """Read the configuration (see the module docstring).

        Args:
            environ: the variables (default: `os.environ` over `./.env`).
            dotenv: the `.env` file when `environ` is not given.
            data_dir: the data directory (default: `PIPELINE_DATA_DIR`, else `data`).
            providers: slugs per-provider overrides may name (default: the registry's).

        Raises:
            ValueError: an unknown key or variable, or a value out of range.
        """
        env = environment(dotenv) if environ is None else dict(environ)
        slugs = REGISTRY.slugs if providers is None else providers
        file_path = env.get(FILE_VARIABLE, "").strip()
        document = _read_file(Path(file_path)) if file_path else {}
        return _build(env, document, file_path or FILE_VARIABLE, slugs, data_dir)


# -- reading ------------------------------------------------------------------------------------


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{value!r} is not true or false")


def _as_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    return float(value)


def _as_int(value: Any) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"{value!r} is not a whole number")
    return int(value)


def _as_text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not text")
    return value.strip()


Converter = Callable[[Any], Any]
RULE_FIELDS: dict[str, Converter] = {
    "measure": _as_text,
    "enabled": _as_bool,
    "min_samples": _as_int,
}
LEVEL_FIELDS: dict[str, Converter] = {
    "window_s": _as_float,
    "short_window_s": _as_float,
    "threshold": _as_float,
    "enabled": _as_bool,
}
SLO_FIELDS: dict[str, Converter] = {
    "outcome": _as_text,
    "objective": _as_float,
    "within_s": _as_float,
    "enabled": _as_bool,
    "min_events": _as_int,
    "page_burn_rate": _as_float,
    "ticket_burn_rate": _as_float,
}
DELIVERY_FIELDS: dict[str, Converter] = {
    "retry_attempts": _as_int,
    "retry_backoff_s": _as_float,
    "timeout_s": _as_float,
    "max_per_hour": _as_int,
    "give_up_after_s": _as_float,
    "deadline_s": _as_float,
}
SLO_SETTINGS: dict[str, str] = {"budget_period_s": "BUDGET_PERIOD_S", "lookback_s": "LOOKBACK_S"}
"""`[slo]` keys and the variables (after `PIPELINE_ALERTS_SLO_`) that set them."""

FIXED_VARIABLES: dict[str, str] = {
    "WEBHOOK_URL": "the webhook URL (a secret)",
    "WEBHOOK_FORMAT": "generic, slack or teams",
    "WEBHOOK_NAME": "how the webhook is shown (default webhook#1)",
    "SMTP_HOST": "SMTP server",
    "SMTP_PORT": "SMTP port (587)",
    "SMTP_FROM": "sender address",
    "SMTP_TO": "recipients, comma-separated",
    "SMTP_USER": "SMTP user name",
    "SMTP_PASSWORD": "SMTP password (a secret)",
    "SMTP_STARTTLS": "upgrade the connection with STARTTLS (true)",
    "STATUS_URL": "where the status page is served",
    **{f"SLO_{suffix}": f"[slo] {key}" for key, suffix in SLO_SETTINGS.items()},
    **{name.upper(): f"[delivery] {name}" for name in DELIVERY_FIELDS},
}
"""Variables after `PIPELINE_ALERTS_` that are not rule overrides (besides `FILE`)."""


Section = Literal["rules", "slos"]


@dataclasses.dataclass(frozen=True)
class _Override:
    """One value written somewhere: `path` inside a rule or SLO's settings (`("page",
    "threshold")`), `where` for error messages."""

    provider: str | None
    section: Section
    name: str
    path: tuple[str, ...]
    value: Any
    where: str


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except OSError as error:
        raise ValueError(f"{FILE_VARIABLE}={path}: cannot read it ({error.strerror})") from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML ({error})") from None


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a table")
    return value


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    if unknown := sorted(set(table) - allowed):
        raise ValueError(
            f"{where}: unknown key {unknown[0]!r}; known: {', '.join(sorted(allowed))}"
        )


def _file_overrides(
    document: Mapping[str, Any], source: str, slugs: tuple[str, ...]
) -> list[_Override]:
    """Overrides in the file, all-provider ones first."""
    found: list[_Override] = []

    def walk(sections: Mapping[str, Any], provider: str | None, where: str) -> None:
        _check_keys(sections, {"rules", "slos"}, where)
        for section in ("rules", "slos"):
            for name, settings in _table(sections.get(section, {}), f"{where}{section}").items():
                here = f"{where}{section}.{name}"
                for key, value in _table(settings, here).items():
                    if isinstance(value, dict) and section == "rules":
                        for field, inner in value.items():
                            path = (key, field)
                            found.append(
                                _Override(provider, section, name, path, inner, f"{here}.{key}")
                            )
                    else:
                        found.append(_Override(provider, section, name, (key,), value, here))

    top = {k: v for k, v in document.items() if k in {"rules", "slos"}}
    walk(top, None, f"{source}: ")
    for slug, sections in _table(document.get("providers", {}), f"{source}: providers").items():
        if slug not in slugs:
            raise ValueError(f"{source}: providers.{slug}: no such provider; known: {slugs}")
        walk(_table(sections, f"{source}: providers.{slug}"), slug, f"{source}: providers.{slug}.")
    return found


def _variable_names(
    names: Mapping[str, Section], slugs: tuple[str, ...]
) -> dict[str, tuple[str | None, Section, str, tuple[str, ...]]]:
    """Every override variable: name → (provider, section, rule or SLO name, path)."""
    known: dict[str, tuple[str | None, Section, str, tuple[str, ...]]] = {}
    for provider in (None, *slugs):
        scope = f"{provider.upper()}_" if provider else ""
        for name, section in names.items():
            stem = f"{PREFIX}{scope}{name.upper()}_"
            if section == "rules":
                for field in ("enabled", "min_samples"):
                    known[stem + field.upper()] = (provider, section, name, (field,))
                for level in SEVERITIES:
                    for field in LEVEL_FIELDS:
                        path = (level, field)
                        known[f"{stem}{level.upper()}_{field.upper()}"] = (
                            provider,
                            section,
                            name,
                            path,
                        )
            else:
                for field in SLO_FIELDS:
                    if field != "outcome":
                        known[stem + field.upper()] = (provider, section, name, (field,))
    return known


def _build(
    env: Mapping[str, str],
    document: Mapping[str, Any],
    source: str,
    slugs: tuple[str, ...],
    data_dir: Path | None,
) -> AlertConfig:
    _check_keys(
        document,
        {"rules", "slos", "providers", "webhooks", "email", "delivery", "slo", "status"},
        source,
    )
    file_overrides = _file_overrides(document, source, slugs)
    names: dict[str, Section] = {r.name: "rules" for r in DEFAULT_RULES}
    names.update({s.name: "slos" for s in DEFAULT_SLOS})
    for override in file_overrides:
        if names.setdefault(override.name, override.section) != override.section:
            raise ValueError(f"{override.where}: {override.name!r} names a rule and an SLO")
    variables = _variable_names(names, slugs)
    fixed = {f"{PREFIX}{name}" for name in FIXED_VARIABLES} | {FILE_VARIABLE}
    unknown = sorted(
        n for n in env if n.startswith(PREFIX) and n not in variables and n not in fixed
    )
    if unknown:
        raise ValueError(
            f"{unknown[0]}: not a known alert variable (see pipeline/alerts/config.py)"
        )
    env_overrides = [
        _Override(*variables[name], value=value, where=name)
        for name, value in env.items()
        if name in variables and value.strip()
    ]

    def ordered(provider: str | None) -> list[_Override]:
        scoped = [o for o in file_overrides if o.provider == provider]
        return scoped + [o for o in env_overrides if o.provider == provider]

    base = ordered(None)
    rules = _rules(names, base)
    slos = _slos(names, base)
    provider_rules: dict[str, tuple[ThresholdRule, ...]] = {}
    provider_slos: dict[str, tuple[Slo, ...]] = {}
    for slug in slugs:
        own = ordered(slug)
        if any(o.section == "rules" for o in own):
            provider_rules[slug] = _rules(names, base + own)
        if any(o.section == "slos" for o in own):
            provider_slos[slug] = _slos(names, base + own)
    status = _table(document.get("status", {}), f"{source}: status")
    _check_keys(status, {"url"}, f"{source}: status")
    status_url = env.get(f"{PREFIX}STATUS_URL", "").strip() or status.get("url") or None
    slo_settings = _section_values(
        _table(document.get("slo", {}), f"{source}: slo"),
        {key: _as_float for key in SLO_SETTINGS},
        env,
        {key: f"{PREFIX}SLO_{suffix}" for key, suffix in SLO_SETTINGS.items()},
        f"{source}: slo",
    )
    delivery = DeliveryPolicy(
        **_section_values(
            _table(document.get("delivery", {}), f"{source}: delivery"),
            DELIVERY_FIELDS,
            env,
            {key: f"{PREFIX}{key.upper()}" for key in DELIVERY_FIELDS},
            f"{source}: delivery",
        )
    )
    config = AlertConfig(
        data_dir=data_dir or Path(env.get(DATA_DIR_VARIABLE) or DEFAULT_DATA_DIR),
        rules=rules,
        slos=slos,
        provider_rules=provider_rules,
        provider_slos=provider_slos,
        targets=(*_webhooks(env, document, source), *_email(env, document, source)),
        delivery=delivery,
        status_url=str(status_url) if status_url else None,
        **slo_settings,
    )
    _validate(config)
    return config


def _section_values(
    table: Mapping[str, Any],
    fields: Mapping[str, Callable[[Any], Any]],
    env: Mapping[str, str],
    variables: Mapping[str, str],
    where: str,
) -> dict[str, Any]:
    """A flat section's values: the file's, then the variables'."""
    _check_keys(table, set(fields), where)
    values: dict[str, Any] = {}
    for key, convert in fields.items():
        for raw, here in ((table.get(key), f"{where}.{key}"), (env.get(variables[key]), None)):
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                continue
            values[key] = _convert(convert, raw, here or variables[key])
    return values


def _convert(convert: Callable[[Any], Any], value: Any, where: str) -> Any:
    try:
        return convert(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: {error}") from None


def _settings(defaults: Mapping[str, Any], overrides: list[_Override], name: str) -> dict[str, Any]:
    """A rule's or SLO's settings as a nested dict, with `overrides` applied in order."""
    settings = {k: dict(v) if isinstance(v, dict) else v for k, v in defaults.items()}
    for override in overrides:
        if override.name != name:
            continue
        if override.section == "rules":
            if len(override.path) == 2:
                level, field = override.path
                if level not in SEVERITIES:
                    raise ValueError(f"{override.where}: levels are {', '.join(SEVERITIES)}")
                fields = LEVEL_FIELDS
            else:
                level, field = "", override.path[0]
                fields = RULE_FIELDS
        else:
            level, field, fields = "", override.path[0], SLO_FIELDS
        if field not in fields:
            raise ValueError(
                f"{override.where}: unknown key {field!r}; known: {', '.join(sorted(fields))}"
            )
        value = _convert(fields[field], override.value, override.where)
        if level:
            settings.setdefault(level, {})[field] = value
        else:
            settings[field] = value
    return settings


def _rules(names: Mapping[str, str], overrides: list[_Override]) -> tuple[ThresholdRule, ...]:
    defaults = {r.name: r for r in DEFAULT_RULES}
    rules = []
    for name, section in names.items():
        if section != "rules":
            continue
        default = defaults.get(name)
        if default is None and not any(o.name == name for o in overrides):
            continue  # a rule of one provider's own
        base: dict[str, Any] = {}
        if default is not None:
            base = {
                "measure": default.measure,
                "enabled": default.enabled,
                "min_samples": default.min_samples,
                **{
                    lv.severity: {
                        "window_s": lv.window_s,
                        "threshold": lv.threshold,
                        "short_window_s": lv.short_window_s or 0.0,
                    }
                    for lv in default.levels
                },
            }
        settings = _settings(base, overrides, name)
        where = f"rule {name!r}"
        measure = settings.get("measure")
        if measure not in MEASURES:
            raise ValueError(f"{where}: measure must be one of {', '.join(MEASURES)}")
        levels = []
        for severity in SEVERITIES:
            level = settings.get(severity)
            if level is None or not level.get("enabled", True):
                continue
            if "window_s" not in level or "threshold" not in level:
                raise ValueError(f"{where}: {severity} needs window_s and threshold")
            short = level.get("short_window_s") or 0.0
            levels.append(
                Level(severity, level["window_s"], level["threshold"], short if short > 0 else None)
            )
        rules.append(
            ThresholdRule(
                name,
                cast(Measure, measure),
                tuple(levels),
                min_samples=settings.get("min_samples", 10),
                enabled=settings.get("enabled", True),
            )
        )
    return tuple(rules)


def _slos(names: Mapping[str, str], overrides: list[_Override]) -> tuple[Slo, ...]:
    defaults = {s.name: s for s in DEFAULT_SLOS}
    slos = []
    for name, section in names.items():
        if section != "slos":
            continue
        default = defaults.get(name)
        if default is None and not any(o.name == name for o in overrides):
            continue  # an SLO of one provider's own
        base: dict[str, Any] = {}
        if default is not None:
            base = {
                "outcome": default.outcome,
                "objective": default.objective,
                "within_s": default.within_s or 0.0,
                "enabled": default.enabled,
                "min_events": default.min_events,
            }
        settings = _settings(base, overrides, name)
        where = f"SLO {name!r}"
        if settings.get("outcome") not in OUTCOMES:
            raise ValueError(f"{where}: outcome must be one of {', '.join(OUTCOMES)}")
        if "objective" not in settings:
            raise ValueError(f"{where}: needs an objective")
        levels = tuple(
            dataclasses.replace(
                level, burn_rate=settings.get(f"{level.severity}_burn_rate", level.burn_rate)
            )
            for level in DEFAULT_BURN_LEVELS
        )
        within = settings.get("within_s") or 0.0
        slos.append(
            Slo(
                name,
                cast(Outcome, settings["outcome"]),
                objective=settings["objective"],
                within_s=within if within > 0 else None,
                levels=levels,
                min_events=settings.get("min_events", 10),
                enabled=settings.get("enabled", True),
            )
        )
    return tuple(slos)


def _webhooks(env: Mapping[str, str], document: Mapping[str, Any], source: str) -> list[Target]:
    entries: list[tuple[dict[str, Any], str]] = []
    if url := env.get(f"{PREFIX}WEBHOOK_URL", "").strip():
        entries.append(
            (
                {
                    "url": url,
                    "format": env.get(f"{PREFIX}WEBHOOK_FORMAT", "").strip() or "generic",
                    "name": env.get(f"{PREFIX}WEBHOOK_NAME", "").strip() or None,
                },
                f"{PREFIX}WEBHOOK_*",
            )
        )
    listed = document.get("webhooks", [])
    if not isinstance(listed, list):
        raise ValueError(f"{source}: webhooks: expected [[webhooks]] tables")
    for index, entry in enumerate(listed):
        where = f"{source}: webhooks[{index}]"
        entry = _table(entry, where)
        _check_keys(entry, {"name", "url", "url_variable", "format"}, where)
        url = entry.get("url") or ""
        if variable := entry.get("url_variable"):
            url = env.get(str(variable), "").strip()
            if not url:
                raise ValueError(f"{where}: url_variable {variable} is not set")
        if not url:
            raise ValueError(f"{where}: needs url or url_variable")
        entries.append(({**entry, "url": url}, where))
    targets: list[Target] = []
    for number, (entry, where) in enumerate(entries, start=1):
        name = entry.get("name") or f"webhook#{number}"
        if not TARGET_NAME_PATTERN.match(str(name)):
            raise ValueError(f"{where}: name must match {TARGET_NAME_PATTERN.pattern}")
        form = entry.get("format") or "generic"
        if form not in WEBHOOK_FORMATS:
            raise ValueError(f"{where}: format must be one of {', '.join(WEBHOOK_FORMATS)}")
        url = str(entry["url"]).strip()
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{where}: the URL must start with http:// or https://")
        targets.append(WebhookTarget(str(name), Secret(url), cast(WebhookFormat, form)))
    return targets


def _email(env: Mapping[str, str], document: Mapping[str, Any], source: str) -> list[Target]:
    where = f"{source}: email"
    table = _table(document.get("email", {}), where)
    _check_keys(
        table,
        {"name", "host", "port", "from", "to", "user", "password_variable", "starttls"},
        where,
    )

    def pick(key: str, variable: str) -> Any:
        value = env.get(f"{PREFIX}{variable}", "").strip()
        return value or table.get(key)

    host = pick("host", "SMTP_HOST")
    if not host:
        return []
    sender = pick("from", "SMTP_FROM")
    recipients = pick("to", "SMTP_TO")
    if isinstance(recipients, str):
        recipients = [r.strip() for r in recipients.split(",") if r.strip()]
    if not sender or not recipients:
        raise ValueError(f"{PREFIX}SMTP_HOST is set: SMTP_FROM and SMTP_TO are needed too")
    password = env.get(f"{PREFIX}SMTP_PASSWORD", "")
    if not password and (variable := table.get("password_variable")):
        password = env.get(str(variable), "")
    port = _convert(_as_int, pick("port", "SMTP_PORT") or 587, f"{PREFIX}SMTP_PORT")
    starttls = pick("starttls", "SMTP_STARTTLS")
    name = str(table.get("name") or "email#1")
    if not TARGET_NAME_PATTERN.match(name):
        raise ValueError(f"{where}.name: must match {TARGET_NAME_PATTERN.pattern}")
    return [
        EmailTarget(
            name=name,
            host=str(host),
            port=port,
            sender=str(sender),
            recipients=tuple(str(r) for r in recipients),
            user=str(pick("user", "SMTP_USER") or "") or None,
            password=Secret(password) if password else None,
            starttls=True
            if starttls is None
            else _convert(_as_bool, starttls, f"{PREFIX}SMTP_STARTTLS"),
        )
    ]


def _validate(config: AlertConfig) -> None:
    """Raise `ValueError` for values that cannot work."""
    problems: list[str] = []
    all_rules = [config.rules, *config.provider_rules.values()]
    all_slos = [config.slos, *config.provider_slos.values()]
    for rule in (r for rules in all_rules for r in rules):
        if not NAME_PATTERN.match(rule.name):
            problems.append(f"rule {rule.name!r}: names match {NAME_PATTERN.pattern}")
        if rule.min_samples < 1:
            problems.append(f"rule {rule.name!r}: min_samples must be at least 1")
        for level in rule.levels:
            if level.window_s <= 0:
                problems.append(f"rule {rule.name!r} {level.severity}: window_s must be positive")
            if not 0.0 <= level.threshold <= 1.0:
                problems.append(f"rule {rule.name!r} {level.severity}: threshold is a share, 0–1")
    for slo in (s for slos in all_slos for s in slos):
        if not NAME_PATTERN.match(slo.name):
            problems.append(f"SLO {slo.name!r}: names match {NAME_PATTERN.pattern}")
        if not 0.0 < slo.objective < 1.0:
            problems.append(f"SLO {slo.name!r}: objective must be between 0 and 1 (exclusive)")
        if slo.min_events < 1:
            problems.append(f"SLO {slo.name!r}: min_events must be at least 1")
        if slo.outcome == "no_expiry" and slo.within_s is not None:
            problems.append(f"SLO {slo.name!r}: no_expiry takes no within_s")
        for burn in slo.levels:
            if burn.burn_rate <= 1.0:
                problems.append(f"SLO {slo.name!r} {burn.severity}: burn rate must exceed 1")
    policy = config.delivery
    if policy.retry_attempts < 1 or policy.max_per_hour < 1:
        problems.append("delivery: retry_attempts and max_per_hour must be at least 1")
    if min(policy.retry_backoff_s, policy.give_up_after_s, policy.deadline_s) < 0:
        problems.append("delivery: times may not be negative")
    if policy.timeout_s <= 0:
        problems.append("delivery: timeout_s must be positive")
    if config.lookback_s <= 0 or config.budget_period_s <= 0:
        problems.append("slo: budget_period_s and lookback_s must be positive")
    names = [t.name for t in config.targets]
    if len(names) != len(set(names)):
        problems.append(f"targets: names must be unique ({', '.join(names)})")
    if problems:
        raise ValueError("; ".join(problems))
