"""The audit trail is tamper-evident: ``flask audit verify`` names the first row changed or
deleted, pruning keeps it verifiable, and concurrent writers never fork the chain."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from tests.conftest import PASSWORD, AuthActions
from tests.helpers import store
from webapp.audit import integrity
from webapp.audit import service as audit_service
from webapp.audit.integrity import verify_chain
from webapp.audit.models import AuditCheckpoint, AuditEvent
from webapp.audit.service import GENESIS_HASH, chain_hash, record
from webapp.auth.services import find_user
from webapp.extensions import db
from webapp.keys.models import UserAPIKey


def full_flow(app) -> None:
    """A user registers, logs out and in, stores and deletes keys: a dozen real rows."""
    client = app.test_client()
    auth = AuthActions(client)
    auth.register()
    auth.logout()
    auth.login(password="wrong password here")
    auth.login()
    store(app, "alice@example.com", "openai")
    store(app, "alice@example.com", "groq")
    store(app, "alice@example.com", "openai")
    client.post("/keys/groq/delete")
    client.post(
        "/auth/password",
        data={"current": PASSWORD, "password": PASSWORD + "!", "confirm": PASSWORD + "!"},
    )
    auth.logout()


def ids(app) -> list[int]:
    with app.app_context():
        db.session.remove()
        return list(db.session.scalars(db.select(AuditEvent.id).order_by(AuditEvent.id)))


def execute(app, sql: str, **params) -> None:
    with app.app_context():
        db.session.execute(text(sql), params)
        db.session.commit()


def verify(runner):
    return runner.invoke(args=["audit", "verify"])


def fresh_trail(app) -> None:
    """Start from an empty trail, so rows recorded "in the past" really come first."""
    execute(app, "DELETE FROM audit_events")


def record_at(app, when: datetime, count: int, monkeypatch) -> None:
    """Record ``count`` rows as if it were ``when`` (the only honest way to get old rows)."""
    with monkeypatch.context() as m:
        m.setattr(audit_service, "utcnow", lambda: when)
        with app.app_context():
            for i in range(count):
                record("auth.logout", actor_id=1000 + i)
            db.session.commit()


def test_verify_passes_on_an_untouched_trail(app, runner):
    full_flow(app)
    rows = ids(app)
    assert len(rows) >= 10
    result = verify(runner)
    assert result.exit_code == 0, result.output
    assert f"intact: {len(rows)} row(s)" in result.output
    assert f"to #{rows[-1]}" in result.output


def test_verify_on_an_empty_trail(app, runner):
    fresh_trail(app)
    result = verify(runner)
    assert result.exit_code == 0 and "empty" in result.output


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("outcome", "failed"),
        ("actor_user_id", 999),
        ("details", '{"hint": "sk-...nope"}'),
        ("ip", "10.9.8.7"),
    ],
)
def test_verify_names_a_row_edited_in_the_database(app, runner, column, value):
    full_flow(app)
    rows = ids(app)
    target = rows[len(rows) // 2]
    execute(app, f"UPDATE audit_events SET {column} = :v WHERE id = :id", v=value, id=target)
    result = verify(runner)
    assert result.exit_code == 1
    assert f"row #{target} was changed" in result.output
    assert f"{rows.index(target)} row(s) verified before the break" in result.output


def test_verify_names_a_row_whose_hash_was_recomputed(app, runner):
    full_flow(app)
    rows = ids(app)
    target = rows[3]
    with app.app_context():
        event = db.session.get(AuditEvent, target)
        event.outcome = "ok" if event.outcome != "ok" else "denied"
        event.row_hash = chain_hash(event.prev_hash, event)  # a careful forger
        db.session.commit()
    result = verify(runner)
    assert result.exit_code == 1
    assert f"row #{target} was changed and its hash recomputed" in result.output


def test_verify_names_a_row_deleted_from_the_database(app, runner):
    full_flow(app)
    rows = ids(app)
    target = rows[4]
    execute(app, "DELETE FROM audit_events WHERE id = :id", id=target)
    result = verify(runner)
    assert result.exit_code == 1
    assert f"row #{target} was deleted" in result.output
    assert f"#{rows[5]} no longer links to #{rows[3]}" in result.output


def test_verify_names_several_deleted_rows_and_deleted_first_rows(app, runner):
    full_flow(app)
    rows = ids(app)
    execute(app, "DELETE FROM audit_events WHERE id IN (:a, :b)", a=rows[2], b=rows[3])
    result = verify(runner)
    assert f"rows #{rows[2]}-#{rows[3]} were deleted" in result.output
    execute(app, "DELETE FROM audit_events WHERE id <= :id", id=rows[3])
    result = verify(runner)
    assert result.exit_code == 1
    assert f"rows before #{rows[4]} were deleted (no checkpoint covers them)" in result.output


def test_prune_leaves_a_checkpoint_and_the_rest_still_verifies(app, runner, monkeypatch):
    fresh_trail(app)
    now = datetime.now(UTC)
    record_at(app, now - timedelta(days=100), 5, monkeypatch)
    record_at(app, now - timedelta(days=40), 3, monkeypatch)
    full_flow(app)
    before = ids(app)

    result = runner.invoke(args=["audit", "prune", "--older-than", "30"])
    assert result.exit_code == 0, result.output
    assert f"Pruned 8 row(s) up to #{before[7]}" in result.output
    with app.app_context():
        db.session.remove()
        checkpoint = db.session.scalar(db.select(AuditCheckpoint))
        assert (checkpoint.last_pruned_id, checkpoint.rows_pruned) == (before[7], 8)
        remaining = db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id)).all()
        assert [e.id for e in remaining[:-1]] == before[8:]
        assert remaining[0].prev_hash == checkpoint.last_pruned_hash
        prune_row = remaining[-1]
        assert (prune_row.action, prune_row.outcome) == ("audit.prune", "ok")
        assert prune_row.details["rows"] == 8 and prune_row.details["through_id"] == before[7]

    result = verify(runner)
    assert result.exit_code == 0, result.output
    assert f"from checkpoint after #{before[7]}" in result.output

    # New rows keep chaining, and a row deleted after the checkpoint is still caught.
    store(app, "alice@example.com", "mistral")
    assert verify(runner).exit_code == 0
    execute(app, "DELETE FROM audit_events WHERE id = :id", id=before[8])
    result = verify(runner)
    assert result.exit_code == 1 and f"row #{before[8]} was deleted" in result.output


def test_a_prune_elsewhere_during_verify_is_not_taken_for_tampering(app, monkeypatch):
    # `audit prune` and `audit verify` both run from cron, on other machines too: a prune
    # committing while verify walks the chain takes the row that confirmed the checkpoint
    # verify started from. Nothing was tampered with, so nothing may be reported.
    fresh_trail(app)
    now = datetime.now(UTC)
    record_at(app, now - timedelta(days=100), 5, monkeypatch)
    with monkeypatch.context() as then:  # the checkpoint verify starts from, 50 days ago
        then.setattr(audit_service, "utcnow", lambda: now - timedelta(days=50))
        then.setattr(integrity, "utcnow", lambda: now - timedelta(days=50))
        _prune_in(app, timedelta(days=30))
    record_at(app, now - timedelta(days=40), 30, monkeypatch)
    record_at(app, now, 10, monkeypatch)
    # Past the rows the prune will take (its own confirming row among them) when it lands.
    middle = ids(app)[-5]
    real_hash, pruned = integrity.chain_hash, []

    def prune_elsewhere_mid_walk(prev_hash, row):
        if not pruned and row.id == middle:
            elsewhere = threading.Thread(
                target=lambda: pruned.append(_prune_in(app, timedelta(days=30)))
            )
            elsewhere.start()
            elsewhere.join()
        return real_hash(prev_hash, row)

    monkeypatch.setattr(integrity, "chain_hash", prune_elsewhere_mid_walk)
    with app.app_context():
        report = integrity.verify_chain(batch_size=10)
    assert pruned and pruned[0].pruned > 0  # the prune did land during the walk
    assert report.ok, report.problem


def _prune_in(app, older_than: timedelta):
    with app.app_context():
        return integrity.prune(older_than)


def test_prune_of_only_old_rows_keeps_the_newest_and_chains_on(app, runner, monkeypatch):
    fresh_trail(app)
    record_at(app, datetime.now(UTC) - timedelta(days=90), 4, monkeypatch)
    result = runner.invoke(args=["audit", "prune", "--older-than", "30"])
    assert "Pruned 3 row(s)" in result.output
    assert len(ids(app)) == 2  # the newest old row and the prune's own row
    result = runner.invoke(args=["audit", "prune", "--older-than", "30"])
    assert "Pruned 1 row(s)" in result.output
    assert verify(runner).exit_code == 0
    result = runner.invoke(args=["audit", "prune", "--older-than", "30"])
    assert "Nothing older than 30 day(s)" in result.output
    assert verify(runner).exit_code == 0


def test_prune_refuses_to_destroy_evidence_of_tampering(app, runner, monkeypatch):
    fresh_trail(app)
    record_at(app, datetime.now(UTC) - timedelta(days=90), 4, monkeypatch)
    full_flow(app)
    rows = ids(app)
    execute(app, "UPDATE audit_events SET outcome = 'denied' WHERE id = :id", id=rows[1])
    result = runner.invoke(args=["audit", "prune", "--older-than", "30"])
    assert result.exit_code == 1
    assert f"Not pruned: row #{rows[1]} was changed" in result.output
    assert ids(app) == rows

    result = runner.invoke(args=["audit", "prune", "--older-than", "30", "--force"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        prune_row = db.session.scalars(db.select(AuditEvent).filter_by(action="audit.prune")).one()
        assert f"row #{rows[1]} was changed" in prune_row.details["forced_past"]
    assert verify(runner).exit_code == 0


def test_a_forged_checkpoint_is_caught(app, runner):
    full_flow(app)
    rows = ids(app)
    with app.app_context():
        cut = db.session.get(AuditEvent, rows[3])
        db.session.add(
            AuditCheckpoint(last_pruned_id=cut.id, last_pruned_hash=cut.row_hash, rows_pruned=4)
        )
        db.session.execute(db.delete(AuditEvent).where(AuditEvent.id <= rows[3]))
        db.session.commit()
    result = verify(runner)
    assert result.exit_code == 1
    assert "is not confirmed by any audit.prune row" in result.output
    # A prune does not paper over it with a genuine checkpoint of its own.
    pruned = runner.invoke(args=["audit", "prune", "--older-than", "1"])
    assert pruned.exit_code == 1 and "is not confirmed by any audit.prune row" in pruned.output
    assert verify(runner).exit_code == 1


def _chain_links(app) -> tuple[int, int]:
    with app.app_context():
        db.session.remove()
        rows = db.session.execute(
            db.select(AuditEvent.prev_hash, AuditEvent.row_hash).order_by(AuditEvent.id)
        ).all()
    prev, broken = GENESIS_HASH, 0
    for row in rows:
        broken += row.prev_hash != prev
        prev = row.row_hash
    return len(rows), broken


def test_concurrent_writers_extend_one_unbroken_chain(app):
    before, _ = _chain_links(app)
    start = threading.Barrier(6)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        with app.app_context():
            start.wait()
            try:
                for _ in range(8):
                    record("auth.logout", actor_id=n)
                    db.session.commit()
            except BaseException as exc:  # reported below; a thread cannot fail the test
                errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert _chain_links(app) == (before + 48, 0)
    with app.app_context():
        assert verify_chain().ok


def test_the_chain_lock_comes_after_row_locks_so_writers_never_deadlock(app, user_client):
    """One writer holds a key row and then audits; another changes the same row and audits.

    The second must wait for the row before it takes the chain, or each would
    wait for the other (PostgreSQL aborts one with a deadlock error).
    """
    user_client("alice@example.com")
    store(app, "alice@example.com", "openai")
    row_held = threading.Event()
    errors: list[BaseException] = []

    def holder() -> None:
        with app.app_context():
            try:
                user = find_user("alice@example.com")
                row = db.session.scalar(db.select(UserAPIKey).filter_by(user_id=user.id))
                row.status = "valid"
                db.session.flush()  # the row (PostgreSQL) or the database (SQLite) is now ours
                row_held.set()
                time.sleep(0.5)  # long enough for the other writer to queue up
                record("key.validate", actor_id=user.id, provider="openai")
                db.session.commit()
            except BaseException as exc:
                errors.append(exc)
                row_held.set()

    def deleter() -> None:
        with app.app_context():
            try:
                row_held.wait(5)
                user = find_user("alice@example.com")
                row = db.session.scalar(db.select(UserAPIKey).filter_by(user_id=user.id))
                # Even with autoflush off, the pending delete reaches the row before the
                # chain lock is taken.
                with db.session.no_autoflush:
                    db.session.delete(row)
                    record("key.delete", actor_id=user.id, provider="openai")
                db.session.commit()
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=holder), threading.Thread(target=deleter)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with app.app_context():
        actions = db.session.scalars(db.select(AuditEvent.action).order_by(AuditEvent.id)).all()
        assert actions[-2:] == ["key.validate", "key.delete"]
        assert db.session.scalar(db.select(db.func.count()).select_from(UserAPIKey)) == 0
        assert verify_chain().ok


def test_a_prune_further_back_than_any_date_is_refused_clearly(runner):
    result = runner.invoke(args=["audit", "prune", "--older-than", "1000000"])
    assert result.exit_code == 2 and "--older-than" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
