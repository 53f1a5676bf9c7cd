"""The crypto path: Keyring encrypt/decrypt of one key against bare Fernet (the floor).

The Keyring adds the per-owner HKDF derivation (cached per owner), the
HMAC that binds the ciphertext to its owner and provider, and its check
after decrypting. Floor and Keyring are timed alternately inside each
repetition, so both see the same machine. Storing and loading through the
service (database row, audit row, commit) are timed too, for scale.
"""

from __future__ import annotations

import itertools
import statistics
from pathlib import Path

from cryptography.fernet import Fernet

from bench.env import Database, make_app, migrate
from bench.seed import PROVIDERS, add_users
from bench.stats import Results, Row, Sample, judge, per_op_us, ratio
from webapp.crypto import Keyring, KeyScope
from webapp.extensions import db

TARGET_RATIO = 3.0
PLAINTEXT = "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5q" * 8  # as long as a real project key


def _crypto(reps: int, ops: int) -> dict[str, list[float]]:
    fernet = Fernet(Fernet.generate_key())
    token = fernet.encrypt(PLAINTEXT.encode())
    keyring = Keyring("bench-crypto-secret-" + "c" * 32)
    scope = KeyScope.for_user(1, "openai")
    sealed = keyring.encrypt(scope, PLAINTEXT)
    owners = itertools.count(2)
    timed = {
        "fernet_enc": lambda: fernet.encrypt(PLAINTEXT.encode()),
        "keyring_enc": lambda: keyring.encrypt(scope, PLAINTEXT),
        "fernet_dec": lambda: fernet.decrypt(token).decode(),
        "keyring_dec": lambda: keyring.decrypt(scope, sealed),
        "keyring_enc_cold": lambda: keyring.encrypt(
            KeyScope.for_user(next(owners), "openai"), PLAINTEXT
        ),
    }
    found: dict[str, list[float]] = {name: [] for name in timed}
    for fn in timed.values():
        per_op_us(fn, ops // 10)  # warm up
    for _ in range(reps):
        for name, fn in timed.items():
            found[name].append(per_op_us(fn, ops))
    return found


def _service(db_info: Database, folder: Path, reps: int, ops: int) -> dict[str, list[float]]:
    from webapp.auth.models import User
    from webapp.keys import resolve, service

    app = make_app(db_info, folder)
    migrate(app)
    found: dict[str, list[float]] = {"store": [], "load": []}
    with app.app_context():
        (uid,) = add_users(1, PROVIDERS)
        user = db.session.get(User, uid)
        for _ in range(reps):
            found["store"].append(
                per_op_us(lambda: service.store_key(user, "openai", PLAINTEXT, {}), ops)
            )
            found["load"].append(per_op_us(lambda: resolve.get_key_for(user, "openai"), ops * 5))
        db.session.remove()
        db.engine.dispose()
    return found


def run(results: Results, folder: Path, db_info: Database, reps: int) -> None:
    c = _crypto(reps, 3000)
    label = {"fernet_enc": "encrypt", "fernet_dec": "decrypt"}
    for floor_name, ours_name in (("fernet_enc", "keyring_enc"), ("fernet_dec", "keyring_dec")):
        floor = Sample(c[floor_name], "µs/op", 1)
        ours = Sample(c[ours_name], "µs/op", 1)
        r = ratio(ours, floor)
        what = label[floor_name]
        met, note = judge(r, lambda v: v <= TARGET_RATIO)
        results.add(
            Row("3. Crypto", f"bare Fernet {what} (floor)", floor),
            Row("3. Crypto", f"Keyring {what} (derived key cached, HMAC binding)", ours),
            Row("3. Crypto", f"Keyring ÷ floor, {what}", r, f"≤ {TARGET_RATIO:g}×", met, note),
        )
    results.add(
        Row(
            "3. Crypto",
            "Keyring encrypt for a new owner (HKDF derivation, cache miss)",
            Sample(c["keyring_enc_cold"], "µs/op", 1),
            note="once per owner and secret per worker, then cached",
        )
    )
    s = _service(db_info, folder, reps, 200)
    store, load = Sample(s["store"], "µs/op", 0), Sample(s["load"], "µs/op", 0)
    enc_share = statistics.median(c["keyring_enc"]) / store.median
    dec_share = statistics.median(c["keyring_dec"]) / load.median
    results.add(
        Row(
            "3. Crypto",
            "store_key: encrypt + upsert + audit row + commit (SQLite file)",
            store,
            note=f"crypto is {enc_share:.1%} of it",
        ),
        Row(
            "3. Crypto",
            "get_key_for: select + decrypt + integrity check (SQLite file)",
            load,
            note=f"crypto is {dec_share:.1%} of it",
        ),
    )
