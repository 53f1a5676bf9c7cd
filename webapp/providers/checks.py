"""Running a key check: build the request from the catalogue, send it, read the answer.

A ``Checker`` holds everything a check needs (the app's HTTP client, base-URL
overrides, the endpoint policy) and no app context, so checks can run in
worker threads. Nothing here touches the database.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from flask import Flask, current_app

from webapp.providers.catalog import (
    FORBIDDEN,
    INVALID,
    PROVIDER_ERROR,
    QUOTA_EXCEEDED,
    VALID,
    CheckRequest,
    DeepCheck,
    Provider,
)
from webapp.providers.classify import CheckResult, classify, no_answer
from webapp.providers.client import NoAnswer, Outgoing, ProviderHTTP, provider_http
from webapp.providers.endpoints import EndpointError, EndpointPolicy, check_url

_PLACEHOLDER = re.compile(r"\{(\w+)\}")
#: a deep check's answer that replaces the listing's verdict; others leave "valid" standing
_DECISIVE = (VALID, QUOTA_EXCEEDED, INVALID, FORBIDDEN)


def offers_deep_check(provider: Provider) -> bool:
    return provider.deep_check is not None and not provider.quota_visible


#: a dated or numbered snapshot of a model: claude-3-5-haiku-20241022, gpt-4o-mini-2024-07-18,
#: gemini-2.0-flash-001; not another model sharing its name (gpt-4o-mini-tts, -transcribe)
_SNAPSHOT = re.compile(r"-(\d{8}|\d{4}-\d{2}-\d{2}|\d{3}|latest)")


def deep_check_model(deep: DeepCheck, known_models: Iterable[str]) -> str:
    """The first preferred model the key is known to have (itself, else a snapshot of it),
    else the first preferred one."""
    known = list(known_models)
    for wanted in deep.models:
        if wanted in known:
            return wanted
        for model in known:
            if model.startswith(wanted) and _SNAPSHOT.fullmatch(model[len(wanted) :]):
                return model
    return deep.models[0]


def _fill(value: Any, values: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), value)
    if isinstance(value, Mapping):
        return {k: _fill(v, values) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_fill(v, values) for v in value]
    return value


@dataclass(frozen=True)
class Checker:
    http: ProviderHTTP
    base_urls: Mapping[str, str]
    policy: EndpointPolicy
    #: the operator vouches that ``base_urls`` refuse keys as the providers' own hosts do
    base_urls_check_keys: bool = False

    def base_url(self, provider: Provider, config: Mapping[str, str]) -> tuple[str, bool]:
        """The URL to check against and whether a user gave it; raises EndpointError."""
        if provider.base_url_field:
            return check_url(config.get(provider.base_url_field) or "", self.policy), True
        url = self.base_urls.get(provider.id) or provider.base_url
        if not url:
            raise EndpointError(f"No base URL is configured for {provider.name}.")
        return url.rstrip("/"), False

    def unvouched(self, provider: Provider) -> bool:
        """Whether a key let in says nothing of the key until a made-up one is refused: a
        server the user names (which may ask for no key), or one the operator put in place
        of the provider's own host (``PROVIDER_<ID>_BASE_URL``: a gateway, a local model
        server), which may let any key through as well, unless the operator says it does not."""
        if provider.may_skip_auth:
            return True
        if self.base_urls_check_keys:
            return False
        override = (self.base_urls.get(provider.id) or "").rstrip("/")
        return bool(override) and override != (provider.base_url or "").rstrip("/")

    def _outgoing(
        self,
        provider: Provider,
        key: str,
        config: Mapping[str, str],
        check: CheckRequest | DeepCheck,
        path: str,
        body: Any = None,
    ) -> Outgoing:
        base, user_given = self.base_url(provider, config)
        auth = provider.check
        # The key goes in the one header the provider documents, never in the URL.
        value = f"{auth.auth_scheme} {key}" if auth.auth_scheme else key
        headers = {"Accept": "application/json", **auth.headers, auth.auth_header: value}
        params = _fill(dict(auth.params), config) if isinstance(check, CheckRequest) else {}
        return Outgoing(check.method, base + path, headers, params, body, user_given)

    def _send(self, outgoing: Outgoing) -> Any:
        try:
            return self.http.send(outgoing)
        except NoAnswer as failure:
            return failure

    def check(
        self,
        provider: Provider,
        key: str,
        config: Mapping[str, str],
        *,
        deep: bool = False,
        known_models: Iterable[str] = (),
    ) -> CheckResult:
        """The provider's verdict on ``key``; with ``deep``, one tiny inference request too.

        The check's requests share the one timeout: a deep check is still one check.
        """
        with self.http.time_box():
            return self._check(provider, key, config, deep=deep, known_models=known_models)

    def _check(
        self,
        provider: Provider,
        key: str,
        config: Mapping[str, str],
        *,
        deep: bool,
        known_models: Iterable[str],
    ) -> CheckResult:
        try:
            outgoing = self._outgoing(provider, key, config, provider.check, provider.check.path)
        except EndpointError as exc:
            failure = NoAnswer("blocked", f"{exc} Change the {provider.base_url_field}.", 0)
            return no_answer(failure)
        answer = self._send(outgoing)
        if isinstance(answer, NoAnswer):
            return no_answer(answer)
        result = classify(provider, answer, key=key, expect=provider.check.expect)
        # A block recognised as such (a region, an address allowlist) already says nothing
        # of the key: only an answer about the key is tried against a made-up one.
        if self.unvouched(provider) and result.key_judged and result.status in (VALID, FORBIDDEN):
            result = self._confirm_auth(provider, config, result)
        if deep and offers_deep_check(provider) and result.status == VALID:
            return self._deep(provider, key, config, result, known_models)
        return result

    def _confirm_auth(
        self, provider: Provider, config: Mapping[str, str], accepted: CheckResult
    ) -> CheckResult:
        """``accepted`` if the server refuses a made-up key otherwise than this one; if not
        (it accepts that too, refuses it just the same, or gives no clear refusal: no answer
        in time, throttled, an error), whether this key works cannot be told from it, and
        the check says so rather than "valid" or "works but may not do this"."""
        control = "keyhold-control-" + secrets.token_urlsafe(24)
        outgoing = self._outgoing(provider, control, config, provider.check, provider.check.path)
        answer = self._send(outgoing)
        if isinstance(answer, NoAnswer):
            probe = no_answer(answer)
        else:
            probe = classify(provider, answer, key=control, expect=provider.check.expect)
        refused = probe.key_judged and probe.status in (INVALID, FORBIDDEN)
        # A gateway answering 403 to every key it does not know (AWS API Gateway's
        # {"message": "Forbidden"}) answers a mistyped key as it would a working key that may
        # not list models: only a made-up key refused otherwise tells the two apart.
        same_refusal = (
            accepted.status == probe.status == FORBIDDEN and probe.message == accepted.message
        )
        if refused and not same_refusal:
            # Refused (401, or another 403) while this key was let in: keys are checked.
            return accepted
        details = {**accepted.details, "auth_checked": False}
        elapsed = accepted.elapsed_ms + probe.elapsed_ms
        # Not judged, like an outage: a verdict the key had before stands.
        return replace(
            accepted,
            status=PROVIDER_ERROR,
            note=_untold(accepted, probe, same_refusal),
            details=details,
            elapsed_ms=elapsed,
        )

    def _deep(
        self,
        provider: Provider,
        key: str,
        config: Mapping[str, str],
        listing: CheckResult,
        known_models: Iterable[str],
    ) -> CheckResult:
        deep = provider.deep_check
        assert deep is not None
        model = deep_check_model(deep, listing.models or known_models)
        path = deep.path.replace("{model}", quote(model, safe="/"))
        body = _fill(deep.body, {"model": model})
        outgoing = self._outgoing(provider, key, config, deep, path, body)
        answer = self._send(outgoing)
        if isinstance(answer, NoAnswer):
            probe = no_answer(answer)
        else:
            probe = classify(provider, answer, key=key, expect=deep.expect, read_models=False)
        details = {**listing.details, **probe.details, "deep_check_model": model}
        elapsed = listing.elapsed_ms + probe.elapsed_ms
        if probe.status in _DECISIVE and probe.key_judged:
            details["quota_checked"] = probe.status in (VALID, QUOTA_EXCEEDED)
            return replace(probe, models=listing.models, details=details, elapsed_ms=elapsed)
        # Throttled or failed: the listing's "valid" stands, credit stays unknown.
        details["quota_checked"] = False
        note = f"The deep check on {model} could not be completed. {probe.describe()}".strip()
        return replace(listing, note=note, details=details, elapsed_ms=elapsed)


def _untold(accepted: CheckResult, probe: CheckResult, same_refusal: bool) -> str:
    """Why a check of an endpoint that may not check keys could not tell about this key."""
    if same_refusal:
        return (
            "The endpoint refused the key just as it refuses a made-up one "
            f"(HTTP {accepted.http_status}), so whether it knows this key could not be told. "
            "Check the key, and whether the endpoint lets this address in."
        )
    if probe.status == VALID:
        return (
            "The endpoint answered without checking keys: a made-up key was accepted too, "
            "so whether this key works could not be told."
        )
    answered = "accepted the key" if accepted.status == VALID else "refused the key"
    return (
        f"The endpoint {answered}, but did not refuse a made-up one either "
        f"({probe.status.replace('_', ' ')}), so whether it checks keys at all "
        "could not be told. Check again later."
    )


def app_checker(app: Flask | None = None) -> Checker:
    """A checker configured from ``app`` (default: the current app)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    config = app.config
    return Checker(
        http=provider_http(app),
        base_urls=dict(config.get("PROVIDER_BASE_URLS") or {}),
        base_urls_check_keys=bool(config.get("PROVIDER_BASE_URLS_CHECK_KEYS")),
        policy=EndpointPolicy(
            allow_http=bool(config["ALLOW_HTTP_ENDPOINTS"]),
            allow_private=bool(config["ALLOW_PRIVATE_ENDPOINTS"]),
        ),
    )
