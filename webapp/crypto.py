"""Encryption of stored API keys.

Each stored key is encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under a
key derived with HKDF-SHA256 from the server secret and a context naming its
owner (one key per user; global keys have a context of their own). The
secret is already high-entropy, so HKDF is the right derivation: it is
microseconds, where a password KDF would cost ~100 ms per request and add
nothing.

Next to the ciphertext each row keeps an HMAC-SHA256 of the plaintext, bound
to its owner, its provider and its settings (endpoint, API version, base
URL), under another key derived from the same secret. It is checked after
every decrypt, so a row copied to another user or provider, or whose
settings were changed to send the key elsewhere, fails loudly instead of
handing out the credential, and it cannot be used to confirm a guessed key
without the server secret.

Secrets are versioned by a short, non-reversible id. Rows record the id of
the secret that encrypted them; old secrets stay readable until every row has
been re-encrypted (``flask keys rotate-secret``) and they are removed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_SALT = b"keyhold/hkdf-salt/v1"
_ELLIPSIS = "\u2026"

#: a key's settings as stored in its row's ``config``
Settings = Mapping[str, Any] | None


class KeyDecryptionError(Exception):
    """A stored key could not be decrypted or failed its integrity check."""


@dataclass(frozen=True)
class KeyScope:
    """Whose key this is: ``owner`` is ``user:<id>`` or ``global``."""

    owner: str
    provider: str

    @classmethod
    def for_user(cls, user_id: int, provider: str) -> KeyScope:
        return cls(f"user:{int(user_id)}", provider)

    @classmethod
    def for_global(cls, provider: str) -> KeyScope:
        return cls("global", provider)


@dataclass(frozen=True)
class SealedKey:
    """What is stored: never the plaintext."""

    ciphertext: str
    key_hash: str
    version: str


def secret_id(secret: str) -> str:
    """A short public id for a secret; it reveals nothing about the secret."""
    return hmac.new(secret.encode(), b"keyhold/secret-id", hashlib.sha256).hexdigest()[:12]


def old_secrets(setting: str) -> list[str]:
    """The secrets ``API_KEY_ENCRYPTION_OLD_SECRETS`` names: its comma-separated parts and,
    when it has a comma, the whole value too, so that one secret with a comma in it (given
    alone) can still be rotated away from."""
    parts = setting.split(",")
    return [*parts, setting] if len(parts) > 1 else parts


def _hkdf(secret: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=info).derive(secret)


class Keyring:
    """Encrypts, decrypts and re-wraps API keys under versioned server secrets."""

    def __init__(self, current: str, old: Iterable[str] = ()) -> None:
        if not current:
            raise ValueError("an encryption secret is required")
        self.current_version = secret_id(current)
        self._secrets: dict[str, bytes] = {self.current_version: current.encode()}
        for secret in old:
            # As given and trimmed: a secret that was current with a trailing newline (read
            # from a file) keeps its id when it moves here, and "a, b" still names b.
            for candidate in dict.fromkeys((secret, secret.strip())):
                if candidate.strip():
                    self._secrets.setdefault(secret_id(candidate), candidate.encode())
        # Derivation is cheap but not free; each (version, owner) is derived once.
        self._fernet = lru_cache(maxsize=8192)(self._make_fernet)
        self._mac_key = lru_cache(maxsize=16)(self._make_mac_key)

    @property
    def versions(self) -> tuple[str, ...]:
        return tuple(self._secrets)

    def _secret(self, version: str) -> bytes:
        try:
            return self._secrets[version]
        except KeyError:
            raise KeyDecryptionError(
                f"the key was encrypted under secret {version}, which is not configured "
                "(add it to API_KEY_ENCRYPTION_OLD_SECRETS)"
            ) from None

    def _make_fernet(self, version: str, owner: str) -> Fernet:
        info = b"keyhold/v1/fernet/" + owner.encode()
        return Fernet(base64.urlsafe_b64encode(_hkdf(self._secret(version), info)))

    def _make_mac_key(self, version: str) -> bytes:
        return _hkdf(self._secret(version), b"keyhold/v1/key-hash")

    def key_hash(
        self,
        scope: KeyScope,
        plaintext: str,
        version: str | None = None,
        settings: Settings = None,
    ) -> str:
        message = f"{scope.owner}\x00{scope.provider}\x00{plaintext}".encode()
        if settings:
            # Appended only when there are settings, so a key without any keeps the hash it
            # has always had.
            message += b"\x00" + _canonical(settings)
        mac_key = self._mac_key(version or self.current_version)
        return hmac.new(mac_key, message, hashlib.sha256).hexdigest()

    def encrypt(self, scope: KeyScope, plaintext: str, settings: Settings = None) -> SealedKey:
        version = self.current_version
        token = self._fernet(version, scope.owner).encrypt(plaintext.encode())
        key_hash = self.key_hash(scope, plaintext, version, settings)
        return SealedKey(token.decode(), key_hash, version)

    def decrypt(self, scope: KeyScope, sealed: SealedKey, settings: Settings = None) -> str:
        """The plaintext, if the row is still its owner's, for its provider, with its settings."""
        fernet = self._fernet(sealed.version, scope.owner)
        try:
            plaintext = fernet.decrypt(sealed.ciphertext.encode()).decode()
        except (InvalidToken, UnicodeDecodeError):
            raise KeyDecryptionError(
                f"the stored {scope.provider} key does not decrypt for {scope.owner}: "
                "it was tampered with or belongs to someone else"
            ) from None
        expected = self.key_hash(scope, plaintext, sealed.version, settings)
        if not hmac.compare_digest(expected, sealed.key_hash):
            raise KeyDecryptionError(
                f"the stored {scope.provider} key for {scope.owner} failed its integrity check: "
                "it was moved from another provider, or it or its settings (endpoint, base URL) "
                "were changed outside Keyhold"
            )
        return plaintext

    def rewrap(
        self, scope: KeyScope, sealed: SealedKey, settings: Settings = None
    ) -> SealedKey | None:
        """Re-encrypt under the current secret; ``None`` if it already is."""
        if sealed.version == self.current_version:
            return None
        return self.encrypt(scope, self.decrypt(scope, sealed, settings), settings)


def _canonical(settings: Mapping[str, Any]) -> bytes:
    """One byte string per set of settings, whatever the order or the database's JSON."""
    return json.dumps(
        dict(settings), sort_keys=True, separators=(",", ":"), ensure_ascii=True
    ).encode()


def fingerprint(key_hash: str) -> str:
    """A short, stable reference to a stored key for audit rows and logs."""
    return key_hash[:12]


def mask_key(plaintext: str, prefix: str = "") -> str:
    """Show a key as its public prefix and last four characters: ``sk-proj-…a1B2``.

    Keys shorter than 16 characters show only their last two, so a short key
    never has a quarter of itself on screen.
    """
    if len(plaintext) < 16:
        return _ELLIPSIS + plaintext[-2:]
    shown = prefix if prefix and plaintext.startswith(prefix) else ""
    if len(shown) > len(plaintext) // 3:
        shown = ""
    return f"{shown}{_ELLIPSIS}{plaintext[-4:]}"


def current_keyring() -> Keyring:
    """The app's keyring, built once by ``create_app``."""
    from flask import current_app

    return current_app.extensions["keyhold_keyring"]
