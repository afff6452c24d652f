"""The Jinja2 environment the report is rendered with, and its filters.

Templates live in `pipeline/report/templates/` (package data). Autoescaping is on for every
template and every printed value goes through `pipeline.report.markup.text` (the environment's
`finalize`), so text from the data is escaped and any URL in it defused; only Markup (a rendered
section or macro, itself escaped) passes through as it is. An undefined name is an error
(`StrictUndefined`), never an empty string.

Filters: `number`, `percent`, `percent_ci`, `objective`, `burn_rate`, `duration`,
`duration_ci`, `timestamp` (the formatters of `pipeline.report.markup`), `provider` (display
name), `colour` (chart colour) and `base64` (bytes for a data URI).
"""

from __future__ import annotations

import base64
from typing import Any

import jinja2
from markupsafe import Markup

from pipeline.report import markup
from pipeline.report.providers import provider_colour, provider_name

TEMPLATES = "templates"
"""The templates' folder inside `pipeline.report`."""


def _base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def environment() -> jinja2.Environment:
    """A fresh environment over the packaged templates."""
    env = markup.environment(jinja2.PackageLoader("pipeline.report", TEMPLATES))
    env.filters.update(
        provider=provider_name,
        colour=provider_colour,
        base64=_base64,
    )
    env.globals.update(NOT_ENOUGH_DATA=markup.NOT_ENOUGH_DATA, MISSING=markup.MISSING)
    return env


ENVIRONMENT = environment()


def render(template: str, **context: Any) -> Markup:
    """`template` rendered with `context`: escaped HTML, safe to place in another template."""
    return Markup(ENVIRONMENT.get_template(template).render(**context))
