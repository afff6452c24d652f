"""Nothing secret at rest or in logs: planted keys, tokens, an SMS code and a phone number pass
through the real poller and write path, and appear neither in the DuckDB file's bytes, nor in any
stored value, nor in captured logs (httpx's own included), nor in exception text."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from pathlib import Path

import httpx
import pytest

from pipeline.intake import make_order, register
from pipeline.polling.client import Poller
from pipeline.polling.tick import run_tick
from pipeline.providers.registry import ADAPTERS
from pipeline.settings import Settings
from pipeline.warehouse import Warehouse

API_KEY = "sk-PLANTED-apikey-93a7f1"
TOKEN = "tok-PLANTED-bearer-51c2e8"
CLIENT_ID = "cid-PLANTED-client-7731"
USER_ID = "uid-PLANTED-user-4410"
CODE = "90210777"
PHONE = "4915112345678"
SECRETS = (API_KEY, TOKEN, CLIENT_ID, USER_ID, CODE, PHONE)

ENVIRONMENT = {
    **{f"{slug.upper()}_BASE_URL": f"https://{slug}.example.invalid" for slug in ADAPTERS},
    "SMS4SATS_API_KEY": API_KEY,
    "SMSONLINE_USER_ID": USER_ID,
    "SMSONLINE_API_KEY": API_KEY,
    "ORDINALSBOT_API_KEY": API_KEY,
    "BAANX_ACCESS_TOKEN": TOKEN,
    "BAANX_CLIENT_ID": CLIENT_ID,
    "ALTINN_TOKEN": TOKEN,
    "FIVESIM_API_KEY": TOKEN,
}


def _answer(request: httpx.Request) -> httpx.Response:
    """Provider answers that carry the planted values, echoing credentials back as some APIs do."""
    host = request.url.host
    if host.startswith("sms4sats"):
        return httpx.Response(
            200,
            json={
                "status": "OK",
                "paid": True,
                "code": int(CODE),
                "number": int(PHONE),
                "id": 1125699791,
                "timestamp": 1666613406969,
                "country": "India",
                "service": "openAI",
            },
        )
    if host.startswith("smsonline"):
        # A bad-key answer that echoes the key, and a URL holding it in the error text.
        return httpx.Response(
            401, json={"ok": False, "errorMessage": f"Invalid apiKey {API_KEY} for {request.url}"}
        )
    if host.startswith("ordinalsbot"):
        raise httpx.ConnectError(f"connection refused for {request.url} key={API_KEY}")
    if host.startswith("baanx"):
        return httpx.Response(
            200,
            json={
                "orderId": "abcd_1234",
                "status": "FAILED",
                "metadata": {"note": f"token {TOKEN} rejected for client {CLIENT_ID}"},
            },
        )
    if host.startswith("fivesim"):
        # A declared provider: the code in the SMS, quoted in its text, and the full number.
        sms = {"created_at": "2024-01-01T08:14:00Z", "code": CODE, "text": f"Code {CODE}"}
        return httpx.Response(
            200,
            json={"id": 11631253, "phone": f"+{PHONE}", "status": "RECEIVED", "sms": [sms],
                  "created_at": "2024-01-01T08:13:38Z", "product": "telegram",
                  "note": f"key {TOKEN}"},
        )  # fmt: skip
    return httpx.Response(403, text=f"Forbidden: Bearer {TOKEN}")


def test_planted_secrets_never_leave_a_trace(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    register(
        warehouse,
        [
            make_order("sms4sats", "7dc6e6b6c83318"),
            make_order("smsonline", "20046875"),
            make_order("ordinalsbot", "c411ca33-53dd-4d4f-b959-6c6dffcc88e5"),
            make_order("baanx", "abcd_1234"),
            make_order("altinn", "f1a1cc30-197f-4f34-8304-006ce4945fd1"),
            make_order("fivesim", "11631253"),
        ],
        source="test",
    )
    settings = Settings.from_env({**ENVIRONMENT, "PIPELINE_DATA_DIR": str(tmp_path)})
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "pipeline"):
        caplog.set_level(logging.DEBUG, logger=name)

    async def poll() -> None:
        async with Poller(settings, ADAPTERS, transport=httpx.MockTransport(_answer)) as poller:
            await run_tick(warehouse, poller)

    asyncio.run(poll())

    stored = warehouse.read("SELECT * FROM observations")
    assert set(stored["provider"]) == set(ADAPTERS)  # every provider was asked and recorded
    assert stored.filter(stored["provider"] == "sms4sats")["code_length"].item() == len(CODE)
    dumps = [
        warehouse.read(f"SELECT * FROM {table}").write_csv()
        for table in ("orders", "observations", "payloads", "quarantine", "order_tracking")
    ]
    with warehouse.connect() as con:
        con.execute("CHECKPOINT")
    database_bytes = (tmp_path / "warehouse.duckdb").read_bytes()
    logs = caplog.text + json.dumps([r.getMessage() for r in caplog.records])
    for secret in SECRETS:
        assert secret.encode() not in database_bytes, secret
        for text in (*dumps, logs):
            assert secret not in text, secret
    # The code is kept as a keyed hash: its plain SHA-256 (found by trying all 10^8 codes of
    # this length) is nowhere, and the key lives outside the warehouse.
    plain = hashlib.sha256(CODE.encode()).hexdigest()
    assert all(plain not in text for text in dumps)
    assert settings.code_key() not in database_bytes
