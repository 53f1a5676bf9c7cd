"""First start: the one-time setup token, the first admin account, and whether setup is done.

Until an admin account exists, every page leads to ``/setup``, and only the
holder of the setup token may act there. The token is random (256 bits),
stored as a SHA-256 hash (a fast hash is right for a high-entropy secret),
and written in plaintext only to the token file (mode 0600) and, once, to
the log. Creating the first admin deletes it in the same transaction.

There is at most one token: its row always has the same primary key, so two
workers starting at once cannot both create one; the loser of that race
simply finds the winner's row.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy.exc import IntegrityError

from webapp import monitoring
from webapp.audit.service import RequestInfo, record
from webapp.auth.forms import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from webapp.auth.models import User
from webapp.auth.services import EmailTaken, add_user
from webapp.extensions import db
from webapp.keys.errors import KeyServiceError
from webapp.setup.models import SetupToken

log = logging.getLogger(__name__)

TOKEN_PREFIX = "khs_"
MAX_TOKEN_LENGTH = 128
_TOKEN_ROW_ID = 1
_STATE = "keyhold_setup"


class SetupFinished(KeyServiceError):
    """Setup is over: the token, if anyone still has it, opens nothing."""

    code = "setup_finished"
    status = 403


class SetupTokenRefused(KeyServiceError):
    code = "setup_token_invalid"
    status = 403


class AccountRefused(KeyServiceError):
    """The admin account cannot be created as asked; ``fields`` says why."""

    code = "invalid_input"
    status = 422


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def admin_exists() -> bool:
    return db.session.scalar(db.select(User.id).filter_by(is_admin=True).limit(1)) is not None


def setup_finished() -> bool:
    """Whether an admin account exists.

    Once true it is remembered for the life of the process: setup never
    reopens by itself (after the last admin is removed, an operator runs
    ``flask create-admin``), and the check costs nothing on later requests.
    """
    state = current_app.extensions.setdefault(_STATE, {})
    if not state.get("finished"):
        state["finished"] = admin_exists()
    return state["finished"]


def token_file() -> Path:
    return Path(current_app.config["SETUP_TOKEN_FILE"])


def _write_token_file(token: str) -> Path:
    """Replace the token file atomically; it is never readable by others, even briefly."""
    path = token_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(token + "\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _remove_token_file() -> None:
    token_file().unlink(missing_ok=True)


def _new_token_row(via: str, info: RequestInfo | None) -> str:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    db.session.add(SetupToken(id=_TOKEN_ROW_ID, token_hash=hash_token(token)))
    db.session.flush()
    record("setup.token_issued", info=info, details={"via": via})
    return token


def ensure_token() -> None:
    """Create the setup token if setup is not finished and there is none yet."""
    if setup_finished() or db.session.get(SetupToken, _TOKEN_ROW_ID) is not None:
        return
    try:
        token = _new_token_row("first_start", None)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()  # another worker created it a moment ago
        return
    path = _try_token_file(token)
    # The log is where the operator finds the token on a first start: it goes there even
    # when the file could not be written.
    log.warning(
        "Keyhold is not set up yet. Open /setup and enter this one-time setup token: %s "
        "(%s; `flask setup-token` replaces it).",
        token,
        f"also written to {path}" if path else f"could not be written to {token_file()}",
        extra={"event": "setup.token_issued"},
    )


def _try_token_file(token: str) -> Path | None:
    """Write the token file; None, with the reason logged, when it cannot be written."""
    try:
        return _write_token_file(token)
    except OSError as exc:
        log.error(
            "could not write the setup token file %s: %s (set SETUP_TOKEN_FILE to a writable path)",
            token_file(),
            exc.strerror or type(exc).__name__,
            extra={"event": "setup.token_file_failed"},
        )
        return None


def issue_token(*, info: RequestInfo | None = None) -> tuple[str, Path | None]:
    """Replace any setup token with a fresh one; return its plaintext, and the file it was
    written to (None when it could not be written: the caller shows it instead)."""
    if admin_exists():
        raise SetupFinished("Setup is finished; use `flask create-admin` to add an admin.")
    db.session.execute(db.delete(SetupToken))
    token = _new_token_row("command", info)
    db.session.commit()
    return token, _try_token_file(token)


def _row_for(token_hash: str) -> SetupToken | None:
    row = db.session.get(SetupToken, _TOKEN_ROW_ID)
    if row is None or not hmac.compare_digest(row.token_hash, token_hash):
        return None
    return row


def check_token(token: str | None, *, info: RequestInfo | None = None) -> str:
    """The proof of ``token`` if it opens setup now; otherwise audit the attempt and refuse.

    The proof (the token's hash) is what the setup pages keep in the session,
    so the plaintext is needed only once.
    """
    if setup_finished():
        refuse_after_setup(info)
        raise SetupFinished("Setup is finished.")
    if isinstance(token, str):
        token = token.strip()  # pasted with the line break or spaces around it
    valid = isinstance(token, str) and 0 < len(token) <= MAX_TOKEN_LENGTH
    if not valid or _row_for(hash_token(token)) is None:
        _refused(info, "setup_token")
        raise SetupTokenRefused("That is not the current setup token.")
    return hash_token(token)


def open_setup(token: str | None, *, info: RequestInfo | None = None) -> str:
    """``check_token`` for a browser that keeps the proof for the setup pages: the moment
    it gains the right to set global keys and create the first admin is on the record,
    with its address, as a wrong token is."""
    proof = check_token(token, info=info)
    record("setup.token_accepted", info=info)
    db.session.commit()
    return proof


def refuse_after_setup(info: RequestInfo | None) -> None:
    """A setup token offered after setup opens nothing; the attempt is on the record all the
    same, from the setup page as from the API."""
    _refused(info, "setup_finished")


def _refused(info: RequestInfo | None, reason: str) -> None:
    record("access.denied", outcome="denied", info=info, details={"reason": reason})
    db.session.commit()
    monitoring.access_denied(None, info and info.ip, reason)


def proof_is_current(proof: object) -> bool:
    """Whether a proof kept in the session still matches the current, unused token."""
    if not isinstance(proof, str) or setup_finished():
        return False
    return _row_for(proof) is not None


def account_problems(email: str | None, password: str | None) -> dict[str, str]:
    """Why an admin account with these details cannot be created (for the command line)."""
    problems: dict[str, str] = {}
    try:
        validate_email(email or "", check_deliverability=False)
    except EmailNotValidError as exc:
        problems["email"] = str(exc)
    # The same rules as the registration form, whose required check ignores blanks.
    if not password or not password.strip() or len(password) < MIN_PASSWORD_LENGTH:
        problems["password"] = f"Use at least {MIN_PASSWORD_LENGTH} characters, not all blank."
    elif len(password) > MAX_PASSWORD_LENGTH:
        problems["password"] = f"Use at most {MAX_PASSWORD_LENGTH} characters."
    return problems


def _add_admin(email: str, password: str) -> User:
    try:
        return add_user(email, password, is_admin=True)
    except EmailTaken:
        raise AccountRefused(
            "The admin account was not created.",
            {"email": "An account with this email already exists."},
        ) from None


def _finish(user: User, via: str, info: RequestInfo | None) -> None:
    """Close setup inside the caller's transaction."""
    db.session.execute(db.delete(SetupToken))
    record("setup.complete", actor_id=user.id, info=info, details={"via": via})


def complete_setup(proof: str, email: str, password: str, *, info: RequestInfo | None) -> User:
    """Create the first admin (``proof`` from ``check_token``); the token dies with it."""
    if not proof_is_current(proof):
        raise SetupTokenRefused("The setup token was used or replaced; enter the current one.")
    user = _add_admin(email, password)
    # Only one request can delete the token: a second one racing this finds nothing to delete.
    deleted = db.session.execute(
        db.delete(SetupToken).where(SetupToken.id == _TOKEN_ROW_ID, SetupToken.token_hash == proof)
    ).rowcount
    if deleted != 1:
        db.session.rollback()
        raise SetupTokenRefused("The setup token was used or replaced meanwhile.")
    record("admin.create", actor_id=user.id, info=info, details={"via": "setup"})
    _finish(user, "setup", info)
    db.session.commit()
    _remove_token_file()
    current_app.extensions.setdefault(_STATE, {})["finished"] = True
    log.info("setup completed; admin account %s created", user.id, extra={"event": "setup"})
    return user


def create_admin(
    email: str, password: str, *, info: RequestInfo | None = None
) -> tuple[User, bool]:
    """Create an admin account (the operator's command); returns it and whether it ended setup."""
    if problems := account_problems(email, password):
        raise AccountRefused("The admin account was not created.", problems)
    first = not admin_exists()
    user = _add_admin(email, password)
    record("admin.create", actor_id=user.id, info=info, details={"via": "command"})
    if first:
        _finish(user, "command", info)
    db.session.commit()
    if first:
        _remove_token_file()
    current_app.extensions.setdefault(_STATE, {})["finished"] = True
    return user, first
