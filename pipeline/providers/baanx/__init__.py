"""Baanx: crypto-card product orders paid in stablecoins.

`spec` holds its facts, `adapter` reads its answers, `sandbox` imitates its API.
"""

from __future__ import annotations

from pipeline.providers.baanx.adapter import BaanxAdapter
from pipeline.providers.baanx.spec import SPEC

ADAPTER = BaanxAdapter()

__all__ = ["ADAPTER", "SPEC", "BaanxAdapter"]
