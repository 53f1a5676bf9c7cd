"""The one HTTP client that talks to providers.

Each app gets one ``ProviderHTTP`` on first use: two pooled httpx clients,
one for the catalogue's fixed hosts (and the operator's overrides), and one
for endpoints users typed in (Azure, custom), whose connections go through a
resolver that refuses loopback, private and link-local addresses unless the
operator allows them. The check happens where the socket is opened, on the
address actually used, so a name that resolves somewhere else by the time
of the request (DNS rebinding) gains nothing. Both connect through
``webapp.providers.network``, which holds every step of a check (resolving,
connecting, TLS, each read and write) to one deadline: the total timeout is
a total, however slowly the other end answers.

Redirects are never followed: the key goes to the host that was configured
and nowhere else. Proxies and ``.netrc`` from the environment are ignored
for the same reason. Nothing here logs or raises the key: the request
headers live only inside ``send``.
"""

from __future__ import annotations

import errno
import socket
import ssl
import threading
import time
import weakref
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
from flask import Flask

from webapp.providers.network import BlockedAddress, DeadlineBackend, current_deadline, deadline

MAX_BODY_BYTES = 8 * 1024 * 1024  # Together's full model list is well under this
USER_AGENT = "Keyhold key check"
#: The content codings Keyhold asks for and undoes itself, within MAX_BODY_BYTES (httpx would
#: inflate a whole received chunk at once: a few hundred bytes can hold gigabytes).
ACCEPT_ENCODING = "gzip, deflate"
_MAX_CODINGS = 2
_EXTENSION = "keyhold_provider_http"
_build_lock = threading.Lock()


class _Transport(httpx.HTTPTransport):
    def __init__(self, *, ssl_context: ssl.SSLContext, limits: httpx.Limits, guarded: bool):
        super().__init__(verify=ssl_context, trust_env=False, limits=limits)
        # httpx does not take a network backend, so the pool it built is swapped for one
        # that keeps every step within the check's deadline (httpx is pinned; tests cover
        # this path) and, for user-given endpoints, connects through the address guard.
        self._pool.close()
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=DeadlineBackend(guarded=guarded),
        )


@dataclass(frozen=True)
class Outgoing:
    """One request to a provider. ``headers`` hold the key, so they never show in a repr."""

    method: str
    url: str
    headers: Mapping[str, str] = field(repr=False)
    params: Mapping[str, str] = field(default_factory=dict)
    json: Any = field(default=None, repr=False)
    user_endpoint: bool = False  # a URL a user typed in: connect through the guard

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "the provider"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    elapsed_ms: int


class NoAnswer(Exception):
    """No HTTP answer came back; ``reason`` is timeout, connect, blocked, closed or protocol."""

    def __init__(self, reason: str, message: str, elapsed_ms: int) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.elapsed_ms = elapsed_ms


def _root_cause(exc: BaseException) -> BaseException:
    for _ in range(10):
        inner = exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
    return exc


def _connect_failure(exc: httpx.ConnectError, host: str) -> tuple[str, str]:
    if isinstance(exc.__cause__, BlockedAddress):
        return "blocked", str(exc.__cause__).capitalize() + "."
    root = _root_cause(exc)
    if isinstance(root, ssl.SSLError):
        return "connect", f"The secure connection to {host} failed (TLS: {root.reason or 'error'})."
    if isinstance(root, socket.gaierror) or "could not be resolved" in str(exc):
        return "connect", f"The name {host} could not be resolved."
    if (
        isinstance(root, ConnectionRefusedError)
        or getattr(root, "errno", None) == errno.ECONNREFUSED
    ):
        return "connect", f"{host} refused the connection."
    return "connect", f"Could not connect to {host}."


class _Oversized(Exception):
    pass


class _Undecodable(Exception):
    pass


class _Inflater:
    """Undoes one content coding, never producing more than MAX_BODY_BYTES in all."""

    def __init__(self, coding: str) -> None:
        self._gzip = coding in ("gzip", "x-gzip")
        self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS if self._gzip else zlib.MAX_WBITS)
        self._started = False
        self._produced = 0

    def feed(self, data: bytes) -> bytes:
        room = MAX_BODY_BYTES - self._produced
        try:
            out = self._zlib.decompress(data, room + 1)
        except zlib.error:
            if self._gzip or self._started:
                raise _Undecodable from None
            # "deflate" is meant to be zlib-wrapped; some servers send the bare stream.
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
            try:
                out = self._zlib.decompress(data, room + 1)
            except zlib.error:
                raise _Undecodable from None
        self._started = self._started or bool(data)
        if len(out) > room:
            raise _Oversized
        self._produced += len(out)
        return out


