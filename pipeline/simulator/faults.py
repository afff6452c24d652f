"""Fault scenarios: what can go wrong, where, how often; and the engine that makes it happen.

A scenario is a small JSON document (shipped ones live in `scenarios/*.json`):

    {"name": "flaky", "description": "…",
     "providers": {"*": [{"kind": "server_error", "rate": 0.03, "burst": 3, "status": 503}],
                   "ordinalsbot": [{"kind": "latency", "rate": 0.2, "delay_s": [0.1, 1.0]}]}}

`providers` maps a provider slug (or `*` for all) to a list of rules. Rule fields:

- `kind`: `server_error`, `rate_limit` (429 + Retry-After), `latency`, `timeout` (a delay longer
  than a client's read timeout), `truncated_json`, `invalid_json`, `slow_body` (the body
  trickles out), `drift` (invented schema drift), `unknown_status`, `outage` (every request fails
  during time windows), `variant` (one of the provider's real answer variants, e.g. a status or
  envelope its doc page omits: `SandboxProvider.variants`).
- `rate`: probability per request that the fault starts; `burst`: how many consecutive requests
  it then hits (default 1).
- `endpoints`: which endpoint kinds it hits: `status` (default), `create`, `action`, or `all`.
- `status`: HTTP status for `server_error` (default 500) and `outage` (default 503).
- `retry_after_s`: `Retry-After` of `rate_limit` (default 5).
- `delay_s`: `[low, high]` seconds (latency default [0.2, 2.0]; timeout [30, 30]; slow_body
  [2, 5] for the whole body).
- `mode`: drift: `rename`, `missing`, `extra`, `wrong_type` or `any` (default); invalid_json:
  `js_literal` (the docs' JavaScript-object style, default) or `html`.
- `field`: drift: the field to change (default: one drawn from the order object); for `extra`,
  the name of the added field unless it already exists (default `extraField`).
- `values`: unknown_status: the values to use.
- `windows`: outage: `[[start_s, end_s], …]` seconds since the sandbox started; or `every_s`,
  `duration_s`, `offset_s` for a periodic outage.

Decisions are drawn from one random stream per (provider, rule) seeded by the sandbox seed, so a
given seed and request sequence always produce the same faults.
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.providers.registry import REGISTRY
from pipeline.simulator.provider import Variant, sandbox_provider
from pipeline.simulator.wire import PathKey, Reply

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
ALL_PROVIDERS = "*"
ENDPOINT_KINDS = ("status", "create", "action")
FAULT_KINDS = (
    "server_error",
    "rate_limit",
    "latency",
    "timeout",
    "truncated_json",
    "invalid_json",
    "slow_body",
    "drift",
    "unknown_status",
    "outage",
    "variant",
)
DRIFT_MODES = ("rename", "missing", "extra", "wrong_type")
INVALID_JSON_MODES = ("js_literal", "html")
DEFAULT_DELAYS: dict[str, tuple[float, float]] = {
    "latency": (0.2, 2.0),
    "timeout": (30.0, 30.0),
    "slow_body": (2.0, 5.0),
}
DEFAULT_STATUS = {"server_error": 500, "outage": 503}
DEFAULT_UNKNOWN_STATUSES = ("on-hold", "UNDER_REVIEW", "Paused")
EXTRA_FIELD = "extraField"
HTML_ERROR_PAGE = (
    b"<html><head><title>502 Bad Gateway</title></head><body>Bad Gateway</body></html>"
)


@dataclasses.dataclass(frozen=True)
class FaultRule:
    """One kind of fault with its frequency and shape (see the module docstring)."""

    kind: str
    rate: float = 0.0
    burst: int = 1
    endpoints: tuple[str, ...] = ("status",)
    status: int | None = None
    retry_after_s: int = 5
    delay_s: tuple[float, float] | None = None
    mode: str = "any"
    field: str | None = None
    values: tuple[str, ...] = DEFAULT_UNKNOWN_STATUSES
    windows: tuple[tuple[float, float], ...] = ()
    every_s: float | None = None
    duration_s: float = 0.0
    offset_s: float = 0.0

    def hits(self, endpoint_kind: str) -> bool:
        """Whether the rule applies to endpoints of `endpoint_kind`."""
        return "all" in self.endpoints or endpoint_kind in self.endpoints

    @property
    def delays(self) -> tuple[float, float]:
        """The delay range in seconds."""
        return self.delay_s or DEFAULT_DELAYS.get(self.kind, (0.0, 0.0))

    def in_outage(self, elapsed_s: float) -> bool:
        """Whether `elapsed_s` since the sandbox start falls in an outage window."""
        if any(start <= elapsed_s < end for start, end in self.windows):
            return True
        if self.every_s and elapsed_s >= self.offset_s:
            return (elapsed_s - self.offset_s) % self.every_s < self.duration_s
        return False

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FaultRule:
        """Parse one rule, checking names and ranges.

        Raises:
            ValueError: unknown kind, field or mode; rate outside [0, 1]; burst < 1.
        """
        if not isinstance(data, Mapping):
            raise ValueError("a fault rule must be an object")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - fields
        if unknown:
            raise ValueError(f"unknown fault rule field(s): {', '.join(sorted(unknown))}")
        kind = data.get("kind")
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r} (known: {', '.join(FAULT_KINDS)})")
        values: dict[str, Any] = dict(data)
        for name in ("endpoints", "values"):
            if name in values:
                values[name] = _strings(values[name], name)
        if "delay_s" in values:
            values["delay_s"] = _pair(values["delay_s"])
        if "windows" in values:
            values["windows"] = tuple(_pair(window) for window in values["windows"])
        rule = cls(**values)
        rule.check()
        return rule

    def check(self) -> None:
        """Raise ValueError when a value is out of range."""
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"{self.kind}: rate must be within [0, 1]")
        if self.burst < 1:
            raise ValueError(f"{self.kind}: burst must be at least 1")
        bad = [e for e in self.endpoints if e not in (*ENDPOINT_KINDS, "all")]
        if bad:
            raise ValueError(f"{self.kind}: unknown endpoint kind(s) {bad}")
        modes = {"drift": (*DRIFT_MODES, "any"), "invalid_json": (*INVALID_JSON_MODES, "any")}
        if self.kind in modes and self.mode not in modes[self.kind]:
            raise ValueError(f"{self.kind}: unknown mode {self.mode!r}")
        if self.kind == "outage" and not self.windows and not self.every_s:
            raise ValueError("outage: give windows or every_s")

    def to_json(self) -> dict[str, Any]:
        """The rule as JSON-ready data, defaults left out."""
        default = FaultRule(kind=self.kind)
        data: dict[str, Any] = {"kind": self.kind}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name != "kind" and value != getattr(default, f.name):
                data[f.name] = [list(v) for v in value] if f.name == "windows" else value
        return data


def _strings(value: Any, name: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{name} must be a list of strings")
    return tuple(value)


def _pair(value: Any) -> tuple[float, float]:
    if isinstance(value, int | float):
        return float(value), float(value)
    if isinstance(value, list | tuple) and len(value) == 2:
        low, high = float(value[0]), float(value[1])
        if low > high:
            raise ValueError(f"range {value} runs backwards")
        return low, high
    raise ValueError(f"expected a number or [low, high], got {value!r}")


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A named set of fault rules per provider (`*` for every provider)."""

    name: str
    description: str = ""
    providers: Mapping[str, tuple[FaultRule, ...]] = dataclasses.field(default_factory=dict)

    def rules_for(self, provider: str) -> list[tuple[str, FaultRule]]:
        """(rule id, rule) pairs that apply to `provider`, `*` rules first."""
        pairs = []
        for scope in (ALL_PROVIDERS, provider):
            for index, rule in enumerate(self.providers.get(scope, ())):
                pairs.append((f"{scope}:{index}", rule))
        return pairs

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Scenario:
        """Parse a scenario document.

        Raises:
            ValueError: an unknown provider or a bad rule.
        """
        if not isinstance(data, Mapping):
            raise ValueError("a scenario must be a JSON object")
        providers: dict[str, tuple[FaultRule, ...]] = {}
        for scope, rules in (data.get("providers") or {}).items():
            if scope != ALL_PROVIDERS and scope not in REGISTRY:
                raise ValueError(f"unknown provider {scope!r} in scenario")
            if not isinstance(rules, list):
                raise ValueError(f"rules of {scope!r} must be a list")
            providers[scope] = tuple(FaultRule.from_json(rule) for rule in rules)
        return cls(
            name=str(data.get("name") or "custom"),
            description=str(data.get("description") or ""),
            providers=providers,
        )

    def to_json(self) -> dict[str, Any]:
        """The scenario as JSON-ready data."""
        return {
            "name": self.name,
            "description": self.description,
            "providers": {
                scope: [rule.to_json() for rule in rules] for scope, rules in self.providers.items()
            },
        }


