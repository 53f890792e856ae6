"""The check registry: every check is complete, cites its guidance and has a stable id."""

from __future__ import annotations

import re

from vpnsentry.posture.config import formats
from vpnsentry.posture.config.model import SEVERITIES, checks

PREFIX = {
    "openvpn": "OVPN-",
    "swanctl": "SWAN-",
    "ipsec": "SWAN-",
    "wireguard": "WG-",
    "fortigate": "FGT-",
    "cisco_asa": "ASA-",
}


def test_every_check_is_complete_and_cites_a_source() -> None:
    registry = checks()
    assert len(registry) >= 60
    for cid, c in registry.items():
        assert re.fullmatch(r"[A-Z]+(-[A-Z0-9]+)+", cid)
        assert c.severity in SEVERITIES
        assert c.formats and all(f in formats() for f in c.formats)
        assert all(cid.startswith(PREFIX[f]) for f in c.formats)
        assert c.title and c.fix and c.why.endswith(".")
        cited = re.search(r"NSA|NIST|manual|\(\d\)|[Gg]uide|CNSSP|PSIRT|NEWS|RFC|Five Eyes", c.why)
        assert cited, f"{cid}: why names no guidance"


def test_every_format_has_checks_for_the_issue_topics() -> None:
    """TLS/crypto, authentication (PSK or MFA), management or logging, per format."""
    by_format: dict[str, set[str]] = {}
    for cid, c in checks().items():
        for f in c.formats:
            by_format.setdefault(f, set()).add(cid)
    assert set(by_format) == set(PREFIX)
    assert {"OVPN-TLS-MIN", "OVPN-MGMT-EXPOSED", "OVPN-MFA"} <= by_format["openvpn"]
    assert {"SWAN-IKE-VERSION", "SWAN-PFS", "SWAN-PSK"} <= by_format["ipsec"]
    assert {"WG-PSK", "WG-ALLOWEDIPS"} <= by_format["wireguard"]
    assert {"FGT-MGMT-WAN", "FGT-LOG-OFFBOX", "FGT-SSLVPN-TLS"} <= by_format["fortigate"]
    assert {"ASA-MGMT-EXPOSED", "ASA-LOG-OFFBOX", "ASA-TLS"} <= by_format["cisco_asa"]
