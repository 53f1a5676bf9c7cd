"""What a token may do and for how long: scopes, expiry, IP allow-lists.

Each ``clean_*`` function returns the cleaned value or a message for the
user; the service gathers the messages into one ``TokenInputError``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from webapp.keys.inputs import has_invisible

SCOPES: dict[str, str] = {
    "keys:read": "See which providers you have keys for and their status.",
    "keys:write": "Add, replace and delete your keys.",
    "keys:validate": "Ask providers whether your stored keys work.",
    "keys:resolve": "Read the plaintext of your key for a provider (for your own services).",
    "audit:read": "Read your own audit log.",
}
#: Handing out plaintext keys is never implied: it must be chosen on its own.
RESOLVE_SCOPE = "keys:resolve"
DEFAULT_SCOPES = ("keys:read",)
MAX_NAME_LENGTH = 100
MAX_ALLOWED_IPS = 32
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def clean_name(raw: Any) -> tuple[str, str | None]:
    if not isinstance(raw, str):
        return "", "The name must be a string."
    name = raw.strip()
    if not name:
        return "", "Give the token a name, for example the script or server that will use it."
    if len(name) > MAX_NAME_LENGTH:
        return "", f"The name is too long ({MAX_NAME_LENGTH} characters at most)."
    if has_invisible(name):
        return "", "The name contains control or invisible characters."
    return name, None


def clean_scopes(raw: Any) -> tuple[list[str], str | None]:
    if not isinstance(raw, list | tuple) or not all(isinstance(s, str) for s in raw):
        return [], "Scopes must be a list of strings."
    unknown = sorted({s for s in raw if s not in SCOPES})
    if unknown:
        return [], f"Unknown scope(s): {', '.join(unknown)}. Known: {', '.join(SCOPES)}."
    if not raw:
        return [], "Choose at least one scope."
    return [s for s in SCOPES if s in raw], None


def expiry_choices(config: Mapping[str, Any]) -> list[int | None]:
    """Lifetimes in days a form offers, ending with None ("never") if the admin allows it."""
    longest = config["TOKEN_MAX_EXPIRY_DAYS"]
    days = {d for d in (7, 30, 90, 180, 365) if d <= longest}
    days |= {config["TOKEN_DEFAULT_EXPIRY_DAYS"], longest}
    choices: list[int | None] = sorted(days)
    if config["TOKEN_ALLOW_NO_EXPIRY"]:
        choices.append(None)
    return choices


def clean_expiry(raw: Any, config: Mapping[str, Any]) -> tuple[int | None, str | None]:
    """Days until expiry (None: never) from a whole number of days or None."""
    longest = config["TOKEN_MAX_EXPIRY_DAYS"]
    if raw is None:
        if config["TOKEN_ALLOW_NO_EXPIRY"]:
            return None, None
        return None, f"Tokens must expire; choose at most {longest} days."
    if isinstance(raw, bool) or not isinstance(raw, int):
        return None, "The lifetime must be a whole number of days."
    if not 1 <= raw <= longest:
        return None, f"The lifetime must be between 1 and {longest} days."
    return raw, None


def expiry_from(now: datetime, days: int | None) -> datetime | None:
    return None if days is None else now + timedelta(days=days)


def lifetime_days(
    created_at: datetime, expires_at: datetime | None, config: Mapping[str, Any]
) -> int | None:
    """The lifetime a token was issued with, within today's policy (for rotation)."""
    longest = config["TOKEN_MAX_EXPIRY_DAYS"]
    if expires_at is None:
        return None if config["TOKEN_ALLOW_NO_EXPIRY"] else longest
    days = round((expires_at - created_at) / timedelta(days=1))
    return min(max(days, 1), longest)


def clean_grace(raw: Any, config: Mapping[str, Any]) -> tuple[int, str | None]:
    if raw is None:
        return config["TOKEN_ROTATION_GRACE_HOURS"], None
    longest = config["TOKEN_MAX_GRACE_HOURS"]
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= longest:
        return 0, f"The grace period must be a whole number of hours from 0 to {longest}."
    return raw, None


def clean_allowed_ips(raw: Any) -> tuple[list[str], str | None]:
    """Addresses and CIDR ranges, IPv4 or IPv6, from a list or from text (one per line)."""
    if raw is None:
        return [], None
    if isinstance(raw, str):
        raw = raw.replace(",", " ").split()
    if not isinstance(raw, list | tuple) or not all(isinstance(e, str) for e in raw):
        return [], "The allowed addresses must be a list of strings."
    entries = [e.strip() for e in raw if e.strip()]
    if len(entries) > MAX_ALLOWED_IPS:
        return [], f"At most {MAX_ALLOWED_IPS} addresses or ranges."
    cleaned = []
    for entry in entries:
        try:
            network = ipaddress.ip_network(entry, strict=True)
        except ValueError:
            return [], _network_problem(entry)
        cleaned.append(_display(network))
    return list(dict.fromkeys(cleaned)), None


def _network_problem(entry: str) -> str:
    shown = entry if len(entry) <= 60 else entry[:57] + "..."
    try:
        fixed = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return f"{shown!r} is not an IP address or range (like 203.0.113.0/24 or 2001:db8::/32)."
    return f"{shown!r} has host bits set; did you mean {fixed}?"


def _display(network: Network) -> str:
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return str(network)


def _addresses(raw: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        address = ipaddress.ip_address(raw.split("%", 1)[0])
    except ValueError:
        return []
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return [address, address.ipv4_mapped]  # an IPv4 client seen through a dual-stack socket
    return [address]


def ip_allowed(allowed: Iterable[str], client_ip: str | None) -> bool:
    """Whether ``client_ip`` is inside the allow-list; an empty list allows every address."""
    networks = [ipaddress.ip_network(entry) for entry in allowed]
    if not networks:
        return True
    return any(
        address.version == network.version and address in network
        for address in _addresses(client_ip or "")
        for network in networks
    )


#: a century of days, and a year of hours for a grace period
MAX_DAYS = 36_600
MAX_GRACE_HOURS = 24 * 366


def check_config(config: Mapping[str, Any]) -> list[str]:
    """What is wrong with the token settings, for a clear error at start-up."""
    problems = []
    # Upper bounds: past them a token's expiry (or a grace period's end) is past any date a
    # database holds, and every token request would fail.
    if not 1 <= config["TOKEN_MAX_EXPIRY_DAYS"] <= MAX_DAYS:
        problems.append(f"TOKEN_MAX_EXPIRY_DAYS must be between 1 and {MAX_DAYS}.")
    if config["TOKEN_MAX_GRACE_HOURS"] > MAX_GRACE_HOURS:
        problems.append(f"TOKEN_MAX_GRACE_HOURS must be at most {MAX_GRACE_HOURS}.")
    if config["TOKEN_MAX_PER_USER"] > 10_000:
        problems.append("TOKEN_MAX_PER_USER must be at most 10000.")
    if not 1 <= config["TOKEN_DEFAULT_EXPIRY_DAYS"] <= config["TOKEN_MAX_EXPIRY_DAYS"]:
        problems.append("TOKEN_DEFAULT_EXPIRY_DAYS must be between 1 and TOKEN_MAX_EXPIRY_DAYS.")
    if not 0 <= config["TOKEN_ROTATION_GRACE_HOURS"] <= config["TOKEN_MAX_GRACE_HOURS"]:
        problems.append("TOKEN_ROTATION_GRACE_HOURS must be between 0 and TOKEN_MAX_GRACE_HOURS.")
    if config["TOKEN_MAX_PER_USER"] < 1:
        problems.append("TOKEN_MAX_PER_USER must be at least 1.")
    return problems
