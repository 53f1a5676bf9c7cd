"""Re-encrypting stored keys under the current secret (``flask keys rotate-secret``).

Rows are rewritten in batches, each committed on its own together with a
``secret.rotate`` audit row that counts it, so an interrupted run loses
nothing and is accounted for: every row is readable under either its old or
its new secret, and running again carries on where it stopped. A row changed
by a user while it is being rewrapped is left alone (the update is
conditional on the ciphertext it read), is not counted, and is already under
the current secret anyway. A finished run ends with a
``secret.rotate_finished`` row.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, bindparam, func, update

from webapp.audit.service import record
from webapp.crypto import KeyDecryptionError, SealedKey, current_keyring
from webapp.extensions import db
from webapp.keys.models import GlobalAPIKey, UserAPIKey, key_scope


@dataclass
class RotationReport:
    rewrapped: int = 0
    unreadable: list[str] = field(default_factory=list)  # every row left as it was: table#id
    #: of those, how many are under each secret that is not configured (one missing from
    #: API_KEY_ENCRYPTION_OLD_SECRETS)...
    unconfigured: Counter[str] = field(default_factory=Counter)
    #: ...and the others, which do not decrypt under a secret that is: tampered with, or moved
    damaged: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.unreadable


def pending_count() -> int:
    current = current_keyring().current_version
    return sum(
        db.session.scalar(
            db.select(func.count()).select_from(model).where(model.key_version != current)
        )
        or 0
        for model in (UserAPIKey, GlobalAPIKey)
    )


def _columns(model: type) -> list[Any]:
    cols = [model.id, model.provider, model.encrypted_key, model.key_hash, model.key_version]
    cols += [model.config, model.updated_at]
    if model is UserAPIKey:
        cols.append(model.user_id)
    return cols


def _rewrap_table(
    model: type, batch_size: int, report: RotationReport, progress: Callable[[int], None]
) -> None:
    keyring = current_keyring()
    table = model.__table__
    stmt = (
        update(table)
        .where(
            and_(
                table.c.id == bindparam("b_id"),
                table.c.encrypted_key == bindparam("b_old"),
            )
        )
        .values(
            encrypted_key=bindparam("b_new"),
            key_hash=bindparam("b_hash"),
            key_version=bindparam("b_version"),
            updated_at=bindparam("b_updated"),
        )
    )
    last_id = 0
    while True:
        rows = db.session.execute(
            db.select(*_columns(model))
            .where(model.key_version != keyring.current_version, model.id > last_id)
            .order_by(model.id)
            .limit(batch_size)
        ).all()
        if not rows:
            return
        params = []
        for row in rows:
            sealed = SealedKey(row.encrypted_key, row.key_hash, row.key_version)
            try:
                new = keyring.rewrap(key_scope(model, row), sealed, row.config)
            except KeyDecryptionError:
                name = f"{table.name}#{row.id}"
                report.unreadable.append(name)
                if row.key_version in keyring.versions:
                    report.damaged.append(name)
                else:
                    report.unconfigured[row.key_version] += 1
                continue
            if new is not None:
                params.append(
                    {
                        "b_id": row.id,
                        "b_old": row.encrypted_key,
                        "b_new": new.ciphertext,
                        "b_hash": new.key_hash,
                        "b_version": new.version,
                        "b_updated": row.updated_at,
                    }
                )
        if params:
            result = db.session.execute(
                stmt, params, execution_options={"synchronize_session": False}
            )
            changed = result.rowcount  # rows a user replaced meanwhile are not among them
            if changed:
                details = {
                    "table": table.name,
                    "count": changed,
                    "version": keyring.current_version,
                }
                record("secret.rotate", details=details)
            report.rewrapped += changed
        db.session.commit()
        last_id = rows[-1].id
        progress(len(rows))


def rotate_secret(
    batch_size: int = 1000, progress: Callable[[int], None] | None = None
) -> RotationReport:
    """Re-encrypt every row not under the current secret; safe to interrupt and re-run."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    report = RotationReport()
    for model in (UserAPIKey, GlobalAPIKey):
        _rewrap_table(model, batch_size, report, progress or (lambda n: None))
    record(
        "secret.rotate_finished",
        outcome="ok" if report.ok else "failed",
        details={
            "rewrapped": report.rewrapped,
            "unreadable": report.unreadable[:20],
            "version": current_keyring().current_version,
        },
    )
    db.session.commit()
    return report
