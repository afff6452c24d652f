"""The one scrubber for every text we log or store: `scrub`.

Provider answers and library log lines may quote credentials (`apiKey=…`, `Bearer …`, JWTs),
opaque tokens, SMS codes and phone numbers. `scrub` removes them at one of three levels:

- `credentials`: `key=value` / `key: value` assignments whose key names a credential, bearer
  tokens, JWTs and `orderId=` query values (an sms4sats order id is its capability). For log
  lines and the values of stored JSON bodies, whose ids and numbers are worth keeping.
- `tokens`: also long opaque words mixing letters and digits (keys, tokens). For short
  provider-written fields of an `Observation` (status, service, country, raw timestamp).
- `prose`: also runs of four or more digits (codes, phone numbers). For provider-written
  messages, which may quote anything.

Every text is cut to a bound *before* any pattern runs, and every pattern is linear in its input:
no pattern starts with an unbounded repetition, so no start position rescans the rest of the
text. Text is also made storable first (`storable`): lone surrogates, which cannot be encoded as
UTF-8, and NUL, which DuckDB accepts but many consumers choke on, become U+FFFD.
"""

from __future__ import annotations

import re
from typing import Literal

Level = Literal["credentials", "tokens", "prose"]
"""How hard `scrub` scrubs; each level includes the ones before it (see the module docstring)."""

REDACTED = "[redacted]"
DIGITS_REDACTED = "[digits]"
CUT_MARK = "…"
"""Appended where a text was cut to its bound."""
REPLACEMENT = "\ufffd"
"""Stands in for a code point that cannot be stored (lone surrogate, NUL)."""

MAX_SCRUB_CHARS = 4096
"""Default bound of `scrub`'s input and output, in characters."""
MESSAGE_DIGIT_RUN = 4
"""Runs of this many digits or more in prose are masked (codes, phone numbers)."""
MAX_KEY_SUFFIX_CHARS = 64
"""How far past a credential word (`token`, `apiKey`) its key name may run (`tokenExpiresAt`)."""

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_CREDENTIAL_WORD = r"(?:api[_-]?key|token|secret|password|authorization)"
_SECRET_ASSIGNMENT = re.compile(
    rf"(?i){_CREDENTIAL_WORD}[\w-]{{0,{MAX_KEY_SUFFIX_CHARS}}}+"
    r"\"?\s{0,16}+[:=]\s{0,16}+\"?(?:bearer\s{1,16}+)?"
    r"(?P<value>[^&\s\"',;}\]]+)"
)
"""`apiKey=v`, `"token": "v"`, `Authorization: Bearer v`: the credential word comes first, so
the pattern only starts where one is written; what precedes it in the key name is kept as is.
The repetitions are possessive (`{0,64}+`): what follows each is disjoint from it, so giving
characters back could never help a match, and is not tried."""
_CREDENTIAL_MARKERS = ("api", "token", "secret", "password", "authorization", "bearer", "order")
"""A word each credential pattern needs (`api` for `api_key`, `order` for `orderId=`)."""
_CREDENTIAL_MARKER = re.compile("|".join(_CREDENTIAL_MARKERS))
"""Any of them, in lower-cased text: one scan instead of one per word."""
_BEARER = re.compile(r"(?i)\bbearer\s{1,16}[\w.~+/=-]+")
_JWT = re.compile(r"\beyJ[\w-]{5,}(?:\.[\w-]*){0,2}")
_QUERY_ORDER_ID = re.compile(r"(?i)\border_?id=[^&\s\"']+")
_TOKEN_CHARS = r"[\w.+/-]"
_OPAQUE_TOKEN = re.compile(
    rf"(?<!{_TOKEN_CHARS})(?={_TOKEN_CHARS}*\d)(?={_TOKEN_CHARS}*[^\W\d_]){_TOKEN_CHARS}{{20,}}={{0,2}}"
)
"""Words of 20+ characters mixing letters and digits. The look-behind lets a match start only at
a word's first character, so each word is scanned a fixed number of times. `=` only ends a word
(base64 padding): `createdAt=1666613406969` is two words, neither of them opaque."""
_DIGIT_RUN = re.compile(rf"\d{{{MESSAGE_DIGIT_RUN},}}")
_WHITESPACE = re.compile(r"\s+")


def storable(text: str) -> str:
    """`text` with every lone surrogate and NUL replaced by U+FFFD: valid, storable UTF-8."""
    if text.isascii() and "\x00" not in text:  # most text; a surrogate is never ASCII
        return text
    return _UNSTORABLE.sub(REPLACEMENT, text)


def cut(text: str, max_chars: int, *, whole_words: bool = False) -> str:
    """`text` cut to at most `max_chars` characters, ending in `CUT_MARK` when it was cut.

    With `whole_words`, a word the cut split is dropped whole: its head may be too short to be
    recognised as a token, yet still be a token's first characters.
    """
    if len(text) <= max_chars:
        return text
    head = text[: max(0, max_chars - len(CUT_MARK))]
    if whole_words and _is_token_char(text[len(head)]):
        end = len(head)
        while end and _is_token_char(head[end - 1]):
            end -= 1
        head = head[:end]
    return head + CUT_MARK


def _is_token_char(char: str) -> bool:
    """Whether `char` belongs to a word as `_OPAQUE_TOKEN` sees it (`[\\w.+/-]`)."""
    return char.isalnum() or char in "_.+/-"


def scrub(
    text: str,
    *,
    level: Level = "credentials",
    max_chars: int = MAX_SCRUB_CHARS,
    single_line: bool = False,
) -> str:
    """`text` cut to `max_chars`, made storable, with secrets replaced by `[redacted]`.

    Args:
        text: any text: a log line, a provider's message, a JSON string value.
        level: what is removed (see the module docstring).
        max_chars: bound of the input (applied before any pattern runs) and of the result.
        single_line: collapse whitespace runs to one space and strip the ends.

    Returns:
        The scrubbed text, at most `max_chars` characters, valid UTF-8.
    """
    text = storable(cut(text, max_chars, whole_words=level != "credentials"))
    if single_line:
        text = _WHITESPACE.sub(" ", text).strip()
    if _may_hold_credentials(text):
        text = _SECRET_ASSIGNMENT.sub(_redact_value, text)
        text = _BEARER.sub(f"Bearer {REDACTED}", text)
        text = _JWT.sub(REDACTED, text)
        text = _QUERY_ORDER_ID.sub(_redact_value_after_equals, text)
    if level != "credentials":
        text = _OPAQUE_TOKEN.sub(REDACTED, text)
    if level == "prose":
        text = _DIGIT_RUN.sub(DIGITS_REDACTED, text)
    return cut(text, max_chars)


def _may_hold_credentials(text: str) -> bool:
    """False only when none of the four credential patterns can match `text`.

    Each of them needs a word of `_CREDENTIAL_MARKERS` (case-insensitive) or `eyJ`: ASCII text
    naming none of them skips four regular expressions (most JSON values: ids, states, times).
    Non-ASCII text always takes the patterns, whose case folding goes beyond `str.lower`.
    """
    if not text.isascii():
        return True
    return "eyJ" in text or _CREDENTIAL_MARKER.search(text.lower()) is not None


def _redact_value(match: re.Match[str]) -> str:
    return match.group(0)[: match.start("value") - match.start(0)] + REDACTED


def _redact_value_after_equals(match: re.Match[str]) -> str:
    name, _, _ = match.group(0).partition("=")
    return f"{name}={REDACTED}"
