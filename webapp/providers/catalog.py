"""The supported providers, as data.

One entry per provider: how to recognise its keys, what extra settings it
needs, and the cheapest authenticated request that proves a key works. Facts
come from each provider's documentation (see ``../shared/providers.md`` for
sources); adding a provider is adding an entry here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import MappingProxyType


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
    quota_visible: bool = False  # does the check answer say whether the key can pay?

    @property
    def key_regex(self) -> re.Pattern[str]:
        return _compiled(self.key_pattern)

    def key_matches_format(self, key: str) -> bool:
        return self.key_regex.fullmatch(key) is not None


_cache: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    if pattern not in _cache:
        _cache[pattern] = re.compile(pattern)
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

_ENTRIES = (
    Provider(
        id="openai",
        name="OpenAI",
        base_url="https://api.openai.com/v1",
        key_pattern=r"sk-(?:proj-|svcacct-|service-)?[A-Za-z0-9_-]{20,250}",
        key_format="Starts with sk- (project keys: sk-proj-)",
        key_prefix="sk-proj-",
        docs_url="https://platform.openai.com/api-keys",
    ),
    Provider(
        id="anthropic",
        name="Anthropic",
        base_url="https://api.anthropic.com/v1",
        key_pattern=r"sk-ant-api\d{2}-[A-Za-z0-9_-]{80,120}",
        key_format="Starts with sk-ant-api03-, 108 characters",
        key_prefix="sk-ant-api03-",
        docs_url="https://console.anthropic.com/settings/keys",
        check=CheckRequest(
            path="/models",
            auth_header="x-api-key",
            auth_scheme="",
            headers=_headers(anthropic_version="2023-06-01"),
            params=MappingProxyType({"limit": "1000"}),
        ),
    ),
    Provider(
        id="gemini",
        name="Google Gemini",
        base_url="https://generativelanguage.googleapis.com/v1beta",
        key_pattern=r"AIza[0-9A-Za-z_-]{35}|[AI]Q\.[A-Za-z0-9_.-]{30,120}",
        key_format="Starts with AIza (39 characters) or AQ.",
        key_prefix="AIza",
        docs_url="https://aistudio.google.com/app/apikey",
        check=CheckRequest(
            path="/models",
            auth_header="x-goog-api-key",
            auth_scheme="",
            params=MappingProxyType({"pageSize": "1000"}),
        ),
        models_path="models[].name",
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
    ),
    Provider(
        id="mistral",
        name="Mistral",
        base_url="https://api.mistral.ai/v1",
        key_pattern=r"[A-Za-z0-9]{32}",
        key_format="32 letters and digits",
        docs_url="https://console.mistral.ai/api-keys",
    ),
    Provider(
        id="groq",
        name="Groq",
        base_url="https://api.groq.com/openai/v1",
        key_pattern=r"gsk_[A-Za-z0-9]{52}",
        key_format="Starts with gsk_, 56 characters",
        key_prefix="gsk_",
        docs_url="https://console.groq.com/keys",
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
        quota_visible=True,
    ),
    Provider(
        id="deepseek",
        name="DeepSeek",
        base_url="https://api.deepseek.com",
        key_pattern=r"sk-[0-9a-f]{32}",
        key_format="Starts with sk-, 35 characters",
        key_prefix="sk-",
        docs_url="https://platform.deepseek.com/api_keys",
        check=CheckRequest(path="/user/balance"),
        models_path=None,
        quota_visible=True,
    ),
    Provider(
        id="xai",
        name="xAI",
        base_url="https://api.x.ai/v1",
        key_pattern=r"xai-[0-9A-Za-z_]{80}",
        key_format="Starts with xai-, 84 characters",
        key_prefix="xai-",
        docs_url="https://console.x.ai",
        check=CheckRequest(path="/api-key"),
        models_path=None,
    ),
    Provider(
        id="together",
        name="Together AI",
        base_url="https://api.together.xyz/v1",
        key_pattern=r"tgp_v1_[A-Za-z0-9_-]{43}|[0-9a-f]{64}",
        key_format="Starts with tgp_v1_, 50 characters (older keys: 64 hex)",
        key_prefix="tgp_v1_",
        docs_url="https://api.together.ai/settings/api-keys",
        models_path="[].id",
    ),
    Provider(
        id="cohere",
        name="Cohere",
        base_url="https://api.cohere.com",
        key_pattern=r"[A-Za-z0-9]{40}",
        key_format="40 letters and digits",
        docs_url="https://dashboard.cohere.com/api-keys",
        check=CheckRequest(method="POST", path="/v1/check-api-key"),
        models_path=None,
    ),
    Provider(
        id="huggingface",
        name="Hugging Face",
        base_url="https://huggingface.co/api",
        key_pattern=r"hf_[A-Za-z0-9]{34}",
        key_format="Starts with hf_, 37 characters",
        key_prefix="hf_",
        docs_url="https://huggingface.co/settings/tokens",
        check=CheckRequest(path="/whoami-v2"),
        models_path=None,
    ),
    Provider(
        id="custom",
        name="Custom (OpenAI-compatible)",
        base_url_field="base_url",
        key_pattern=r"[\x21-\x7e]{8,512}",
        key_format="Any key your gateway issues (8 or more visible characters)",
        docs_url="https://platform.openai.com/docs/api-reference/models/list",
        extra_fields=(CUSTOM_BASE_URL,),
    ),
)

PROVIDERS: MappingProxyType[str, Provider] = MappingProxyType({p.id: p for p in _ENTRIES})


def get_provider(provider_id: str) -> Provider | None:
    return PROVIDERS.get(provider_id)


def all_providers() -> tuple[Provider, ...]:
    return _ENTRIES
