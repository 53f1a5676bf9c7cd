"""After a key is saved, its plaintext is nowhere: not in the database, the logs or any response."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

from sqlalchemy import event, text

from tests.conftest import SECRET
from tests.fakekeys import fake_key
from tests.token_helpers import audit_rows
from webapp.extensions import db


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _everything_stored(app) -> tuple[str, bytes]:
    """Every row of every table as text, and (on SQLite) the raw database files."""
    with app.app_context():
        db.session.remove()
        dump = []
        for table in db.metadata.sorted_tables:
            dump.extend(
                str(tuple(row)) for row in db.session.execute(text(f"SELECT * FROM {table.name}"))
            )
        url = db.engine.url
        raw = b""
        if url.get_backend_name() == "sqlite":
            db.engine.dispose()
            raw = b"".join(
                p.read_bytes()
                for p in Path(url.database).parent.glob(Path(url.database).name + "*")
            )
        return "\n".join(dump), raw


def test_plaintext_is_nowhere_after_saving(make_app, caplog):
    caplog.set_level(logging.DEBUG)
    dead = f"http://127.0.0.1:{closed_port()}"
    app = make_app(PROVIDER_BASE_URLS={p: dead for p in ("openai", "groq", "anthropic")})
    client = app.test_client()
    from tests.conftest import AuthActions

    auth = AuthActions(client)
    auth.register()
    keys = {p: fake_key(p) for p in ("openai", "groq", "anthropic")}
    responses = []
    for provider, key in keys.items():
        responses.append(client.post(f"/keys/{provider}", data={"api_key": key}))
    replacement = fake_key("openai")
    responses.append(client.post("/keys/openai", data={"api_key": replacement}))
    keys["openai-replaced"] = replacement
    for path in ("/keys/", "/keys/openai", "/keys/groq", "/keys/anthropic/delete"):
        responses.append(client.get(path))
    responses.append(client.post("/keys/anthropic/delete"))
    responses.append(client.get("/keys/"))
    auth.logout()
    responses.append(auth.login(password="not the password"))
    responses.append(auth.login())

    assert any("\u2026" + keys["groq"][-4:] in r.get_data(as_text=True) for r in responses)
    secrets = list(keys.values())
    for response in responses:
        blob = response.get_data(as_text=True) + str(response.headers)
        for secret in secrets:
            assert secret not in blob
            assert secret[8:-4] not in blob  # not even its middle

    logged = "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records)
    assert caplog.records, "the flow should have logged something"
    for secret in secrets:
        assert secret not in logged

    dump_text, raw = _everything_stored(app)
    assert "groq" in dump_text  # the rows are there...
    for secret in secrets:
        assert secret not in dump_text  # ...but not the keys
        assert secret.encode() not in raw


def test_plaintext_is_nowhere_after_everything_a_key_goes_through(make_app, emulator, caplog):
    """Global keys, the API, checks, resolution by a token, clearing and secret rotation."""
    caplog.set_level(logging.DEBUG)
    app = make_app()
    from tests.conftest import ADMIN_EMAIL, AuthActions
    from tests.token_helpers import call, issue

    admin = app.test_client()
    AuthActions(admin).login(ADMIN_EMAIL)
    alice = app.test_client()
    AuthActions(alice).register()
    keys = {p: emulator.valid_key(p) for p in ("openai", "groq", "mistral", "anthropic")}
    emulator.register("mistral", keys["mistral"], state="quota_exhausted")
    responses = [
        admin.post("/api/api-keys/set-initial", json={"provider": "groq", "api_key": keys["groq"]}),
        admin.post("/admin/keys/groq/validate"),
        admin.get("/admin/keys"),
        alice.post("/api/api-keys/set", json={"provider": "openai", "api_key": keys["openai"]}),
        alice.post("/keys/mistral", data={"api_key": keys["mistral"], "expires_at": ""}),
        alice.post("/keys/anthropic", data={"api_key": keys["anthropic"]}),
        alice.post("/keys/validate-all"),
        alice.post("/api/api-keys/validate/openai", json={"deep": True}),
        alice.get("/api/api-keys/status"),
        alice.get("/api/api-keys/status-initial"),
        alice.get("/activity"),
        alice.get("/api/audit?limit=200"),
        admin.get("/admin/audit"),
    ]
    _, token = issue(app, "alice@example.com", scopes=["keys:resolve", "keys:read"])
    resolved = call(app.test_client(), "POST", "/api/keys/resolve/openai", token)
    assert resolved.get_json()["api_key"] == keys["openai"]  # the one answer meant to hold it
    assert resolved.headers["Cache-Control"] == "no-store"
    responses.append(
        alice.delete(
            "/api/api-keys/anthropic", headers={"X-CSRFToken": alice.csrf_token()}, csrf=False
        )
    )

    rotated = make_app(
        API_KEY_ENCRYPTION_SECRET="rotated-encryption-secret-" + "r" * 32,
        API_KEY_ENCRYPTION_OLD_SECRETS=SECRET,
    )
    result = rotated.test_cli_runner().invoke(args=["keys", "rotate-secret"])
    assert result.exit_code == 0, result.output
    responses.append(result)

    for response in responses:
        blob = (
            response.output
            if hasattr(response, "output")
            else response.get_data(as_text=True) + str(response.headers)
        )
        for key in keys.values():
            assert key not in blob and key[8:-4] not in blob
    logged = "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records)
    dump_text, raw = _everything_stored(app)
    assert "mistral" in dump_text and "groq" in dump_text
    for key in keys.values():
        assert key not in logged
        assert key not in dump_text and key.encode() not in raw


def test_a_database_failure_while_saving_logs_none_of_the_stored_values(make_app, caplog):
    caplog.set_level(logging.DEBUG)
    # As served: an unhandled error is logged and answered with the error page.
    dead = f"http://127.0.0.1:{closed_port()}"
    app = make_app(PROVIDER_BASE_URLS={"groq": dead}, PROPAGATE_EXCEPTIONS=False)
    client = app.test_client()
    from tests.conftest import AuthActions

    AuthActions(client).register()

    def fail_key_writes(_conn, _cursor, statement, parameters, _context, _many):
        # The database refuses the write (a full disk, a failover) with the values bound.
        if "user_api_keys" in statement and statement.lstrip().upper().startswith("INSERT"):
            return statement.replace("user_api_keys", "no_such_table", 1), parameters
        return statement, parameters

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", fail_key_writes, retval=True)
    try:
        key = fake_key("groq")
        response = client.post("/keys/groq", data={"api_key": key})
    finally:
        event.remove(engine, "before_cursor_execute", fail_key_writes)
    assert response.status_code == 500
    logged = "\n".join(
        r.getMessage()
        + str(r.__dict__)
        + (logging.Formatter().formatException(r.exc_info) if r.exc_info else "")
        for r in caplog.records
    )
    assert "no_such_table" in logged  # the failure is logged, statement and all...
    assert "gAAAAA" not in logged  # ...but no ciphertext (Fernet tokens start so)
    assert key not in logged and key not in response.get_data(as_text=True)
    # The attempt is in the audit trail as failed, and the error logged is the database's.
    assert [row.outcome for row in audit_rows(app, "key.set")] == ["failed"]
    assert "PendingRollbackError" not in logged
