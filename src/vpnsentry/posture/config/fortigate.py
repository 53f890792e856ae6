"""FortiGate (FortiOS) text configuration, as ``show full-configuration`` or a backup prints it.

Blocks nest as ``config PATH`` ... ``end``; tables hold ``edit NAME`` ... ``next`` entries;
``set KEY VALUE...`` and ``unset KEY`` are settings. Values are words or double-quoted
strings (``\\"`` and ``\\\\`` escaped) that may span lines (certificates, comments). Lines
starting with ``#`` are the header (``#config-version=...``) or comments. An ``end`` or
``next`` that closes nothing, or a block left open at the end of the file, is an error
naming the line. Secrets (``set psksecret ENC ...``, ``set password ENC ...``) are masked.

A ``config`` node's args are its path words (``["vpn", "ssl", "settings"]``); an ``edit``
node's arg is the entry name; a ``set`` becomes a node named after its key.

Checks cite the FortiOS Hardening guide ("Hardening your FortiGate", Fortinet document
library), the NSA/CISA VPN sheet (2021), NIST SP 800-77r1 and Fortinet PSIRT advisories.
"""

from __future__ import annotations

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

NAME = "fortigate"
_SECRETS = frozenset(
    {"psksecret", "psksecret-remote", "password", "passwd", "secret", "private-key", "key"}
)
_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|(\S+)', re.S)


def _words(text: str) -> list[str]:
    out = []
    for m in _TOKEN.finditer(text):
        if m.group(1) is not None:
            out.append(re.sub(r"\\(.)", r"\1", m.group(1)))
        else:
            out.append(m.group(2))
    return out


def _unclosed(text: str) -> bool:
    """Whether ``text`` ends inside a double-quoted string."""
    inside = False
    i = 0
    while i < len(text):
        if text[i] == "\\" and inside:
            i += 2
            continue
        if text[i] == '"':
            inside = not inside
        i += 1
    return inside


def parse(path: Path) -> Config:
    """Parse a FortiOS configuration into nested config/edit/set nodes."""
    lines = read_text(path)
    file = str(path)
    root = Node("", [], file, 1, "")
    stack: list[Node] = [root]
    i = 0
    while i < len(lines):
        start = i
        stmt = lines[i].strip()
        i += 1
        while _unclosed(stmt):
            if i >= len(lines):
                raise ConfigError(file, start + 1, "quoted value is never closed")
            stmt += "\n" + lines[i]
            i += 1
        if not stmt or stmt.startswith("#"):
            continue
        words = _words(stmt)
        head, text = words[0], lines[start].strip()
        lineno = start + 1
        if head == "config":
            node = Node("config", words[1:], file, lineno, text)
            stack[-1].children.append(node)
            stack.append(node)
        elif head == "edit":
            if stack[-1].key != "config":
                raise ConfigError(file, lineno, "'edit' outside a 'config' block")
            node = Node("edit", words[1:], file, lineno, text)
            stack[-1].children.append(node)
            stack.append(node)
        elif head == "next":
            if stack[-1].key != "edit":
                raise ConfigError(file, lineno, "'next' closes no 'edit'")
            stack.pop()
        elif head == "end":
            if stack[-1].key == "edit":  # FortiOS accepts 'end' closing an entry and its table
                stack.pop()
            if stack[-1].key != "config":
                raise ConfigError(file, lineno, "'end' closes no 'config'")
            stack.pop()
        elif head in ("set", "unset", "append", "select", "unselect") and len(words) >= 2:
            if len(stack) == 1:
                raise ConfigError(file, lineno, f"'{head}' outside a 'config' block")
            key = words[1] if head != "unset" else f"unset {words[1]}"
            args = words[2:]
            if words[1] in _SECRETS:
                text = "".join(redact(text, a) for a in args[-1:]) or text
            stack[-1].children.append(Node(key, args, file, lineno, text))
        else:
            raise ConfigError(file, lineno, f"unexpected statement {text[:60]!r}")
    if len(stack) > 1:
        open_node = stack[-1]
        raise ConfigError(
            file, open_node.line, f"'{open_node.text}' is never closed by 'next'/'end'"
        )
    return Config(NAME, file, root)


def sniff(name: str, text: str) -> int:
    score = 10 if text.startswith("#config-version=FG") else 0
    return score + 2 * len(re.findall(r"(?m)^\s*config (system|vpn|firewall|user|log) ", text))


register_format(Format(NAME, "FortiGate FortiOS configuration", parse, sniff))


