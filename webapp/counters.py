"""Counters kept beside Flask-Limiter's decorators, in the same store: access tokens'
budgets (counted before a request reaches its view) and the run-limiting of audit rows for
refusals, so that a flood of refused requests cannot become a flood of database writes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app
from limits.errors import StorageError
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter, RateLimiter

from webapp.extensions import limiter
from webapp.ratelimit import AUDIT_EVERY

log = logging.getLogger(__name__)
T = TypeVar("T")


def limits_on() -> bool:
    return bool(current_app.config.get("RATELIMIT_ENABLED") and limiter.enabled)


def counter_key(scope: str, ident: str) -> tuple[str, ...]:
    """The parts of a counter's key; under RATELIMIT_KEY_PREFIX like every other limit's, so
    instances sharing one Redis database keep apart counts of the same id."""
    prefix = current_app.config.get("RATELIMIT_KEY_PREFIX")
    return (prefix, scope, ident) if prefix else (scope, ident)


class _Fallback:
    """Where token budgets are counted while the shared store cannot be reached: in this
    process alone, as Flask-Limiter does for every other limit (a worker whose first
    requests carry tokens would otherwise fail them). After a failure the store is left
    alone for ``RETRY`` seconds, so an outage does not cost every request a connect."""

    RETRY = 30.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counter: RateLimiter | None = None
        self._down_until = 0.0

    def down(self) -> bool:
        return time.monotonic() < self._down_until

    def failed(self, problem: Exception) -> None:
        with self._lock:
            if not self.down():
                log.warning(
                    "rate-limit store unreachable (%s): token limits counting here alone for %g s",
                    type(problem).__name__,
                    self.RETRY,
                )
            self._down_until = time.monotonic() + self.RETRY

    def counter(self) -> RateLimiter:
        with self._lock:
            if self._counter is None:  # its storage starts a thread: only when needed
                self._counter = FixedWindowRateLimiter(MemoryStorage())
            return self._counter


_FALLBACK = "keyhold_token_limit_fallback"


def counted(count: Callable[[RateLimiter], T]) -> T:
    """``count`` on the app's rate-limit store, or on this process's own while that store
    cannot be reached. Token budgets count in fixed windows, as every other limit does."""
    fallback = current_app.extensions.setdefault(_FALLBACK, _Fallback())
    if not fallback.down():
        storage = limiter.storage
        try:
            return count(FixedWindowRateLimiter(storage))
        except (StorageError, *_storage_errors(storage)) as exc:
            fallback.failed(exc)
    return count(fallback.counter())


def _storage_errors(storage: Any) -> tuple[type[Exception], ...]:
    found = storage.base_exceptions
    return found if isinstance(found, tuple) else (found,)


def first_refusal(scope: str, ident: str) -> bool:
    """Whether a refusal of ``ident`` (who, and at what) is the first of its run: the one
    that gets an audit row, once every AUDIT_EVERY. Every refusal is logged all the same.
    With rate limits off nothing is counted, and every refusal is audited."""
    if not limits_on():
        return True
    key = counter_key(scope, ident)
    return counted(lambda counter: counter.hit(AUDIT_EVERY, "refusal-audit", *key))
