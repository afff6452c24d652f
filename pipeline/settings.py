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

from pipeline.environment import environment
from pipeline.logstorage import LogStorage, open_log
from pipeline.providers.base import ProviderSettings
from pipeline.providers.registry import PROVIDERS_DIR_VARIABLE, REGISTRY
from pipeline.providers.spec import ProviderSpec
from pipeline.secret import Secret

DEFAULT_SANDBOX_URL = "http://127.0.0.1:8765"
DEFAULT_DATA_DIR = "data"
DEFAULT_LOCK_TIMEOUT_S = 30.0
DEFAULT_DAGSTER_RETENTION_DAYS = 7
SHARDS_FOLDER = "shards"
CODE_KEY_FILE = ".code_hash_key"
CODE_KEY_BYTES = 32


CONFIG_VARIABLES = (
    "PIPELINE_DATA_DIR",
    "PIPELINE_SANDBOX_URL",
    "PIPELINE_LOCK_TIMEOUT_S",
    "PIPELINE_CODE_HASH_KEY",
    "PIPELINE_DAGSTER_RETENTION_DAYS",
    "PIPELINE_KEEP_POLLS_DAYS",
    "PIPELINE_LOG_URL",
    PROVIDERS_DIR_VARIABLE,
)
PROVIDER_VARIABLES: tuple[str, ...] = tuple(
    name for spec in REGISTRY.specs() for name in spec.variables
)
"""Every provider's base URL and credential variables."""


def configured_variables() -> set[str]:
    """Names of the configuration variables set in the process environment."""
    return {
        name
        for name in (*CONFIG_VARIABLES, *PROVIDER_VARIABLES)
        if os.environ.get(name, "").strip()
    }


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
    keep_polls_days: float | None = None
    """Per-poll rows and payload bodies older than this many days move from the warehouse to
    the archive at each `pipeline refresh` (None: kept in the warehouse; `pipeline.retention`)."""
    log_url: str | None = None
    """Where sharded pollers write the poll log: a folder or an object store's URL
    (`pipeline.logstorage`); None: `log_dir`."""

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
    def log_dir(self) -> Path:
        """The folder of the poll log when `log_url` is not set (`pipeline.polllog`)."""
        return self.data_dir / "log"

    def poll_log(self) -> LogStorage:
        """The poll log sharded pollers write and each refresh folds in (`pipeline.polllog`)."""
        return open_log(self.log_url or self.log_dir)

    @property
    def shards_dir(self) -> Path:
        """Sharded pollers' own warehouses and spools (`pipeline.sharding`)."""
        return self.data_dir / SHARDS_FOLDER

    @property
    def archive_dir(self) -> Path:
        """Parquet copies of pruned observations and payloads, by provider and day."""
        return self.data_dir / "archive"

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
        """Resolve settings from `environ` (default: `os.environ` plus `./.env`).

        Raises:
            ValueError: a provider option set to a value it does not allow.
        """
        env = environment(dotenv) if environ is None else dict(environ)
        sandbox_url = env.get("PIPELINE_SANDBOX_URL", DEFAULT_SANDBOX_URL).rstrip("/")
        return cls(
            data_dir=Path(env.get("PIPELINE_DATA_DIR") or DEFAULT_DATA_DIR),
            sandbox_url=sandbox_url,
            lock_timeout_s=float(env.get("PIPELINE_LOCK_TIMEOUT_S") or DEFAULT_LOCK_TIMEOUT_S),
            providers={
                spec.slug: _provider_settings(spec, env, sandbox_url) for spec in REGISTRY.specs()
            },
            code_hash_key=Secret(key) if (key := env.get("PIPELINE_CODE_HASH_KEY")) else None,
            dagster_retention_days=int(
                env.get("PIPELINE_DAGSTER_RETENTION_DAYS") or DEFAULT_DAGSTER_RETENTION_DAYS
            ),
            keep_polls_days=_positive("PIPELINE_KEEP_POLLS_DAYS", env),
            log_url=env.get("PIPELINE_LOG_URL", "").strip() or None,
        )


def _positive(name: str, env: Mapping[str, str]) -> float | None:
    """`name` as a positive number, None when unset.

    Raises:
        ValueError: set to something else.
    """
    text = env.get(name, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise ValueError(f"{name}={text!r}: expected a positive number of days")
    return value


def _provider_settings(
    spec: ProviderSpec, env: Mapping[str, str], sandbox_url: str
) -> ProviderSettings:
    configured = env.get(spec.base_url_variable, "").strip()
    base_url = (configured or f"{sandbox_url}/{spec.slug}").rstrip("/")
    is_sandbox = not configured or configured.startswith(sandbox_url)
    secrets: dict[str, Secret] = {}
    for credential in spec.credentials:
        value = env.get(credential.variable, "").strip()
        if not value and is_sandbox:
            value = credential.sandbox_value
        if value:
            secrets[credential.name] = Secret(value)
    options: dict[str, str] = {}
    for option in spec.options:
        value = env.get(option.variable, "").strip() or option.default
        if problem := option.problem(value):
            raise ValueError(problem)
        options[option.name] = value
    return ProviderSettings(
        slug=spec.slug, base_url=base_url, secrets=secrets, is_sandbox=is_sandbox, options=options
    )