# -- helpers -------------------------------------------------------------------------------


def blocks(cfg: Config, path: str) -> list[Node]:
    """Every ``config PATH`` block (at any depth, e.g. inside ``config vdom``)."""
    words = path.split()
    return [n for n in cfg.root.walk() if n.key == "config" and n.args == words]


def entries(cfg: Config, path: str) -> list[Node]:
    """The ``edit`` entries of every ``config PATH`` table."""
    return [e for b in blocks(cfg, path) for e in b.find("edit")]


def setting(nodes: list[Node], key: str) -> Node | None:
    """The last ``set KEY`` across ``nodes`` (settings blocks may repeat)."""
    found = [c for n in nodes for c in n.find(key)]
    return found[-1] if found else None


# -- checks ----------------------------------------------------------------------------------

_S = (NAME,)
_HARD = 'Fortinet "Hardening your FortiGate" guide'
_NSA = 'NSA/CISA "Selecting and Hardening Remote Access VPN Solutions" (2021)'
_WEAK = re.compile(r"(?i)(?<![a-z0-9])(des|3des|md5|sha1|null)(?![a-z0-9])")


@check(
    "FGT-SSLVPN-TLS",
    _S,
    "SSL-VPN accepts TLS below 1.2 or weak ciphers",
    "high",
    f"{_NSA} requires TLS 1.2 or later with strong suites for SSL/TLS VPNs; the {_HARD} sets "
    "`ssl-min-proto-ver tls1-2` and `algorithm high`.",
    "In `config vpn ssl settings`: `set ssl-min-proto-ver tls1-2` (or tls1-3) and "
    "`set algorithm high`.",
)
def _sslvpn_tls(cfg: Config) -> Iterator[Hit]:
    ssl = blocks(cfg, "vpn ssl settings")
    n = setting(ssl, "ssl-min-proto-ver")
    if n is not None and n.value in ("sslv3", "tls1-0", "tls1-1"):
        yield Hit(n, f"ssl-min-proto-ver {n.value}")
    a = setting(ssl, "algorithm")
    if a is not None and a.value in ("low", "medium"):
        yield Hit(a, f"algorithm {a.value} allows weak cipher suites")


@check(
    "FGT-SSLVPN-ENABLED",
    _S,
    "SSL-VPN in use where IPsec would do",
    "low",
    f"{_NSA} advises IKE/IPsec and disabling SSL/TLS VPN where feasible: FortiOS SSL-VPN "
    "has had repeated pre-auth vulnerabilities on CISA's KEV list (e.g. CVE-2024-21762).",
    "Move users to IPsec (IKEv2) dial-up, then `set status disable` in `config vpn ssl settings`.",
)
def _sslvpn_on(cfg: Config) -> Iterator[Hit]:
    ssl = blocks(cfg, "vpn ssl settings")
    status = setting(ssl, "status")
    listen = setting(ssl, "source-interface")
    if listen is not None and (status is None or status.value == "enable"):
        yield Hit(listen, f"SSL-VPN listens on {listen.value}")


@check(
    "FGT-ADMIN-CRYPTO",
    _S,
    "Admin interface allows weak TLS",
    "high",
    f"The {_HARD} enables `strong-crypto` and limits `admin-https-ssl-versions` to TLS 1.2+; "
    f"{_NSA} requires TLS 1.2 or later.",
    "In `config system global`: `set strong-crypto enable` and "
    "`set admin-https-ssl-versions tlsv1-2 tlsv1-3`.",
)
def _admin_crypto(cfg: Config) -> Iterator[Hit]:
    glob = blocks(cfg, "system global")
    sc = setting(glob, "strong-crypto")
    if sc is not None and sc.value == "disable":
        yield Hit(sc, "strong-crypto disable")
    v = setting(glob, "admin-https-ssl-versions")
    if v is not None:
        old = [a for a in v.args if a in ("sslv3", "tlsv1-0", "tlsv1-1")]
        if old:
            yield Hit(v, f"admin HTTPS accepts {', '.join(old)}")


def _phase1(cfg: Config) -> list[Node]:
    return entries(cfg, "vpn ipsec phase1-interface") + entries(cfg, "vpn ipsec phase1")


def _phase2(cfg: Config) -> list[Node]:
    return entries(cfg, "vpn ipsec phase2-interface") + entries(cfg, "vpn ipsec phase2")