NO_FAULTS = Scenario(name="none", description="No faults: every answer as documented.")


def scenario_names() -> list[str]:
    """Names of the shipped scenarios."""
    return sorted(path.stem for path in SCENARIO_DIR.glob("*.json"))


def load_scenario(name_or_path: str) -> Scenario:
    """A shipped scenario by name, or a scenario JSON file by path.

    Raises:
        ValueError: unknown name, unreadable file or invalid scenario.
    """
    if name_or_path in ("", "none"):
        return NO_FAULTS
    path = SCENARIO_DIR / f"{name_or_path}.json"
    if not path.is_file():
        path = Path(name_or_path)
    if not path.is_file():
        known = ", ".join(scenario_names())
        raise ValueError(f"no fault scenario {name_or_path!r} (shipped: {known}; or a file path)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read fault scenario {path}: {error}") from None
    return Scenario.from_json(data)


# --- the engine -------------------------------------------------------------------------------


@dataclasses.dataclass
class FaultPlan:
    """What to do to one request.

    Attributes:
        delay_s: wait this long before answering.
        error_status: answer with this status and the provider's error body.
        retry_after_s: answer 429 with this `Retry-After`.
        body_rules: drift / unknown-status rules to apply to a 2xx JSON body.
        byte_rule: truncated_json / invalid_json / slow_body rule for the encoded body.
        variant: the provider's real answer variant to answer with, or None.
        applied: fault kinds this request gets (for statistics).
    """

    delay_s: float = 0.0
    error_status: int | None = None
    retry_after_s: int | None = None
    body_rules: list[FaultRule] = dataclasses.field(default_factory=list)
    byte_rule: FaultRule | None = None
    variant: Variant | None = None
    applied: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class _RuleState:
    rng: random.Random
    remaining: int = 0


