"""Well-formed but fake keys for each provider, in the documented formats."""

from __future__ import annotations

import secrets
import string

ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"


def _rand(n: int, alphabet: str = ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def fake_key(provider: str) -> str:
    makers = {
        "openai": lambda: "sk-proj-" + _rand(74) + "T3BlbkFJ" + _rand(74),
        "anthropic": lambda: "sk-ant-api03-" + _rand(93) + "AA",
        "gemini": lambda: "AIza" + _rand(35),
        "azure_openai": lambda: _rand(32, HEX),
        "mistral": lambda: _rand(32),
        "groq": lambda: "gsk_" + _rand(52),
        "openrouter": lambda: "sk-or-v1-" + _rand(64, HEX),
        "deepseek": lambda: "sk-" + _rand(32, HEX),
        "xai": lambda: "xai-" + _rand(80),
        "together": lambda: "tgp_v1_" + _rand(43),
        "cohere": lambda: _rand(40),
        "huggingface": lambda: "hf_" + _rand(34),
        "custom": lambda: "gw-" + _rand(40),
    }
    return makers[provider]()


#: extra form fields each provider needs, with values that pass the input checks
EXTRA_FIELDS = {
    "azure_openai": {"endpoint": "https://contoso.openai.azure.com", "api_version": "2024-10-21"},
    "custom": {"base_url": "https://llm.example.com/v1"},
}
