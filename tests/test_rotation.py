"""Secret rotation: re-encrypting stored keys, interrupted and resumed, then the old secret gone."""

from __future__ import annotations

import pytest

from tests.fakekeys import fake_key
from tests.test_key_races import racing
from webapp import cli
from webapp.audit.models import AuditEvent
from webapp.auth.models import User
from webapp.crypto import KeyDecryptionError, KeyScope, current_keyring, mask_key
from webapp.extensions import db
from webapp.keys import global_keys, resolve, service
from webapp.keys.models import GlobalAPIKey, UserAPIKey
from webapp.keys.rotation import pending_count, rotate_secret
from webapp.validation import service as validation
from webapp.validation.revalidate import revalidate

OLD = "old-encryption-secret-" + "o" * 32
NEW = "new-encryption-secret-" + "n" * 32
PROVIDERS = ["openai", "anthropic", "groq", "mistral"]


def _new_user(email: str) -> User:
    """A user committed in the current app context."""
    user = User(email=email)
    user.set_password("correct horse battery staple")
    db.session.add(user)
    db.session.commit()
    return user


def _seed(app) -> dict[tuple[int, str], str]:
    """Three users with four keys each, and one global key, all under ``OLD``."""
    plaintexts: dict[tuple[int, str], str] = {}
    with app.app_context():
        for n in range(3):
            user = _new_user(f"user{n}@example.com")
            for provider in PROVIDERS:
                key = fake_key(provider)
                service.store_key(user, provider, key, {})
                plaintexts[(user.id, provider)] = key
        key = fake_key("openai")
        row = GlobalAPIKey(provider="openai", config={})
        row.seal(current_keyring().encrypt(KeyScope.for_global("openai"), key), mask_key(key))
        db.session.add(row)
        db.session.commit()
        plaintexts[(0, "global:openai")] = key
    return plaintexts


def _read_all(app) -> dict[tuple[int, str], str]:
    with app.app_context():
        keyring = current_keyring()
        found = {
            (row.user_id, row.provider): service.decrypt_row(row)
            for row in db.session.scalars(db.select(UserAPIKey))
        }
        for row in db.session.scalars(db.select(GlobalAPIKey)):
            scope = KeyScope.for_global(row.provider)
            found[(0, f"global:{row.provider}")] = keyring.decrypt(scope, row.sealed)
        return found


def _versions(app) -> set[str]:
    with app.app_context():
        return set(db.session.scalars(db.select(UserAPIKey.key_version))) | set(
            db.session.scalars(db.select(GlobalAPIKey.key_version))
        )


def test_rotation_survives_interruption_and_old_secret_can_go(make_app):
    before = make_app(API_KEY_ENCRYPTION_SECRET=OLD)
    plaintexts = _seed(before)

    during = make_app(API_KEY_ENCRYPTION_SECRET=NEW, API_KEY_ENCRYPTION_OLD_SECRETS=OLD)
    with during.app_context():
        assert pending_count() == 13

        def interrupt_after_first_batch(done: int) -> None:
            raise KeyboardInterrupt  # an operator's Ctrl-C between batches

        with pytest.raises(KeyboardInterrupt):
            rotate_secret(batch_size=5, progress=interrupt_after_first_batch)
        assert pending_count() == 8
        # The batch that was committed is in the audit trail, with its count.
        assert [e.details["count"] for e in _events("secret.rotate")] == [5]
        assert _events("secret.rotate_finished") == []

    # Half-way: rows under both secrets, every one still readable.
    assert len(_versions(during)) == 2
    assert _read_all(during) == plaintexts

    result = during.test_cli_runner().invoke(args=["keys", "rotate-secret", "--batch-size", "4"])
    assert result.exit_code == 0, result.output
    assert "8 key(s) to re-encrypt" in result.output
    assert "old secrets can now be removed" in result.output

    with during.app_context():
        assert sum(e.details["count"] for e in _events("secret.rotate")) == 13

    # Running again finds nothing to do.
    again = during.test_cli_runner().invoke(args=["keys", "rotate-secret"])
    assert again.exit_code == 0 and "0 key(s) to re-encrypt" in again.output

    after = make_app(API_KEY_ENCRYPTION_SECRET=NEW)
    assert _read_all(after) == plaintexts
    with after.app_context():
        assert _versions(after) == {current_keyring().current_version}
    # And the old secret alone can no longer read anything.
    with pytest.raises(KeyDecryptionError):
        _read_all(make_app(API_KEY_ENCRYPTION_SECRET=OLD))


