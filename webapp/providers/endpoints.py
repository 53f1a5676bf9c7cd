"""Checks on user-given endpoints (Azure, custom), so they cannot aim Keyhold at itself.

``check_url`` runs when the URL is entered; the HTTP client checks the
addresses a host name resolves to again when it connects.
"""

from __future__ import annotations

import ipaddress
import socket
import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx


class EndpointError(ValueError):
    """The URL may not be used; the message is fit to show the user."""


@dataclass(frozen=True)
class EndpointPolicy:
    allow_http: bool = False
    allow_private: bool = False


_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
#: IPv6 ranges no public service is reached by, refused whole: IPv4-compatible
#: (::a.b.c.d, deprecated), SIIT (::ffff:0:a.b.c.d) and local-use NAT64, whose translator
#: sits inside a private network, all carrying an IPv4 address; and two that some Python
#: versions' ``is_global`` lets through: site-local (fec0::/10, deprecated by RFC 3879 but
#: still routed inside sites) and the documentation prefix 3fff::/20 (RFC 9637)
_NEVER_PUBLIC = (
    ipaddress.ip_network("::/96"),
    ipaddress.ip_network("::ffff:0:0:0/96"),
    ipaddress.ip_network("64:ff9b:1::/48"),
    ipaddress.ip_network("fec0::/10"),
    ipaddress.ip_network("3fff::/20"),
)


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in network for network in _NEVER_PUBLIC):
            return False
        # Other IPv6 forms that carry an IPv4 address are judged by that address.
        if ip.ipv4_mapped or ip.sixtofour:
            ip = ip.ipv4_mapped or ip.sixtofour
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return bool(ip.is_global) and not ip.is_multicast


def _address_literal(host: str) -> str | None:
    """The IP address ``host`` spells, including shorthand IPv4 (127.1, 2130706433, 0x7f.1)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        # Resolvers accept these forms as addresses, so they are addresses.
        return socket.inet_ntoa(socket.inet_aton(host))
    except (OSError, UnicodeError, ValueError):
        return None


def check_url(url: str, policy: EndpointPolicy) -> str:
    """Return the URL rebuilt from what was checked, or raise EndpointError.

    urlsplit drops tabs and line breaks and tolerates other oddities, so the
    URL returned (and stored, and connected to) is the one that was checked,
    not the string that came in: lower-case scheme and host, no trailing dot
    or slash.
    """
    url = url.strip()
    if any(ch.isspace() or unicodedata.category(ch).startswith("C") for ch in url):
        raise EndpointError("The URL contains spaces, line breaks or invisible characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise EndpointError("Enter a valid URL.") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise EndpointError("Enter a full URL starting with https://.")
    if parts.scheme == "http" and not policy.allow_http:
        raise EndpointError("The URL must start with https://.")
    if parts.username or parts.password:
        raise EndpointError("Put the key in the key field, not in the URL.")
    if parts.query or parts.fragment:
        raise EndpointError("The URL must not have a query string or fragment.")
    if port == 0:
        raise EndpointError("Enter a valid port.")
    host = parts.hostname.lower().rstrip(".")
    if not policy.allow_private:
        if host in _LOCAL_NAMES or host.endswith(".localhost") or host.endswith(".local"):
            raise EndpointError("Local and private network addresses are not allowed.")
        literal = _address_literal(host)
        if literal is not None and not is_public_address(literal):
            raise EndpointError("Local and private network addresses are not allowed.")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    checked = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    try:
        _ = httpx.URL(checked).host  # the client's own reading: a label IDNA refuses fails
    except (UnicodeError, httpx.InvalidURL):
        raise EndpointError("Enter a valid URL: the host name cannot be used.") from None
    return checked
