"""What the last provider check learnt about a key that may be shown.

A check keeps what the provider said in ``details`` (scrubbed of the key);
pages and the API show only this projection of it: numbers, flags and short
words, whose shape cannot carry a key, and nothing a provider sent in an
unexpected shape (a page must render whatever was stored).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from webapp.providers.classify import EXACT_INTEGER

_WORD = re.compile(r"[A-Za-z_]{1,24}")
_AMOUNT = re.compile(r"-?[0-9]{1,15}(?:\.[0-9]{1,10})?")
_SECONDS = re.compile(r"[0-9]{1,9}")
_CURRENCY = re.compile(r"[A-Z]{3}")


def _number(value: Any) -> bool:
    # NaN and infinity (stored on SQLite before answers were read without them) are not
    # JSON that a browser can read.
    if isinstance(value, float):
        return math.isfinite(value)
    return _integer(value)


def _integer(value: Any) -> bool:
    # Stored before answers were read with that bound: shown only if a page can show it.
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) <= EXACT_INTEGER


def _word(value: Any) -> bool:
    return isinstance(value, str) and _WORD.fullmatch(value) is not None


#: what a check learnt that may be shown, by name in ``details``: only numbers, flags and
#: short words, whose shape cannot carry a key whatever the provider sent
_FACTS: dict[str, Callable[[Any], bool]] = {
    "limit": lambda v: v is None or _number(v),  # OpenRouter: null is no limit
    "limit_remaining": lambda v: v is None or _number(v),
    "limit_reset": lambda v: v is None or _word(v),
    "usage": _number,
    "usage_monthly": _number,
    "is_free_tier": lambda v: isinstance(v, bool),
    "is_available": lambda v: isinstance(v, bool),  # DeepSeek
    "api_key_blocked": lambda v: isinstance(v, bool),  # xAI
    "api_key_disabled": lambda v: isinstance(v, bool),
    "team_blocked": lambda v: isinstance(v, bool),
    "role": _word,  # Hugging Face
}


def _balances(value: Any) -> list[dict[str, str]] | None:
    """DeepSeek's balances, as currency and decimal strings only."""
    if not isinstance(value, list):
        return None
    shown = []
    for item in value:
        if not isinstance(item, dict) or not _CURRENCY.fullmatch(str(item.get("currency"))):
            continue
        amounts = {
            name: item[name]
            for name in ("total_balance", "granted_balance", "topped_up_balance")
            if isinstance(item.get(name), str) and _AMOUNT.fullmatch(item[name])
        }
        shown.append({"currency": item["currency"], **amounts})
    return shown


def facts(details: Mapping[str, Any]) -> dict[str, Any]:
    """The provider-specific facts of the last check that are safe to show."""
    shown = {
        name: details[name] for name, ok in _FACTS.items() if name in details and ok(details[name])
    }
    retry_after = details.get("retry_after")
    if isinstance(retry_after, str) and _SECONDS.fullmatch(retry_after):
        shown["retry_after"] = int(retry_after)
    balances = _balances(details.get("balances"))
    if balances is not None:
        shown["balances"] = balances
    return shown


def last_check(details: Mapping[str, Any]) -> dict[str, Any]:
    """The last check's HTTP status, time, whether it saw the quota, and its facts."""
    http_status, elapsed = details.get("http_status"), details.get("elapsed_ms")
    quota_checked = details.get("quota_checked")
    return {
        "http_status": http_status if _integer(http_status) else None,
        "elapsed_ms": elapsed if _integer(elapsed) else None,
        "quota_checked": quota_checked if isinstance(quota_checked, bool) else None,
        "facts": facts(details),
    }