def _events(action: str) -> list[AuditEvent]:
    return list(
        db.session.scalars(db.select(AuditEvent).filter_by(action=action).order_by(AuditEvent.id))
    )


def test_rotation_is_audited_batch_by_batch(make_app):
    app = make_app(API_KEY_ENCRYPTION_SECRET=OLD)
    _seed(app)
    during = make_app(API_KEY_ENCRYPTION_SECRET=NEW, API_KEY_ENCRYPTION_OLD_SECRETS=OLD)
    with during.app_context():
        report = rotate_secret(batch_size=5)
        assert report.rewrapped == 13 and report.ok
        version = current_keyring().current_version
        batches = [(e.details["table"], e.details["count"]) for e in _events("secret.rotate")]
        assert batches == [("user_api_keys", 5), ("user_api_keys", 5), ("user_api_keys", 2)] + [
            ("global_api_keys", 1)
        ]
        assert {e.details["version"] for e in _events("secret.rotate")} == {version}
        [finished] = _events("secret.rotate_finished")
        assert finished.outcome == "ok" and finished.details["rewrapped"] == 13


def test_a_key_replaced_during_rotation_is_not_counted(make_app, monkeypatch):
    app = make_app(API_KEY_ENCRYPTION_SECRET=OLD)
    plaintexts = _seed(app)
    during = make_app(API_KEY_ENCRYPTION_SECRET=NEW, API_KEY_ENCRYPTION_OLD_SECRETS=OLD)
    replaced: dict[tuple[int, str], str] = {}
    with during.app_context():
        keyring = current_keyring()
        rewrap = keyring.rewrap

        def rewrap_while_its_owner_replaces_one(scope, sealed, settings=None):
            if not replaced:  # the owner saves a new key after the batch was read
                user = db.session.get(User, int(scope.owner.removeprefix("user:")))
                key = fake_key(scope.provider)
                service.store_key(user, scope.provider, key, {})
                replaced[(user.id, scope.provider)] = key
            return rewrap(scope, sealed, settings)

        monkeypatch.setattr(keyring, "rewrap", rewrap_while_its_owner_replaces_one)
        report = rotate_secret()
        assert report.rewrapped == 12 and report.ok
        assert sum(e.details["count"] for e in _events("secret.rotate")) == 12
        assert pending_count() == 0
    assert _read_all(during) == {**plaintexts, **replaced}  # the owner's new key was kept


@pytest.mark.parametrize("size", ["0", "-5"])
def test_batch_size_must_be_positive(make_app, size):
    app = make_app(API_KEY_ENCRYPTION_SECRET=OLD)
    _seed(app)
    during = make_app(API_KEY_ENCRYPTION_SECRET=NEW, API_KEY_ENCRYPTION_OLD_SECRETS=OLD)
    result = during.test_cli_runner().invoke(args=["keys", "rotate-secret", "--batch-size", size])
    assert result.exit_code == 2
    assert "Invalid value for '--batch-size'" in result.output
    with during.app_context():
        assert pending_count() == 13


