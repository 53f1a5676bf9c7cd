"""The rules a token is issued under: scopes, lifetimes, grace periods and IP allow-lists."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import base_config
from webapp import create_app
from webapp.config import ConfigError
from webapp.tokens import policy
from webapp.tokens.models import ACTIVE, EXPIRED, REPLACED, REVOKED, ROTATING, AccessToken

CONFIG = {
    "TOKEN_DEFAULT_EXPIRY_DAYS": 90,
    "TOKEN_MAX_EXPIRY_DAYS": 365,
    "TOKEN_ALLOW_NO_EXPIRY": False,
    "TOKEN_ROTATION_GRACE_HOURS": 24,
    "TOKEN_MAX_GRACE_HOURS": 168,
    "TOKEN_MAX_PER_USER": 50,
}
NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("203.0.113.7", ["203.0.113.7"]),
        ("203.0.113.7/32", ["203.0.113.7"]),
        ("10.0.0.0/8, 2001:db8::/32", ["10.0.0.0/8", "2001:db8::/32"]),
        ("2001:DB8::1\n2001:db8::1", ["2001:db8::1"]),
        (["192.0.2.0/24", " 192.0.2.0/24 "], ["192.0.2.0/24"]),
        ("", []),
        (None, []),
    ],
)
def test_allow_lists_are_cleaned(raw, cleaned):
    assert policy.clean_allowed_ips(raw) == (cleaned, None)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("10.0.0.1/8", "did you mean 10.0.0.0/8?"),
        ("2001:db8::1/32", "did you mean 2001:db8::/32?"),
        ("300.1.1.1", "is not an IP address"),
        ("010.0.0.1", "is not an IP address"),
        ("example.com", "is not an IP address"),
        ("10.0.0.0/33", "is not an IP address"),
        ([1, 2], "must be a list of strings"),
        (" ".join(f"10.0.0.{i}" for i in range(33)), "At most 32"),
    ],
)
def test_bad_allow_lists_say_what_is_wrong(raw, fragment):
    cleaned, problem = policy.clean_allowed_ips(raw)
    assert cleaned == [] and fragment in problem


@pytest.mark.parametrize(
    ("client", "allowed"),
    [
        ("192.0.2.77", True),
        ("192.0.3.1", False),
        ("2001:db8:abcd::1", True),
        ("2001:db9::1", False),
        ("::ffff:192.0.2.1", True),  # IPv4 through a dual-stack socket
        ("fe80::1%eth0", False),
        ("unknown", False),
        ("", False),
        (None, False),
    ],
)
def test_ip_allowed(client, allowed):
    assert policy.ip_allowed(["192.0.2.0/24", "2001:db8:abcd::/48"], client) is allowed


def test_an_empty_allow_list_allows_every_address():
    assert policy.ip_allowed([], "198.51.100.1") and policy.ip_allowed([], "unknown")


def test_scopes_are_known_ordered_and_not_empty():
    assert policy.clean_scopes(["audit:read", "keys:read", "keys:read"]) == (
        ["keys:read", "audit:read"],
        None,
    )
    assert "Unknown scope" in policy.clean_scopes(["admin"])[1]
    assert policy.clean_scopes([])[1] == "Choose at least one scope."
    assert policy.clean_scopes("keys:read")[1] == "Scopes must be a list of strings."
    assert policy.RESOLVE_SCOPE not in policy.DEFAULT_SCOPES


@pytest.mark.parametrize(
    ("raw", "allow_never", "expected"),
    [
        (30, False, (30, None)),
        (365, False, (365, None)),
        (None, True, (None, None)),
        (None, False, (None, "Tokens must expire; choose at most 365 days.")),
        (0, False, (None, "The lifetime must be between 1 and 365 days.")),
        (366, False, (None, "The lifetime must be between 1 and 365 days.")),
        (True, False, (None, "The lifetime must be a whole number of days.")),
        ("30", False, (None, "The lifetime must be a whole number of days.")),
    ],
)
def test_expiry(raw, allow_never, expected):
    assert policy.clean_expiry(raw, {**CONFIG, "TOKEN_ALLOW_NO_EXPIRY": allow_never}) == expected


def test_expiry_choices_follow_the_config():
    assert policy.expiry_choices(CONFIG) == [7, 30, 90, 180, 365]
    short = {**CONFIG, "TOKEN_MAX_EXPIRY_DAYS": 45, "TOKEN_DEFAULT_EXPIRY_DAYS": 14}
    assert policy.expiry_choices(short) == [7, 14, 30, 45]
    assert policy.expiry_choices({**CONFIG, "TOKEN_ALLOW_NO_EXPIRY": True})[-1] is None


def test_a_rotated_token_keeps_its_lifetime_within_todays_policy():
    created = NOW - timedelta(days=10)
    assert policy.lifetime_days(created, created + timedelta(days=30), CONFIG) == 30
    assert policy.lifetime_days(created, created + timedelta(days=400), CONFIG) == 365
    assert policy.lifetime_days(created, None, CONFIG) == 365  # "never" is no longer allowed
    assert policy.lifetime_days(created, None, {**CONFIG, "TOKEN_ALLOW_NO_EXPIRY": True}) is None


@pytest.mark.parametrize(("raw", "hours"), [(None, 24), (0, 0), (168, 168)])
def test_grace(raw, hours):
    assert policy.clean_grace(raw, CONFIG) == (hours, None)


@pytest.mark.parametrize("raw", [-1, 169, "24", 2.5, False])
def test_bad_grace(raw):
    assert "from 0 to 168" in policy.clean_grace(raw, CONFIG)[1]


def _token(**values) -> AccessToken:
    return AccessToken(**{"expires_at": NOW + timedelta(days=1), **values})


@pytest.mark.parametrize(
    ("values", "state"),
    [
        ({}, ACTIVE),
        ({"expires_at": None}, ACTIVE),
        ({"expires_at": NOW}, EXPIRED),
        ({"revoked_at": NOW - timedelta(hours=1)}, REVOKED),
        ({"grace_until": NOW + timedelta(seconds=1)}, ROTATING),
        ({"grace_until": NOW}, REPLACED),
        ({"grace_until": NOW + timedelta(hours=1), "revoked_at": NOW}, REVOKED),
    ],
)
def test_token_states(values, state):
    token = _token(**values)
    assert token.state(NOW) == state
    assert token.accepted(NOW) is (state in (ACTIVE, ROTATING))


@pytest.mark.parametrize(
    "overrides",
    [
        {"TOKEN_DEFAULT_EXPIRY_DAYS": 400},
        {"TOKEN_MAX_EXPIRY_DAYS": 0},
        {"TOKEN_ROTATION_GRACE_HOURS": 200},
        {"TOKEN_MAX_PER_USER": 0},
        # Past any date a database holds: every token request would fail.
        {"TOKEN_MAX_EXPIRY_DAYS": 100_000_000, "TOKEN_DEFAULT_EXPIRY_DAYS": 100_000_000},
        {"TOKEN_MAX_GRACE_HOURS": 10**12},
    ],
)
def test_impossible_settings_stop_the_app_with_a_message(tmp_path, overrides):
    with pytest.raises(ConfigError, match="TOKEN_"):
        create_app(base_config(f"sqlite:///{tmp_path / 'x.sqlite3'}", **overrides))
