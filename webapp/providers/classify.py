"""What a provider's answer means for a key.

The order follows ``providers.md`` ("Classifier rules"): no answer is a
network error; a redirect or a body that is not the provider's JSON is a
provider error; then the provider's own markers (``signatures`` in the
catalogue), which override the status code; then the status code.
Everything the provider said is scrubbed of the key, and of masked forms of
it, before it is kept.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

from webapp.db_types import utcnow
from webapp.providers.catalog import (
    FORBIDDEN,
    INVALID,
    NETWORK_ERROR,
    PROVIDER_ERROR,
    QUOTA_EXCEEDED,
    RATE_LIMITED,
    VALID,
    Provider,
    Signature,
)
from webapp.providers.client import Answer, NoAnswer

REDACTED = "[redacted]"
MAX_MESSAGE = 300
MAX_MODELS = 1000
MAX_MODEL_ID = 200
#: JSON values (counted by their separators and openings) an answer may hold to be read:
#: the longest real answer, Together's model list, holds a few tens of thousands. Each value
#: read becomes a Python object of 50 bytes or more, so an answer within the byte cap made of
#: ``{},{},...`` (a few kilobytes gzipped) would otherwise cost some 30 times the cap.
MAX_JSON_VALUES = 200_000
_MESSAGE_PATHS = ("error.message", "error", "message", "detail")
_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "apim-request-id")
_TOKEN = re.compile(r"[^\s\"'<>(),;\[\]{}]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_FRAGMENT = 8  # this many characters of the key in a row are treated as the key


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check; nothing in it can hold the key."""

    status: str
    http_status: int | None = None
    message: str = ""  # the provider's own words, scrubbed
    note: str = ""  # what Keyhold makes of them
    models: tuple[str, ...] | None = None  # None: the answer lists no models
    elapsed_ms: int = 0
    details: Mapping[str, Any] = field(default_factory=dict)
    checked_at: datetime = field(default_factory=utcnow)
    #: False: the provider refused before looking at the key (a region or network block)
    key_judged: bool = True

    @property
    def is_valid(self) -> bool | None:
        """Whether the credential itself is genuine; None when the check could not tell."""
        if not self.key_judged:
            return None
        if self.status in (VALID, FORBIDDEN, QUOTA_EXCEEDED):
            return True
        if self.status == INVALID:
            return False
        return None

    @property
    def keep_validity(self) -> bool:
        """Whether the key's last known validity stands: a throttled check, an outage, no
        answer or a refusal before authentication says nothing new about the key, and must
        not clear a known rejection."""
        return self.is_valid is None

    @property
    def quota_checked(self) -> bool:
        return bool(self.details.get("quota_checked"))

    def describe(self) -> str:
        """One sentence for the user: Keyhold's reading, then the provider's words."""
        parts = [self.note] if self.note else []
        if self.message:
            parts.append(f"The provider said: \u201c{self.message}\u201d")
        return " ".join(parts)


# -- reading JSON -------------------------------------------------------------


def pluck(data: Any, path: str) -> list[Any]:
    """Values at a dotted path; ``name[]`` walks into a list, ``[]`` alone is the body."""
    values = [data]
    for part in path.split(".") if path else ():
        walk = part.endswith("[]")
        name = part[:-2] if walk else part
        found = []
        for value in values:
            if name:
                if not isinstance(value, dict) or name not in value:
                    continue
                value = value[name]
            if walk:
                if isinstance(value, list):
                    found.extend(value)
            else:
                found.append(value)
        values = found
    return values


def has_path(data: Any, path: str) -> bool:
    if path.endswith("[]"):
        return any(isinstance(v, list) for v in pluck(data, path[:-2].rstrip(".")))
    return bool(pluck(data, path))


def provider_message(data: Any) -> str:
    for path in _MESSAGE_PATHS:
        for value in pluck(data, path):
            if isinstance(value, str) and value.strip():
                return value
    return ""


# -- scrubbing ---------------------------------------------------------------


# Compared without regard to case: a server may echo the key upper- or lower-cased, and a
# host name taken from a URL is always lower case.


def _key_fragment_in(token: str, key: str) -> bool:
    token, key = token.casefold(), key.casefold()
    if len(key) < _FRAGMENT:
        return bool(key) and key in token
    return any(token[i : i + _FRAGMENT] in key for i in range(len(token) - _FRAGMENT + 1))


def _runs_of_key(text: str, key: str) -> str:
    """``text`` with every run of _FRAGMENT or more of the key's characters (in any case)
    replaced, word breaks included: a custom key may hold , ; ( ) [ ] { } < > and quotes,
    which split the words the first pass looks at into pieces too short to tell."""
    folded_key = key.casefold()
    covered_to, spans = -1, []
    for i in range(len(text) - _FRAGMENT + 1):
        if text[i : i + _FRAGMENT].casefold() in folded_key:
            if spans and i <= covered_to:
                spans[-1][1] = i + _FRAGMENT
            else:
                spans.append([i, i + _FRAGMENT])
            covered_to = i + _FRAGMENT
    for start, end in reversed(spans):
        text = text[:start] + REDACTED + text[end:]
    return text