def test_rotation_leaves_unreadable_rows_alone_and_says_so(make_app):
    app = make_app(API_KEY_ENCRYPTION_SECRET=OLD)
    _seed(app)
    with app.app_context():
        row = db.session.scalar(db.select(UserAPIKey).order_by(UserAPIKey.id))
        row.key_hash = "0" * 64  # tampered
        db.session.commit()
        tampered_id = row.id
    during = make_app(API_KEY_ENCRYPTION_SECRET=NEW, API_KEY_ENCRYPTION_OLD_SECRETS=OLD)
    result = during.test_cli_runner().invoke(args=["keys", "rotate-secret"])
    assert result.exit_code == 1
    said = "(tampered with, or moved to another owner; left as they were)"
    assert f"{said}: user_api_keys#{tampered_id}" in result.output
    assert "not configured" not in result.output
    with during.app_context():
        assert pending_count() == 1  # the tampered row, untouched


def test_rotation_without_the_old_secret_says_which_secret_to_add(make_app):
    # The old secret left out of API_KEY_ENCRYPTION_OLD_SECRETS: one line that says what to
    # add, not every row's id (thousands of them on a real table).
    app = make_app(API_KEY_ENCRYPTION_SECRET=OLD)
    _seed(app)
    with app.app_context():
        old_version = current_keyring().current_version
    during = make_app(API_KEY_ENCRYPTION_SECRET=NEW)
    result = during.test_cli_runner().invoke(args=["keys", "rotate-secret"])
    assert result.exit_code == 1
    assert (
        f"13 key(s) are under secret {old_version}, which is not configured: add that secret "
        "to API_KEY_ENCRYPTION_OLD_SECRETS and run again."
    ) in result.output
    assert "user_api_keys#" not in result.output and OLD not in result.output
    with during.app_context():
        assert pending_count() == 13


def test_row_copied_to_another_user_fails_loudly(make_app):
    app = make_app()
    with app.app_context():
        alice = User(email="alice@example.com")
        bob = User(email="bob@example.com")
        for u in (alice, bob):
            u.set_password("correct horse battery staple")
            db.session.add(u)
        db.session.commit()
        row, _ = service.store_key(alice, "openai", fake_key("openai"), {})
        stolen = UserAPIKey(user_id=bob.id, provider="openai", config={})
        stolen.seal(row.sealed, row.key_hint)
        db.session.add(stolen)
        moved = UserAPIKey(user_id=alice.id, provider="groq", config={})
        moved.seal(row.sealed, row.key_hint)
        db.session.add(moved)
        db.session.commit()
        with pytest.raises(KeyDecryptionError, match="does not decrypt"):
            resolve.get_key_for(bob, "openai")
        with pytest.raises(KeyDecryptionError, match="integrity check"):
            resolve.get_key_for(alice, "groq")


def test_rotation_keeps_keys_bound_to_their_settings(make_app):
    azure = {"endpoint": "https://contoso.openai.azure.com", "api_version": "2024-10-21"}
    custom = {"base_url": "https://llm.example.com/v1"}
    before = make_app(API_KEY_ENCRYPTION_SECRET=OLD)
    with before.app_context():
        user = _new_user("user@example.com")
        user_id = user.id
        keys = {p: fake_key(p) for p in ("azure_openai", "custom", "groq")}
        for provider, config in (("azure_openai", azure), ("custom", custom), ("groq", {})):
            service.store_key(user, provider, keys[provider], config)
        global_keys.save_global_key("custom", keys["custom"], custom, actor=None, validate=False)
        # One row's settings changed behind Keyhold's back: rotation must not bless it.
        db.session.execute(
            db.update(UserAPIKey)
            .filter_by(provider="groq")
            .values(config={"base_url": "https://attacker.example"})
        )
        db.session.commit()

    during = make_app(API_KEY_ENCRYPTION_SECRET=NEW, API_KEY_ENCRYPTION_OLD_SECRETS=OLD)
    with during.app_context():
        report = rotate_secret()
        groq_id = db.session.scalar(db.select(UserAPIKey.id).filter_by(provider="groq"))
        assert report.rewrapped == 3 and report.unreadable == [f"user_api_keys#{groq_id}"]

    after = make_app(API_KEY_ENCRYPTION_SECRET=NEW)
    with after.app_context():
        user = db.session.get(User, user_id)
        assert resolve.get_key_for(user, "azure_openai").value == keys["azure_openai"]
        assert resolve.get_key_for(user, "custom").config == custom
        assert service.decrypt_global(global_keys.find_global("custom")) == keys["custom"]
        db.session.execute(db.update(UserAPIKey).filter_by(provider="custom").values(config={}))
        db.session.commit()
        with pytest.raises(KeyDecryptionError, match="its settings"):
            resolve.get_key_for(user, "custom")


