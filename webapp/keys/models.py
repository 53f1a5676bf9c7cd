"""Stored API keys: a user's own, and the admin's global fallbacks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from webapp.crypto import KeyScope, SealedKey
from webapp.db_types import UTCDateTime, utcnow
from webapp.extensions import db

STATUS_UNCHECKED = "unchecked"


class StoredKeyMixin:
    """Columns every stored key has. The plaintext is never one of them."""

    provider: Mapped[str] = mapped_column(String(32))
    encrypted_key: Mapped[str] = mapped_column(Text)
    key_hash: Mapped[str] = mapped_column(String(64))
    key_hint: Mapped[str] = mapped_column(String(64))
    key_version: Mapped[str] = mapped_column(String(16), index=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    is_valid: Mapped[bool | None] = mapped_column(default=None)
    status: Mapped[str] = mapped_column(String(32), default=STATUS_UNCHECKED)
    last_validated: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(500))
    models: Mapped[list[str]] = mapped_column(JSON, default=list)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # When the key was last stored (seal); a check, a reminder or a rotation leaves it alone.
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def sealed(self) -> SealedKey:
        return SealedKey(self.encrypted_key, self.key_hash, self.key_version)

    def seal(self, sealed: SealedKey, hint: str) -> None:
        self.encrypted_key = sealed.ciphertext
        self.key_hash = sealed.key_hash
        self.key_version = sealed.version
        self.key_hint = hint
        self.updated_at = utcnow()


class UserAPIKey(StoredKeyMixin, db.Model):
    __tablename__ = "user_api_keys"
    __table_args__ = (UniqueConstraint("user_id", "provider"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"<UserAPIKey {self.id} user={self.user_id} {self.provider}>"


class GlobalAPIKey(StoredKeyMixin, db.Model):
    __tablename__ = "global_api_keys"
    __table_args__ = (UniqueConstraint("provider"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Whether users without a key of their own may fall back to this one.
    fallback_enabled: Mapped[bool] = mapped_column(default=True)
    updated_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )

    def __repr__(self) -> str:
        return f"<GlobalAPIKey {self.id} {self.provider}>"


def hold_keys(model: type[UserAPIKey] | type[GlobalAPIKey], *where: Any) -> None:
    """Hold the stored keys matching ``where`` until the transaction ends, before reading
    what is to be changed: on PostgreSQL their row locks; on SQLite, where row locks do not
    exist, a write that changes nothing takes the database's write lock (a read made before
    it sees a state another request may change before this one writes, and the ORM writes
    only the columns that differ from what it read: a replace would mix two keys' columns).
    """
    db.session.execute(
        db.update(model).where(*where).values(id=model.id),
        execution_options={"synchronize_session": False},
    )


def key_scope(model: type[UserAPIKey] | type[GlobalAPIKey], row: Any) -> KeyScope:
    """Whose key ``row`` (a stored key, or a row of its columns) is, as its sealing says."""
    if model is UserAPIKey:
        return KeyScope.for_user(row.user_id, row.provider)
    return KeyScope.for_global(row.provider)