@check(
    "FGT-IKE-VERSION",
    _S,
    "IPsec tunnel uses IKEv1",
    "high",
    "NIST SP 800-77r1 recommends IKEv2; FortiOS phase1 defaults to `ike-version 1`, so a "
    f"tunnel that does not set 2 speaks IKEv1 ({_NSA}: current IKE/IPsec).",
    "`set ike-version 2` in the phase1-interface (peers must follow).",
)
def _ike_version(cfg: Config) -> Iterator[Hit]:
    for e in _phase1(cfg):
        n = e.first("ike-version")
        if n is None or n.value == "1":
            yield Hit(n or e, f"tunnel {e.value} uses IKEv1")


@check(
    "FGT-AGGRESSIVE",
    _S,
    "IKEv1 aggressive mode",
    "high",
    "NIST SP 800-77r1 advises against aggressive mode: it sends the identity and a hash of the "
    "pre-shared key unprotected, open to offline cracking.",
    "`set mode main` (or move the tunnel to IKEv2).",
)
def _aggressive(cfg: Config) -> Iterator[Hit]:
    for e in _phase1(cfg):
        n = e.first("mode")
        if n is not None and n.value == "aggressive":
            yield Hit(n, f"tunnel {e.value} in aggressive mode")


@check(
    "FGT-IKE-CRYPTO",
    _S,
    "Weak IKE/IPsec proposals or DH groups",
    "high",
    f"{_NSA}, NSA 'Securing IPsec VPNs' (2020) and CNSSP 15 reject DES/3DES, MD5, SHA-1 and DH "
    "groups 1/2/5; group 14 is the minimum, 19/20/21 preferred.",
    "`set proposal aes256gcm-prfsha384` (phase1) / `aes256gcm` (phase2) and `set dhgrp 20 21`.",
)
def _ike_crypto(cfg: Config) -> Iterator[Hit]:
    for e in _phase1(cfg) + _phase2(cfg):
        p = e.first("proposal")
        if p is not None:
            weak = sorted({w.lower() for a in p.args for w in _WEAK.findall(a)})
            if weak:
                yield Hit(p, f"{e.value}: proposal allows {', '.join(weak)}")
        g = e.first("dhgrp")
        if g is not None:
            bad = [a for a in g.args if a in ("1", "2", "5")]
            if bad:
                yield Hit(g, f"{e.value}: DH group {', '.join(bad)}")


@check(
    "FGT-PFS",
    _S,
    "Phase 2 without perfect forward secrecy",
    "medium",
    "NIST SP 800-77r1 recommends PFS so a stolen key does not decrypt later traffic; "
    "`set pfs disable` rekeys phase 2 without fresh DH.",
    "Remove `set pfs disable` (the default is enable) and set a strong `dhgrp`.",
)
def _pfs(cfg: Config) -> Iterator[Hit]:
    for e in _phase2(cfg):
        n = e.first("pfs")
        if n is not None and n.value == "disable":
            yield Hit(n, f"phase2 {e.value}: pfs disable")


@check(
    "FGT-DIALUP-PSK",
    _S,
    "Dial-up (remote access) tunnel authenticated by pre-shared key",
    "high",
    f"{_NSA} requires strong, multi-factor user authentication; a dial-up phase1 with a PSK "
    "(FortiOS' default authmethod) shares one key among all users.",
    "`set authmethod signature` with user certificates, or EAP/XAuth backed by MFA "
    "(FortiToken, SAML).",
)
def _dialup_psk(cfg: Config) -> Iterator[Hit]:
    for e in _phase1(cfg):
        t = e.first("type")
        auth = e.first("authmethod")
        if t is not None and t.value == "dynamic" and (auth is None or auth.value == "psk"):
            yield Hit(auth or t, f"dial-up tunnel {e.value} authenticates with a PSK")


_ANYWHERE = "0.0.0.0"  # noqa: S104 (compared with a trusthost, never bound)
_MGMT = ("http", "https", "ssh", "telnet", "snmp", "fgfm")


@check(
    "FGT-MGMT-WAN",
    _S,
    "Administrative access on an internet-facing interface",
    "critical",
    f"{_NSA} and the {_HARD} restrict management to a dedicated network; HTTPS/SSH/fgfm on "
    "WAN ports exposed CVE-2024-55591 and CVE-2024-23113 (both on CISA's KEV list).",
    "Remove http/https/ssh/telnet/snmp/fgfm from `allowaccess` on WAN interfaces; manage "
    "from an internal or dedicated management port with trusted hosts.",
)
def _mgmt_wan(cfg: Config) -> Iterator[Hit]:
    for e in entries(cfg, "system interface"):
        role = e.first("role")
        wan = (role is not None and role.value == "wan") or e.value.lower().startswith("wan")
        access = e.first("allowaccess")
        if wan and access is not None:
            exposed = [a for a in access.args if a in _MGMT]
            if exposed:
                yield Hit(access, f"{e.value} allows {' '.join(exposed)}")


