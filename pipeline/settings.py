"""The one place configuration and secrets are read from the environment.

Every value comes from environment variables, optionally from a `.env` file in the working
directory (real environment variables win, as in `dagster dev`). With no base URL set, every
provider points at the local sandbox, and the sandbox's development credentials are used, so the
product works with no accounts and no internet.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from secrets import token_hex

from pipeline.model import PROVIDERS

DEFAULT_SANDBOX_URL = "http://127.0.0.1:8765"
DEFAULT_DATA_DIR = "data"
DEFAULT_LOCK_TIMEOUT_S = 30.0
DEFAULT_DAGSTER_RETENTION_DAYS = 7
CODE_KEY_FILE = ".code_hash_key"
CODE_KEY_BYTES = 32


class Secret:
    """A secret string that never shows its value in `repr`, `str`, f-strings or logs.

    Call `reveal()` at the single point where the value goes on the wire.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret value itself. Use only when building a request."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __str__(self) -> str:
        return "**********"

    def __format__(self, format_spec: str) -> str:
        return str(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> str:
        raise TypeError("Secret values cannot be pickled")


# Credentials the sandbox accepts. Not secrets: they only open the local imitation APIs.
SANDBOX_CREDENTIALS: dict[str, str] = {
    "SMSONLINE_USER_ID": "sandbox-user-0001",
    "SMSONLINE_API_KEY": "sandbox-smsonline-key",
    "ORDINALSBOT_API_KEY": "sandbox-ordinalsbot-key",
    "BAANX_ACCESS_TOKEN": "sandbox-baanx-token",
    "BAANX_CLIENT_ID": "sandbox-baanx-client",
    "ALTINN_TOKEN": "sandbox-altinn-token",
    "ALTINN_PLATFORM_ACCESS_TOKEN": "sandbox-altinn-platform-token",
    "SMS4SATS_API_KEY": "sandbox-sms4sats-key",
}

# Secret variables each provider reads (the first of Altinn's two is preferred).
SECRET_VARIABLES: dict[str, tuple[str, ...]] = {
    "sms4sats": ("SMS4SATS_API_KEY",),
    "smsonline": ("SMSONLINE_USER_ID", "SMSONLINE_API_KEY"),
    "ordinalsbot": ("ORDINALSBOT_API_KEY",),
    "baanx": ("BAANX_ACCESS_TOKEN", "BAANX_CLIENT_ID"),
    "altinn": ("ALTINN_TOKEN", "ALTINN_PLATFORM_ACCESS_TOKEN"),
}


CONFIG_VARIABLES = (
    "PIPELINE_DATA_DIR",
    "PIPELINE_SANDBOX_URL",
    "PIPELINE_LOCK_TIMEOUT_S",
    "PIPELINE_CODE_HASH_KEY",
    "PIPELINE_DAGSTER_RETENTION_DAYS",
)
PROVIDER_VARIABLES: tuple[str, ...] = tuple(
    [f"{slug.upper()}_BASE_URL" for slug in PROVIDERS]
    + [name for names in SECRET_VARIABLES.values() for name in names]
)


def configured_variables() -> set[str]:
    """Names of the configuration variables set in the process environment."""
    return {
        name
        for name in (*CONFIG_VARIABLES, *PROVIDER_VARIABLES)
        if os.environ.get(name, "").strip()
    }


@dataclasses.dataclass(frozen=True)
class ProviderSettings:
    """Where a provider lives and the credentials to ask it.

    Attributes:
        slug: provider slug.
        base_url: URL prefix before the provider's own path (no trailing slash).
        secrets: credential name (e.g. `api_key`) to `Secret`; only the ones configured.
        is_sandbox: whether `base_url` is the local sandbox.
    """

    slug: str
    base_url: str
    secrets: Mapping[str, Secret]
    is_sandbox: bool

    def secret(self, name: str) -> Secret | None:
        """The named credential, or None when not configured."""
        return self.secrets.get(name)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything configurable, resolved once. Build with `Settings.from_env()`."""

    data_dir: Path
    sandbox_url: str
    lock_timeout_s: float
    providers: Mapping[str, ProviderSettings]
    code_hash_key: Secret | None = None
    """Key of the SMS-code HMAC; None means the key file in the data directory."""
    dagster_retention_days: int = DEFAULT_DAGSTER_RETENTION_DAYS
    """Finished Dagster runs older than this many days are purged."""

    @property
    def warehouse_path(self) -> Path:
        """The read-write DuckDB file (single writer)."""
        return self.data_dir / "warehouse.duckdb"

    @property
    def published_path(self) -> Path:
        """The read-only copy that notebooks, reports and BI tools open."""
        return self.data_dir / "published" / "warehouse.duckdb"

    @property
    def inbox_dir(self) -> Path:
        """CSV files dropped here are registered as tracked orders."""
        return self.data_dir / "inbox"

    @property
    def reports_dir(self) -> Path:
        """Where the HTML report is written."""
        return self.data_dir / "reports"

    @property
    def sandbox_dir(self) -> Path:
        """Sandbox output (ground truth JSONL)."""
        return self.data_dir / "sandbox"

    def code_key(self) -> bytes:
        """The key SMS codes are hashed with: `PIPELINE_CODE_HASH_KEY`, else a random key made
        once and kept in the data directory (owner-only), never inside the warehouse."""
        if self.code_hash_key:
            return self.code_hash_key.reveal().encode("utf-8")
        path = self.data_dir / CODE_KEY_FILE
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process made it first: use theirs
            else:
                with os.fdopen(fd, "w") as key_file:
                    key_file.write(token_hex(CODE_KEY_BYTES))
        return path.read_text().strip().encode("utf-8")

    def provider(self, slug: str) -> ProviderSettings:
        """Settings of one provider by slug."""
        return self.providers[slug]

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, dotenv: Path | None = None
    ) -> Settings:
        """Resolve settings from `environ` (default: `os.environ` plus `./.env`)."""
        if environ is None:
            env = {**read_dotenv(dotenv or Path(".env")), **os.environ}
        else:
            env = dict(environ)
        sandbox_url = env.get("PIPELINE_SANDBOX_URL", DEFAULT_SANDBOX_URL).rstrip("/")
        return cls(
            data_dir=Path(env.get("PIPELINE_DATA_DIR") or DEFAULT_DATA_DIR),
            sandbox_url=sandbox_url,
            lock_timeout_s=float(env.get("PIPELINE_LOCK_TIMEOUT_S") or DEFAULT_LOCK_TIMEOUT_S),
            providers={slug: _provider_settings(slug, env, sandbox_url) for slug in PROVIDERS},
            code_hash_key=Secret(key) if (key := env.get("PIPELINE_CODE_HASH_KEY")) else None,
            dagster_retention_days=int(
                env.get("PIPELINE_DAGSTER_RETENTION_DAYS") or DEFAULT_DAGSTER_RETENTION_DAYS
            ),
        )


def _provider_settings(slug: str, env: Mapping[str, str], sandbox_url: str) -> ProviderSettings:
    prefix = slug.upper()
    configured = env.get(f"{prefix}_BASE_URL", "").strip()
    base_url = (configured or f"{sandbox_url}/{slug}").rstrip("/")
    is_sandbox = not configured or configured.startswith(sandbox_url)
    secrets: dict[str, Secret] = {}
    for variable in SECRET_VARIABLES[slug]:
        value = env.get(variable, "").strip()
        if not value and is_sandbox:
            value = SANDBOX_CREDENTIALS[variable]
        if value:
            secrets[variable.removeprefix(f"{prefix}_").lower()] = Secret(value)
    return ProviderSettings(slug=slug, base_url=base_url, secrets=secrets, is_sandbox=is_sandbox)


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse a `.env` file of `NAME=value` lines; missing file gives an empty dict."""
    if not path.is_file():
        return {}
    values: dict[str, str] = {}
    for raw_line in path.read_text().splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.removeprefix("export ").partition("=")
        values[name.strip()] = value.strip().strip("'\"")
    return values
