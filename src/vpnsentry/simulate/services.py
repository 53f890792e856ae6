"""What the simulated people connect to, and how big and long those connections are.

Each service has a port, the names Zeek and FortiGate give it, and log-normal distributions of
bytes and duration (connection sizes are heavy-tailed in every measurement study, so a normal
distribution would make thresholds far too easy). Internet services use the published address
blocks of the big providers, so a GeoIP/ASN lookup gives plausible answers.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from vpnsentry.simulate.core import F64, I64


@dataclass(frozen=True)
class Service:
    """A kind of connection. ``ob``/``rb``/``dur`` are (mu, sigma) of log-normals
    (bytes from the originator, bytes from the responder, seconds)."""

    name: str
    proto: int
    dport: int
    zeek: str
    forti: str
    ob: tuple[float, float]
    rb: tuple[float, float]
    dur: tuple[float, float]
    prefixes: tuple[str, ...] = ()  # address blocks (Internet services)
    country: str = "United States"  # FortiGate's name for the blocks' country
    weight: float = 0.0  # share among Internet connections
    networks: tuple[ipaddress.IPv4Network, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        nets = tuple(ipaddress.IPv4Network(p) for p in self.prefixes)
        object.__setattr__(self, "networks", nets)

    def sizes(self, rng: np.random.Generator, n: int) -> tuple[I64, I64, I64]:
        """Originator bytes, responder bytes and duration (microseconds) for ``n`` flows."""
        ob = np.maximum(rng.lognormal(*self.ob, n), 40).astype(np.int64)
        rb = np.maximum(rng.lognormal(*self.rb, n), 0).astype(np.int64)
        dur = (np.maximum(rng.lognormal(*self.dur, n), 0.0005) * 1e6).astype(np.int64)
        return ob, rb, dur


def _svc(
    name: str,
    proto: int,
    dport: int,
    zeek: str,
    forti: str,
    ob: tuple[float, float],
    rb: tuple[float, float],
    dur: tuple[float, float],
    **kw: object,
) -> Service:
    return Service(name, proto, dport, zeek, forti, ob, rb, dur, **kw)  # type: ignore[arg-type]


TCP: Final = 6
UDP: Final = 17

#: Services offered by named internal hosts, keyed by name.
INTERNAL: Final = {
    s.name: s
    for s in (
        _svc(
            "dns",
            UDP,
            53,
            "dns",
            "DNS",
            (4.2, 0.3),
            (5.0, 0.4),
            (-4.5, 1.0),
        ),
        _svc(
            "kerberos",
            TCP,
            88,
            "krb_tcp",
            "KERBEROS",
            (7.3, 0.4),
            (7.5, 0.4),
            (-3.0, 1.0),
        ),
        _svc(
            "ldap",
            TCP,
            389,
            "ldap",
            "LDAP",
            (7.0, 1.0),
            (8.5, 1.2),
            (-1.0, 1.5),
        ),
        _svc("smb", TCP, 445, "smb", "SMB", (9.0, 1.5), (11.5, 2.0), (2.0, 2.0)),
        _svc("mail", TCP, 443, "ssl", "HTTPS", (8.5, 1.2), (10.0, 1.5), (1.5, 1.5)),
        _svc(
            "intranet",
            TCP,
            443,
            "ssl",
            "HTTPS",
            (7.8, 1.0),
            (10.5, 1.5),
            (0.5, 1.5),
        ),
        _svc("erp", TCP, 443, "ssl", "HTTPS", (8.5, 1.0), (10.5, 1.2), (2.0, 1.5)),
        _svc("git", TCP, 22, "ssh", "SSH", (9.0, 1.5), (11.0, 2.0), (2.5, 1.5)),
        _svc(
            "gitweb",
            TCP,
            443,
            "ssl",
            "HTTPS",
            (8.0, 1.0),
            (11.0, 1.5),
            (1.0, 1.5),
        ),
        _svc("mssql", TCP, 1433, "-", "MS-SQL", (8.0, 1.5), (10.0, 2.0), (1.0, 2.0)),
        _svc("wsus", TCP, 8530, "http", "tcp/8530", (7.0, 0.5), (9.0, 2.0), (1.0, 1.0)),
        _svc("rdp", TCP, 3389, "rdp", "RDP", (12.0, 1.0), (14.0, 1.0), (7.0, 0.8)),
        _svc("ssh", TCP, 22, "ssh", "SSH", (9.0, 1.5), (10.0, 1.5), (4.0, 1.5)),
        _svc("winrm", TCP, 5985, "http", "tcp/5985", (9.0, 1.0), (9.5, 1.0), (2.0, 1.0)),
        _svc("rpc", TCP, 135, "dce_rpc", "DCE-RPC", (6.5, 0.5), (6.5, 0.5), (-2.0, 1.0)),
        _svc("drsr", TCP, 49668, "dce_rpc", "tcp/49668", (9.0, 1.0), (10.0, 1.5), (0.0, 1.0)),
    )
}

#: Services on the Internet that office life reaches, with their shares of connections.
INTERNET: Final = (
    _svc(
        "m365",
        TCP,
        443,
        "ssl",
        "HTTPS",
        (8.5, 1.2),
        (10.2, 1.6),
        (1.5, 1.6),
        prefixes=("52.96.0.0/14", "13.107.6.0/24"),
        weight=0.24,
    ),
    _svc(
        "google",
        TCP,
        443,
        "ssl",
        "HTTPS",
        (7.8, 1.0),
        (10.0, 1.8),
        (1.0, 1.8),
        prefixes=("142.250.0.0/15",),
        weight=0.18,
    ),
    _svc(
        "quic",
        UDP,
        443,
        "quic",
        "udp/443",
        (8.5, 1.0),
        (11.0, 1.8),
        (2.0, 1.5),
        prefixes=("142.250.0.0/15",),
        weight=0.08,
    ),
    _svc(
        "cloudflare",
        TCP,
        443,
        "ssl",
        "HTTPS",
        (7.5, 1.0),
        (9.8, 1.8),
        (0.8, 1.8),
        prefixes=("104.16.0.0/13",),
        weight=0.14,
    ),
    _svc(
        "akamai",
        TCP,
        443,
        "ssl",
        "HTTPS",
        (7.3, 0.8),
        (10.5, 2.0),
        (0.8, 1.8),
        prefixes=("23.32.0.0/11",),
        weight=0.1,
    ),
    _svc(
        "fastly",
        TCP,
        443,
        "ssl",
        "HTTPS",
        (7.3, 0.8),
        (10.0, 1.8),
        (0.5, 1.5),
        prefixes=("151.101.0.0/16",),
        weight=0.06,
    ),
    _svc(
        "aws",
        TCP,
        443,
        "ssl",
        "HTTPS",
        (8.0, 1.2),
        (9.5, 1.8),
        (1.2, 1.8),
        prefixes=("52.192.0.0/11",),
        country="Japan",
        weight=0.1,
    ),
    _svc(
        "http",
        TCP,
        80,
        "http",
        "HTTP",
        (6.5, 0.6),
        (9.0, 2.0),
        (0.3, 1.5),
        prefixes=("23.32.0.0/11",),
        weight=0.05,
    ),
    _svc(
        "teams",
        UDP,
        3478,
        "-",
        "udp/3478",
        (13.5, 1.0),
        (13.8, 1.0),
        (7.0, 0.8),
        prefixes=("13.107.64.0/18",),
        weight=0.03,
    ),
    _svc(
        "telemetry",
        TCP,
        443,
        "ssl",
        "HTTPS",
        (8.0, 0.5),
        (8.5, 0.5),
        (0.3, 0.8),
        prefixes=("13.107.4.0/24", "20.189.173.0/24"),
        weight=0.02,
    ),
)

#: Windows Update content (the WSUS server's downloads on patch day: large, normal).
WINDOWS_UPDATE: Final = _svc(
    "windows-update",
    TCP,
    80,
    "http",
    "HTTP",
    (9.0, 0.5),
    (21.0, 0.6),
    (6.5, 0.7),
    prefixes=("13.107.4.0/24",),
)

#: Outbound HTTPS to an attacker's server (C2, drop site): sizes set by the scenario.
HTTPS: Final = _svc("https", TCP, 443, "ssl", "HTTPS", (7.2, 0.2), (7.0, 0.8), (0.0, 0.5))

#: FortiGate's English country names, for ``srccountry``/``dstcountry``.
COUNTRY_NAMES: Final = {
    "JP": "Japan",
    "CN": "China",
    "TH": "Thailand",
    "VN": "Vietnam",
    "SG": "Singapore",
    "DE": "Germany",
    "FR": "France",
    "GB": "United Kingdom",
    "NL": "Netherlands",
    "US": "United States",
}


def internet_weights() -> F64:
    """Normalised shares of :data:`INTERNET`."""
    w = np.array([s.weight for s in INTERNET], dtype=np.float64)
    out: F64 = w / w.sum()
    return out