def _masked_form_of(token: str, key: str) -> bool:
    if "**" in token:
        return True  # OpenAI's "sk-proj-****abcd", DeepSeek's "****cd15", xAI's "ba***na"
    if "..." in token or "\u2026" in token:
        key = key.casefold()
        pieces = [p for p in re.split(r"\.{2,}|\u2026|\*+", token.casefold()) if len(p) >= 3]
        return any(key.startswith(p) or key.endswith(p.rstrip(".")) for p in pieces)
    return False


def scrub(text: str, key: str) -> str:
    """``text`` without the key, any run of it, or a masked form of it, in any case; cut to
    MAX_MESSAGE characters.

    The words are looked at in turn only until the message is long enough, and a word only
    as far as it could be shown: an answer of megabytes (on a custom endpoint, whoever runs
    it) costs no more than its first few hundred characters.
    """
    if not text:
        return ""
    text = _CONTROL.sub(" ", text)
    if key:
        for form in {key, quote(key, safe="")}:
            text = re.sub(re.escape(form), REDACTED, text, flags=re.IGNORECASE)
    kept: list[str] = []
    length = end = 0
    for match in _TOKEN.finditer(text):
        token = match.group(0)[: MAX_MESSAGE + 1]
        if key and (_masked_form_of(token, key) or _key_fragment_in(token, key)):
            token = REDACTED
        kept += (text[end : match.start()], token)
        length += match.start() - end + len(token)
        end = match.end()
        if length > MAX_MESSAGE:
            break
    else:
        kept.append(text[end:])
    text = "".join(kept)
    if len(key) >= _FRAGMENT:
        # Only as far as could be shown: the gaps between words kept above are not bounded.
        text = _runs_of_key(text[: 2 * MAX_MESSAGE], key)
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "\u2026"


#: how deep a provider's value is kept in ``details``: the facts shown are two levels down
_DETAIL_DEPTH = 4


def _scrub_value(value: Any, key: str, depth: int = 0) -> Any:
    if isinstance(value, str):
        return scrub(value, key)[:200]
    if isinstance(value, bool | int | float) or value is None:
        return value
    if depth >= _DETAIL_DEPTH:
        return None  # nested past anything a fact is read from
    if isinstance(value, list):
        return [_scrub_value(v, key, depth + 1) for v in value[:20]]
    if isinstance(value, dict):
        kept = {}
        for name, item in list(value.items())[:20]:
            # A name is scrubbed like a value (whole, then cut), and an entry whose name held
            # the key is left out: "[redacted]" as a name says nothing worth keeping.
            clean = scrub(str(name), key)
            if REDACTED not in clean or REDACTED in str(name):
                kept[clean[:64]] = _scrub_value(item, key, depth + 1)
        return kept
    return None


# -- classifying ---------------------------------------------------------------


def _matches(signature: Signature, status: int, data: Any, message: str) -> bool:
    if signature.statuses and status not in signature.statuses:
        return False
    values = pluck(data, signature.path) if signature.path else [message]
    for value in values:
        if any(type(value) is type(c) and value == c for c in signature.equals):
            return True
        if isinstance(value, str) and any(c.lower() in value.lower() for c in signature.contains):
            return True
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if signature.at_most is not None and number and value <= signature.at_most:
            return True
    return False


def _by_status(status: int) -> str:
    if 200 <= status < 300:
        return VALID
    return {401: INVALID, 402: QUOTA_EXCEEDED, 403: FORBIDDEN, 429: RATE_LIMITED}.get(
        status, PROVIDER_ERROR
    )


_DEFAULT_NOTES = {
    INVALID: "The provider rejected the key.",
    FORBIDDEN: "The key works but is not allowed to do this.",
    QUOTA_EXCEEDED: "The key works but has no credit left.",
    RATE_LIMITED: "The provider throttled the check; the key's last known state is kept.",
    PROVIDER_ERROR: "The provider could not answer properly, so the key was not judged.",
}


def no_answer(failure: NoAnswer) -> CheckResult:
    details: dict[str, Any] = {"quota_checked": False, "reason": failure.reason}
    if failure.reason == "blocked":
        details["endpoint_blocked"] = True
    return CheckResult(
        NETWORK_ERROR, note=failure.message, elapsed_ms=failure.elapsed_ms, details=details
    )


def _host(answer: Answer) -> str:
    """Where a redirect points, for the message; a Location no URL parser reads is no host."""
    try:
        return urlsplit(answer.headers.get("location", "")).hostname or "another address"
    except ValueError:
        return "another address"


