"""`scrub` skips its credential patterns for text that cannot hold a credential, and caches the
checks of JSON keys: both must give exactly what the full scrubbing gives, for any text."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pipeline import redaction
from pipeline.providers.common import sensitive

WORDS = st.sampled_from(
    ["apiKey=", "token: ", "Bearer ", "eyJhbGciOi.x.y", "orderId=", "ORDER_ID=", "ſecret=",
     "K", "password", "Authorization", "status", "2026-01-01T00:00:00Z", "\x00", "\ud800",
     "abc123def456ghi789jkl0", "1234", " ", "=", ":", "é"]
)  # fmt: skip
TEXTS = st.one_of(st.text(max_size=80), st.lists(WORDS, max_size=8).map("".join))


def _full_scrub(text: str, level: redaction.Level) -> str:
    """`scrub` with the fast path off: every pattern runs."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(redaction, "_may_hold_credentials", lambda _: True)
        return redaction.scrub(text, level=level)


@settings(max_examples=400, deadline=None)
@given(text=TEXTS, level=st.sampled_from(["credentials", "tokens", "prose"]))
def test_the_fast_path_scrubs_exactly_like_the_full_patterns(text: str, level: str) -> None:
    assert redaction.scrub(text, level=level) == _full_scrub(text, level)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(value=st.dictionaries(TEXTS, TEXTS, max_size=6))
@example(value={"errorMessage": "0000"})  # a free-text key: its digits go, as in prose
def test_cached_key_checks_give_the_uncached_answers(value: dict[str, str]) -> None:
    redacted = sensitive.redact_json(value, {})
    expected = {  # values under free-text keys (an error message) are scrubbed as prose
        redaction.scrub(key, max_chars=sensitive.MAX_JSON_KEY_CHARS): sensitive.redact_json(
            v, {}, prose=key in sensitive.FREE_TEXT_KEYS
        )
        for key, v in value.items()
        if not sensitive.is_secret_key.__wrapped__(key)
    }
    assert redacted == expected


def test_a_credential_is_still_redacted_through_the_fast_path() -> None:
    assert "s3cr3t" not in redaction.scrub("see apiKey=s3cr3t here")
    assert redaction.scrub("QUEUED") == "QUEUED"
