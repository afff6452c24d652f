"""SMSOnline: rented numbers that receive activation SMS.

`spec` holds its facts, `adapter` reads its answers, `sandbox` imitates its API.
"""

from __future__ import annotations

from pipeline.providers.smsonline.adapter import SmsOnlineAdapter
from pipeline.providers.smsonline.spec import SPEC

ADAPTER = SmsOnlineAdapter()

__all__ = ["ADAPTER", "SPEC", "SmsOnlineAdapter"]
