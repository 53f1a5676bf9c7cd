"""A provider emulator: a real HTTP server on loopback that answers like each provider.

Every provider lives under its own path prefix (``/openai/v1/models``,
``/anthropic/v1/models`` ...), so the app reaches it through the ordinary
base-URL overrides. Bodies, status codes and headers follow
``/work/shared/providers.md``; what the emulator knows about providers is
written here independently of the app's catalogue, so the two check each
other.

The emulator decides by the key it receives: a registered key answers with
its state (``valid``, ``quota_exhausted``, ``forbidden``, ``revoked``, ``leaked``,
``read_only``), an unknown one with that provider's invalid-key answer, no
key with its missing-key answer. Per provider it can be made slow, down,
throttled, out of quota, rude (closing the connection), redirecting,
HTML-speaking, blocking (a region, edge or network block), key-echoing, or a
trickler that sends its status line and headers one byte at a time and never
finishes them. It records every request it receives.
"""

from __future__ import annotations

import gzip
import itertools
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.emulator_answers import ANSWERS, Reply, model_list
from tests.fakekeys import fake_key


@dataclass(frozen=True)
class Spec:
    prefix: str  # the first path segment
    base: str  # what the app appends check paths to, after the prefix
    check: tuple[str, str]  # method and path (after base)
    inference: tuple[str, str] | None  # method and path; {model} matches one segment part
    auth: str  # bearer, x-api-key, goog or api-key
    request_id: str | None = None


SPECS = {
    "openai": Spec(
        "openai", "/v1", ("GET", "/models"), ("POST", "/chat/completions"), "bearer", "x-request-id"
    ),
    "anthropic": Spec(
        "anthropic", "/v1", ("GET", "/models"), ("POST", "/messages"), "x-api-key", "request-id"
    ),
    "gemini": Spec(
        "gemini", "/v1beta", ("GET", "/models"), ("POST", "/models/{model}:generateContent"), "goog"
    ),
    "azure_openai": Spec(
        "azure", "", ("GET", "/openai/models"), None, "api-key", "apim-request-id"
    ),
    "mistral": Spec("mistral", "/v1", ("GET", "/models"), ("POST", "/chat/completions"), "bearer"),
    "groq": Spec(
        "groq",
        "/openai/v1",
        ("GET", "/models"),
        ("POST", "/chat/completions"),
        "bearer",
        "x-request-id",
    ),
    "openrouter": Spec("openrouter", "/api/v1", ("GET", "/key"), None, "bearer"),
    "deepseek": Spec("deepseek", "", ("GET", "/user/balance"), None, "bearer"),
    "xai": Spec("xai", "/v1", ("GET", "/api-key"), ("POST", "/chat/completions"), "bearer"),
    "together": Spec(
        "together", "/v1", ("GET", "/models"), ("POST", "/chat/completions"), "bearer"
    ),
    "cohere": Spec("cohere", "", ("POST", "/v1/check-api-key"), ("POST", "/v2/chat"), "bearer"),
    "huggingface": Spec(
        "huggingface", "/api", ("GET", "/whoami-v2"), None, "bearer", "x-request-id"
    ),
    "custom": Spec("custom", "/v1", ("GET", "/models"), ("POST", "/chat/completions"), "bearer"),
}
BY_PREFIX = {spec.prefix: provider for provider, spec in SPECS.items()}
#: providers whose URL the user types in; the rest have a fixed base URL
USER_ENDPOINT = {"azure_openai", "custom"}
#: states in which a key lists models but inference is refused, with the answer it gets then
SPENT = {
    "quota_exhausted": "quota",
    "spend_limited": "spend_limit",  # Anthropic: past a spend limit set in its Console
    "billing_due": "billing",  # Anthropic: a payment problem (402 billing_error)
}
KEY_STATES = (
    "valid",
    *SPENT,
    "forbidden",
    "revoked",
    "read_only",
    "leaked",
    "disabled",  # xAI: switched off in its console (a 200 saying so)
    "team_blocked",  # xAI: the key's team is blocked (a 200 saying so)
    "disowned",  # Cohere: its check answers 200 with "valid": false
)
MODES = (
    "down",
    "throttled",
    "out_of_quota",
    "close",
    "redirect",
    "html",
    "garbage",
    "echo",  # a careless gateway: the key, unmasked, in its error message and a header
    "echo_models",  # ...or in the "model ids" of a successful answer
    "open",  # a server that asks for no key (a local model server): any key is listed models
    "forbid_others",  # a gateway refusing unknown keys with 403 {"message": "Forbidden"}
    "trickle",  # the status line and headers one byte per ``interval`` seconds, never ending
    "blocked",  # refused before the key is looked at (region, edge or network block)
    "nested",  # a hostile server: a 200 of JSON nested deeper than any parser recurses
    "bad_gzip",  # a broken proxy: says its answer is gzip-compressed, but it is not
    "compressed",  # the usual answer, compressed as the request's Accept-Encoding allows
    "gzip_bomb",  # a hostile server: a few hundred bytes that inflate to BOMB_SIZE
    "brotli",  # a coding nobody asked for ("br"), whatever the request accepted
)
#: what the gzip bomb inflates to: far past the client's cap on an answer
BOMB_SIZE = 64 * 1024 * 1024
#: a trickling answer gives up after this long, so a client that never does cannot keep
#: the emulator's thread forever
TRICKLE_LIMIT = 20.0


