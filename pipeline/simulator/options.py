"""Switches for behaviour the real APIs leave undocumented (PROVIDERS.md §7 and §8).

Each default is the documented one where a document exists, else the inference PROVIDERS.md
recommends. Change them in code (`ProviderOptions(sms4sats=Sms4satsOptions(code_type="string"))`)
or from the CLI with `--option sms4sats.code_type=string` (see `apply_overrides`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, get_type_hints


@dataclasses.dataclass(frozen=True)
class Sms4satsOptions:
    """sms4sats unknowns.

    Attributes:
        code_type: `int` (docs: Number) or `string` (a third-party decoder) for `code`.
        cancelled_body: body after auto-cancel, user cancel or invoice expiry: `unpaid`
            (`{"status":"OK","paid":false}`, PROVIDERS.md §1.12 default) or `error` (adds an
            `error` text).
        unknown_order: `error500` (500 `{"status":"error","reason":"order not found"}`, the §1.7
            default) or `error200` (the same body with HTTP 200).
        timestamp: what `timestamp` stamps: `created` (order creation) or `updated` (last change).
        cancel_min_age_s: a user cancel is refused until this long after payment (docs: 2 min),
            scaled by the profile.
    """

    code_type: str = "int"
    cancelled_body: str = "unpaid"
    unknown_order: str = "error500"
    timestamp: str = "created"
    cancel_min_age_s: float = 120.0


@dataclasses.dataclass(frozen=True)
class SmsOnlineOptions:
    """SMSOnline unknowns (only `completed` is documented).

    Attributes:
        waiting_status: `status` while waiting for an SMS.
        expired_status: `status` after the lease ends without an SMS; empty keeps
            `waiting_status` (clients must then use `expiredAt`).
        refunded_status: `status` after a refund.
        empty_sms: `receivedSMS` before an SMS arrives: `empty` ("") or `absent`.
        unknown_order: `empty_list` (200 `{"ok":true,"body":[]}`, the §2.7 default) or `404`.
    """

    waiting_status: str = "pending"
    expired_status: str = "expired"
    refunded_status: str = "refunded"
    empty_sms: str = "empty"
    unknown_order: str = "empty_list"


@dataclasses.dataclass(frozen=True)
class OrdinalsBotOptions:
    """OrdinalsBot unknowns.

    Attributes:
        require_api_key: whether `GET /order` needs `x-api-key` (default: no; a wrong key is
            always rejected).
        status_limit_per_minute: requests per minute on `GET /order` (documented: 300).
        create_limit: requests per `create_window_s` on the create endpoint (documented: 2/10 s).
        create_window_s: the create limit's window.
        limit_scope: `key_or_ip` (per API key, else per client address) or `global`.
        tx_shape: order-level `tx`: `object` (docs), `string` (SDK) or `absent`.
    """

    require_api_key: bool = False
    status_limit_per_minute: int = 300
    create_limit: int = 2
    create_window_s: float = 10.0
    limit_scope: str = "key_or_ip"
    tx_shape: str = "object"


@dataclasses.dataclass(frozen=True)
class BaanxOptions:
    """Baanx unknowns.

    Attributes:
        paid_at_offset_hours: the hour-only offset `paidAt` is written in (seed: `+03`).
        other_user_tokens: extra valid bearer tokens of other users (their requests for this
            user's orders get 403).
    """

    paid_at_offset_hours: int = 3
    other_user_tokens: tuple[str, ...] = ("sandbox-baanx-other-user-token",)


@dataclasses.dataclass(frozen=True)
class AltinnOptions:
    """Altinn unknowns.

    Attributes:
        not_found_body: `empty` (seed and source) or `problem` (ProblemDetails, newer docs).
        completed_description: text of the final `Completed`: `source` ("…All notifications
            have a final status.") or `seed` ("…All notifications have been generated.").
        org: the creator org of the sandbox's development tokens.
        other_org_tokens: extra valid tokens of another org (they get 404 for this org's orders).
        no_org_tokens: valid tokens with no resolvable org (they get 403).
        indent: spaces of indentation (the API pretty-prints).
    """

    not_found_body: str = "empty"
    completed_description: str = "source"
    org: str = "ttd"
    other_org_tokens: tuple[str, ...] = ("sandbox-altinn-other-org-token",)
    no_org_tokens: tuple[str, ...] = ("sandbox-altinn-no-org-token",)
    indent: int = 2


@dataclasses.dataclass(frozen=True)
class ProviderOptions:
    """The unknowns of all five providers."""

    sms4sats: Sms4satsOptions = Sms4satsOptions()
    smsonline: SmsOnlineOptions = SmsOnlineOptions()
    ordinalsbot: OrdinalsBotOptions = OrdinalsBotOptions()
    baanx: BaanxOptions = BaanxOptions()
    altinn: AltinnOptions = AltinnOptions()


CHOICES: dict[str, tuple[str, ...]] = {
    "sms4sats.code_type": ("int", "string"),
    "sms4sats.cancelled_body": ("unpaid", "error"),
    "sms4sats.unknown_order": ("error500", "error200"),
    "sms4sats.timestamp": ("created", "updated"),
    "smsonline.empty_sms": ("empty", "absent"),
    "smsonline.unknown_order": ("empty_list", "404"),
    "ordinalsbot.limit_scope": ("key_or_ip", "global"),
    "ordinalsbot.tx_shape": ("object", "string", "absent"),
    "altinn.not_found_body": ("empty", "problem"),
    "altinn.completed_description": ("source", "seed"),
}
"""Allowed values of the enumerated string options."""


def apply_overrides(options: ProviderOptions, overrides: list[str]) -> ProviderOptions:
    """`options` with `provider.field=value` overrides applied.

    Values are converted to the field's type (`true`/`false` for booleans, comma-separated
    lists for tuples).

    Raises:
        ValueError: a malformed override, an unknown provider or field, or a bad value.
    """
    for override in overrides:
        name, sep, text = override.partition("=")
        provider, dot, field = name.strip().partition(".")
        if not sep or not dot:
            raise ValueError(f"option {override!r}: expected provider.field=value")
        section = getattr(options, provider, None)
        if section is None or not dataclasses.is_dataclass(section):
            raise ValueError(f"option {override!r}: unknown provider {provider!r}")
        hints = get_type_hints(type(section))
        if field not in hints:
            known = ", ".join(f.name for f in dataclasses.fields(section))
            raise ValueError(f"option {override!r}: unknown field (known: {known})")
        value = _convert(hints[field], text.strip(), override)
        allowed = CHOICES.get(f"{provider}.{field}")
        if allowed and value not in allowed:
            raise ValueError(f"option {override!r}: choose one of {', '.join(allowed)}")
        changed: Any = dataclasses.replace(section, **{field: value})  # type: ignore[type-var]
        options = dataclasses.replace(options, **{provider: changed})
    return options


def _convert(kind: Any, text: str, override: str) -> Any:
    try:
        if kind is bool:
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return text.lower() in ("true", "1", "yes")
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind is str:
            return text
        return tuple(part.strip() for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"option {override!r}: bad value {text!r}") from None
