"""The indicator model every feed format produces, and the normalization matching relies on.

A feed says ``198.51.100.7``, ``198.51.100.0/24``, ``EVIL.example.``, ``hxxp://evil[.]example/x``
or an upper-case hash; the store's columns hold canonical addresses and lower-case names.
:func:`normalize` turns every indicator into one canonical form per type, so the same
indicator from two feeds (or twice in one) is one row, and matching is an equality or
range join:

=========  ===========================================================================
type       ``norm`` and range columns
=========  ===========================================================================
ipv4       ``a.b.c.d`` or ``a.b.c.d/nn`` (network address); ``lo4``/``hi4`` integers
ipv6       compressed address or network; ``lo6``/``hi6`` as 32 hex digits (ordered as text)
domain     lower case, IDNA (punycode), no trailing dot
url        scheme and host lower case, the rest as written
md5/sha1/  lower-case hex of the right length
sha256
=========  ===========================================================================

Addresses of our own networks (RFC 1918, loopback, link-local, CGNAT, multicast, ULA) and
ranges broader than /8 (IPv4) or /16 (IPv6) are refused with a reason: a feed entry like
``10.0.0.0/8`` would otherwise raise an alert for every internal host.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit, urlunsplit

TYPES: Final = ("ipv4", "ipv6", "domain", "url", "md5", "sha1", "sha256")

HASH_LENGTHS: Final = {32: "md5", 40: "sha1", 64: "sha256"}

#: Ranges that are our own network or no network at all: never an indicator.
_OWN_NETS: Final = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "224.0.0.0/3",
        "::/127",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    )
)
_MIN_PREFIX: Final = {4: 8, 6: 16}

_HEX: Final = re.compile(r"[0-9a-f]+")
#: One DNS label after IDNA encoding: letters, digits, hyphen, underscore (seen in real
#: malware domains), 1-63 characters, not starting or ending with a hyphen.
_LABEL: Final = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
#: Defanging as threat reports write it: hxxp://, evil[.]example, 198.51.100[.]7, [:]//.
_DEFANG: Final = (("[.]", "."), ("(.)", "."), ("{.}", "."), ("[:]", ":"), ("[://]", "://"))
_HXXP: Final = re.compile(r"^hxxp(s?)://", re.IGNORECASE)


@dataclass(frozen=True)
class Indicator:
    """One indicator as a feed states it, before normalization."""

    type: str  # a TYPES name, or a hint the feed module could not narrow: "ip", "hash"
    value: str
    source: str
    feed: str  # the file it came from (its name, for `intel list`)
    confidence: int | None = None  # 0-100
    valid_from: dt.datetime | None = None
    valid_until: dt.datetime | None = None
    revoked: bool = False
    modified: dt.datetime | None = None  # the feed's version of this indicator
    description: str | None = None
    labels: tuple[str, ...] = ()
    kill_chain: tuple[str, ...] = ()
    ref: str | None = None  # the feed's own id: STIX indicator id, MISP attribute uuid


@dataclass(frozen=True)
class Skipped:
    """An entry of a feed that did not become an indicator, and why."""

    where: str  # line number, STIX object id, MISP attribute uuid
    value: str
    reason: str


@dataclass
class Feed:
    """What a feed module read from one file."""

    format: str
    indicators: list[Indicator] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    #: Objects that are not indicators and are not meant to be (observed-data, identities,
    #: relationships, MISP attributes with ``to_ids`` false): counted per kind.
    ignored: dict[str, int] = field(default_factory=dict)

    def ignore(self, kind: str) -> None:
        self.ignored[kind] = self.ignored.get(kind, 0) + 1


@dataclass(frozen=True)
class Normal:
    """The canonical form of an indicator value."""

    type: str
    norm: str
    lo4: int | None = None
    hi4: int | None = None
    lo6: str | None = None
    hi6: str | None = None


def refang(value: str) -> str:
    """Undo the usual defanging of indicators in reports (``hxxp``, ``[.]``)."""
    v = value.strip()
    for fanged, plain in _DEFANG:
        v = v.replace(fanged, plain)
    return _HXXP.sub(r"http\1://", v)


def normalize(type_hint: str, value: str) -> Normal:
    """Canonical form of ``value`` for ``type_hint``; ``ValueError`` says why it is refused.

    ``type_hint`` is a TYPES name or one of the looser names feeds use: ``ip``, ``cidr``,
    ``hash``.
    """
    v = refang(value)
    if not v:
        raise ValueError("empty value")
    kind = type_hint.lower()
    if kind in ("ip", "cidr", "ipv4", "ipv6"):
        return _address(v, kind)
    if kind == "domain":
        return Normal("domain", _domain(v))
    if kind == "url":
        return Normal("url", _url(v))
    if kind in ("hash", "md5", "sha1", "sha256"):
        h = v.lower()
        if not _HEX.fullmatch(h) or len(h) not in HASH_LENGTHS:
            raise ValueError(f"not an MD5, SHA-1 or SHA-256 hex digest ({len(h)} characters)")
        found = HASH_LENGTHS[len(h)]
        if kind not in ("hash", found):
            raise ValueError(f"{kind} expected, got a {found}-length digest")
        return Normal(found, h)
    raise ValueError(f"unsupported indicator type {type_hint!r}")


def _address(v: str, kind: str) -> Normal:
    try:
        net = ipaddress.ip_network(v, strict=False)
    except ValueError as exc:
        raise ValueError(f"not an IP address or CIDR: {exc}") from exc
    if isinstance(net, ipaddress.IPv6Network) and net.network_address.ipv4_mapped:
        mapped = net.network_address.ipv4_mapped
        net = ipaddress.ip_network(f"{mapped}/{max(0, net.prefixlen - 96)}", strict=False)
    want = {"ipv4": 4, "ipv6": 6}.get(kind)
    if want is not None and net.version != want:
        raise ValueError(f"{kind} expected, got an IPv{net.version} address")
    if net.prefixlen < _MIN_PREFIX[net.version]:
        raise ValueError(f"range /{net.prefixlen} is broader than /{_MIN_PREFIX[net.version]}")
    own = next((o for o in _OWN_NETS if o.version == net.version and net.overlaps(o)), None)
    if own is not None:
        raise ValueError(f"private or special-use range (overlaps {own}): our own network")
    single = net.prefixlen == net.max_prefixlen
    norm = str(net.network_address) if single else str(net)
    lo, hi = int(net.network_address), int(net.broadcast_address)
    if net.version == 4:
        return Normal("ipv4", norm, lo4=lo, hi4=hi)
    return Normal("ipv6", norm, lo6=f"{lo:032x}", hi6=f"{hi:032x}")


def _domain(v: str) -> str:
    d = v.lower().rstrip(".")
    if d.startswith("*."):
        d = d[2:]
    try:
        d = d.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError(f"not a valid domain name: {exc}") from exc
    labels = d.split(".")
    if len(labels) < 2 or len(d) > 253 or not all(_LABEL.fullmatch(x) for x in labels):
        raise ValueError("not a valid domain name")
    return d


def _url(v: str) -> str:
    try:
        parts = urlsplit(v)
        host = parts.hostname
    except ValueError as exc:
        raise ValueError(f"not a URL: {exc}") from exc
    if not parts.scheme or not host or any(c.isspace() or ord(c) < 32 for c in v):
        raise ValueError("not an absolute URL (scheme://host/...)")
    return urlunsplit(
        (parts.scheme.lower(), parts.netloc.lower(), parts.path, parts.query, parts.fragment)
    )


def parse_time(value: object) -> dt.datetime | None:
    """A feed's timestamp (ISO 8601 with ``Z``, a date, or Unix seconds) as aware UTC."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    try:
        if (isinstance(value, int | float) and not isinstance(value, bool)) or text.isdigit():
            return dt.datetime.fromtimestamp(float(text), dt.UTC)
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except (ValueError, OverflowError, OSError) as exc:
        raise ValueError(f"not a timestamp: {text[:60]!r}") from exc
    return t.astimezone(dt.UTC) if t.tzinfo else t.replace(tzinfo=dt.UTC)


def confidence(value: object) -> int | None:
    """A 0-100 confidence from a feed field, or None when absent."""
    if value is None or value == "":
        return None
    try:
        c = round(float(str(value).strip()))
    except ValueError as exc:
        raise ValueError(f"confidence {str(value)[:20]!r} is not a number") from exc
    if not 0 <= c <= 100:
        raise ValueError(f"confidence {c} is outside 0-100")
    return c
