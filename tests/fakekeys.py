"""Well-formed but fake keys for each provider, in the documented formats, and near misses."""

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


def near_misses(provider: str) -> list[str]:
    """Keys that are almost ``provider``'s: a character short or over, a wrong letter in the
    prefix, a character outside the alphabet, another kind of key of the same provider."""
    key = fake_key(provider)
    outside = key[:-5] + "!" + key[-4:]  # a character no key of theirs has
    misses = {
        "openai": [
            "sk-admin-" + _rand(124),
            "sk-" + _rand(19),
            "sk_proj-" + key[8:],
            "sk-proj-" + _rand(11),
        ],
        "anthropic": [
            "sk-ant-admin01-" + _rand(91) + "AA",
            "sk-ant-oat01-" + _rand(93) + "AA",
            "sk-ant-api03-" + _rand(40),
            "sk-ant-" + key[13:],
        ],
        "gemini": ["AIza" + _rand(34), "AIza" + _rand(36), "Aiza" + key[4:], "ya29." + _rand(60)],
        "azure_openai": [_rand(31, HEX), _rand(33, HEX), _rand(60)],
        "mistral": [_rand(31), _rand(33)],
        "groq": ["gsk_" + _rand(51), "gsk_" + _rand(53), "gsk-" + key[4:], "GSK_" + key[4:]],
        "openrouter": [
            "sk-or-v1-" + _rand(63, HEX),
            "sk-or-v1-" + _rand(64, "GHIJKLMNOPQRSTUVWXYZ"),
            "sk-or-" + key[9:],
        ],
        "deepseek": ["sk-" + _rand(31, HEX), "sk-" + _rand(33, HEX), "sk-" + key[3:].upper()],
        "xai": ["xai-" + _rand(79), "xai-" + _rand(81), "xai_" + key[4:]],
        "together": ["tgp_v1_" + _rand(42), "tgp_v2_" + key[7:], _rand(63, HEX)],
        "cohere": [_rand(39), _rand(41)],
        "huggingface": ["hf_" + _rand(33), "hf_" + _rand(35), "hf-" + key[3:]],
        "custom": ["gw-1234", "short"],  # only too short: any visible characters will do
    }[provider]
    return misses if provider == "custom" else [outside, *misses]


#: extra form fields each provider needs, with values that pass the input checks
EXTRA_FIELDS = {
    "azure_openai": {"endpoint": "https://contoso.openai.azure.com", "api_version": "2024-10-21"},
    "custom": {"base_url": "https://llm.example.com/v1"},
}
