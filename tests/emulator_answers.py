"""What each emulated provider answers, per situation, following ``providers.md``.

``ANSWERS[provider][situation](key)`` gives the reply. Situations: ``valid``
(the check path for a working key), ``invalid``, ``missing`` (no key sent),
``throttled``, ``down``, ``quota`` (the provider's out-of-credit answer, as its
inference path gives it), ``inferred`` (a successful one-token inference),
``blocked`` (a refusal that comes before the key is looked at: a region, edge
or network block),
and key states with an answer of their own (``quota_exhausted`` on the check
path, ``forbidden``, ``revoked``, ``read_only``). Masked keys in messages are
masked the way each provider masks them. Bodies marked [INF] in providers.md
are the documented guesses.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    raw: bool = False  # body is text to send as it is
    trickle: float = 0.0  # > 0: send a head that never ends, one byte every this many seconds

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return self.body.encode() if self.raw else json.dumps(self.body).encode()


Answer = Callable[[str], Reply]


def _fixed(status: int, body: Any, **headers: str) -> Answer:
    return lambda key: Reply(status, body, dict(headers))


def openai_mask(key: str) -> str:
    """First 8 and last 4 characters, the rest starred, same length."""
    return key[:8] + "*" * max(len(key) - 12, 0) + key[-4:]


def _openai_error(message: str, type_: str, code: str | None) -> dict:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def model_list(*ids: str) -> dict:
    return {
        "object": "list",
        "data": [
            {"id": i, "object": "model", "created": 1700000000, "owned_by": "system"} for i in ids
        ],
    }


CHAT_OK = {
    "id": "chatcmpl-emulated",
    "object": "chat.completion",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "length"}
    ],
    "usage": {"prompt_tokens": 8, "completion_tokens": 1, "total_tokens": 9},
}
SERVER_DOWN = _fixed(
    503, _openai_error("The server is overloaded or not ready yet.", "server_error", None)
)
OPENAI_QUOTA = _fixed(
    429,
    _openai_error(
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, read the docs: "
        "https://platform.openai.com/docs/guides/error-codes/api-errors.",
        "insufficient_quota",
        "insufficient_quota",
    ),
)


def _openai_like(models: tuple[str, ...]) -> dict[str, Answer]:
    return {
        "valid": _fixed(200, model_list(*models)),
        "invalid": lambda key: Reply(
            401,
            _openai_error(
                f"Incorrect API key provided: {openai_mask(key)}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                "invalid_api_key",
            ),
        ),
        "missing": _fixed(
            401,
            _openai_error(
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                "invalid_request_error",
                None,
            ),
        ),
        "throttled": _fixed(
            429,
            _openai_error(
                "Rate limit reached for gpt-4o-mini in organization org-XXXX on requests per min "
                "(RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.",
                "requests",
                "rate_limit_exceeded",
            ),
            **{"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "20s"},
        ),
        "down": SERVER_DOWN,
        "quota": OPENAI_QUOTA,
        "inferred": _fixed(200, CHAT_OK),
        "forbidden": _fixed(
            403,
            _openai_error(
                "You have insufficient permissions for this operation. Missing scopes: "
                "api.model.read. Check that you have the correct role in your organization.",
                "invalid_request_error",
                None,
            ),
        ),
        "blocked": _fixed(
            403,
            {
                "error": {
                    "code": "unsupported_country_region_territory",
                    "message": "Country, region, or territory not supported",
                    "param": None,
                    "type": "request_forbidden",
                }
            },
        ),
        # OpenAI's IP allowlist guide gives the status and the code; the message is ours.
        "ip_not_allowed": _fixed(
            401,
            _openai_error(
                "Your IP address is not authorized to make requests to this project.",
                "invalid_request_error",
                "ip_not_authorized",
            ),
        ),
        "revoked": _fixed(
            401,
            _openai_error(
                "The OpenAI account associated with this API key has been deactivated.",
                "invalid_request_error",
                "account_deactivated",
            ),
        ),
    }


def _anthropic_error(status: int, type_: str, message: str, **headers: str) -> Answer:
    def answer(key: str) -> Reply:
        body = {
            "type": "error",
            "error": {"type": type_, "message": message},
            "request_id": "req_" + uuid.uuid4().hex[:24],
        }
        return Reply(status, body, dict(headers))

    return answer


ANTHROPIC = {
    "valid": _fixed(
        200,
        {
            "data": [
                {
                    "type": "model",
                    "id": "claude-haiku-4-5-20251001",
                    "display_name": "Claude Haiku 4.5",
                    "created_at": "2025-10-01T00:00:00Z",
                },
                {
                    "type": "model",
                    "id": "claude-sonnet-4-5-20250929",
                    "display_name": "Claude Sonnet 4.5",
                    "created_at": "2025-09-29T00:00:00Z",
                },
            ],
            "has_more": False,
            "first_id": "claude-haiku-4-5-20251001",
            "last_id": "claude-sonnet-4-5-20250929",
        },
    ),
    "invalid": _anthropic_error(401, "authentication_error", "invalid x-api-key"),
    "missing": _anthropic_error(401, "authentication_error", "x-api-key header is required"),
    "throttled": _anthropic_error(
        429,
        "rate_limit_error",
        "Number of request tokens has exceeded your per-minute rate limit; see the response "
        "headers for current usage.",
        **{"anthropic-ratelimit-requests-remaining": "0"},
    ),
    "down": _anthropic_error(529, "overloaded_error", "Overloaded"),
    "quota": _anthropic_error(
        400,
        "invalid_request_error",
        "Your credit balance is too low to access the Anthropic API. Please go to Plans & "
        "Billing to upgrade or purchase credits.",
    ),
    "spend_limit": _anthropic_error(
        400,
        "invalid_request_error",
        "You have reached your specified API usage limits. You will regain access on "
        "2027-01-01 at 00:00 UTC.",
    ),
    "inferred": _fixed(
        200,
        {
            "id": "msg_emulated",
            "type": "message",
            "role": "assistant",
            "model": "claude-haiku-4-5-20251001",
            "content": [{"type": "text", "text": "Hi"}],
            "stop_reason": "max_tokens",
            "usage": {"input_tokens": 8, "output_tokens": 1},
        },
    ),
    "billing": _anthropic_error(
        402, "billing_error", "There is an issue with your billing details or payment method."
    ),
    "forbidden": _anthropic_error(403, "permission_error", "Permission denied"),
    # The edge's block has a shape of its own: no outer type, no request id.
    "blocked": _fixed(403, {"error": {"type": "forbidden", "message": "Request not allowed"}}),
    "revoked": _anthropic_error(
        400, "invalid_request_error", "This organization has been disabled."
    ),
}


def _google_error(code: int, status: str, message: str, *details: dict) -> dict:
    return {"error": {"code": code, "message": message, "status": status, "details": list(details)}}


def _reason(reason: str) -> dict:
    return {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": "googleapis.com",
        "metadata": {"service": "generativelanguage.googleapis.com"},
    }


def _quota_failure(quota_id: str, retry: str) -> tuple[dict, dict]:
    return (
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
                {
                    "quotaMetric": "generativelanguage.googleapis.com/"
                    "generate_content_free_tier_requests",
                    "quotaId": quota_id,
                }
            ],
        },
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry},
    )


GEMINI = {
    "valid": _fixed(
        200,
        {
            "models": [
                {
                    "name": "models/gemini-2.5-flash-lite",
                    "displayName": "Gemini 2.5 Flash-Lite",
                    "supportedGenerationMethods": ["generateContent", "countTokens"],
                },
                {
                    "name": "models/gemini-2.0-flash",
                    "displayName": "Gemini 2.0 Flash",
                    "supportedGenerationMethods": ["generateContent", "countTokens"],
                },
            ]
        },
    ),
    "invalid": _fixed(
        400,
        _google_error(
            400,
            "INVALID_ARGUMENT",
            "API key not valid. Please pass a valid API key.",
            _reason("API_KEY_INVALID"),
        ),
    ),
    "missing": _fixed(
        403,
        _google_error(
            403,
            "PERMISSION_DENIED",
            "Method doesn't allow unregistered callers (callers without established identity). "
            "Please use API Key or other form of API consumer identity to call this API.",
        ),
    ),
    "throttled": _fixed(
        429,
        _google_error(
            429,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota, please check your plan and billing details.",
            *_quota_failure("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "47s"),
        ),
    ),
    "down": _fixed(503, _google_error(503, "UNAVAILABLE", "The model is overloaded.")),
    "quota": _fixed(
        429,
        _google_error(
            429,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded for metric: generativelanguage.googleapis.com/"
            "generate_content_free_tier_requests, limit: 0, model: gemini-2.5-flash-lite",
            *_quota_failure("GenerateRequestsPerDayPerProjectPerModel-FreeTier", "3600s"),
        ),
    ),
    "inferred": _fixed(
        200,
        {
            "candidates": [
                {
                    "content": {"parts": [{"text": "Hi"}], "role": "model"},
                    "finishReason": "MAX_TOKENS",
                }
            ],
            "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1},
        },
    ),
    "forbidden": _fixed(
        403,
        _google_error(
            403,
            "PERMISSION_DENIED",
            "Generative Language API has not been used in project 411082643095 before or it is "
            "disabled.",
            _reason("SERVICE_DISABLED"),
        ),
    ),
    "blocked": _fixed(
        400,
        {
            "error": {
                "code": 400,
                "message": "User location is not supported for the API use.",
                "status": "FAILED_PRECONDITION",
            }
        },
    ),
    "revoked": _fixed(
        403,
        _google_error(
            403,
            "PERMISSION_DENIED",
            "Permission denied: Consumer 'api_key:AIza' has been suspended.",
            _reason("CONSUMER_SUSPENDED"),
        ),
    ),
    # A key Google found published somewhere: refused for good, with no ErrorInfo reason.
    "leaked": _fixed(
        403,
        {
            "error": {
                "code": 403,
                "message": "Your API key was reported as leaked. Please use another API key.",
                "status": "PERMISSION_DENIED",
            }
        },
    ),
}


def _azure(status: int, code: str, message: str, **headers: str) -> Answer:
    return _fixed(status, {"error": {"code": code, "message": message}}, **headers)


AZURE = {
    "valid": _fixed(
        200,
        {
            "object": "list",
            "data": [
                {
                    "status": "succeeded",
                    "capabilities": {"chat_completion": True, "inference": True},
                    "lifecycle_status": "generally-available",
                    "id": "gpt-4o-mini",
                    "created_at": 1721174400,
                    "object": "model",
                }
            ],
        },
    ),
    "invalid": _azure(
        401,
        "401",
        "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
        "provide a valid key for an active subscription and use a correct regional API endpoint "
        "for your resource.",
    ),
    "missing": _azure(
        401,
        "401",
        "Access denied due to missing subscription key. Make sure to include subscription key "
        "when making requests to an API.",
    ),
    "throttled": _azure(
        429,
        "429",
        "Requests to the Models_List Operation under Azure OpenAI API version 2024-10-21 have "
        "exceeded call rate limit of your current OpenAI S0 pricing tier. Please retry after 7 "
        "seconds.",
    ),
    "down": _azure(503, "ServiceUnavailable", "The service is temporarily unavailable."),
    "blocked": _azure(403, "403", "Access denied due to Virtual Network/Firewall rules."),
    # A resource with local (key) authentication disabled, whatever key comes.
    "local_auth_disabled": _azure(
        403, "AuthenticationTypeDisabled", "Key based authentication is disabled for this resource."
    ),
}

MISTRAL = {
    "valid": _fixed(200, model_list("mistral-small-latest", "open-mistral-nemo")),
    "invalid": _fixed(401, {"detail": "Unauthorized"}),
    "missing": _fixed(401, {"detail": "Unauthorized"}),
    "throttled": _fixed(429, {"message": "Requests rate limit exceeded"}),
    "down": _fixed(
        503,
        {
            "object": "error",
            "message": "Service tier capacity exceeded for this model.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        },
    ),
    # vanna-ai/vanna#177: a spent monthly limit comes back as a plain 429.
    "quota": _fixed(429, {"message": "Requests rate limit exceeded"}),
    "inferred": _fixed(200, CHAT_OK),
}

_GROQ_INVALID = {
    "error": {
        "message": "Invalid API Key",
        "type": "invalid_request_error",
        "code": "invalid_api_key",
    }
}


def _groq_limit(per: str, unit: str) -> dict:
    return {
        "error": {
            "message": f"Rate limit reached for model `llama-3.1-8b-instant` in organization "
            f"`org_01` service tier `on_demand` on tokens per {per} ({unit}): Limit 12000, "
            "Used 11437, Requested 854. Please try again in 11.455s.",
            "type": "tokens",
            "code": "rate_limit_exceeded",
        }
    }


GROQ = {
    "valid": _fixed(200, model_list("llama-3.1-8b-instant", "llama-3.3-70b-versatile")),
    "invalid": _fixed(401, _GROQ_INVALID),
    "missing": _fixed(401, _GROQ_INVALID),
    "throttled": _fixed(429, _groq_limit("minute", "TPM"), **{"x-ratelimit-remaining-tokens": "0"}),
    "down": SERVER_DOWN,
    "quota": _fixed(429, _groq_limit("day", "TPD")),
    "inferred": _fixed(200, CHAT_OK),
    "revoked": _fixed(
        400,
        {
            "error": {
                "message": "Organization has been restricted. Please reach out to support if you "
                "believe this was in error.",
                "type": "invalid_request_error",
                "code": "organization_restricted",
            }
        },
    ),
}


def _openrouter_key(key: str, *, remaining: float, usage: float) -> Reply:
    return Reply(
        200,
        {
            "data": {
                "label": f"{key[:12]}...{key[-3:]}",
                "limit": 100,
                "limit_remaining": remaining,
                "limit_reset": "monthly",
                "usage": usage,
                "usage_monthly": usage,
                "is_free_tier": False,
                "is_management_key": False,
                "is_provisioning_key": False,
                "rate_limit": {"requests": 1000, "interval": "1h"},
            }
        },
    )


OPENROUTER = {
    "valid": lambda key: _openrouter_key(key, remaining=74.5, usage=25.5),
    "quota_exhausted": lambda key: _openrouter_key(key, remaining=0, usage=100),
    "invalid": _fixed(401, {"error": {"message": "User not found.", "code": 401}}),
    "missing": _fixed(401, {"error": {"message": "No auth credentials found", "code": 401}}),
    "throttled": _fixed(
        429,
        {
            "error": {
                "message": "Rate limit exceeded: limit_rpm/global. Please slow down.",
                "code": 429,
                "metadata": {"headers": {"X-RateLimit-Limit": "20", "X-RateLimit-Remaining": "0"}},
            }
        },
    ),
    "down": _fixed(502, {"error": {"message": "Provider returned error", "code": 502}}),
    "quota": _fixed(
        402,
        {
            "error": {
                "message": "Insufficient credits. Add more using "
                "https://openrouter.ai/settings/credits",
                "code": 402,
                "metadata": {"limit_source": "openrouter_credits"},
            }
        },
    ),
}


def _deepseek_error(status: int, message: str, type_: str, code: str) -> Answer:
    return _fixed(
        status, {"error": {"message": message, "type": type_, "param": None, "code": code}}
    )


def _balance(available: bool, total: str) -> Answer:
    return _fixed(
        200,
        {
            "is_available": available,
            "balance_infos": [
                {
                    "currency": "CNY",
                    "total_balance": total,
                    "granted_balance": "0.00",
                    "topped_up_balance": total,
                }
            ],
        },
    )


DEEPSEEK = {
    "valid": _balance(True, "110.00"),
    "quota_exhausted": _balance(False, "0.00"),
    "invalid": lambda key: Reply(
        401,
        {
            "error": {
                "message": f"Authentication Fails, Your api key: ****{key[-4:]} is invalid",
                "type": "authentication_error",
                "param": None,
                "code": "invalid_request_error",
            }
        },
    ),
    "missing": _deepseek_error(
        401,
        "Authentication Fails (auth header format should be Bearer sk-...)",
        "authentication_error",
        "invalid_request_error",
    ),
    "throttled": _deepseek_error(429, "Rate Limit Reached", "rate_limit_error", "rate_limit"),
    "down": _deepseek_error(503, "Server Overloaded", "server_error", "server_error"),
    "quota": _deepseek_error(402, "Insufficient Balance", "unknown_error", "invalid_request_error"),
}


def _xai_key(
    key: str, *, blocked: bool = False, disabled: bool = False, team_blocked: bool = False
) -> Reply:
    return Reply(
        200,
        {
            "redacted_api_key": f"xai-...{key[-4:]}",
            "user_id": "59fbe5f2-040b-46d5-8325-868bb8f23eb2",
            "name": "My API Key",
            "team_id": "5ea6f6bd-7815-4b8a-9135-28b2d7ba6722",
            "acls": ["api-key:model:*", "api-key:endpoint:*"],
            "api_key_id": "ae1e1841-4326-4b36-a8a9-8a1a7237db11",
            "team_blocked": team_blocked,
            "api_key_blocked": blocked,
            "api_key_disabled": disabled,
        },
    )


XAI = {
    "valid": lambda key: _xai_key(key),
    "revoked": lambda key: _xai_key(key, blocked=True),
    "disabled": lambda key: _xai_key(key, disabled=True),
    "team_blocked": lambda key: _xai_key(key, team_blocked=True),
    "invalid": lambda key: Reply(
        400,
        {
            "code": "Client specified an invalid argument",
            "error": f"Incorrect API key provided: {key[:2]}***{key[-2:]}. You can obtain an API "
            "key from https://console.x.ai.",
        },
    ),
    # [INF] no verbatim missing-key body is known; the invalid-key shape is assumed.
    "missing": _fixed(
        400,
        {
            "code": "Client specified an invalid argument",
            "error": "Incorrect API key provided: . You can obtain an API key from "
            "https://console.x.ai.",
        },
    ),
    "throttled": _fixed(  # [INF]
        429, {"code": "Too many requests", "error": "Too many requests. Please slow down."}
    ),
    "down": _fixed(503, {"code": "Unavailable", "error": "The service is currently unavailable."}),
    "quota": _fixed(
        403,
        {
            "code": "The caller does not have permission to execute the specified operation",
            "error": "Your newly created teams doesn't have any credits yet. You can purchase "
            "credits on https://console.x.ai/team/5ea6f6bd.",
        },
    ),
    "inferred": _fixed(200, CHAT_OK),
}

_TOGETHER_INVALID = _openai_error(
    "Invalid API key provided. You can find your API key at "
    "https://api.together.xyz/settings/api-keys.",
    "invalid_request_error",
    "invalid_api_key",
)

TOGETHER = {
    "valid": _fixed(
        200,
        [
            {
                "id": "meta-llama/Llama-3.2-3B-Instruct-Turbo",
                "object": "model",
                "type": "chat",
                "pricing": {"input": 0.06, "output": 0.06},
            },
            {
                "id": "meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo",
                "object": "model",
                "type": "chat",
                "pricing": {"input": 0.18, "output": 0.18},
            },
        ],
    ),
    "invalid": _fixed(401, _TOGETHER_INVALID),
    "missing": _fixed(401, _TOGETHER_INVALID),  # [INF] the same answer
    # Throttling is labelled "credit_limit" too (togethercomputer/MoA#27).
    "throttled": _fixed(
        429,
        _openai_error(
            "You have been rate limited. Your rate limit is 60 queries per minute. Please "
            "navigate to https://api.together.xyz/settings/billing to upgrade to a paid plan.",
            "credit_limit",
            None,
        ),
    ),
    "down": SERVER_DOWN,
    "quota": _fixed(
        402,
        {
            "id": "o3LiXw4-62bZhn-96040daf687810ab",
            **_openai_error(
                "Credit limit exceeded. Please navigate to https://api.together.xyz/settings/"
                "billing to add credit or upgrade your plan.",
                "credit_limit",
                None,
            ),
        },
    ),
    "inferred": _fixed(200, CHAT_OK),
}


def _cohere(status: int, message: str) -> Answer:
    return _fixed(status, {"id": str(uuid.UUID(int=status)), "message": message})


COHERE = {
    "valid": _fixed(200, {"valid": True, "organization_id": "org-1", "owner_id": "owner-1"}),
    "invalid": _cohere(401, "invalid api token"),
    "missing": _cohere(401, "no api key supplied"),
    "throttled": _cohere(
        429, "You are past the per minute request limit, please wait and try again later."
    ),
    "down": _cohere(503, "service unavailable"),
    "quota": _cohere(
        402,
        "Please add or update your payment method at "
        "https://dashboard.cohere.com/billing?tab=payment to continue",
    ),
    "inferred": _fixed(
        200,
        {
            "id": "chat-emulated",
            "finish_reason": "MAX_TOKENS",
            "message": {"role": "assistant", "content": [{"type": "text", "text": "Hi"}]},
            "usage": {"billed_units": {"input_tokens": 1, "output_tokens": 1}},
        },
    ),
    "revoked": _cohere(
        401,
        "Your API key has expired. Please create a production key at dashboard.cohere.com.",
    ),
    # [INF] the check's own answer for a key it does not take: 200 with valid false.
    "disowned": _fixed(200, {"valid": False, "organization_id": None, "owner_id": None}),
}


def _whoami(role: str) -> Answer:
    return _fixed(
        200,
        {
            "type": "user",
            "id": "63dcf661f37111482522cda7",
            "name": "emulated-user",
            "canPay": False,
            "isPro": False,
            "orgs": [],
            "auth": {
                "type": "access_token",
                "accessToken": {"displayName": "keyhold-test", "role": role},
            },
        },
        **{
            "RateLimit": '"api";r=999;t=293',
            "RateLimit-Policy": '"fixed window";"api";q=1000;w=300',
        },
    )


HUGGINGFACE = {
    "valid": _whoami("fineGrained"),
    "read_only": _whoami("read"),
    "invalid": _fixed(401, {"error": "Invalid credentials in Authorization header"}),
    "missing": _fixed(401, {"error": "Invalid username or password."}),
    "throttled": _fixed(  # [INF] body; the headers are documented
        429,
        {"error": "Too Many Requests"},
        **{"RateLimit": '"api";r=0;t=55', "RateLimit-Policy": '"fixed window";"api";q=1000;w=300'},
    ),
    "down": _fixed(503, {"error": "Service Unavailable"}),
}

ANSWERS: dict[str, dict[str, Answer]] = {
    "openai": _openai_like(("gpt-4o-mini", "gpt-4.1-nano", "text-embedding-3-small")),
    "anthropic": ANTHROPIC,
    "gemini": GEMINI,
    "azure_openai": AZURE,
    "mistral": MISTRAL,
    "groq": GROQ,
    "openrouter": OPENROUTER,
    "deepseek": DEEPSEEK,
    "xai": XAI,
    "together": TOGETHER,
    "cohere": COHERE,
    "huggingface": HUGGINGFACE,
    "custom": _openai_like(("local-llama", "local-mistral")),
}
