"""The supported providers, as data.

One entry per provider: how to recognise its keys, what extra settings it
needs, and the cheapest authenticated request that proves a key works. Facts
come from each provider's documentation (see ``../shared/providers.md`` for
sources); adding a provider is adding an entry here.

How to read an answer is data too: ``signatures`` are the markers that decide
what an answer means before its status code does (Gemini's ``API_KEY_INVALID``
on a 400, Anthropic's exhausted credit on a 400, xAI's blocked-key flags on a
200). ``webapp.providers.classify`` applies them in order, then falls back to
the status code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# What a check can conclude (the ``status`` column of a stored key).
VALID = "valid"
INVALID = "invalid"
FORBIDDEN = "forbidden"
QUOTA_EXCEEDED = "quota_exceeded"
RATE_LIMITED = "rate_limited"
PROVIDER_ERROR = "provider_error"
NETWORK_ERROR = "network_error"
OUTCOMES = (
    VALID,
    INVALID,
    FORBIDDEN,
    QUOTA_EXCEEDED,
    RATE_LIMITED,
    PROVIDER_ERROR,
    NETWORK_ERROR,
)


@dataclass(frozen=True)
class ExtraField:
    """A per-key setting the user gives next to the key (stored unencrypted in ``config``)."""

    name: str
    label: str
    help: str
    kind: str = "text"  # "text" or "url"
    required: bool = True
    default: str = ""
    pattern: str | None = None  # regular expression the value must match
    max_length: int = 512


@dataclass(frozen=True)
class CheckRequest:
    """The key check: ``method base_url+path``, the key sent as ``auth_header``."""

    method: str = "GET"
    path: str = "/models"
    auth_header: str = "Authorization"
    auth_scheme: str = "Bearer"  # "" sends the bare key as the header value
    headers: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    params: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    #: a path that a genuine 200 answer has; without it the answer is not the provider's
    expect: str = "data"


@dataclass(frozen=True)
class Signature:
    """A marker that decides what an answer means, checked before the status code.

    It matches when the status is one of ``statuses`` (any, if empty) and a
    value at ``path`` (the provider's message, if empty) equals one of
    ``equals``, contains one of ``contains`` (case-insensitive), or is a
    number no greater than ``at_most``. ``note`` is said to the user.
    ``about_key`` False: the provider answered before looking at the key (a
    region, edge or network block), so the answer says nothing of it.
    """

    outcome: str
    statuses: tuple[int, ...] = ()
    path: str = ""
    equals: tuple[Any, ...] = ()
    contains: tuple[str, ...] = ()
    at_most: float | None = None
    note: str = ""
    about_key: bool = True


@dataclass(frozen=True)
class DeepCheck:
    """One smallest-possible inference request: the only way some providers show credit.

    ``models`` are tried in order against the key's own model list (the first
    it has wins, else the first one); ``{model}`` in ``path`` and ``body`` is
    replaced by it. ``cost`` is shown to the user before they opt in.
    """

    path: str
    body: MappingProxyType
    models: tuple[str, ...]
    cost: str
    expect: str
    method: str = "POST"


@dataclass(frozen=True)
class WrongKind:
    """Something that looks like the provider's key but cannot be used as one."""

    pattern: str  # matched against the whole key
    message: str  # why, and what to use instead


@dataclass(frozen=True)
class Provider:
    id: str
    name: str
    key_pattern: str
    key_format: str  # what a person is told the key looks like
    docs_url: str
    base_url: str | None = None  # None: the user gives it in ``base_url_field``
    base_url_field: str | None = None
    key_prefix: str = ""  # public prefix kept visible in the masked hint
    check: CheckRequest = field(default_factory=CheckRequest)
    extra_fields: tuple[ExtraField, ...] = ()
    models_path: str | None = "data[].id"  # where the answer lists model ids
    models_strip_prefix: str = ""  # e.g. Gemini names models "models/<id>"
    quota_visible: bool = False  # does the check answer say whether the key can pay?
    signatures: tuple[Signature, ...] = ()
    #: what to keep from a successful answer: detail name -> path
    details: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    deep_check: DeepCheck | None = None
    #: keys of this provider that are not inference keys, told apart before any request
    wrong_kinds: tuple[WrongKind, ...] = ()
    #: a server that may answer its check without asking for a key (a gateway or a local
    #: model server): a key it accepts is confirmed by a wrong key being refused
    may_skip_auth: bool = False

    @property
    def key_regex(self) -> re.Pattern[str]:
        return _compiled(self.key_pattern)

    def key_matches_format(self, key: str) -> bool:
        return self.key_regex.fullmatch(key) is not None

    def wrong_kind(self, key: str) -> str | None:
        """Why ``key`` is the wrong kind of key for this provider, if it is one."""
        for kind in self.wrong_kinds:
            if _compiled(kind.pattern).fullmatch(key):
                return kind.message
        return None


