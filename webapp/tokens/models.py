"""Personal access tokens. Only a SHA-256 of each token is stored, never the token."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.db_types import UTCDateTime, utcnow
from webapp.extensions import db

ACTIVE = "active"
EXPIRED = "expired"
REVOKED = "revoked"
ROTATING = "rotating"  # replaced, still accepted until grace_until
REPLACED = "replaced"
#: the id in URLs: past the largest database integer is a 404, not a database error
URL_ID = "<int(min=1, max=2147483647):token_id>"


class AccessToken(db.Model):
    __tablename__ = "access_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    # The first characters ("khp_" + 4 random): finds the row, shown to tell tokens apart.
    token_hint: Mapped[str] = mapped_column(String(8), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    allowed_ips: Mapped[list[str]] = mapped_column(JSON, default=list)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_ip: Mapped[str | None] = mapped_column(String(64))
    use_count: Mapped[int] = mapped_column(default=0)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    replaced_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("access_tokens.id", ondelete="SET NULL")
    )
    grace_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def state(self, now: datetime) -> str:
        """Whether the token is accepted at ``now``, and if not, why."""
        if self.revoked_at is not None:
            return REVOKED
        if self.expires_at is not None and now >= self.expires_at:
            return EXPIRED
        if self.grace_until is not None:  # set by rotation, never later than expires_at
            return ROTATING if now < self.grace_until else REPLACED
        return ACTIVE

    def accepted(self, now: datetime) -> bool:
        return self.state(now) in (ACTIVE, ROTATING)

    def __repr__(self) -> str:
        return f"<AccessToken {self.id} user={self.user_id} {self.token_hint}>"
