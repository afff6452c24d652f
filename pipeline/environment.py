"""The process environment as configuration sees it: `os.environ` over an optional `.env` file.

Real environment variables win over the file, as in `dagster dev`. The file is read with
python-dotenv, so quoting, `export` prefixes, comments and multi-line values follow its rules.
"""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import dotenv_values

DOTENV_FILE = Path(".env")


def read_dotenv(path: Path) -> dict[str, str]:
    """The `NAME=value` pairs of a `.env` file; a missing file gives an empty dict."""
    if not path.is_file():
        return {}
    return {name: value for name, value in dotenv_values(path).items() if value is not None}


def environment(dotenv: Path | None = None) -> dict[str, str]:
    """`os.environ` over the `.env` file (default: `./.env`)."""
    return {**read_dotenv(dotenv or DOTENV_FILE), **os.environ}
