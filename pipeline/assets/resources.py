"""Dagster resources: where the warehouse lives and how to reach each provider.

Every configuration variable that is set enters as `dg.EnvVar`, so the Dagster UI shows the
variable's name, never its value. Variables not set are left empty and `Settings` falls back to
its defaults (the sandbox and its development credentials).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pydantic

from pipeline.settings import (
    DEFAULT_DATA_DIR,
    DEFAULT_LOCK_TIMEOUT_S,
    DEFAULT_SANDBOX_URL,
    PROVIDER_VARIABLES,
    Settings,
    configured_variables,
)
from pipeline.warehouse import Warehouse


class WarehouseResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The DuckDB warehouse. Opens nothing until an asset asks for a connection."""

    data_dir: str = DEFAULT_DATA_DIR
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S
    keep_polls_days: float | None = None
    """Polls older than this move to the archive (`pipeline.retention`); None keeps them."""
    log_url: str | None = None
    """Where sharded pollers write the poll log (`PIPELINE_LOG_URL`); None: the data folder's."""

    def warehouse(self) -> Warehouse:
        """The read-write warehouse."""
        path = Path(self.data_dir) / "warehouse.duckdb"
        return Warehouse(path, lock_timeout_s=self.lock_timeout_s)


class ProvidersResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Where the providers live and their credentials.

    This base holds the sandbox URL and the code-hash key; `PROVIDER_FIELDS_RESOURCE` adds one
    optional field per provider variable in the registry, so the Dagster UI lists each by name.
    """

    sandbox_url: str = DEFAULT_SANDBOX_URL
    pipeline_code_hash_key: str | None = None

    def settings(self, warehouse: WarehouseResource) -> Settings:
        """Full settings for a run, with the warehouse resource's locations."""
        environ = {
            name: value
            for name in PROVIDER_VARIABLES
            if isinstance(value := getattr(self, name.lower(), None), str) and value
        }
        if self.pipeline_code_hash_key:
            environ["PIPELINE_CODE_HASH_KEY"] = self.pipeline_code_hash_key
        environ.update(
            PIPELINE_DATA_DIR=warehouse.data_dir,
            PIPELINE_SANDBOX_URL=self.sandbox_url,
            PIPELINE_LOCK_TIMEOUT_S=str(warehouse.lock_timeout_s),
        )
        if warehouse.log_url:
            environ["PIPELINE_LOG_URL"] = warehouse.log_url
        return Settings.from_env(environ)


PROVIDER_FIELDS_RESOURCE: type[ProvidersResource] = pydantic.create_model(
    "ProvidersResource",
    __base__=ProvidersResource,
    __module__=__name__,
    **{name.lower(): (str | None, None) for name in PROVIDER_VARIABLES},  # type: ignore[call-overload]
)
"""`ProvidersResource` with one optional field per provider variable (base URL, credentials)."""


def build_resources() -> dict[str, Any]:
    """Resources wired to the configuration variables that are set, each through `dg.EnvVar`."""
    present = configured_variables()

    def env(name: str) -> dict[str, Any]:
        return {name.lower(): dg.EnvVar(name)} if name in present else {}

    warehouse_config: dict[str, Any] = {}
    for name, field in (("PIPELINE_DATA_DIR", "data_dir"), ("PIPELINE_LOG_URL", "log_url")):
        if name in present:
            warehouse_config[field] = dg.EnvVar(name)
    # Not secrets, and Dagster has no float EnvVar: resolved here.
    settings = Settings.from_env()
    warehouse_config["lock_timeout_s"] = settings.lock_timeout_s
    warehouse_config["keep_polls_days"] = settings.keep_polls_days
    provider_config: dict[str, Any] = {}
    if "PIPELINE_SANDBOX_URL" in present:
        provider_config["sandbox_url"] = dg.EnvVar("PIPELINE_SANDBOX_URL")
    for name in (*PROVIDER_VARIABLES, "PIPELINE_CODE_HASH_KEY"):
        provider_config.update(env(name))
    return {
        "warehouse": WarehouseResource(**warehouse_config),
        "providers": PROVIDER_FIELDS_RESOURCE(**provider_config),
    }
