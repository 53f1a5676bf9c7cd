"""After a key is saved, its plaintext is nowhere: not in the database, the logs or any response."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

from sqlalchemy import text

from tests.fakekeys import fake_key
from webapp.extensions import db


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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

    with app.app_context():
        db.session.remove()
        dump = []
        for table in db.metadata.sorted_tables:
            dump.extend(
                str(tuple(row)) for row in db.session.execute(text(f"SELECT * FROM {table.name}"))
            )
        dump_text = "\n".join(dump)
        assert "groq" in dump_text  # the rows are there...
        for secret in secrets:
            assert secret not in dump_text  # ...but not the keys
        url = db.engine.url
        if url.get_backend_name() == "sqlite":
            db.engine.dispose()
            raw = b"".join(
                p.read_bytes()
                for p in Path(url.database).parent.glob(Path(url.database).name + "*")
            )
            for secret in secrets:
                assert secret.encode() not in raw