_cache: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    if pattern not in _cache:
        _cache[pattern] = re.compile(pattern, re.ASCII)
    return _cache[pattern]


def _headers(**values: str) -> MappingProxyType:
    return MappingProxyType({k.replace("_", "-"): v for k, v in values.items()})


AZURE_ENDPOINT = ExtraField(
    name="endpoint",
    label="Endpoint",
    help="Your resource's endpoint, e.g. https://my-resource.openai.azure.com",
    kind="url",
)
AZURE_API_VERSION = ExtraField(
    name="api_version",
    label="API version",
    help="The data-plane API version, e.g. 2024-10-21",
    default="2024-10-21",
    pattern=r"\d{4}-\d{2}-\d{2}(-preview)?",
    max_length=32,
)
CUSTOM_BASE_URL = ExtraField(
    name="base_url",
    label="Base URL",
    help="The OpenAI-compatible API root, e.g. https://llm.example.com/v1",
    kind="url",
)

NOT_ABOUT_THE_KEY = "This says nothing about whether the key works."


def _before_auth(note: str, **match: Any) -> Signature:
    """A refusal that comes before the provider looks at the key."""
    return Signature(FORBIDDEN, note=f"{note} {NOT_ABOUT_THE_KEY}", about_key=False, **match)


MISSING_KEY = (
    "The provider says no key reached it, so it said nothing about the key; "
    "a proxy between Keyhold and the provider may have removed it."
)


def _missing_key(*phrases: str, statuses: tuple[int, ...] = (401,)) -> Signature:
    # Keyhold never sends a request without a key, so this answer is about the path, not the key.
    return Signature(PROVIDER_ERROR, statuses=statuses, contains=phrases, note=MISSING_KEY)