class FaultEngine:
    """Decides, deterministically under a seed, which faults each request gets.

    Args:
        scenario: the active scenario.
        seed: the sandbox seed.
        started_at: the sandbox start (origin of outage windows).
    """

    def __init__(self, scenario: Scenario, seed: int, started_at: datetime) -> None:
        self.scenario = scenario
        self.seed = seed
        self.started_at = started_at
        self._states: dict[tuple[str, str], _RuleState] = {}
        self._mutation_rngs: dict[str, random.Random] = {}
        self.counts: dict[str, dict[str, int]] = {}

    def _state(self, provider: str, rule_id: str) -> _RuleState:
        key = (provider, rule_id)
        if key not in self._states:
            rng = random.Random(f"{self.seed}:faults:{self.scenario.name}:{provider}:{rule_id}")
            self._states[key] = _RuleState(rng)
        return self._states[key]

    def _mutation_rng(self, provider: str) -> random.Random:
        if provider not in self._mutation_rngs:
            seed = f"{self.seed}:mutations:{self.scenario.name}:{provider}"
            self._mutation_rngs[provider] = random.Random(seed)
        return self._mutation_rngs[provider]

    def plan(self, provider: str, endpoint_kind: str, now: datetime) -> FaultPlan:
        """The faults for one request to `provider`'s `endpoint_kind` endpoint at `now`."""
        plan = FaultPlan()
        elapsed_s = (now - self.started_at).total_seconds()
        for rule_id, rule in self.scenario.rules_for(provider):
            if not rule.hits(endpoint_kind):
                continue
            state = self._state(provider, rule_id)
            if rule.kind == "outage":
                active = rule.in_outage(elapsed_s)
            elif state.remaining > 0:
                state.remaining -= 1
                active = True
            elif state.rng.random() < rule.rate:
                state.remaining = rule.burst - 1
                active = True
            else:
                active = False
            if active:
                self._apply(plan, rule, state.rng, provider)
        for kind in plan.applied:
            per_provider = self.counts.setdefault(provider, {})
            per_provider[kind] = per_provider.get(kind, 0) + 1
        return plan

    def _apply(self, plan: FaultPlan, rule: FaultRule, rng: random.Random, provider: str) -> None:
        if plan.error_status is not None or plan.retry_after_s is not None:
            return
        if rule.kind == "variant":
            variants = sandbox_provider(provider).variants
            if variants:
                plan.variant = variants[rng.randrange(len(variants))]
                plan.applied.append(rule.kind)
            return
        plan.applied.append(rule.kind)
        if rule.kind in ("server_error", "outage"):
            plan.error_status = rule.status or DEFAULT_STATUS[rule.kind]
        elif rule.kind == "rate_limit":
            plan.retry_after_s = rule.retry_after_s
        elif rule.kind in ("latency", "timeout"):
            low, high = rule.delays
            plan.delay_s += rng.uniform(low, high)
        elif rule.kind in ("drift", "unknown_status"):
            plan.body_rules.append(rule)
        elif plan.byte_rule is None:
            plan.byte_rule = rule

    def mutate_body(self, provider: str, plan: FaultPlan, reply: Reply) -> None:
        """Apply the plan's drift and unknown-status rules to a 2xx JSON reply, in place."""
        if reply.raw is not None or not 200 <= reply.status < 300:
            return
        rng = self._mutation_rng(provider)
        for rule in plan.body_rules:
            if rule.kind == "unknown_status" and reply.status_path:
                _set_path(reply.body, reply.status_path, rng.choice(rule.values))
            elif rule.kind == "drift":
                target = _follow(reply.body, reply.record_path)
                if isinstance(target, dict):
                    drift(target, rule, rng)

    def mutate_bytes(self, provider: str, plan: FaultPlan, reply: Reply, data: bytes) -> bytes:
        """Apply the plan's truncated_json / invalid_json rule to the encoded body."""
        rule = plan.byte_rule
        if rule is None or rule.kind == "slow_body":
            return data
        if rule.kind == "truncated_json":
            return data[: len(data) // 2] if len(data) > 1 else b"{"
        mode = rule.mode
        if mode == "any":
            mode = self._mutation_rng(provider).choice(INVALID_JSON_MODES)
        if mode == "js_literal" and reply.raw is None and isinstance(reply.body, dict | list):
            return js_literal(reply.body).encode("utf-8")
        return HTML_ERROR_PAGE


def _follow(value: Any, path: tuple[PathKey, ...]) -> Any:
    for step in path:
        if isinstance(value, dict) and isinstance(step, str):
            value = value.get(step)
        elif isinstance(value, list) and isinstance(step, int) and -len(value) <= step < len(value):
            value = value[step]
        else:
            return None
    return value


def _set_path(body: Any, path: tuple[PathKey, ...], value: Any) -> None:
    parent = _follow(body, path[:-1])
    last = path[-1]
    fits_object = isinstance(parent, dict) and isinstance(last, str)
    fits_list = (
        isinstance(parent, list) and isinstance(last, int) and -len(parent) <= last < len(parent)
    )
    if fits_object or fits_list:
        parent[last] = value


def renamed(key: str) -> str:
    """A drifted spelling of `key`: camelCase → snake_case, snake_case → camelCase, else Title."""
    if any(c.isupper() for c in key):
        return re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()
    if "_" in key:
        head, *rest = key.split("_")
        return head + "".join(part.title() for part in rest)
    return key[:1].upper() + key[1:]


def wrong_type(value: Any) -> Any:
    """`value` as another JSON type (number ↔ string, bool → string, object → list, …)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return int(value) if value.isdigit() else [value]
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return {"items": value}
    return 0


def drift(target: dict[str, Any], rule: FaultRule, rng: random.Random) -> str:
    """Change `target` in place as `rule` says; returns the mode used."""
    mode = rule.mode if rule.mode != "any" else rng.choice(DRIFT_MODES)
    if mode == "extra":
        name = rule.field if rule.field and rule.field not in target else EXTRA_FIELD
        target[name] = "unexpected"
        return mode
    if not target:
        return mode
    key = rule.field if rule.field in target else rng.choice(sorted(target))
    if mode == "rename":
        target[renamed(key)] = target.pop(key)
    elif mode == "missing":
        del target[key]
    else:
        target[key] = wrong_type(target[key])
    return mode


def js_literal(value: Any) -> str:
    """`value` written as the docs write bodies: unquoted keys, single quotes, trailing commas."""
    if isinstance(value, dict):
        items = "".join(f"    {key}: {js_literal(item)},\n" for key, item in value.items())
        return "{\n" + items + "}"
    if isinstance(value, list):
        return "[" + ", ".join(js_literal(item) for item in value) + "]"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return json.dumps(value)
