"""The token string: recognisable, checksummed, random."""

from __future__ import annotations

import re
import zlib

import pytest

from webapp.tokens import format as tf


def test_generated_tokens_have_the_documented_shape():
    tokens = {tf.generate() for _ in range(200)}
    assert len(tokens) == 200
    for token in tokens:
        assert re.fullmatch(r"khp_[0-9A-Za-z]{38}", token)
        assert tf.check(token) == token
        random_part = token[4:36]
        assert tf.base62(zlib.crc32(random_part.encode()), 6) == token[36:]
        assert tf.hint(token) == token[:8]


def test_base62_is_zero_padded_and_covers_every_crc():
    assert tf.base62(0, 6) == "000000"
    assert tf.base62(61, 6) == "00000z"
    assert tf.base62(62, 6) == "000010"
    assert len(tf.base62(2**32 - 1, 6)) == 6  # 62**6 > 2**32
    with pytest.raises(ValueError):
        tf.base62(62**6, 6)


def test_every_single_character_change_is_caught():
    token = tf.generate()
    for position in range(4, len(token)):
        for replacement in "0aZ":
            if token[position] == replacement:
                continue
            changed = token[:position] + replacement + token[position + 1 :]
            with pytest.raises(tf.TokenFormatError) as info:
                tf.check(changed)
            assert info.value.reason == "bad_checksum"


@pytest.mark.parametrize(
    "raw",
    ["", "khp_", "ghp_" + "a" * 38, "khp_" + "a" * 37, "khp_" + "a" * 39, "khp_" + "a" * 37 + "-"],
)
def test_malformed_strings_are_not_tokens(raw):
    with pytest.raises(tf.TokenFormatError) as info:
        tf.check(raw)
    assert info.value.reason == "malformed"


def test_non_ascii_digits_are_refused():
    token = tf.generate()
    with pytest.raises(tf.TokenFormatError):
        tf.check(token[:10] + "\u0663" + token[11:])  # ARABIC-INDIC DIGIT THREE


def test_hash_is_sha256_hex_of_the_whole_token():
    token = tf.generate()
    digest = tf.token_hash(token)
    assert re.fullmatch(r"[0-9a-f]{64}", digest) and token not in digest
    assert digest != tf.token_hash(tf.generate())
