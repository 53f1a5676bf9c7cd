"""The validation timeout is a total: a check ends when its time is up, whatever the server does."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.validation_helpers import (
    app_for,
    badge,
    dashboard_row,
    page,
    row_of,
    signed_in,
    store_key,
    validate,
)
from webapp.providers.checks import Checker
from webapp.validation import service

TIMEOUT = 1.0
#: how far past the timeout a check may end: scheduling on a busy machine, not a slow server
SLACK = 1.5


@pytest.mark.parametrize("provider", ["custom", "openai"])
def test_a_server_trickling_its_headers_cannot_outlast_the_timeout(make_app, emulator, provider):
    # Every byte comes well within the read timeout, so only a deadline for the whole
    # check stops it; the custom provider lets any user aim Keyhold at such a server.
    app = app_for(make_app, provider, VALIDATION_TIMEOUT=TIMEOUT, VALIDATION_CONNECT_TIMEOUT=0.5)
    client = signed_in(app)
    store_key(app, emulator, provider, emulator.valid_key(provider))
    emulator.set_mode(provider, "trickle", interval=0.05)

    start = time.perf_counter()
    response = validate(client, provider)
    elapsed = time.perf_counter() - start

    assert TIMEOUT <= elapsed < TIMEOUT + SLACK, f"the check took {elapsed:.1f} s"
    row = dashboard_row(page(response), provider)
    assert badge(row) == "Provider unreachable"
    assert f"did not answer within {TIMEOUT:g} s" in row
    stored = row_of(app, provider)
    assert stored.status == "network_error" and stored.is_valid is None
    assert stored.details["reason"] == "timeout"


@dataclass
class _Listener:
    port: int
    served: threading.Event


@pytest.fixture
def slow_tls() -> Iterator[_Listener]:
    """A server that starts a TLS record and then sends it one byte at a time."""
    server = socket.create_server(("127.0.0.1", 0))
    served = threading.Event()
    stop = threading.Event()

    def serve() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            conn.recv(4096)  # the ClientHello
            served.set()
            try:
                conn.sendall(b"\x16\x03\x03\x40\x00")  # a handshake record of 16 KiB...
                while not stop.wait(0.05):
                    conn.sendall(b"\x00")  # ...that never arrives
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield _Listener(server.getsockname()[1], served)
    stop.set()
    server.close()
    thread.join(2)


def test_a_tls_handshake_fed_slowly_cannot_outlast_the_timeout(make_app, emulator, slow_tls):
    url = f"https://127.0.0.1:{slow_tls.port}/v1"
    # A connect timeout longer than the total does not stretch the handshake either.
    app = make_app(
        VALIDATION_TIMEOUT=TIMEOUT,
        VALIDATION_CONNECT_TIMEOUT=5.0,
        PROVIDER_BASE_URLS={"openai": url},
    )
    client = signed_in(app)
    store_key(app, emulator, "openai", emulator.valid_key("openai"))

    start = time.perf_counter()
    row = dashboard_row(page(validate(client, "openai")), "openai")
    elapsed = time.perf_counter() - start

    assert slow_tls.served.is_set()
    assert TIMEOUT <= elapsed < TIMEOUT + SLACK, f"the check took {elapsed:.1f} s"
    assert badge(row) == "Provider unreachable"
    assert f"did not answer within {TIMEOUT:g} s" in row
    assert row_of(app, "openai").details["reason"] == "timeout"


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A port whose connection attempts are never answered: its accept queue is full."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port), timeout=2)
    yield port
    filler.close()
    server.close()


def test_a_connect_counts_against_the_total(make_app, emulator, unanswered_port):
    # A connect timeout longer than the total does not stretch the check.
    app = make_app(
        VALIDATION_TIMEOUT=TIMEOUT,
        VALIDATION_CONNECT_TIMEOUT=5.0,
        PROVIDER_BASE_URLS={"groq": f"http://127.0.0.1:{unanswered_port}/openai/v1"},
    )
    client = signed_in(app)
    store_key(app, emulator, "groq", emulator.valid_key("groq"))

    start = time.perf_counter()
    row = dashboard_row(page(validate(client, "groq")), "groq")
    elapsed = time.perf_counter() - start

    assert TIMEOUT <= elapsed < TIMEOUT + SLACK, f"the check took {elapsed:.1f} s"
    assert badge(row) == "Provider unreachable"
    assert f"did not answer within {TIMEOUT:g} s" in row


def test_a_deep_check_shares_the_one_timeout(make_app, emulator):
    # The listing uses most of the time; the inference request gets only what is left.
    app = make_app(VALIDATION_TIMEOUT=TIMEOUT, VALIDATION_CONNECT_TIMEOUT=0.5)
    client = signed_in(app)
    store_key(app, emulator, "groq", emulator.valid_key("groq"))
    emulator.slow("groq", 0.7 * TIMEOUT)

    start = time.perf_counter()
    row = dashboard_row(page(validate(client, "groq", deep=True)), "groq")
    elapsed = time.perf_counter() - start

    assert elapsed < TIMEOUT + SLACK / 2, f"the deep check took {elapsed:.1f} s"
    assert badge(row) == "Valid" and "Quota not checked" in row
    assert "deep check on llama-3.1-8b-instant could not be completed" in row


def test_validate_all_does_not_wait_for_a_check_that_never_ends(make_app, emulator, monkeypatch):
    # Checks keep their own deadlines; should one ever hang anyway, validate-all answers
    # without it and says so.
    app = make_app(VALIDATION_TIMEOUT=TIMEOUT)
    client = signed_in(app)
    store_key(app, emulator, "openai", emulator.valid_key("openai"))
    store_key(app, emulator, "groq", emulator.valid_key("groq"))
    release = threading.Event()

    @dataclass(frozen=True)
    class Hanging(Checker):
        def check(self, provider, *args, **kwargs):
            if provider.id == "groq":
                release.wait(30)
            return super().check(provider, *args, **kwargs)

    real = service.app_checker
    monkeypatch.setattr(service, "app_checker", lambda: Hanging(**vars(real())))
    start = time.perf_counter()
    try:
        html = page(client.post("/keys/validate-all", follow_redirects=True))
    finally:
        elapsed = time.perf_counter() - start
        release.set()

    assert elapsed < TIMEOUT + service._GRACE + SLACK, f"validate-all took {elapsed:.1f} s"
    assert badge(dashboard_row(html, "openai")) == "Valid"
    groq = dashboard_row(html, "groq")
    assert badge(groq) == "Provider unreachable" and "did not finish" in groq
    assert row_of(app, "groq").status == "network_error"


def test_waiting_for_a_pooled_connection_counts_against_the_deadline(emulator):
    # With every connection busy, a request waits for one only as long as its check has left.
    from webapp.providers.client import NoAnswer, Outgoing, ProviderHTTP
    from webapp.providers.network import deadline

    http = ProviderHTTP(connect_timeout=1, timeout=5, allow_private=True, max_connections=1)
    emulator.slow("groq", 2.0)
    url = emulator.base_url("groq") + "/models"
    headers = {"Authorization": f"Bearer {emulator.valid_key('groq')}"}
    busy = threading.Thread(target=lambda: http.send(Outgoing("GET", url, headers)))
    try:
        busy.start()
        time.sleep(0.3)  # the only connection is now taken by the slow request
        start = time.perf_counter()
        with deadline(time.monotonic() + 0.5), pytest.raises(NoAnswer) as refused:
            http.send(Outgoing("GET", url, headers))
        elapsed = time.perf_counter() - start
    finally:
        busy.join()
        http.close()
    assert refused.value.reason == "timeout"
    assert elapsed < 1.2, f"waited {elapsed:.1f} s for a connection with 0.5 s left"
