"""The token string: ``khp_`` + 32 random base62 characters + a 6-character base62 CRC32.

The checksum lets secret scanners recognise a token and lets the server
refuse a mistyped one without touching the database. It is not a secret and
proves nothing about authenticity: only the SHA-256 lookup does that.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
import zlib

PREFIX = "khp_"
RANDOM_LENGTH = 32
CHECKSUM_LENGTH = 6
TOKEN_LENGTH = len(PREFIX) + RANDOM_LENGTH + CHECKSUM_LENGTH
HINT_LENGTH = 8
ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase

_SHAPE = re.compile(rf"{PREFIX}[0-9A-Za-z]{{{RANDOM_LENGTH + CHECKSUM_LENGTH}}}", re.ASCII)


class TokenFormatError(ValueError):
    """The string cannot be a token; ``reason`` is ``malformed`` or ``bad_checksum``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, rest = divmod(number, len(ALPHABET))
        digits.append(ALPHABET[rest])
    if number:
        raise ValueError("number does not fit in the width")
    return "".join(reversed(digits))


def checksum(random_part: str) -> str:
    return base62(zlib.crc32(random_part.encode("ascii")), CHECKSUM_LENGTH)


def generate() -> str:
    random_part = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    return PREFIX + random_part + checksum(random_part)


def check(token: str) -> str:
    """Return ``token`` if it is well formed with a matching checksum; raise otherwise."""
    if not isinstance(token, str) or not _SHAPE.fullmatch(token):
        raise TokenFormatError("malformed")
    random_part = token[len(PREFIX) : len(PREFIX) + RANDOM_LENGTH]
    if token[-CHECKSUM_LENGTH:] != checksum(random_part):
        raise TokenFormatError("bad_checksum")
    return token


def token_hash(token: str) -> str:
    # A fast hash is right: 190 random bits leave nothing for a dictionary attack.
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def hint(token: str) -> str:
    return token[:HINT_LENGTH]
