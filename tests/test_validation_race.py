"""A check takes seconds: a key replaced or deleted meanwhile keeps what its own save said."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from tests.fakekeys import fake_key
from tests.validation_helpers import EMAIL, row_of, signed_in, store_key, validate
from webapp.auth.services import find_user
from webapp.keys import service

SLOW = 1.0  # seconds the provider takes to answer the check


def during_check(emulator, provider: str, check: Callable[[], object], change: Callable[[], None]):
    """Run ``check`` while the provider is slow, and ``change`` while it waits for the answer."""
    emulator.slow(provider, SLOW)
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = check()
        except Exception as exc:  # reported below, in the test's own thread
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + SLOW
    while not emulator.received(provider) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert emulator.received(provider), "the check never reached the provider"
    change()
    worker.join(timeout=SLOW * 10)
    assert "error" not in outcome, outcome.get("error")
    return outcome["value"]


def revoked_key(app, emulator, provider: str = "openai") -> str:
    key = fake_key(provider)
    emulator.register(provider, key, state="revoked")
    store_key(app, emulator, provider, key)
    return key


def test_a_key_replaced_during_its_check_does_not_get_the_old_keys_verdict(make_app, emulator):
    app = make_app()
    client = signed_in(app)
    revoked_key(app, emulator)
    new = fake_key("openai")

    during_check(
        emulator,
        "openai",
        lambda: validate(client, "openai"),
        lambda: store_key(app, emulator, "openai", new),
    )
    row = row_of(app, "openai")
    assert row.key_hint.endswith(new[-4:])
    assert (row.status, row.is_valid) == ("unchecked", None)  # not "invalid": that was the old key


def test_a_key_deleted_during_its_check_stays_deleted(make_app, emulator):
    app = make_app()
    client = signed_in(app)
    revoked_key(app, emulator)

    def delete() -> None:
        with app.app_context():
            service.delete_key(find_user(EMAIL), "openai")

    response = during_check(emulator, "openai", lambda: validate(client, "openai"), delete)
    assert response.status_code == 200
    assert row_of(app, "openai") is None


def test_revalidate_leaves_a_key_replaced_during_its_check_alone(make_app, emulator):
    app = make_app()
    signed_in(app)
    revoked_key(app, emulator)
    new = fake_key("openai")

    def revalidate():
        return app.test_cli_runner().invoke(args=["keys", "revalidate"])

    result = during_check(
        emulator, "openai", revalidate, lambda: store_key(app, emulator, "openai", new)
    )
    assert result.exit_code == 0, result.output
    assert "Now rejected" not in result.output
    assert "Checked 0 key(s)" in result.output
    assert "Replaced or deleted while being checked" in result.output
    assert "1 key(s)" in result.output
    assert "No stored keys" not in result.output  # there was one: it changed under the check
    assert row_of(app, "openai").status == "unchecked"