def _finite(text: str) -> float | None:
    value = float(text)
    return value if math.isfinite(value) else None


#: the largest whole number a browser's JSON.parse (a double) still holds exactly
EXACT_INTEGER = 2**53


def _exact(text: str) -> int | None:
    """A whole number a browser reads as sent, else None: Python reads any length exactly,
    and a page formatting one past a float's range (``%.2f``) would fail."""
    if len(text) > 17:  # longer than any number within EXACT_INTEGER: not worth converting
        return None
    value = int(text)
    return value if abs(value) <= EXACT_INTEGER else None


def _json(body: bytes) -> Any:
    """The answer's JSON, where NaN, Infinity, numbers past a float's range and whole numbers
    past what a float holds exactly (which Python would read, and neither browsers nor
    PostgreSQL nor the pages take) are null."""
    return json.loads(body, parse_constant=lambda _: None, parse_float=_finite, parse_int=_exact)


def classify(
    provider: Provider,
    answer: Answer,
    *,
    key: str,
    expect: str,
    read_models: bool = True,
    quota_visible: bool | None = None,
) -> CheckResult:
    """Turn one HTTP answer into a result; ``expect`` is a path every genuine 200 has."""
    status = answer.status
    details: dict[str, Any] = {}
    for name in _REQUEST_ID_HEADERS:
        if answer.headers.get(name):
            details["request_id"] = scrub(answer.headers[name], key)[:100]
            break
    if status == 429 and answer.headers.get("retry-after"):
        details["retry_after"] = scrub(answer.headers["retry-after"], key)[:20]
    quota = provider.quota_visible if quota_visible is None else quota_visible

    def result(outcome: str, note: str = "", message: str = "", **extra: Any) -> CheckResult:
        # Credit was seen only in an answer about the key: not in an outage, a throttle or a
        # refusal, whatever the provider's check could have shown.
        details["quota_checked"] = outcome == QUOTA_EXCEEDED or (quota and outcome == VALID)
        if outcome != VALID and not note:
            note = _DEFAULT_NOTES.get(outcome, "")
            if outcome == PROVIDER_ERROR:
                note = f"{note} (HTTP {status})"
        return CheckResult(
            outcome,
            http_status=status,
            message=scrub(message, key),
            note=note,
            elapsed_ms=answer.elapsed_ms,
            details=details,
            **extra,
        )

    if 300 <= status < 400:
        return result(
            PROVIDER_ERROR,
            f"The provider redirected the check to {scrub(_host(answer), key)}; Keyhold does "
            "not follow redirects, so the key was not sent there.",
        )
    body = answer.body
    if body.count(b",") + body.count(b"[") + body.count(b"{") > MAX_JSON_VALUES:
        return result(
            PROVIDER_ERROR,
            f"The provider answered HTTP {status} with more values than Keyhold reads in "
            "an answer, so the key was not judged.",
        )
    try:
        data = _json(body) if body.strip() else None
    except (ValueError, UnicodeDecodeError, RecursionError):  # nested past Python's limit
        data = None
    if data is None:
        outcome = _by_status(status)
        if outcome in (VALID, FORBIDDEN, PROVIDER_ERROR):
            # A block page from a CDN or proxy is not the provider speaking about the key.
            return result(
                PROVIDER_ERROR,
                f"The provider answered HTTP {status} without the JSON it sends, so the key "
                "was not judged (a network block or an outage page).",
            )
        return result(outcome)

    message = provider_message(data)
    if 200 <= status < 300 and not has_path(data, expect):
        return result(
            PROVIDER_ERROR,
            "The answer did not look like the provider's, so the key was not judged.",
        )
    if 200 <= status < 300:
        for name, path in provider.details.items():
            values = pluck(data, path)
            if values:
                details[name] = _scrub_value(values[0], key)
    for signature in provider.signatures:
        if _matches(signature, status, data, message):
            return result(
                signature.outcome,
                signature.note,
                message,
                models=None,
                key_judged=signature.about_key,
            )
    outcome = _by_status(status)
    models = None
    if outcome == VALID and read_models and provider.models_path:
        models = _models(provider, data, key)
    return result(outcome, "", message, models=models)


def _models(provider: Provider, data: Any, key: str) -> tuple[str, ...]:
    found: list[str] = []
    prefix = provider.models_strip_prefix
    # Ids skipped count too: a list of millions of odd ones is not read to its end.
    for value in pluck(data, provider.models_path or "")[: 4 * MAX_MODELS]:
        if not isinstance(value, str) or not value or len(value) > MAX_MODEL_ID:
            continue
        if prefix and value.startswith(prefix):
            value = value[len(prefix) :]
        if scrub(value, key) != value:
            continue  # an "id" carrying the key is not a model id
        found.append(value)
        if len(found) >= MAX_MODELS:
            break
    return tuple(dict.fromkeys(found))