def _inflaters(content_encoding: str) -> list[_Inflater]:
    """The decoders for a ``Content-Encoding``, in the order they are undone."""
    codings = [c.strip().lower() for c in content_encoding.split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if len(codings) > _MAX_CODINGS or any(c not in ("gzip", "x-gzip", "deflate") for c in codings):
        raise _Undecodable
    return [_Inflater(c) for c in reversed(codings)]


def _read_body(response: httpx.Response) -> bytes:
    """The answer's body, decoded, or _Oversized / _Undecodable."""
    inflaters = _inflaters(response.headers.get("content-encoding", ""))
    chunks, size = [], 0
    for raw in response.iter_raw():
        chunk = raw
        for inflater in inflaters:
            chunk = inflater.feed(chunk)
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _Oversized
        chunks.append(chunk)
    return b"".join(chunks)


class ProviderHTTP:
    """Pooled, thread-safe clients with the app's timeouts; build one per app."""

    def __init__(
        self,
        *,
        connect_timeout: float,
        timeout: float,
        allow_private: bool,
        max_connections: int = 20,
    ) -> None:
        self.timeout = timeout
        self._timeouts = httpx.Timeout(timeout, connect=connect_timeout)
        ssl_context = httpx.create_ssl_context()
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._clients = {
            guarded: httpx.Client(
                transport=_Transport(ssl_context=ssl_context, limits=limits, guarded=guarded),
                timeout=self._timeouts,
                follow_redirects=False,
                trust_env=False,
                headers={"User-Agent": USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING},
            )
            for guarded in {False, not allow_private}
        }
        self._guard_user_endpoints = not allow_private

    @contextmanager
    def time_box(self) -> Iterator[None]:
        """Every request made inside shares one deadline: the timeout counts for the whole."""
        with deadline(time.monotonic() + self.timeout):
            yield

    def send(self, outgoing: Outgoing) -> Answer:
        """Make the request; return the answer or raise NoAnswer. The total time is bounded."""
        client = self._clients[outgoing.user_endpoint and self._guard_user_endpoints]
        host = outgoing.host
        start = time.monotonic()
        outer = current_deadline()  # a check of several requests shares its time
        ends = start + self.timeout if outer is None else min(start + self.timeout, outer)

        def elapsed() -> int:
            return int((time.monotonic() - start) * 1000)

        def timed_out() -> str:
            # The connect timeout only speaks when the deadline was still some way off.
            if time.monotonic() < ends - 0.05:
                return f"Could not connect to {host} within {self._timeouts.connect:g} s."
            return f"{host} did not answer within {self.timeout:g} s."

        try:
            with (
                deadline(ends),
                client.stream(
                    outgoing.method,
                    outgoing.url,
                    headers=dict(outgoing.headers),
                    params=dict(outgoing.params) or None,  # {} would drop a query in the URL
                    json=outgoing.json,
                    # Waiting for a free pooled connection counts against the deadline too.
                    timeout=httpx.Timeout(
                        self.timeout,
                        connect=self._timeouts.connect,
                        pool=max(ends - time.monotonic(), 0.001),
                    ),
                ) as response,
            ):
                body = _read_body(response)
                headers = {k.lower(): v for k, v in response.headers.items()}
                return Answer(response.status_code, headers, body, elapsed())
        except _Oversized:
            raise NoAnswer("protocol", f"{host} sent an oversized answer.", elapsed()) from None
        except _Undecodable:
            # A broken proxy or server: "Content-Encoding: gzip" on a body that is not, or a
            # coding Keyhold did not ask for.
            message = f"{host} sent an answer that could not be decoded."
            raise NoAnswer("protocol", message, elapsed()) from None
        except httpx.ConnectTimeout:
            raise NoAnswer("timeout", timed_out(), elapsed()) from None
        except httpx.TimeoutException:
            message = f"{host} did not answer within {self.timeout:g} s."
            raise NoAnswer("timeout", message, elapsed()) from None
        except httpx.ConnectError as exc:
            reason, message = _connect_failure(exc, host)
            raise NoAnswer(reason, message, elapsed()) from None
        except httpx.RemoteProtocolError:
            message = f"{host} closed the connection without a complete answer."
            raise NoAnswer("closed", message, elapsed()) from None
        except (httpx.HTTPError, httpx.InvalidURL, UnicodeError):
            # UnicodeError: a host name the IDNA encoder refuses, stored before it was checked.
            message = f"The request to {host} failed before an answer came back."
            raise NoAnswer("protocol", message, elapsed()) from None

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


def provider_http(app: Flask) -> ProviderHTTP:
    """The app's client, built on first use and closed when the app goes away or at exit."""
    http = app.extensions.get(_EXTENSION)
    if http is None:
        with _build_lock:
            http = app.extensions.get(_EXTENSION)
            if http is None:
                config = app.config
                http = ProviderHTTP(
                    connect_timeout=float(config["VALIDATION_CONNECT_TIMEOUT"]),
                    timeout=float(config["VALIDATION_TIMEOUT"]),
                    allow_private=bool(config["ALLOW_PRIVATE_ENDPOINTS"]),
                    max_connections=max(10, 2 * int(config["VALIDATION_MAX_WORKERS"])),
                )
                app.extensions[_EXTENSION] = http
                weakref.finalize(app, http.close)
    return http


def close_provider_http(app: Flask) -> None:
    """Close the app's client now (tests and shutdown); the next use builds a new one."""
    http = app.extensions.pop(_EXTENSION, None)
    if http is not None:
        http.close()
