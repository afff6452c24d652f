"""Altinn: public-sector email and SMS notification orders.

`spec` holds its facts, `adapter` reads its answers, `sandbox` imitates its API.
"""

from __future__ import annotations

from pipeline.providers.altinn.adapter import AltinnAdapter
from pipeline.providers.altinn.spec import SPEC

ADAPTER = AltinnAdapter()

__all__ = ["ADAPTER", "SPEC", "AltinnAdapter"]
