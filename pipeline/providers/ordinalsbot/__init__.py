"""OrdinalsBot: managed Bitcoin inscriptions.

`spec` holds its facts, `adapter` reads its answers, `sandbox` imitates its API.
"""

from __future__ import annotations

from pipeline.providers.ordinalsbot.adapter import OrdinalsBotAdapter
from pipeline.providers.ordinalsbot.spec import SPEC

ADAPTER = OrdinalsBotAdapter()

__all__ = ["ADAPTER", "SPEC", "OrdinalsBotAdapter"]
