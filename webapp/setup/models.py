"""The one-time setup token that lets the first admin claim a fresh instance."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.db_types import UTCDateTime, utcnow
from webapp.extensions import db


class SetupToken(db.Model):
    __tablename__ = "setup_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64))  # SHA-256: the token is high-entropy
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
