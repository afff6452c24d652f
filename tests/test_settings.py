"""Settings: sandbox defaults, environment overrides, `.env` files, and secrets that never print."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import pytest

from pipeline.providers.registry import PROVIDERS, REGISTRY
from pipeline.settings import DEFAULT_SANDBOX_URL, Secret, Settings


def test_defaults_point_every_provider_at_the_sandbox() -> None:
    settings = Settings.from_env({})
    assert settings.data_dir == Path("data")
    assert settings.warehouse_path == Path("data/warehouse.duckdb")
    for slug in PROVIDERS:
        provider = settings.provider(slug)
        assert provider.base_url == f"{DEFAULT_SANDBOX_URL}/{slug}"
        assert provider.is_sandbox


def test_sandbox_gets_development_credentials_by_default() -> None:
    baanx = Settings.from_env({}).provider("baanx")
    token = baanx.secret("access_token")
    assert token is not None
    assert token.reveal() == REGISTRY.sandbox_credentials()["BAANX_ACCESS_TOKEN"]


def test_environment_overrides_data_dir_base_url_and_secrets() -> None:
    settings = Settings.from_env(
        {
            "PIPELINE_DATA_DIR": "/tmp/elsewhere",
            "BAANX_BASE_URL": "https://example.invalid/api/",
            "BAANX_ACCESS_TOKEN": "real-token",
            "PIPELINE_LOCK_TIMEOUT_S": "2.5",
        }
    )
    assert settings.data_dir == Path("/tmp/elsewhere")
    assert settings.lock_timeout_s == 2.5
    baanx = settings.provider("baanx")
    assert baanx.base_url == "https://example.invalid/api"
    assert not baanx.is_sandbox
    assert baanx.secret("access_token") == Secret("real-token")
    # A real provider never silently receives the sandbox's credentials.
    assert baanx.secret("client_id") is None


def test_sandbox_url_moves_every_default_base_url() -> None:
    settings = Settings.from_env({"PIPELINE_SANDBOX_URL": "http://127.0.0.1:9999/"})
    assert settings.provider("altinn").base_url == "http://127.0.0.1:9999/altinn"


def test_dotenv_file_is_read_and_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("# comment\nPIPELINE_DATA_DIR=from-dotenv\nSMSONLINE_API_KEY='k-dotenv'\n")
    monkeypatch.delenv("PIPELINE_DATA_DIR", raising=False)
    monkeypatch.setenv("SMSONLINE_API_KEY", "k-env")
    settings = Settings.from_env(dotenv=dotenv)
    assert settings.data_dir == Path("from-dotenv")
    assert settings.provider("smsonline").secret("api_key") == Secret("k-env")


def test_dotenv_quoting_comments_and_export_follow_dotenv_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        'export BAANX_ACCESS_TOKEN="tok # with a hash"\n'
        "BAANX_CLIENT_ID=client-1 # trailing comment\n"
        "ALTINN_TOKEN='single quoted'\n"
    )
    for name in ("BAANX_ACCESS_TOKEN", "BAANX_CLIENT_ID", "ALTINN_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    baanx = Settings.from_env(dotenv=dotenv).provider("baanx")
    assert baanx.secret("access_token") == Secret("tok # with a hash")
    assert baanx.secret("client_id") == Secret("client-1")
    assert Settings.from_env(dotenv=dotenv).provider("altinn").secret("token") == Secret(
        "single quoted"
    )


def test_secret_value_never_appears_in_repr_str_format_or_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    planted = "sk-planted-9f8e7d6c"
    settings = Settings.from_env({"SMSONLINE_API_KEY": planted, "ALTINN_TOKEN": planted})
    secret = settings.provider("smsonline").secret("api_key")
    assert secret is not None and secret.reveal() == planted
    rendered = [repr(settings), str(settings), f"{secret}", f"{secret!r}", "%s" % (secret,)]  # noqa: UP031
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").info("settings %s secret %s %r", settings, secret, secret)
    rendered.append(caplog.text)
    for text in rendered:
        assert planted not in text
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_code_hash_key_comes_from_the_environment_or_a_private_key_file(tmp_path: Path) -> None:
    configured = Settings.from_env({"PIPELINE_CODE_HASH_KEY": "k-123", "PIPELINE_DATA_DIR": "x"})
    assert configured.code_key() == b"k-123"
    assert "k-123" not in repr(configured)
    settings = Settings.from_env({"PIPELINE_DATA_DIR": str(tmp_path)})
    key = settings.code_key()
    assert len(key) == 64  # 32 random bytes, hex
    key_file = tmp_path / ".code_hash_key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    # Stable: every process of this installation hashes codes alike.
    assert Settings.from_env({"PIPELINE_DATA_DIR": str(tmp_path)}).code_key() == key
    other = Settings.from_env({"PIPELINE_DATA_DIR": str(tmp_path / "elsewhere")}).code_key()
    assert other != key
