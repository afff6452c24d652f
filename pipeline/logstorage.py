"""Where the poll log's files live: a folder (local or mounted), or an object store.

Both hold whole files only, so a reader never sees half of one: a folder because each file is
written under a hidden name and renamed into place, an object store because an object appears
only once its upload has completed. Files are named by keys relative to the log's root,
`<table>/provider=<slug>/day=<date>/<name>.parquet`, the same in both.

`PIPELINE_LOG_URL` chooses (`open_log`): unset, the folder `<data dir>/log`; a path or
`file://` URL, that folder; `s3://bucket/prefix`, `gs://...`, `az://...` (or `abfs://`), that
bucket and prefix, reached with the store's usual environment variables (for S3:
`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, and `AWS_ENDPOINT_URL` with
`AWS_ALLOW_HTTP=true` for a store of one's own such as MinIO), read from the process
environment by the store's client (not from `.env`). Credentials never go in the URL.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit
from urllib.request import url2pathname

from pipeline.redaction import scrub

if TYPE_CHECKING:
    from obstore.store import RetryConfig

OBJECT_STORE_SCHEMES = frozenset({"s3", "s3a", "gs", "az", "azure", "abfs", "abfss"})
"""URL schemes of the object stores a log can live in."""
STORE_RETRIES: RetryConfig = {
    "max_retries": 3,
    "retry_timeout": timedelta(seconds=20),
    "backoff": {
        "init_backoff": timedelta(milliseconds=100),
        "max_backoff": timedelta(seconds=5),
        "base": 2.0,
    },
}
"""Retries of a store request before the log counts as unavailable. The client's default (10
retries within 3 minutes) would hold a flush, and the rows behind it, for minutes."""
REASON_CHARS = 200
"""Characters of a store's error message kept in ours."""


class LogUnavailableError(RuntimeError):
    """The log's storage did not answer: what was to be written must wait and be tried again."""


class LogStorage(Protocol):
    """The poll log's files, by key."""

    def put(self, key: str, data: bytes) -> None:
        """Store a whole file under `key`; readers see all of it or nothing."""

    def keys(self, prefix: str) -> list[str]:
        """The whole files under `prefix` (a table's folder), sorted."""

    def read(self, key: str) -> bytes:
        """A file's bytes."""

    def delete(self, key: str) -> None:
        """Remove a file (no error if it is gone already)."""

    def remove_abandoned(self, prefixes: list[str], older_than_s: float) -> None:
        """Delete what writers killed halfway left under `prefixes` (the tables' folders),
        once older than `older_than_s`."""


class FolderStorage:
    """The log in a folder: each file written under a hidden name, then renamed into place.
    A folder that cannot be written or read (a full disk, a network share gone) raises
    `LogUnavailableError`, as a store that does not answer does."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __str__(self) -> str:
        return str(self.root)

    def put(self, key: str, data: bytes) -> None:
        path = self.root / key
        hidden = path.with_name(f".{path.name}.tmp")
        with self._answering("write"):
            path.parent.mkdir(parents=True, exist_ok=True)
            with hidden.open("wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())  # a power cut must not leave half a file in its place
            os.replace(hidden, path)

    def keys(self, prefix: str) -> list[str]:
        with self._answering("list"):
            return sorted(
                path.relative_to(self.root).as_posix()
                for path in (self.root / prefix).rglob("*.parquet")
                if not path.name.startswith(".")
            )

    def read(self, key: str) -> bytes:
        with self._answering("read"):
            return (self.root / key).read_bytes()

    def delete(self, key: str) -> None:
        with self._answering("delete"):
            (self.root / key).unlink(missing_ok=True)

    def remove_abandoned(self, prefixes: list[str], older_than_s: float) -> None:
        cutoff = time.time() - older_than_s
        for prefix in prefixes:
            for path in (self.root / prefix).rglob(".*.tmp"):
                with contextlib.suppress(FileNotFoundError):
                    if path.stat().st_mtime < cutoff:
                        path.unlink()

    @contextlib.contextmanager
    def _answering(self, action: str) -> Iterator[None]:
        try:
            yield
        except OSError as error:
            raise LogUnavailableError(
                f"poll log {self.root}: {action} failed: {type(error).__name__}: "
                f"{error.strerror or error}"
            ) from error


class ObjectStorage:
    """The log in an object store's bucket, under a prefix (`obstore`, which reads the
    store's credentials and endpoint from the environment)."""

    def __init__(self, url: str) -> None:
        from obstore.store import from_url

        self.url = url
        self._store = from_url(url, retry_config=STORE_RETRIES)

    def __str__(self) -> str:
        return self.url

    def put(self, key: str, data: bytes) -> None:
        import obstore

        with self._answering("write"):
            obstore.put(self._store, key, data)

    def keys(self, prefix: str) -> list[str]:
        import obstore

        with self._answering("list"):
            return sorted(
                item["path"]
                for batch in obstore.list(self._store, prefix=prefix)
                for item in batch
                if item["path"].endswith(".parquet")
            )

    def read(self, key: str) -> bytes:
        import obstore

        with self._answering("read"):
            return bytes(obstore.get(self._store, key).bytes())

    def delete(self, key: str) -> None:
        import obstore
        from obstore.exceptions import NotFoundError

        with self._answering("delete"), contextlib.suppress(NotFoundError):
            obstore.delete(self._store, key)

    def remove_abandoned(self, prefixes: list[str], older_than_s: float) -> None:
        """Nothing to do: an upload cut short never becomes an object (the parts of a
        multipart upload left behind are the bucket's lifecycle rules' to clear)."""

    @contextlib.contextmanager
    def _answering(self, action: str) -> Iterator[None]:
        """Errors of the store as `LogUnavailableError` with the first line of its reason,
        scrubbed: the rest (a response body, the signed request) may name credentials, and
        the store's own error is not chained to ours, so no traceback shows it either."""
        try:
            yield
        except Exception as error:
            first_line = str(error).strip().split("\n", 1)[0]
            reason = scrub(first_line, max_chars=REASON_CHARS, single_line=True)
            raise LogUnavailableError(
                f"poll log {self.url}: {action} failed: {type(error).__name__}: {reason}"
            ) from None


def open_log(location: str | Path) -> LogStorage:
    """The log at `location`: an object store's URL (`OBJECT_STORE_SCHEMES`), a `file://`
    URL or a folder path."""
    text = str(location)
    scheme = urlsplit(text).scheme.lower()
    if scheme in OBJECT_STORE_SCHEMES:
        return ObjectStorage(text)
    if scheme == "file":
        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"poll log location {text}: a file URL names a path on this host")
        return FolderStorage(Path(url2pathname(parts.path)))
    if "://" in text:
        raise ValueError(
            f"poll log location {text.split('://')[0]}://…: not a folder or an object store "
            f"({', '.join(sorted(OBJECT_STORE_SCHEMES))})"
        )
    return FolderStorage(Path(text))
