"""Cisco ASA ``show running-config`` text.

A line in column 0 is a command; lines indented below it are its sub-commands (``webvpn``,
``group-policy NAME attributes``, ``tunnel-group NAME ipsec-attributes``, ``crypto ikev2
policy 10``...), nesting by indentation. ``!`` lines and the ``:`` header lines are
comments. A command's node key is its first word (``no`` folds into the key: ``no
logging``), its args the remaining words. Pre-shared keys and passwords are masked (the
ASA prints ``*****`` itself; ``more system:running-config`` does not).

Checks cite Cisco's "Cisco ASA Series VPN/General Operations CLI Configuration Guide",
Cisco's "Cisco Guide to Harden Cisco ASA Firewall", the NSA/CISA VPN sheet (2021), NIST SP
800-77r1 and Cisco PSIRT advisories.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from pathlib import Path

from vpnsentry.posture.config.model import (
    Config,
    ConfigError,
    Format,
    Hit,
    Node,
    anchor,
    check,
    read_text,
    redact,
    register_format,
)

NAME = "cisco_asa"
_SECRET_AFTER = frozenset({"pre-shared-key", "password", "key", "secret", "local-authentication"})


def _mask(text: str, words: list[str]) -> str:
    for i, w in enumerate(words[:-1]):
        if w in _SECRET_AFTER and words[i + 1] != "*****":
            text = redact(text, words[i + 1])
    return text


def parse(path: Path) -> Config:
    """Parse ASA running-config into commands with their indented sub-commands."""
    lines = read_text(path)
    file = str(path)
    root = Node("", [], file, 1, "")
    stack: list[tuple[int, Node]] = [(-1, root)]
    for i, raw in enumerate(lines, start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith(("!", ":")):
            continue
        if "\x00" in raw:
            raise ConfigError(file, i, "NUL byte: not a text configuration")
        indent = len(raw) - len(raw.lstrip(" "))
        words = stripped.split()
        key = words[0].lower()
        args = words[1:]
        if key == "no" and args:
            key, args = f"no {args[0].lower()}", args[1:]
        while stack[-1][0] >= indent:
            stack.pop()
        node = Node(key, args, file, i, _mask(stripped, words))
        stack[-1][1].children.append(node)
        stack.append((indent, node))
    return Config(NAME, file, root)


def sniff(name: str, text: str) -> int:
    score = 10 if re.search(r"(?m)^ASA Version \d", text) else 0
    pat = r"(?m)^(tunnel-group|group-policy|crypto ikev[12]|webvpn|access-list \S+ extended)"
    return score + len(re.findall(pat, text))


register_format(Format(NAME, "Cisco ASA running-config", parse, sniff))


# -- helpers -------------------------------------------------------------------------------


def cmds(cfg: Config, key: str, *prefix: str) -> list[Node]:
    """Top-level commands ``key`` whose args start with ``prefix``."""
    n = len(prefix)
    return [c for c in cfg.find(key) if tuple(a.lower() for a in c.args[:n]) == prefix]


def _any(addr: str, mask: str) -> bool:
    """Whether ``addr mask`` covers the whole internet (``0 0``, ``0.0.0.0 0.0.0.0``, /0-/7)."""
    try:
        net = ipaddress.ip_network(f"{addr}/{mask}", strict=False)
    except ValueError:
        return addr in ("0", "any") or mask == "0"
    return net.prefixlen < 8


# -- checks ----------------------------------------------------------------------------------

_S = (NAME,)
_NSA = 'NSA/CISA "Selecting and Hardening Remote Access VPN Solutions" (2021)'
_HARD = 'Cisco "Guide to Harden Cisco ASA Firewall"'


@check(
    "ASA-TLS",
    _S,
    "TLS below 1.2 or weak cipher suites",
    "high",
    f"{_NSA} requires TLS 1.2 or later with strong suites for the AnyConnect/WebVPN portal; "
    "`ssl cipher ... low|medium|all` re-enables RC4/3DES/export-grade suites.",
    "`ssl server-version tlsv1.2` and `ssl cipher tlsv1.2 high` (or fips).",
)
def _tls(cfg: Config) -> Iterator[Hit]:
    for n in cmds(cfg, "ssl", "server-version"):
        if n.args[1:2] and n.args[1].lower() in ("any", "sslv3", "tlsv1", "tlsv1.1"):
            yield Hit(n, f"server accepts {n.args[1]}")
    for n in cmds(cfg, "ssl", "cipher"):
        level = n.args[2].lower() if len(n.args) > 2 else ""
        custom = " ".join(n.args[3:]).upper()
        if level in ("all", "low", "medium") or (
            level == "custom" and re.search(r"RC4|DES|NULL|EXP|MD5", custom)
        ):
            yield Hit(n, f"ssl cipher {' '.join(n.args[1:3])} allows weak suites")


@check(
    "ASA-IKEV1",
    _S,
    "IKEv1 enabled on an interface",
    "high",
    f"NIST SP 800-77r1 recommends IKEv2; {_NSA} asks to remove unneeded protocol versions.",
    "`no crypto ikev1 enable <interface>` once peers use IKEv2.",
)
def _ikev1(cfg: Config) -> Iterator[Hit]:
    for n in cmds(cfg, "crypto", "ikev1", "enable"):
        yield Hit(n, f"IKEv1 accepted on {' '.join(n.args[2:]) or 'an interface'}")


@check(
    "ASA-AGGRESSIVE",
    _S,
    "IKEv1 aggressive mode accepted",
    "high",
    "NIST SP 800-77r1 advises against aggressive mode (identity and PSK hash sent unprotected, "
    "offline cracking); the ASA answers it unless `crypto ikev1 am-disable` is set.",
    "`crypto ikev1 am-disable` and remove `set ikev1 phase1-mode aggressive` from crypto maps.",
)
def _aggressive(cfg: Config) -> Iterator[Hit]:
    for n in cfg.find("crypto"):
        if "phase1-mode" in n.args and n.args[-1].lower() == "aggressive":
            yield Hit(n, "crypto map entry initiates aggressive mode")
    enabled = cmds(cfg, "crypto", "ikev1", "enable")
    if enabled and not cmds(cfg, "crypto", "ikev1", "am-disable"):
        yield Hit(enabled[0], "IKEv1 enabled without `crypto ikev1 am-disable`")


_WEAK_ALG = {
    "encryption": ("des", "3des", "null"),
    "hash": ("md5", "sha"),
    "integrity": ("md5", "sha"),  # "null" is right with AES-GCM
    "prf": ("md5", "sha"),
    "group": ("1", "2", "5"),
}


@check(
    "ASA-IKE-POLICY",
    _S,
    "Weak IKE policy algorithms or DH groups",
    "high",
    f"{_NSA}, NSA 'Securing IPsec VPNs' (2020) and CNSSP 15 reject DES/3DES, MD5, SHA-1 and DH "
    "groups 1/2/5; group 14 is the minimum, 19/20/21 preferred.",
    "In `crypto ikev2 policy`: `encryption aes-gcm-256`, `integrity null`, `prf sha384`, "
    "`group 20 21`; remove weak IKEv1 policies.",
)
def _ike_policy(cfg: Config) -> Iterator[Hit]:
    for pol in cmds(cfg, "crypto", "ikev1", "policy") + cmds(cfg, "crypto", "ikev2", "policy"):
        for sub in pol.children:
            weak = [a for a in sub.args if a.lower() in _WEAK_ALG.get(sub.key, ())]
            if weak:
                yield Hit(sub, f"{' '.join(pol.args[:3])}: {sub.key} {' '.join(weak)}")
    for ts in cmds(cfg, "crypto", "ipsec", "ikev1", "transform-set"):
        weak = [
            a
            for a in ts.args[4:]
            if a.lower() in ("esp-des", "esp-3des", "esp-md5-hmac", "esp-null", "esp-none")
        ]
        if weak:
            yield Hit(
                ts, f"transform-set {ts.args[3] if len(ts.args) > 3 else ''}: {' '.join(weak)}"
            )


@check(
    "ASA-PFS",
    _S,
    "Crypto map without (strong) perfect forward secrecy",
    "medium",
    "NIST SP 800-77r1 recommends PFS; a crypto map entry without `set pfs` (or with group "
    "1/2/5) rekeys IPsec SAs without fresh strong DH.",
    "`crypto map <map> <seq> set pfs group20` on every entry.",
)
def _pfs(cfg: Config) -> Iterator[Hit]:
    entries: dict[tuple[str, str], list[Node]] = {}
    for n in cfg.find("crypto"):
        if len(n.args) >= 3 and n.args[0].lower() in ("map", "dynamic-map"):
            entries.setdefault((n.args[1], n.args[2]), []).append(n)
    for (name, seq), nodes in entries.items():
        if not seq.isdigit():
            continue
        pfs = [n for n in nodes if n.args[3:5] == ["set", "pfs"]]
        if not pfs:
            yield Hit(nodes[0], f"crypto map {name} {seq} sets no pfs")
        for n in pfs:
            if n.args[5:6] and n.args[5].lower() in ("group1", "group2", "group5"):
                yield Hit(n, f"crypto map {name} {seq}: pfs {n.args[5]}")


@check(
    "ASA-PSK",
    _S,
    "Remote-access tunnel group authenticated by pre-shared key",
    "high",
    f"{_NSA} requires strong, multi-factor authentication; a group PSK is shared by every "
    "user who has the profile and, with IKEv1, crackable offline.",
    "Use certificate authentication (`ikev2 remote-authentication certificate`) or AnyConnect "
    "with MFA (SAML/RADIUS); keep PSKs for site-to-site only, unique per peer.",
)
def _psk(cfg: Config) -> Iterator[Hit]:
    remote_access = {
        n.args[0] for n in cfg.find("tunnel-group") if n.args[1:3] == ["type", "remote-access"]
    }
    for tg in cfg.find("tunnel-group"):
        if tg.args[1:2] != ["ipsec-attributes"] or tg.args[0] not in remote_access:
            continue
        for sub in tg.children:
            if "pre-shared-key" in sub.args or sub.key == "pre-shared-key":
                yield Hit(sub, f"tunnel-group {tg.args[0]} uses a group pre-shared key")


@check(
    "ASA-PSK-WEAK",
    _S,
    "Short pre-shared key in the configuration",
    "high",
    "NIST SP 800-77r1: a PSK is only as strong as its entropy; a short key falls to offline "
    "guessing, and a configuration export that shows it leaks it.",
    "Set a random key of at least 32 characters and keep exports masked (`show running-config`).",
)
def _psk_weak(cfg: Config) -> Iterator[Hit]:
    for tg in cfg.find("tunnel-group"):
        for sub in tg.children:
            words = [sub.key, *sub.args]
            if "pre-shared-key" in words:
                i = words.index("pre-shared-key")
                key = words[i + 1] if i + 1 < len(words) else ""
                if key and key != "*****" and len(key) < 20:
                    yield Hit(sub, f"pre-shared key of {len(key)} characters in clear")


@check(
    "ASA-MGMT-EXPOSED",
    _S,
    "Management (ASDM/SSH) open to the internet",
    "critical",
    f"{_NSA} and the {_HARD} restrict management to known admin networks; `http`/`ssh` from "
    "any address exposes the admin plane (CVE-2024-20353, CISA KEV).",
    "Replace `http|ssh 0.0.0.0 0.0.0.0 <if>` with the admin subnet on an inside/management "
    "interface.",
)
def _mgmt(cfg: Config) -> Iterator[Hit]:
    for key in ("http", "ssh"):
        for n in cfg.find(key):
            if len(n.args) == 3 and _any(n.args[0], n.args[1]):
                yield Hit(n, f"{key} from any address on {n.args[2]}")
            elif len(n.args) == 3 and n.args[2].lower() == "outside" and key == "http":
                yield Hit(n, f"ASDM reachable on {n.args[2]}")


@check(
    "ASA-TELNET",
    _S,
    "Telnet management enabled",
    "high",
    f"The {_HARD} disables Telnet: it sends administrator credentials in clear text.",
    "Remove every `telnet <addr> <mask> <if>` line and use SSH from the admin subnet.",
)
def _telnet(cfg: Config) -> Iterator[Hit]:
    for n in cfg.find("telnet"):
        if len(n.args) == 3:
            yield Hit(n, f"telnet allowed on {n.args[2]}")


@check(
    "ASA-LOG-OFFBOX",
    _S,
    "Logging disabled or not sent to a syslog server",
    "high",
    f"{_NSA} and the Five Eyes edge-device guidance (2025) require VPN and admin logs in a "
    "central store; attackers on edge devices routinely clear local buffers.",
    "`logging enable`, `logging trap informational` and `logging host <if> <syslog server>`.",
)
def _log(cfg: Config) -> Iterator[Hit]:
    enable = cmds(cfg, "logging", "enable")
    hosts = cmds(cfg, "logging", "host")
    if not enable:
        yield Hit(anchor(cfg), "`logging enable` missing: the ASA logs nothing")
    elif not hosts:
        yield Hit(enable[0], "no `logging host`: logs stay on the device")


@check(
    "ASA-VPN-TIMEOUT",
    _S,
    "VPN sessions without idle or session timeout",
    "low",
    f"{_NSA} asks for idle VPN sessions to end; `vpn-idle-timeout none` or "
    "`vpn-session-timeout none` keeps stolen sessions alive indefinitely.",
    "Set `vpn-idle-timeout 30` and `vpn-session-timeout` (e.g. 720) in the group-policy.",
)
def _timeout(cfg: Config) -> Iterator[Hit]:
    for gp in cfg.find("group-policy"):
        for sub in gp.children:
            if sub.key in ("vpn-idle-timeout", "vpn-session-timeout") and sub.value == "none":
                yield Hit(sub, f"group-policy {gp.args[0]}: {sub.key} none")


@check(
    "ASA-MFA",
    _S,
    "Remote-access users authenticated by the local password database",
    "high",
    f"{_NSA} requires multi-factor authentication for VPN users; a remote-access tunnel group "
    "without an AAA server group checks the ASA's LOCAL passwords only.",
    "`authentication-server-group <RADIUS/SAML group with MFA>` in the tunnel-group's "
    "general-attributes (or `authentication certificate aaa`).",
)
def _mfa(cfg: Config) -> Iterator[Hit]:
    groups = {
        n.args[0]: n for n in cfg.find("tunnel-group") if n.args[1:3] == ["type", "remote-access"]
    }
    for name, decl in groups.items():
        general = [
            n for n in cfg.find("tunnel-group") if n.args[:2] == [name, "general-attributes"]
        ]
        server = [s for g in general for s in g.find("authentication-server-group")]
        if not server or all(s.value.upper() == "LOCAL" for s in server):
            yield Hit(server[0] if server else decl, f"tunnel-group {name} uses LOCAL passwords")
