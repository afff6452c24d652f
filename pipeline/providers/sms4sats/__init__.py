"""sms4sats: SMS activation numbers and outgoing SMS, paid over Lightning.

`spec` holds its facts, `adapter` reads its answers, `sandbox` imitates its API.
"""

from __future__ import annotations

from pipeline.providers.sms4sats.adapter import Sms4satsAdapter
from pipeline.providers.sms4sats.spec import SPEC

ADAPTER = Sms4satsAdapter()

__all__ = ["ADAPTER", "SPEC", "Sms4satsAdapter"]