@check(
    "FGT-ADMIN-TRUSTHOST",
    _S,
    "Administrator without trusted hosts",
    "high",
    f"The {_HARD} restricts every administrator to trusted hosts; without `trusthost` an "
    "account can log in from any address that reaches the admin interface.",
    "`set trusthost1 <admin subnet>` for each administrator.",
)
def _trusthost(cfg: Config) -> Iterator[Hit]:
    for e in entries(cfg, "system admin"):
        hosts = [c for c in e.children if c.key.startswith("trusthost")]
        if not any(h.args and h.args[0] != _ANYWHERE for h in hosts):
            yield Hit(e, f"administrator {e.value} may log in from anywhere")


@check(
    "FGT-ADMIN-LOCKOUT",
    _S,
    "Weak administrator lockout",
    "medium",
    f"The {_HARD} sets `admin-lockout-threshold` and `admin-lockout-duration` to slow down "
    "password guessing on the admin interface.",
    "`set admin-lockout-threshold 3` and `set admin-lockout-duration 900` in `system global`.",
)
def _lockout(cfg: Config) -> Iterator[Hit]:
    glob = blocks(cfg, "system global")
    t = setting(glob, "admin-lockout-threshold")
    if t is not None and t.value.isdigit() and int(t.value) > 5:
        yield Hit(t, f"lockout after {t.value} failures")
    d = setting(glob, "admin-lockout-duration")
    if d is not None and d.value.isdigit() and int(d.value) < 60:
        yield Hit(d, f"lockout lasts {d.value} s")


@check(
    "FGT-LOG-OFFBOX",
    _S,
    "Logs not sent off the device",
    "high",
    f"{_NSA} and the Five Eyes edge-device guidance (2025) require VPN and admin logs in a "
    "central store; attackers on edge devices routinely wipe local logs.",
    "Enable `config log syslogd setting` (`set status enable`, `set server ...`) or a "
    "FortiAnalyzer (`config log fortianalyzer setting`).",
)
def _log(cfg: Config) -> Iterator[Hit]:
    for path in ("log syslogd setting", "log fortianalyzer setting", "log fortiguard setting"):
        status = setting(blocks(cfg, path), "status")
        if status is not None and status.value == "enable":
            return
    where = blocks(cfg, "log syslogd setting")
    yield Hit(where[0] if where else anchor(cfg), "no syslog server or FortiAnalyzer enabled")


@check(
    "FGT-SSLVPN-TIMEOUT",
    _S,
    "SSL-VPN sessions without idle or session timeout",
    "low",
    f"{_NSA} asks for idle VPN sessions to end; FortiOS defaults are `idle-timeout 300` and "
    "`auth-timeout 28800`, and 0 disables them.",
    "`set idle-timeout 300` and `set auth-timeout 28800` (or less) in `vpn ssl settings`.",
)
def _ssl_timeout(cfg: Config) -> Iterator[Hit]:
    ssl = blocks(cfg, "vpn ssl settings")
    for key in ("idle-timeout", "auth-timeout"):
        n = setting(ssl, key)
        if n is not None and n.value == "0":
            yield Hit(n, f"{key} 0 never expires")


@check(
    "FGT-USER-CASE",
    _S,
    "Username case sensitivity lets users skip FortiToken",
    "high",
    "Fortinet PSIRT FG-IR-19-283 (CVE-2020-12812, on CISA's KEV list): with case-sensitive "
    "usernames, a user typing another case skips the local user's second factor.",
    "In `config user setting`: `set username-sensitivity disable` (6.0: "
    "`username-case-sensitivity`).",
)
def _user_case(cfg: Config) -> Iterator[Hit]:
    tokens = [e for e in entries(cfg, "user local") if e.first("two-factor")]
    if not tokens:
        return
    us = blocks(cfg, "user setting")
    n = setting(us, "username-sensitivity") or setting(us, "username-case-sensitivity")
    if n is None or n.value != "disable":
        yield Hit(n or tokens[0], "two-factor users with case-sensitive usernames")
