"""The keyring: per-owner keys, integrity binding, versions, masking."""

from __future__ import annotations

import pytest

from webapp.crypto import KeyDecryptionError, Keyring, KeyScope, SealedKey, mask_key, secret_id

CURRENT = "current-secret-" + "c" * 40
OLD = "old-secret-" + "o" * 40
PLAIN = "sk-proj-" + "A1b2C3d4" * 10


@pytest.fixture
def keyring() -> Keyring:
    return Keyring(CURRENT)


def test_round_trip_and_ciphertext_is_not_plaintext(keyring):
    scope = KeyScope.for_user(1, "openai")
    sealed = keyring.encrypt(scope, PLAIN)
    assert PLAIN not in sealed.ciphertext
    assert PLAIN not in sealed.key_hash
    assert sealed.version == secret_id(CURRENT)
    assert keyring.decrypt(scope, sealed) == PLAIN


def test_same_key_encrypts_differently_each_time(keyring):
    scope = KeyScope.for_user(1, "openai")
    assert keyring.encrypt(scope, PLAIN).ciphertext != keyring.encrypt(scope, PLAIN).ciphertext


def test_row_moved_to_another_user_fails(keyring):
    sealed = keyring.encrypt(KeyScope.for_user(1, "openai"), PLAIN)
    with pytest.raises(KeyDecryptionError, match="does not decrypt for user:2"):
        keyring.decrypt(KeyScope.for_user(2, "openai"), sealed)


def test_row_moved_to_another_provider_fails(keyring):
    sealed = keyring.encrypt(KeyScope.for_user(1, "openai"), PLAIN)
    with pytest.raises(KeyDecryptionError, match="integrity check"):
        keyring.decrypt(KeyScope.for_user(1, "groq"), sealed)


def test_global_keys_use_their_own_context(keyring):
    sealed = keyring.encrypt(KeyScope.for_global("openai"), PLAIN)
    with pytest.raises(KeyDecryptionError):
        keyring.decrypt(KeyScope.for_user(1, "openai"), sealed)
    assert keyring.decrypt(KeyScope.for_global("openai"), sealed) == PLAIN


def test_tampered_ciphertext_or_hash_fails(keyring):
    scope = KeyScope.for_user(1, "openai")
    sealed = keyring.encrypt(scope, PLAIN)
    flipped = sealed.ciphertext[:-5] + ("A" if sealed.ciphertext[-5] != "A" else "B")
    flipped += sealed.ciphertext[-4:]
    with pytest.raises(KeyDecryptionError):
        keyring.decrypt(scope, SealedKey(flipped, sealed.key_hash, sealed.version))
    with pytest.raises(KeyDecryptionError):
        keyring.decrypt(scope, SealedKey(sealed.ciphertext, "0" * 64, sealed.version))


def test_key_hash_needs_the_secret(keyring):
    # Without the server secret nobody can confirm a guessed key against key_hash.
    scope = KeyScope.for_user(1, "openai")
    other = Keyring("another-secret-" + "x" * 40)
    assert keyring.key_hash(scope, PLAIN) != other.key_hash(scope, PLAIN)


AZURE = {"endpoint": "https://contoso.openai.azure.com", "api_version": "2024-10-21"}


def test_a_keys_settings_are_bound_to_it(keyring):
    scope = KeyScope.for_user(1, "azure_openai")
    sealed = keyring.encrypt(scope, PLAIN, AZURE)
    assert keyring.decrypt(scope, sealed, dict(reversed(AZURE.items()))) == PLAIN  # any order
    elsewhere = {**AZURE, "endpoint": "https://attacker.example"}
    for settings in (elsewhere, {**AZURE, "api_version": "2025-01-01"}, {}, None):
        with pytest.raises(KeyDecryptionError, match="its settings"):
            keyring.decrypt(scope, sealed, settings)


def test_keys_without_settings_keep_the_hash_they_always_had(keyring):
    # Rows stored before settings were bound must stay readable: same message, same HMAC.
    scope = KeyScope.for_user(1, "openai")
    before = "296ba9294e67faa85e54321ae7040cf740bd67226e60fbd7e66cb3d851393fe4"
    assert keyring.key_hash(scope, PLAIN) == before
    assert keyring.key_hash(scope, PLAIN, settings={}) == before
    assert keyring.encrypt(scope, PLAIN, {}).key_hash == before
    assert keyring.key_hash(scope, PLAIN, settings=AZURE) != before


def test_rewrap_keeps_the_settings_bound():
    scope = KeyScope.for_user(7, "custom")
    settings = {"base_url": "https://llm.example.com/v1"}
    sealed_old = Keyring(OLD).encrypt(scope, PLAIN, settings)
    rewrapped = Keyring(CURRENT, [OLD]).rewrap(scope, sealed_old, settings)
    assert Keyring(CURRENT).decrypt(scope, rewrapped, settings) == PLAIN
    with pytest.raises(KeyDecryptionError):
        Keyring(CURRENT, [OLD]).rewrap(scope, sealed_old, {"base_url": "https://x.example"})


def test_old_secret_still_reads_and_rewrap_moves_to_current():
    scope = KeyScope.for_user(7, "anthropic")
    sealed_old = Keyring(OLD).encrypt(scope, PLAIN)
    keyring = Keyring(CURRENT, [OLD])
    assert keyring.decrypt(scope, sealed_old) == PLAIN
    rewrapped = keyring.rewrap(scope, sealed_old)
    assert rewrapped is not None and rewrapped.version == keyring.current_version
    assert keyring.rewrap(scope, rewrapped) is None
    assert Keyring(CURRENT).decrypt(scope, rewrapped) == PLAIN


@pytest.mark.parametrize("written", [OLD + "\n", " " + OLD])
def test_an_old_secret_reads_as_it_was_given_when_it_was_current(written):
    # The current secret is used as given (here as read from a file, newline and all); moved
    # to the old secrets, possibly in a list written "a, b", it must still read its rows.
    scope = KeyScope.for_user(7, "anthropic")
    sealed = Keyring(written).encrypt(scope, PLAIN)
    listed = f"{CURRENT},{written}".split(",")
    assert Keyring(CURRENT, listed).decrypt(scope, sealed) == PLAIN
    trimmed = Keyring(OLD).encrypt(scope, PLAIN)
    assert Keyring(CURRENT, f"{CURRENT}, {OLD}".split(",")).decrypt(scope, trimmed) == PLAIN


def test_unknown_secret_version_is_a_clear_error():
    scope = KeyScope.for_user(7, "anthropic")
    sealed_old = Keyring(OLD).encrypt(scope, PLAIN)
    with pytest.raises(KeyDecryptionError, match="API_KEY_ENCRYPTION_OLD_SECRETS"):
        Keyring(CURRENT).decrypt(scope, sealed_old)


@pytest.mark.parametrize(
    ("plain", "prefix", "expected"),
    [
        ("sk-proj-" + "x" * 60 + "a1B2", "sk-proj-", "sk-proj-\u2026a1B2"),
        ("sk-" + "x" * 45 + "zzzz", "sk-proj-", "\u2026zzzz"),
        ("AIza" + "y" * 31 + "QQQQ", "AIza", "AIza\u2026QQQQ"),
        ("0123456789abcdef0123456789abcdef", "", "\u2026cdef"),
        ("short-key-12", "", "\u202612"),
    ],
)
def test_mask_key(plain, prefix, expected):
    assert mask_key(plain, prefix) == expected
