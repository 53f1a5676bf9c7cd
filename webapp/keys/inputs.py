"""What a submitted key and its settings must look like, checked before anything else.

The rules live here and nowhere else: forms and the JSON API hand the raw
input to ``clean_input`` and show its field messages.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from flask import current_app

from webapp.keys.errors import InvalidKeyInput, UnknownProvider
from webapp.providers.catalog import Provider, all_providers, get_provider
from webapp.providers.endpoints import EndpointError, EndpointPolicy, check_url

MAX_KEY_LENGTH = 512


def require_provider(provider_id: str) -> Provider:
    provider = get_provider(provider_id)
    if provider is None:
        raise UnknownProvider(f"Unknown provider {provider_id!r}.")
    return provider


def endpoint_policy() -> EndpointPolicy:
    return EndpointPolicy(
        allow_http=current_app.config["ALLOW_HTTP_ENDPOINTS"],
        allow_private=current_app.config["ALLOW_PRIVATE_ENDPOINTS"],
    )


_WHITESPACE = re.compile(r"\s")


def has_invisible(value: str) -> bool:
    """Control, format (zero-width), private-use or unassigned characters."""
    return any(unicodedata.category(ch).startswith("C") for ch in value)


def key_problem(provider: Provider, api_key: str) -> str | None:
    """Why ``api_key`` cannot be a key for ``provider``, or None."""
    if not api_key:
        return "Enter the API key."
    if len(api_key) > MAX_KEY_LENGTH:
        return f"That is longer than any API key ({MAX_KEY_LENGTH} characters at most)."
    if _WHITESPACE.search(api_key):
        return "The key contains spaces or line breaks; paste it again without them."
    if has_invisible(api_key) or not api_key.isascii():
        return "The key contains characters that cannot be part of an API key."
    if not provider.key_matches_format(api_key):
        if wrong := provider.wrong_kind(api_key):
            return wrong
        for other in all_providers():
            # Only a prefix tells providers apart; a bare run of letters could be anybody's.
            if other is not provider and other.key_prefix and other.key_matches_format(api_key):
                return (
                    f"This looks like a key for {other.name}, not for {provider.name}. "
                    f"Expected: {provider.key_format}."
                )
        return (
            f"This does not look like a key for {provider.name}. Expected: {provider.key_format}."
        )
    return None


def clean_input(
    provider: Provider, api_key: str | None, extra: dict[str, Any]
) -> tuple[str, dict[str, str]]:
    """Check a submitted key and its settings; return them cleaned or raise InvalidKeyInput."""
    errors: dict[str, str] = {}
    key = (api_key or "").strip() if isinstance(api_key, str) else ""
    if api_key is not None and not isinstance(api_key, str):
        errors["api_key"] = "The key must be a string."
    elif problem := key_problem(provider, key):
        errors["api_key"] = problem
    config: dict[str, str] = {}
    for spec in provider.extra_fields:
        raw = extra.get(spec.name)
        if raw is not None and not isinstance(raw, str):
            errors[spec.name] = f"{spec.label} must be a string."
            continue
        value = (raw or "").strip() or spec.default
        if not value:
            if spec.required:
                errors[spec.name] = f"Enter the {spec.label.lower()}."
            continue
        if len(value) > spec.max_length:
            errors[spec.name] = f"{spec.label} is too long ({spec.max_length} characters at most)."
        elif _WHITESPACE.search(value):
            errors[spec.name] = (
                f"{spec.label} contains spaces or line breaks; enter it without them."
            )
        elif has_invisible(value):
            errors[spec.name] = f"{spec.label} contains invisible or control characters."
        elif spec.kind == "url":
            try:
                value = check_url(value, endpoint_policy())
            except EndpointError as exc:
                errors[spec.name] = str(exc)
        elif spec.pattern and not re.fullmatch(spec.pattern, value, re.ASCII):
            errors[spec.name] = f"{spec.label} has the wrong format ({spec.help})."
        config[spec.name] = value
    if errors:
        raise InvalidKeyInput("The key was not saved: please correct the marked fields.", errors)
    return key, config