def test_a_secret_with_a_comma_can_be_rotated_away_from(make_app):
    # A password manager's secret may hold a comma; given alone as the old secret, it is
    # still read as one secret, not cut in two.
    comma = "old,encryption,secret-" + "c" * 32
    plaintexts = _seed(make_app(API_KEY_ENCRYPTION_SECRET=comma))
    during = make_app(API_KEY_ENCRYPTION_SECRET=NEW, API_KEY_ENCRYPTION_OLD_SECRETS=comma)
    assert _read_all(during) == plaintexts
    with during.app_context():
        report = rotate_secret(batch_size=5)
    assert report.unreadable == [] and report.rewrapped == 13
    after = make_app(API_KEY_ENCRYPTION_SECRET=NEW)
    assert _read_all(after) == plaintexts


def test_many_unreadable_rows_are_named_up_to_a_point_then_counted(make_app, monkeypatch):
    monkeypatch.setattr(cli, "LISTED", 5)
    app = make_app(API_KEY_ENCRYPTION_SECRET=OLD)
    _seed(app)
    with app.app_context():
        db.session.execute(db.update(UserAPIKey).values(key_hash="0" * 64))  # all tampered
        db.session.commit()
        count = db.session.scalar(db.select(db.func.count()).select_from(UserAPIKey))
    during = make_app(API_KEY_ENCRYPTION_SECRET=NEW, API_KEY_ENCRYPTION_OLD_SECRETS=OLD)
    result = during.test_cli_runner().invoke(args=["keys", "rotate-secret"])
    assert result.exit_code == 1
    assert result.output.count("user_api_keys#") == 5
    assert f" and {count - 5} more" in result.output


def _rotating_before_the_verdict_lands(app):
    """The operator's ``flask keys rotate-secret`` (another process, a connection of its own)
    commits between a check's answer and the recording of its verdict."""

    def rotate() -> None:
        with app.app_context():
            assert rotate_secret(batch_size=10).rewrapped >= 1
            db.session.remove()

    # Just before the verdict's write holds the key rows (the check has answered by then).
    return racing(app, "UPDATE USER_API_KEYS SET ID", rotate)


@pytest.mark.parametrize("how", ["check", "check all", "revalidate"])
def test_a_verdict_given_during_a_rotation_lands_on_the_same_key(make_app, emulator, how):
    # Rotation seals the same key anew: the check's verdict is still about the stored key,
    # and a key its provider now rejects must be recorded as rejected (no longer handed out).
    before = make_app(API_KEY_ENCRYPTION_SECRET=OLD)
    key = emulator.register("openai", fake_key("openai"), state="revoked")
    with before.app_context():
        user = _new_user("rotating@example.com")
        user_id = user.id
        service.store_key(user, "openai", key, {})
    during = make_app(API_KEY_ENCRYPTION_SECRET=NEW, API_KEY_ENCRYPTION_OLD_SECRETS=OLD)
    with during.app_context(), _rotating_before_the_verdict_lands(during):
        user = db.session.get(User, user_id)
        if how == "check":
            assert validation.validate_key(user, "openai").status == "invalid"
        elif how == "check all":
            assert validation.validate_all(user).results["openai"].status == "invalid"
        else:
            assert revalidate().turned_invalid
    with during.app_context():
        row = db.session.scalar(db.select(UserAPIKey).filter_by(user_id=user_id))
        assert row.key_version == current_keyring().current_version  # rotated meanwhile
        assert (row.status, row.is_valid) == ("invalid", False)
        with pytest.raises(resolve.NoKeyAvailable):
            resolve.get_key_for(db.session.get(User, user_id), "openai")