def _chat_probe(*models: str, cost: str) -> DeepCheck:
    """An OpenAI-style chat completion asking for a single token."""
    return DeepCheck(
        path="/chat/completions",
        body=MappingProxyType(
            {"model": "{model}", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
        ),
        models=models,
        cost=cost,
        expect="choices",
    )


# OpenAI's answers, which OpenAI-compatible gateways copy.
#: a daily cap (Gemini's requests per day, Groq's tokens per day): the key works and has used
#: up today's allowance; unlike spent credit it comes back by itself
_DAILY = "The key works but has used up its daily quota; it resets within a day."

OPENAI_SIGNATURES = (
    Signature(
        QUOTA_EXCEEDED,
        path="error.code",
        equals=("insufficient_quota", "billing_not_active", "credit_balance_exhausted"),
    ),
    Signature(
        QUOTA_EXCEEDED, path="error.type", equals=("insufficient_quota", "billing_not_active")
    ),
    # A restricted key lacking a scope gets 403 here but 401 on inference: not a bad key.
    Signature(FORBIDDEN, contains=("insufficient permissions", "missing scopes")),
    _before_auth(
        "The provider does not serve the country this server is in.",
        path="error.code",
        equals=("unsupported_country_region_territory",),
    ),
    # A 401 that a project's IP allowlist gives "even if [the request includes] a valid API key".
    _before_auth(
        "The key's project or organisation only takes requests from the addresses on its IP "
        "allowlist, and this server's address is not on it.",
        path="error.code",
        equals=("ip_not_authorized",),
    ),
    _missing_key("didn't provide an api key"),
)

ANTHROPIC_SIGNATURES = (
    # The edge's block ({"error": {"type": "forbidden"}}), unlike a permission_error.
    _before_auth(
        "Anthropic's network edge refused the request (often a region block).",
        statuses=(403,),
        path="error.type",
        equals=("forbidden",),
    ),
    Signature(QUOTA_EXCEEDED, statuses=(400,), contains=("credit balance is too low",)),
    # A spend limit set in the Console, reached: an invalid_request_error like any bad request.
    Signature(
        QUOTA_EXCEEDED,
        statuses=(400,),
        contains=("reached your specified api usage limits",),
        note="The key's workspace or organisation has reached the spend limit set for it in "
        "the Anthropic Console; it works again on the date Anthropic gives, or once the limit "
        "is raised.",
    ),
    Signature(QUOTA_EXCEEDED, path="error.type", equals=("billing_error",)),
    Signature(
        INVALID,
        contains=("organization has been disabled",),
        note="Anthropic has disabled the organisation this key belongs to.",
    ),
    _missing_key("x-api-key header is required"),
)

# Google reports the reason in error.details[].reason; the status code alone misleads.
GEMINI_SIGNATURES = (
    Signature(INVALID, path="error.details[].reason", equals=("API_KEY_INVALID",)),
    # A bare PERMISSION_DENIED (no reason) that would otherwise read as "works, not allowed".
    Signature(
        INVALID,
        statuses=(403,),
        contains=("reported as leaked",),
        note="Google has blocked this key because it was reported as leaked: create a new one.",
    ),
    Signature(
        INVALID,
        path="error.details[].reason",
        equals=("CONSUMER_SUSPENDED",),
        note="Google has suspended this key.",
    ),
    Signature(
        FORBIDDEN,
        path="error.details[].reason",
        contains=("SERVICE_DISABLED", "_BLOCKED"),
        note="The key works but may not use the Gemini API (API not enabled or key restricted).",
    ),
    _missing_key("unregistered callers", statuses=(403,)),
    _before_auth(
        "Gemini is not available here without billing (region or free-tier limits).",
        path="error.status",
        equals=("FAILED_PRECONDITION",),
    ),
    Signature(
        QUOTA_EXCEEDED,
        statuses=(429,),
        path="error.details[].violations[].quotaId",
        contains=("PerDay",),
        note=_DAILY,
    ),
    Signature(QUOTA_EXCEEDED, statuses=(429,), contains=("limit: 0",)),
)

AZURE_SIGNATURES = (
    _before_auth(
        "The resource's network rules do not let this server in.",
        statuses=(403,),
        # "...Virtual Network/Firewall rules.", "Public access is disabled. Please configure
        # private endpoint.", "Traffic is not from an approved private endpoint."
        contains=("virtual network", "private endpoint", "public access is disabled"),
    ),
    _before_auth(
        "The resource has key authentication turned off (it takes Microsoft Entra ID only).",
        statuses=(403,),
        path="error.code",
        equals=("AuthenticationTypeDisabled",),
    ),
    Signature(
        PROVIDER_ERROR,
        statuses=(404,),
        contains=("resource not found",),
        note="Check the endpoint and the API version.",
    ),
    Signature(PROVIDER_ERROR, path="error.code", equals=("DeploymentNotFound",)),
    Signature(PROVIDER_ERROR, statuses=(400,), contains=("api version",)),
    _missing_key("missing subscription key"),
)

_ENTRIES = (
    Provider(
        id="openai",
        name="OpenAI",
        base_url="https://api.openai.com/v1",
        # sk- is shared: Anthropic (sk-ant-), OpenRouter (sk-or-) and DeepSeek (sk- and 32
        # lowercase hex) keys are not OpenAI's, and admin keys (sk-admin-) cannot run models.
        key_pattern=(
            r"sk-(?!ant-|or-|admin-|[0-9a-f]{32}\Z)"
            r"(?:proj-|svcacct-|service-|None-)?[A-Za-z0-9_-]{20,250}"
        ),
        key_format="Starts with sk-proj- (older keys: sk-)",
        wrong_kinds=(
            WrongKind(
                r"sk-admin-.*",
                "This is an OpenAI admin key (sk-admin-): it manages an organisation and "
                "cannot call models. Use a project key (sk-proj-) instead.",
            ),
        ),
        key_prefix="sk-proj-",
        docs_url="https://platform.openai.com/api-keys",
        signatures=OPENAI_SIGNATURES,
        deep_check=_chat_probe(
            "gpt-4o-mini",
            "gpt-4.1-nano",
            cost="one request of a few tokens (list price well under $0.0001)",
        ),
    ),
    Provider(
        id="anthropic",
        name="Anthropic",
        base_url="https://api.anthropic.com/v1",
        key_pattern=r"sk-ant-api\d{2}-[A-Za-z0-9_-]{80,120}",
        key_format="Starts with sk-ant-api03-, 108 characters",
        wrong_kinds=(
            WrongKind(
                r"sk-ant-admin.*",
                "This is an Anthropic Admin API key (sk-ant-admin): it manages an organisation "
                "and cannot call models. Use an API key (sk-ant-api03-) instead.",
            ),
            WrongKind(
                r"sk-ant-oat.*",
                "This is a Claude subscription sign-in token (sk-ant-oat), not an API key. "
                "Create an API key in the Anthropic Console.",
            ),
        ),
        key_prefix="sk-ant-api03-",
        docs_url="https://console.anthropic.com/settings/keys",
        check=CheckRequest(
            path="/models",
            auth_header="x-api-key",
            auth_scheme="",
            headers=_headers(anthropic_version="2023-06-01"),
            params=MappingProxyType({"limit": "1000"}),
        ),
        signatures=ANTHROPIC_SIGNATURES,
        deep_check=DeepCheck(
            path="/messages",
            body=MappingProxyType(
                {
                    "model": "{model}",
                    "max_tokens": 1,
                    "messages": [{"role": "user", "content": "Hi"}],
                }
            ),
            models=("claude-haiku-4-5", "claude-3-5-haiku", "claude-3-haiku"),
            cost="one request of about ten tokens (list price well under $0.0001)",
            expect="content",
        ),
    ),
    Provider(
        id="gemini",
        name="Google Gemini",
        base_url="https://generativelanguage.googleapis.com/v1beta",
        key_pattern=r"AIza[0-9A-Za-z_-]{35}|[AI]Q\.[A-Za-z0-9_.-]{30,120}",
        key_format="Starts with AIza (39 characters) or AQ.",
        wrong_kinds=(
            WrongKind(
                r"ya29\..*",
                "This is a Google OAuth access token (ya29.), not an API key. Create an API "
                "key in Google AI Studio.",
            ),
        ),
        key_prefix="AIza",
        docs_url="https://aistudio.google.com/app/apikey",
        check=CheckRequest(
            path="/models",
            auth_header="x-goog-api-key",
            auth_scheme="",
            params=MappingProxyType({"pageSize": "1000"}),
            expect="models",
        ),
        models_path="models[].name",
        models_strip_prefix="models/",
        signatures=GEMINI_SIGNATURES,
        deep_check=DeepCheck(
            path="/models/{model}:generateContent",
            body=MappingProxyType(
                {
                    "contents": [{"parts": [{"text": "Hi"}]}],
                    "generationConfig": {"maxOutputTokens": 1},
                }
            ),
            models=("gemini-2.5-flash-lite", "gemini-2.0-flash-lite", "gemini-2.0-flash"),
            cost="one request of a few tokens (free tier, or well under $0.0001)",
            expect="candidates",
        ),
    ),
    Provider(
        id="azure_openai",
        name="Azure OpenAI",
        base_url_field="endpoint",
        key_pattern=r"[0-9a-fA-F]{32}|[A-Za-z0-9]{80,90}",
        key_format="32 hexadecimal characters, or 84 letters and digits",
        docs_url="https://learn.microsoft.com/azure/ai-services/openai/reference",
        check=CheckRequest(
            path="/openai/models",
            auth_header="api-key",
            auth_scheme="",
            params=MappingProxyType({"api-version": "{api_version}"}),
        ),
        extra_fields=(AZURE_ENDPOINT, AZURE_API_VERSION),
        signatures=AZURE_SIGNATURES,
    ),
    Provider(
        id="mistral",
        name="Mistral",
        base_url="https://api.mistral.ai/v1",
        key_pattern=r"[A-Za-z0-9]{32}",
        key_format="32 letters and digits",
        docs_url="https://console.mistral.ai/api-keys",
        signatures=(
            # Capacity is Mistral's problem, even when it comes as a 429.
            Signature(PROVIDER_ERROR, contains=("capacity exceeded",)),
            # Its plain 401 also answers two keys that are not wrong: say what to try.
            Signature(
                INVALID,
                statuses=(401,),
                contains=("unauthorized",),
                note="A key created in the last few minutes may not be active yet: check it "
                "again shortly. A Codestral key works only at codestral.mistral.ai, not with "
                "Mistral's main API.",
            ),
        ),
        deep_check=_chat_probe(
            "mistral-small-latest",
            "open-mistral-nemo",
            cost="one request of a few tokens (list price well under $0.0001)",
        ),
    ),
    Provider(
        id="groq",
        name="Groq",
        base_url="https://api.groq.com/openai/v1",
        key_pattern=r"gsk_[A-Za-z0-9]{52}",
        key_format="Starts with gsk_, 56 characters",
        key_prefix="gsk_",
        docs_url="https://console.groq.com/keys",
        signatures=(
            Signature(
                INVALID,
                path="error.code",
                equals=("organization_restricted",),
                note="Groq has restricted the organisation this key belongs to.",
            ),
            Signature(QUOTA_EXCEEDED, statuses=(429,), contains=("per day",), note=_DAILY),
        ),
        deep_check=_chat_probe(
            "llama-3.1-8b-instant",
            "gemma2-9b-it",
            cost="one request of a few tokens (free tier, or well under $0.0001)",
        ),
    ),
    Provider(
        id="openrouter",
        name="OpenRouter",
        base_url="https://openrouter.ai/api/v1",
        key_pattern=r"sk-or-v1-[0-9a-f]{64}",
        key_format="Starts with sk-or-v1-, 73 characters",
        key_prefix="sk-or-v1-",
        docs_url="https://openrouter.ai/settings/keys",
        check=CheckRequest(path="/key"),
        models_path=None,
        # /key shows the key's own cap (limit_remaining), not the account's balance (that needs
        # a management key), so a key with room under its cap may still find no credit.
        quota_visible=False,
        signatures=(
            Signature(QUOTA_EXCEEDED, statuses=(403,), contains=("key limit exceeded",)),
            Signature(
                QUOTA_EXCEEDED,
                statuses=(200,),
                path="data.limit_remaining",
                at_most=0,
                note="The key has used up its credit limit.",
            ),
            Signature(
                FORBIDDEN,
                statuses=(200,),
                path="data.is_management_key",
                equals=(True,),
                note="This is a management key; it cannot run models.",
            ),
            Signature(
                FORBIDDEN,
                statuses=(200,),
                path="data.is_provisioning_key",
                equals=(True,),
                note="This is a provisioning key; it cannot run models.",
            ),
            _missing_key("no auth credentials", "no cookie auth credentials"),
        ),
        details=MappingProxyType(
            {
                "limit": "data.limit",
                "limit_remaining": "data.limit_remaining",
                "limit_reset": "data.limit_reset",
                "usage": "data.usage",
                "usage_monthly": "data.usage_monthly",
                "is_free_tier": "data.is_free_tier",
            }
        ),
    ),
    Provider(
        id="deepseek",
        name="DeepSeek",
        base_url="https://api.deepseek.com",
        key_pattern=r"sk-[0-9a-f]{32}",
        key_format="Starts with sk-, 35 characters",
        key_prefix="sk-",
        docs_url="https://platform.deepseek.com/api_keys",
        check=CheckRequest(path="/user/balance", expect="is_available"),
        models_path=None,
        quota_visible=True,
        signatures=(
            Signature(
                QUOTA_EXCEEDED,
                statuses=(200,),
                path="is_available",
                equals=(False,),
                note="The account's balance cannot pay for requests.",
            ),
            _missing_key("auth header format"),
        ),
        details=MappingProxyType({"is_available": "is_available", "balances": "balance_infos"}),
    ),
    Provider(
        id="xai",
        name="xAI",
        base_url="https://api.x.ai/v1",
        key_pattern=r"xai-[0-9A-Za-z_]{80}",
        key_format="Starts with xai-, 84 characters",
        key_prefix="xai-",
        docs_url="https://console.x.ai",
        check=CheckRequest(path="/api-key", expect="api_key_id"),
        models_path=None,
        signatures=(
            # xAI answers a bad key with 400, not 401.
            Signature(INVALID, statuses=(400, 401), contains=("incorrect api key",)),
            Signature(QUOTA_EXCEEDED, statuses=(403, 429), contains=("credits", "spending limit")),
            Signature(
                INVALID,
                statuses=(200,),
                path="api_key_blocked",
                equals=(True,),
                note="xAI has blocked this key.",
            ),
            Signature(
                INVALID,
                statuses=(200,),
                path="api_key_disabled",
                equals=(True,),
                note="This key is disabled in the xAI console.",
            ),
            Signature(
                INVALID,
                statuses=(200,),
                path="team_blocked",
                equals=(True,),
                note="xAI has blocked the team this key belongs to.",
            ),
        ),
        details=MappingProxyType(
            {
                "api_key_blocked": "api_key_blocked",
                "api_key_disabled": "api_key_disabled",
                "team_blocked": "team_blocked",
                "acls": "acls",
            }
        ),
        deep_check=_chat_probe(
            "grok-4-fast-non-reasoning",
            "grok-3-mini",
            cost="one request of a few tokens (list price well under $0.0001)",
        ),
    ),
    Provider(
        id="together",
        name="Together AI",
        base_url="https://api.together.xyz/v1",
        key_pattern=r"tgp_v1_[A-Za-z0-9_-]{43}|[0-9a-f]{64}",
        key_format="Starts with tgp_v1_, 50 characters (older keys: 64 hex)",
        key_prefix="tgp_v1_",
        docs_url="https://api.together.ai/settings/api-keys",
        check=CheckRequest(expect="[]"),
        models_path="[].id",
        # A 429 is labelled "credit_limit" too; only the status tells throttling from credit.
        signatures=(Signature(FORBIDDEN, contains=("build tier",)),),
        deep_check=_chat_probe(
            "meta-llama/Llama-3.2-3B-Instruct-Turbo",
            "meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo",
            cost="one request of a few tokens (list price well under $0.0001)",
        ),
    ),
    Provider(
        id="cohere",
        name="Cohere",
        base_url="https://api.cohere.com",
        key_pattern=r"[A-Za-z0-9]{40}",
        key_format="40 letters and digits",
        docs_url="https://dashboard.cohere.com/api-keys",
        check=CheckRequest(method="POST", path="/v1/check-api-key", expect="valid"),
        models_path=None,
        signatures=(
            Signature(INVALID, statuses=(200,), path="valid", equals=(False,)),
            # The trial key's monthly cap is spent credit, not throttling.
            Signature(QUOTA_EXCEEDED, statuses=(429,), contains=("/ month",)),
            _missing_key("no api key supplied"),
        ),
        deep_check=DeepCheck(
            path="/v2/chat",
            body=MappingProxyType(
                {
                    "model": "{model}",
                    "messages": [{"role": "user", "content": "Hi"}],
                    "max_tokens": 1,
                }
            ),
            models=("command-r7b-12-2024", "command-r-08-2024"),
            cost="one request of a few tokens (trial keys: one of their monthly calls)",
            expect="message",
        ),
    ),
    Provider(
        id="huggingface",
        name="Hugging Face",
        base_url="https://huggingface.co/api",
        key_pattern=r"hf_[A-Za-z0-9]{34}",
        key_format="Starts with hf_, 37 characters",
        key_prefix="hf_",
        docs_url="https://huggingface.co/settings/tokens",
        check=CheckRequest(path="/whoami-v2", expect="auth"),
        models_path=None,
        signatures=(_missing_key("invalid username or password"),),
        details=MappingProxyType({"role": "auth.accessToken.role", "account_type": "type"}),
    ),
    Provider(
        id="custom",
        name="Custom (OpenAI-compatible)",
        base_url_field="base_url",
        key_pattern=r"[\x21-\x7e]{8,512}",
        key_format="Any key your gateway issues (8 or more visible characters)",
        docs_url="https://platform.openai.com/docs/api-reference/models/list",
        extra_fields=(CUSTOM_BASE_URL,),
        signatures=OPENAI_SIGNATURES,
        may_skip_auth=True,
    ),
)

PROVIDERS: MappingProxyType[str, Provider] = MappingProxyType({p.id: p for p in _ENTRIES})


def get_provider(provider_id: str) -> Provider | None:
    return PROVIDERS.get(provider_id)


def provider_name(provider_id: str) -> str:
    """What people call the provider ("Azure OpenAI"), for messages; the id if unknown."""
    provider = PROVIDERS.get(provider_id)
    return provider.name if provider is not None else provider_id


def all_providers() -> tuple[Provider, ...]:
    return _ENTRIES
