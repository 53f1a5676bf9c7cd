"""The socket layer under the provider client: every step of a check inside one deadline.

httpx's timeouts bound each network operation on its own. A server that sends
its status line one byte at a time restarts the read timeout with every byte,
and can hold a check (and the thread running it) for as long as it likes;
``getaddrinfo`` has no timeout at all, and each address of a name gets the
full connect timeout. Here name resolution, the connect attempts, the TLS
handshake and every read and write get what is left of the check's deadline
(and no more than their own timeout), so a check ends when its time is up
whatever the other end does.

The deadline lives in a context variable set around each check: connections
are pooled and reused by later checks, so a stream looks it up on every
operation instead of remembering the one it was opened under.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpcore

from webapp.providers.endpoints import is_public_address

_deadline: ContextVar[float | None] = ContextVar("keyhold_check_deadline", default=None)


class BlockedAddress(httpcore.ConnectError):
    """A user-given host resolved to an address Keyhold may not connect to."""


@contextmanager
def deadline(at: float) -> Iterator[None]:
    """Run the block with every network step ending by ``at`` (monotonic); nesting keeps
    the earlier deadline, so a check's requests share the check's time."""
    outer = _deadline.get()
    token = _deadline.set(at if outer is None else min(at, outer))
    try:
        yield
    finally:
        _deadline.reset(token)


def current_deadline() -> float | None:
    """The deadline the running check must keep (monotonic), if any."""
    return _deadline.get()


def _time_left(timeout: float | None, expired: type[Exception]) -> float | None:
    """What one step may take: its own timeout, cut to what is left of the deadline."""
    at = _deadline.get()
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise expired("the check ran out of time")
    return left if timeout is None else min(timeout, left)


def _resolve(host: str, port: int, timeout: float | None) -> list[str]:
    """The addresses of ``host``, or ConnectTimeout once ``timeout`` has passed."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    found: dict[str, Any] = {}
    done = threading.Event()

    def lookup() -> None:
        try:
            found["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except Exception as exc:  # handed to the waiting thread
            found["error"] = exc
        finally:
            done.set()

    # getaddrinfo cannot be interrupted: a slow lookup is left to finish on its own
    # (the system resolver gives up eventually) while the check moves on.
    threading.Thread(target=lookup, name="keyhold-resolve", daemon=True).start()
    if not done.wait(timeout):
        raise httpcore.ConnectTimeout(f"resolving {host} took too long")
    error = found.get("error")
    if isinstance(error, socket.gaierror | UnicodeError):
        raise httpcore.ConnectError(f"the name {host} could not be resolved") from error
    if error is not None:
        raise httpcore.ConnectError(f"the name {host} could not be resolved: {error}") from error
    return list(dict.fromkeys(info[4][0].split("%", 1)[0] for info in found["infos"]))


class DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read, write and handshake ends by the check's deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _time_left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        # Requests are a few hundred bytes: one send, which fits in the socket's buffer.
        self._inner.write(buffer, _time_left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        # ssl bounds a handshake by its timeout as a whole, however slowly the server sends.
        left = _time_left(timeout, httpcore.ConnectTimeout)
        return DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, left))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore.SyncBackend):
    """Resolves and connects within the connect timeout and the deadline.

    ``guarded``: connect only to public addresses. The check happens on the
    addresses actually connected to, so a name that resolves somewhere else
    by the time of the request (DNS rebinding) gains nothing.
    """

    def __init__(self, *, guarded: bool) -> None:
        self.guarded = guarded

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        left = _time_left(timeout, httpcore.ConnectTimeout)
        end = None if left is None else time.monotonic() + left
        addresses = _resolve(host, port, left)
        # One private answer is enough to refuse: the resolver chooses, not us.
        if self.guarded and (not addresses or not all(is_public_address(a) for a in addresses)):
            raise BlockedAddress(
                f"{host} resolves to a local or private network address; "
                "Keyhold does not connect there"
            )
        last: Exception | None = None
        for address in addresses:  # like create_connection, but all within one budget
            remaining = None if end is None else end - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise httpcore.ConnectTimeout(f"could not connect to {host} in time")
            try:
                stream = super().connect_tcp(
                    address, port, remaining, local_address, socket_options
                )
            except httpcore.ConnectTimeout:
                raise  # the whole budget went to this address
            except httpcore.ConnectError as exc:
                last = exc
                continue
            return DeadlineStream(stream)
        if last is None:
            raise httpcore.ConnectError(f"the name {host} could not be resolved")
        raise last
