"""Nothing secret leaves an adapter: a planted SMS code, phone number, API key and tokens never
appear in any field of the Observation (including the stored payload and error message), nor in
a request's URL or log template; the SMSOnline key travels in query params only; and the stored
payload hash is the hash of the redacted text, never of the raw body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import datetime

import pytest

from pipeline.model import Observation, TrackedOrder
from pipeline.providers.registry import ADAPTERS
from pipeline.settings import ProviderSettings

CODE = "731946"
PHONE = "447700900123"
API_KEY = "PLANTED-API-KEY-9f8e7d"
TOKEN = "PLANTED-TOKEN-eyJhbGciOiJSUzI1NiJ9"
ADDRESS = "bc1pplantedaddressqqqq"
SECRETS = (CODE, PHONE, API_KEY, TOKEN, ADDRESS)

CASES: list[tuple[str, int, bytes]] = [
    (
        "sms4sats",
        200,
        json.dumps(
            {
                "status": "OK",
                "paid": True,
                "code": int(CODE),
                "number": int(PHONE),
                "apiKey": API_KEY,
            }
        ).encode(),
    ),
    ("sms4sats", 200, json.dumps({"status": "OK", "paid": True, "code": CODE}).encode()),
    ("sms4sats", 200, f'{{"status":"OK","paid":true,"code":{CODE},"number":{PHONE}'.encode()),
    ("sms4sats", 200, f'{{"status":"OK","number":"{PHONE}","code":"{CODE}'.encode()),
    ("sms4sats", 500, f"proxy error for /orderstatus?apiKey={API_KEY}".encode()),
    (
        "sms4sats",
        200,
        json.dumps({"status": "error", "reason": f"bad apiKey={API_KEY} for {PHONE}"}).encode(),
    ),
    (
        "smsonline",
        200,
        json.dumps(
            {
                "ok": True,
                "body": [
                    {
                        "orderId": "1",
                        "status": "completed",
                        "receivedSMS": f"Your code is {CODE}",
                        "phoneNumber": PHONE,
                        "apiKey": API_KEY,
                    }
                ],
            }
        ).encode(),
    ),
    (
        "smsonline",
        401,
        json.dumps({"ok": False, "errorMessage": f"Unauthorized apiKey={API_KEY}"}).encode(),
    ),
    (
        "smsonline",
        200,
        json.dumps({"ok": False, "errorMessage": f"invalid key apiKey={API_KEY}"}).encode(),
    ),
    (
        "smsonline",
        200,
        f'{{"ok":true,"body":[{{"receivedSMS":"{CODE}","phoneNumber":"{PHONE}'.encode(),
    ),
    (
        "ordinalsbot",
        200,
        json.dumps(
            {"status": "ok", "state": "completed", "receiveAddress": ADDRESS, "x-api-key": API_KEY}
        ).encode(),
    ),
    (
        "ordinalsbot",
        200,
        json.dumps({"status": "ok", "state": "queued", "receiveAddress": [ADDRESS]}).encode(),
    ),
    (
        "baanx",
        200,
        json.dumps(
            {"orderId": "o", "status": "STARTED", "accessToken": TOKEN, "authorization": TOKEN}
        ).encode(),
    ),
    ("baanx", 401, json.dumps({"error": f"token {TOKEN} expired"}).encode()),
    ("baanx", 500, f"upstream said: Authorization: Bearer {TOKEN}".encode()),
    (
        "altinn",
        200,
        json.dumps(
            {
                "processingStatus": {"status": "Processing"},
                "token": TOKEN,
                "PlatformAccessToken": TOKEN,
            }
        ).encode(),
    ),
]


def _everything(obs: Observation) -> str:
    return " ".join(str(value) for value in obs.as_row().values())


@pytest.mark.parametrize(("slug", "http_status", "body"), CASES)
def test_planted_secrets_never_reach_the_observation(
    make_order: Callable[..., TrackedOrder],
    polled_at: datetime,
    slug: str,
    http_status: int,
    body: bytes,
) -> None:
    order = make_order(slug, "1")
    obs = ADAPTERS[slug].parse(http_status, {}, body, order=order, polled_at=polled_at)
    text = _everything(obs)
    for secret in SECRETS:
        assert secret not in text, secret
    assert obs.payload_redacted is not None
    assert obs.payload_sha256 == hashlib.sha256(obs.payload_redacted.encode()).hexdigest()
    assert obs.payload_sha256 != hashlib.sha256(body).hexdigest()


def test_code_and_phone_survive_only_as_hash_and_mask(
    make_order: Callable[..., TrackedOrder], polled_at: datetime
) -> None:
    body = json.dumps({"status": "OK", "paid": True, "code": CODE, "number": PHONE}).encode()
    obs = ADAPTERS["sms4sats"].parse(
        200, {}, body, order=make_order("sms4sats"), polled_at=polled_at
    )
    assert obs.code_sha256 == hmac.new(b"", CODE.encode(), hashlib.sha256).hexdigest()
    assert obs.phone_masked == "********0123"
    assert obs.payload_redacted is not None
    redacted = json.loads(obs.payload_redacted)
    assert redacted["code"] == {"length": 6}  # nothing derived from the digits
    assert redacted["number"] == "********0123"


def test_redacted_payload_is_compact_sorted_json(
    make_order: Callable[..., TrackedOrder], polled_at: datetime
) -> None:
    pretty = b'{\n    "status": "OK",\n    "paid": false\n}'
    obs = ADAPTERS["sms4sats"].parse(
        200, {}, pretty, order=make_order("sms4sats"), polled_at=polled_at
    )
    assert obs.payload_redacted == '{"paid":false,"status":"OK"}'


def _settings(slug: str, make_settings: Callable[..., ProviderSettings]) -> ProviderSettings:
    secrets = {
        "sms4sats": {"api_key": API_KEY},
        "smsonline": {"user_id": "user-1", "api_key": API_KEY},
        "ordinalsbot": {"api_key": API_KEY},
        "baanx": {"access_token": TOKEN, "client_id": API_KEY},
        "altinn": {"token": TOKEN, "platform_access_token": TOKEN},
    }[slug]
    return make_settings(slug, **secrets)


def test_smsonline_api_key_is_in_params_only(
    make_order: Callable[..., TrackedOrder], make_settings: Callable[..., ProviderSettings]
) -> None:
    spec = ADAPTERS["smsonline"].build_request(
        make_order("smsonline", "1"), _settings("smsonline", make_settings)
    )
    assert spec.params == {"apiKey": API_KEY}
    assert API_KEY not in json.dumps(dict(spec.headers))