@dataclass(frozen=True)
class Received:
    """One request as the emulator saw it."""

    provider: str | None
    method: str
    path: str  # without the query
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    raw_target: str  # the request target exactly as sent, query included


def split_controls(requests: list[Received]) -> tuple[list[Received], list[Received]]:
    """The requests that carried a stored key, and the control requests a check of a server
    that may ask for no key sends after a success, with a made-up key."""
    controls = [r for r in requests if "keyhold-control-" in r.headers.get("authorization", "")]
    return [r for r in requests if r not in controls], controls


@dataclass
class _Behaviour:
    mode: str | None = None
    delay: float = 0.0
    location: str = ""
    retry_after: int = 7
    interval: float = 0.05
    answer: str = "blocked"  # "blocked" mode: which of the provider's refusals to give
    coding: str = ""  # "compressed" mode: this coding ("raw_deflate": no zlib header) whatever
    # the request accepted, instead of the one the request asked for


@dataclass
class Emulator:
    server: ThreadingHTTPServer = field(init=False)
    _keys: dict[tuple[str, str], str] = field(default_factory=dict)
    _behaviour: dict[str, _Behaviour] = field(default_factory=dict)
    _received: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _in_flight: int = 0
    #: the most requests it was answering at once since the last reset
    most_at_once: int = 0

    def __post_init__(self) -> None:
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.emulator = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # -- life cycle --------------------------------------------------------

    def start(self) -> Emulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self._lock:
            self._keys.clear()
            self._behaviour.clear()
            self._received.clear()
            self.most_at_once = 0

    # -- addresses ---------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def base_url(self, provider: str) -> str:
        spec = SPECS[provider]
        return f"{self.url}/{spec.prefix}{spec.base}"

    def base_urls(self) -> dict[str, str]:
        """PROVIDER_BASE_URLS for every fixed-URL provider."""
        return {p: self.base_url(p) for p in SPECS if p not in USER_ENDPOINT}

    def endpoint_config(self, provider: str) -> dict[str, str]:
        """The form fields that point a user-endpoint provider at the emulator."""
        if provider == "azure_openai":
            return {"endpoint": self.base_url(provider), "api_version": "2024-10-21"}
        if provider == "custom":
            return {"base_url": self.base_url(provider)}
        return {}

    # -- control -----------------------------------------------------------

    def register(self, provider: str, key: str | None = None, state: str = "valid") -> str:
        """Make ``key`` (a fresh well-formed one by default) known with ``state``."""
        assert state in KEY_STATES, state
        known = state in ANSWERS[provider] or SPENT.get(state) in ANSWERS[provider]
        assert state in ("valid", "quota_exhausted") or known, state
        key = key or fake_key(provider)
        with self._lock:
            self._keys[(provider, key)] = state
        return key

    def valid_key(self, provider: str) -> str:
        return self.register(provider)

    def set_mode(self, provider: str, mode: str | None, **options: Any) -> None:
        assert mode is None or mode in MODES, mode
        if mode == "out_of_quota" and "quota" not in ANSWERS[provider]:
            raise ValueError(f"{provider} has no documented out-of-credit answer")
        if mode == "blocked" and options.get("answer", "blocked") not in ANSWERS[provider]:
            raise ValueError(f"{provider} has no documented block answer of that name")
        with self._lock:
            behaviour = self._behaviour.setdefault(provider, _Behaviour())
            behaviour.mode = mode
            for name, value in options.items():
                setattr(behaviour, name, value)

    def slow(self, provider: str, seconds: float) -> None:
        with self._lock:
            self._behaviour.setdefault(provider, _Behaviour()).delay = seconds

    def received(self, provider: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self._received if provider is None or r.provider == provider]

    # -- answering -----------------------------------------------------------

    def _record(self, received: Received) -> None:
        with self._lock:
            self._received.append(received)

    def answer(self, req: Received) -> Reply | None:
        """The reply to ``req``; None means: close the connection without one."""
        provider = req.provider
        if provider is None:
            return Reply(404, {"error": "no such emulated provider"})
        spec = SPECS[provider]
        with self._lock:
            behaviour = self._behaviour.get(provider, _Behaviour())
            behaviour = _Behaviour(**vars(behaviour))
            self._in_flight += 1
            self.most_at_once = max(self.most_at_once, self._in_flight)
        try:
            if behaviour.delay:
                time.sleep(behaviour.delay)
            reply = self._answer(provider, spec, behaviour, req)
        finally:
            with self._lock:
                self._in_flight -= 1
        if reply is not None and spec.request_id:
            reply.headers.setdefault(spec.request_id, "req_" + uuid.uuid4().hex[:24])
        if reply is not None and behaviour.mode == "compressed":
            reply = _compressed(reply, behaviour.coding or req.headers.get("accept-encoding", ""))
        return reply

    def _answer(
        self, provider: str, spec: Spec, behaviour: _Behaviour, req: Received
    ) -> Reply | None:
        answers = ANSWERS[provider]
        mode = behaviour.mode
        if mode == "close":
            return None
        if mode == "trickle":
            return Reply(200, "", raw=True, trickle=behaviour.interval)
        if mode == "redirect":
            return Reply(302, "", headers={"Location": behaviour.location}, raw=True)
        if mode == "down":
            return answers.get("down", ANSWERS["openai"]["down"])("")
        if mode == "html":
            return Reply(403, _BLOCK_PAGE, headers={"Content-Type": "text/html"}, raw=True)
        if mode == "blocked":
            return answers[behaviour.answer]("")
        if mode == "nested":
            depth = 100_000
            body = "[" * depth + "]" * depth
            return Reply(200, body, headers={"Content-Type": "application/json"}, raw=True)
        if mode == "gzip_bomb":
            headers = {"Content-Type": "application/json", "Content-Encoding": "gzip, gzip"}
            return Reply(200, _gzip_bomb(), headers=headers)
        if mode == "brotli":
            headers = {"Content-Type": "application/json", "Content-Encoding": "br"}
            return Reply(200, b"\x1b\x0b\x00\xf8%\x82\x82\x02", headers=headers)
        if mode == "bad_gzip":
            headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
            return Reply(200, '{"data": []}', headers=headers, raw=True)
        if mode == "garbage":
            return Reply(
                200,
                "<html>Sign in to the network</html>",
                headers={"Content-Type": "text/html"},
                raw=True,
            )
        route = _route(spec, req)
        if route is None:
            return Reply(404, {"error": {"message": f"Unknown path {req.path}"}})
        if route == "check" and provider == "azure_openai" and "api-version" not in req.query:
            return Reply(404, {"error": {"code": "404", "message": "Resource not found"}})
        if provider == "anthropic" and "anthropic-version" not in req.headers:
            return Reply(
                400,
                {
                    "type": "error",
                    "error": {
                        "type": "invalid_request_error",
                        "message": "anthropic-version: header is required",
                    },
                },
            )
        key = _key_of(spec, req)
        if key is None:
            return answers["missing"]("")
        with self._lock:
            state = self._keys.get((provider, key))
        if mode == "echo_models":
            return Reply(200, model_list("gpt-4o-mini", key, f"ft:{key}:tuned"))
        if mode == "open" and route == "check":
            return answers["valid"](key)
        if mode == "forbid_others" and state is None:
            return Reply(403, {"message": "Forbidden"})  # as AWS API Gateway answers
        if mode == "echo":
            return Reply(
                401,
                {
                    "error": {
                        "message": f"Invalid API key: {key}",
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                    }
                },
                # ...and in its headers, which no code of Keyhold's reads but a library's
                # debug log would write out whole
                {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{key}"'},
            )
        if mode == "throttled":
            reply = answers["throttled"](key)
            reply.headers.setdefault("Retry-After", str(behaviour.retry_after))
            return reply
        if mode == "out_of_quota":
            return answers["quota"](key)
        if state is None:
            return answers["invalid"](key)
        if state in SPENT and route == "inference":
            return answers[SPENT[state]](key)
        if route == "inference":
            return answers["inferred"](key)
        handler = answers.get(state) or answers["valid"]
        return handler(key)


_BLOCK_PAGE = (
    "<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title></head>"
    "<body><h1>Sorry, you have been blocked</h1></body></html>"
)


def _route(spec: Spec, req: Received) -> str | None:
    base = f"/{spec.prefix}{spec.base}"
    if not req.path.startswith(base):
        return None
    rest = req.path[len(base) :]
    if (req.method, rest) == spec.check:
        return "check"
    if spec.inference is not None and req.method == spec.inference[0]:
        head, marker, tail = spec.inference[1].partition("{model}")
        if not marker and rest == head:
            return "inference"
        named = len(rest) > len(head) + len(tail)
        if marker and named and rest.startswith(head) and rest.endswith(tail):
            return "inference"
    return None


def _key_of(spec: Spec, req: Received) -> str | None:
    headers = req.headers
    if spec.auth == "bearer":
        scheme, _, value = headers.get("authorization", "").partition(" ")
        return value if scheme == "Bearer" and value else None
    if spec.auth == "x-api-key":
        return headers.get("x-api-key") or None
    if spec.auth == "goog":
        return headers.get("x-goog-api-key") or (req.query.get("key") or [None])[0]
    if spec.auth == "api-key":
        return headers.get("api-key") or None
    raise AssertionError(spec.auth)


_bomb: list[bytes] = []


def _gzip_bomb() -> bytes:
    """BOMB_SIZE zero bytes, gzipped twice: a few hundred bytes on the wire (built once)."""
    if not _bomb:
        _bomb.append(gzip.compress(gzip.compress(bytes(BOMB_SIZE), 9), 9))
    return _bomb[0]


def _compressed(reply: Reply, accepted: str) -> Reply:
    """``reply`` as a server that compresses would send it: gzip if asked, else deflate
    ("raw_deflate": the bare deflate stream some servers send as "deflate")."""
    codings = {c.split(";")[0].strip().lower() for c in accepted.split(",")}
    payload = reply.payload()
    if "gzip" in codings:
        body, coding = gzip.compress(payload), "gzip"
    elif "deflate" in codings:
        body, coding = zlib.compress(payload), "deflate"
    elif "raw_deflate" in codings:
        packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        body, coding = packer.compress(payload) + packer.flush(), "deflate"
    else:
        return reply
    return Reply(reply.status, body, {**reply.headers, "Content-Encoding": coding})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (timeout tests) breaks the pipe; that is expected


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        emulator: Emulator = self.server.emulator  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        prefix = parts.path.strip("/").split("/", 1)[0]
        req = Received(
            provider=BY_PREFIX.get(prefix),
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            raw_target=self.path,
        )
        emulator._record(req)
        reply = emulator.answer(req)
        if reply is None:
            self.close_connection = True
            return
        if reply.trickle:
            self._trickle(reply.trickle)
            return
        payload = reply.payload()
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if not any(k.lower() == "content-type" for k in reply.headers):
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _trickle(self, interval: float) -> None:
        """A status line and headers that never end, one byte at a time."""
        self.close_connection = True
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Padding: "
        stop = time.monotonic() + TRICKLE_LIMIT
        try:
            for byte in itertools.chain(head, itertools.repeat(ord("a"))):
                if time.monotonic() > stop:
                    return
                self.wfile.write(bytes([byte]))
                time.sleep(interval)
        except OSError:
            pass  # the client gave up, as it should

    do_GET = do_POST = do_PUT = do_DELETE = _handle
