"""strongSwan: ``swanctl.conf`` (vici, current) and legacy ``ipsec.conf`` (stroke).

``swanctl.conf`` uses strongSwan's settings syntax (``swanctl.conf(5)``): ``name { ... }``
sections nest, ``key = value`` settings end at the line end unless the value is a
double-quoted string (which may span lines and knows ``\\"``, ``\\\\``, ``\\n``, ``\\t``),
``#`` starts a comment, and ``include PATTERN`` pulls in files matching a glob relative to
the including file (a pattern without wildcards must exist).

``ipsec.conf`` (``ipsec.conf(5)``) has sections ``config setup``, ``conn NAME`` and ``ca
NAME`` starting in column 0 and parameters on indented lines; ``conn %default`` supplies
defaults, ``also=NAME`` merges another section, ``include`` works as above.

Both dialects are reduced to one view per connection (:class:`Conn`) so each check is
written once. Checks cite swanctl.conf(5) (strongSwan ``swanctl.opt``), NIST SP 800-77r1,
the NSA/CISA VPN sheet (2021) and CNSSP 15.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from vpnsentry.posture.config.model import (
    Config,
    ConfigError,
    Format,
    Hit,
    Node,
    check,
    read_text,
    redact,
    register_format,
)

SWANCTL = "swanctl"
IPSEC = "ipsec"
_MAX_DEPTH = 10
_GLOB = re.compile(r"[*?\[]")


def _include(path: Path, pattern: str, node: Node, seen: tuple[Path, ...]) -> list[Path]:
    """Files an ``include`` names, in sorted order; errors for loops and missing files."""
    full = pattern if Path(pattern).is_absolute() else str(path.parent / pattern)
    if _GLOB.search(pattern):
        files = [Path(f) for f in sorted(glob.glob(full))]
    else:
        files = [Path(full)]
        if not files[0].is_file():
            raise ConfigError(node.file, node.line, f"included file {pattern} does not exist")
    if len(seen) >= _MAX_DEPTH:
        raise ConfigError(node.file, node.line, f"includes nested over {_MAX_DEPTH} deep")
    for f in files:
        if f.resolve() in seen:
            raise ConfigError(node.file, node.line, f"include loop: {pattern} is already open")
    return files


# -- swanctl.conf ----------------------------------------------------------------------------

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
_SECRET_KEYS = frozenset({"secret", "pin"})


def _quoted(text: str, pos: int, file: str, line: int) -> tuple[str, int, int]:
    """The string starting after the quote at ``pos``: (value, end position, lines crossed)."""
    out: list[str] = []
    i = pos + 1
    crossed = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(_ESCAPES.get(text[i + 1], "\\" + text[i + 1]))
            i += 2
            continue
        if ch == '"':
            return "".join(out), i + 1, crossed
        crossed += ch == "\n"
        out.append(ch)
        i += 1
    raise ConfigError(file, line, "unterminated quoted string")


def _parse_swanctl(path: Path, parent: Node, seen: tuple[Path, ...]) -> None:
    lines = read_text(path, None if len(seen) == 1 else parent)
    text = "\n".join(lines)
    file = str(path)
    stack = [parent]
    opened: list[int] = []
    pending: tuple[str, int] | None = None  # a name waiting for "{" or "="
    pos, line = 0, 1
    token = re.compile(r"[ \t\r]+|#[^\n]*|\n|\{|\}|=|[^\s{}=#\"]+|\"")
    while pos < len(text):
        m = token.match(text, pos)
        if m is None:  # a lone quote outside a value
            raise ConfigError(file, line, "unexpected quote")
        tok = m.group(0)
        pos = m.end()
        if tok == "\n":
            line += 1
            continue
        if tok[0] in " \t\r#":
            continue
        src = lines[line - 1].strip() if line - 1 < len(lines) else ""
        if tok == "{":
            if pending is None:
                raise ConfigError(file, line, "'{' without a section name")
            node = Node(pending[0], [], file, pending[1], lines[pending[1] - 1].strip())
            stack[-1].children.append(node)
            stack.append(node)
            opened.append(pending[1])
            pending = None
        elif tok == "}":
            if pending is not None:
                raise ConfigError(file, pending[1], f"{pending[0]!r} has no value or section")
            if len(stack) == 1:
                raise ConfigError(file, line, "'}' closes no section")
            stack.pop()
            opened.pop()
        elif tok == "=":
            if pending is None:
                raise ConfigError(file, line, "'=' without a key")
            key, kline = pending
            pending = None
            end = text.find("\n", pos)
            end = len(text) if end < 0 else end
            rest = text[pos:end].lstrip(" \t")
            if rest.startswith('"'):
                start = end - len(rest)
                value, pos, crossed = _quoted(text, start, file, line)
                line += crossed
            else:
                value = rest.split("#", 1)[0].strip()
                pos = end
            shown = src if key not in _SECRET_KEYS else redact(src, value)
            stack[-1].children.append(Node(key, [value], file, kline, shown))
        elif pending is not None and pending[0] == "include" and pending[1] == line:
            inc = Node("include", [tok], file, line, src)
            for f in _include(path, tok, inc, seen):
                _parse_swanctl(f, stack[-1], (*seen, f.resolve()))
            pending = None
        elif pending is not None:
            raise ConfigError(file, pending[1], f"{pending[0]!r} is followed by {tok!r}")
        else:
            pending = (tok, line)
    if pending is not None:
        raise ConfigError(file, pending[1], f"{pending[0]!r} has no value or section")
    if opened:
        raise ConfigError(file, opened[-1], f"section {stack[-1].key!r} is never closed")


def parse_swanctl(path: Path) -> Config:
    """Parse a ``swanctl.conf`` and its includes into nested sections."""
    root = Node("", [], str(path), 1, "")
    _parse_swanctl(path, root, (path.resolve(),))
    return Config(SWANCTL, str(path), root)


def sniff_swanctl(name: str, text: str) -> int:
    score = 5 if name == "swanctl.conf" else 0
    score += 3 * len(re.findall(r"(?m)^\s*(connections|secrets|pools|authorities)\s*\{", text))
    return score + len(re.findall(r"(?m)^\s*(esp_proposals|remote_addrs|local_addrs)\s*=", text))


register_format(Format(SWANCTL, "strongSwan swanctl.conf", parse_swanctl, sniff_swanctl))


# -- ipsec.conf ------------------------------------------------------------------------------

_IPSEC_SECTION = re.compile(r"^(conn|config|ca)\s+(\S+)\s*(?:#.*)?$")
_IPSEC_PARAM = re.compile(r"^\s+([A-Za-z0-9_%-]+)\s*=\s*(.*?)\s*$")


def _ipsec_value(raw: str, file: str, line: int) -> str:
    if raw.startswith('"'):
        end = raw.find('"', 1)
        if end < 0:
            raise ConfigError(file, line, "unterminated quoted value")
        return raw[1:end]
    return raw.split("#", 1)[0].strip()


def _parse_ipsec(path: Path, root: Node, seen: tuple[Path, ...], including: Node | None) -> None:
    lines = read_text(path, including)
    file = str(path)
    section: Node | None = None
    for i, raw in enumerate(lines, start=1):
        body = raw.split("#", 1)[0] if not raw.lstrip().startswith('"') else raw
        if not body.strip():
            continue
        text = raw.strip()
        if not raw[0].isspace():
            words = body.split()
            if words[0] == "include" and len(words) == 2:
                inc = Node("include", [words[1]], file, i, text)
                for f in _include(path, words[1], inc, seen):
                    _parse_ipsec(f, root, (*seen, f.resolve()), inc)
                section = None
                continue
            if words[0] == "version":
                continue
            m = _IPSEC_SECTION.match(body.rstrip())
            if m is None:
                raise ConfigError(
                    file,
                    i,
                    f"expected 'conn NAME', 'config setup' or 'ca NAME', "
                    f"got {text[:60]!r} (parameters must be indented)",
                )
            section = Node(m.group(1), [m.group(2)], file, i, text)
            root.children.append(section)
            continue
        m = _IPSEC_PARAM.match(body.rstrip() if '"' not in body else raw)
        if m is None:
            raise ConfigError(file, i, f"expected 'key=value', got {text[:60]!r}")
        if section is None:
            raise ConfigError(file, i, "parameter outside any 'conn', 'config' or 'ca' section")
        value = _ipsec_value(m.group(2), file, i)
        section.children.append(Node(m.group(1).lower(), [value], file, i, text))


def parse_ipsec(path: Path) -> Config:
    """Parse a legacy ``ipsec.conf`` and its includes into its sections."""
    root = Node("", [], str(path), 1, "")
    _parse_ipsec(path, root, (path.resolve(),), None)
    return Config(IPSEC, str(path), root)


def sniff_ipsec(name: str, text: str) -> int:
    score = 5 if name == "ipsec.conf" else 0
    score += 3 * len(re.findall(r"(?m)^(conn\s+\S+|config\s+setup)\s*$", text))
    return score + len(re.findall(r"(?m)^\s+(left|right|keyexchange|authby|ike|esp)\w*\s*=", text))


register_format(Format(IPSEC, "strongSwan ipsec.conf (legacy)", parse_ipsec, sniff_ipsec))


# -- one view of a connection in either dialect ----------------------------------------------


@dataclass
class Conn:
    """What the checks need to know about one IKE connection, with the lines that say it."""

    header: Node
    settings: dict[str, Node]  # effective key -> statement (ipsec: after %default and also=)
    children: list[Node] = field(default_factory=list)  # swanctl CHILD_SA sections
    auth: list[tuple[str, Node]] = field(default_factory=list)  # (local|remote, statement)

    def get(self, key: str) -> Node | None:
        return self.settings.get(key)


def _swanctl_conns(cfg: Config) -> Iterator[Conn]:
    for top in cfg.find("connections"):
        for sec in top.children:
            if not sec.children and sec.args:
                continue
            settings = {c.key: c for c in sec.children if c.args}
            conn = Conn(sec, settings)
            for part in sec.children:
                if part.key == "children":
                    conn.children.extend(c for c in part.children if not c.args)
                side = "local" if part.key.startswith("local") else "remote"
                if part.key.startswith(("local", "remote")) and not part.args:
                    conn.auth.extend((side, n) for n in part.find("auth"))
            yield conn


def _ipsec_settings(sec: Node, by_name: dict[str, Node], seen: tuple[str, ...]) -> dict[str, Node]:
    merged: dict[str, Node] = {}
    for n in sec.children:
        if n.key == "also":
            name = n.value
            if name in seen:
                raise ConfigError(n.file, n.line, f"also={name} loops back to itself")
            if name not in by_name:
                raise ConfigError(n.file, n.line, f"also={name} names no section")
            merged.update(_ipsec_settings(by_name[name], by_name, (*seen, name)))
        else:
            merged[n.key] = n
    return merged


def _ipsec_conns(cfg: Config) -> Iterator[Conn]:
    conns = [s for s in cfg.root.children if s.key == "conn"]
    by_name = {s.value: s for s in conns}
    default = by_name.get("%default")
    for sec in conns:
        if sec.value == "%default":
            continue
        settings = _ipsec_settings(default, by_name, ("%default",)) if default else {}
        settings.update(_ipsec_settings(sec, by_name, (sec.value,)))
        auto = settings.get("auto")
        if auto is None or auto.value == "ignore":
            continue  # ipsec.conf(5): auto defaults to ignore, such a conn is never loaded
        conn = Conn(sec, settings)
        for key in ("authby", "leftauth", "leftauth2", "rightauth", "rightauth2"):
            if key in settings:
                conn.auth.append(("local" if key.startswith("left") else "remote", settings[key]))
        yield conn


def conns(cfg: Config) -> list[Conn]:
    return list(_swanctl_conns(cfg) if cfg.format == SWANCTL else _ipsec_conns(cfg))


def _setup(cfg: Config, key: str) -> Node | None:
    for s in cfg.root.children:
        if s.key == "config" and s.value == "setup":
            found = s.find(key)
            if found:
                return found[-1]
    return None


# -- checks ----------------------------------------------------------------------------------

_BOTH = (SWANCTL, IPSEC)
_MAN = "swanctl.conf(5)"
_NSA = 'NSA/CISA "Selecting and Hardening Remote Access VPN Solutions" (2021)'
_WEAK_ALG = re.compile(
    r"(?i)(?<![a-z0-9])(3des|des|blowfish|cast128|md5|sha1|sha|prfsha1|prfmd5|aesxcbc|"
    r"modp768|modp1024|modp1536|modp1024s160|modp2048s224|modp2048s256|null)(?![a-z0-9])"
)
_KE = re.compile(r"(?i)(modp\d+|ecp\d+|curve25519|x25519|curve448|x448|ecp\d+bp|mlkem\d+|ke\d_)")


def _weak(value: str) -> list[str]:
    return sorted({m.lower() for m in _WEAK_ALG.findall(value)})


@check(
    "SWAN-IKE-VERSION",
    _BOTH,
    "IKEv1 accepted",
    "high",
    f"NIST SP 800-77r1 recommends IKEv2 and {_NSA} asks for current, standards-based IKE; "
    f"{_MAN} (version) notes that the default 0 accepts IKEv1 as responder.",
    "swanctl.conf: `version = 2`; ipsec.conf: `keyexchange=ikev2`.",
)
def _ike_version(cfg: Config) -> Iterator[Hit]:
    key = "version" if cfg.format == SWANCTL else "keyexchange"
    for c in conns(cfg):
        n = c.get(key)
        value = n.value.lower() if n else ""
        if value in ("1", "ikev1"):
            yield Hit(n or c.header, f"connection {c.header.value or c.header.key} uses IKEv1")
        elif value in ("", "0", "ike"):
            yield Hit(n or c.header, "IKE version not pinned to 2: IKEv1 is accepted")


@check(
    "SWAN-AGGRESSIVE",
    _BOTH,
    "IKEv1 aggressive mode",
    "high",
    f"{_MAN} (aggressive) warns that aggressive mode sends identity and PSK hash unprotected, "
    "open to offline dictionary attack; NIST SP 800-77r1 advises against it.",
    "Remove `aggressive = yes` / `aggressive=yes` and move to IKEv2.",
)
def _aggressive(cfg: Config) -> Iterator[Hit]:
    for c in conns(cfg):
        n = c.get("aggressive")
        if n is not None and n.value.lower() == "yes":
            yield Hit(n, "aggressive mode enabled")


@check(
    "SWAN-IKE-PROPOSALS",
    _BOTH,
    "Weak IKE algorithms or DH groups",
    "high",
    f"{_NSA}, NSA 'Securing IPsec VPNs' (2020) and CNSSP 15 reject DES/3DES, MD5, SHA-1 and "
    "DH groups 1/2/5 (MODP-768/1024/1536); group 14 is the minimum, 19/20/21 preferred.",
    "Use e.g. `proposals = aes256gcm16-prfsha384-ecp384` (ipsec.conf: `ike=aes256gcm16-prfsha384"
    "-ecp384!`).",
)
def _ike_proposals(cfg: Config) -> Iterator[Hit]:
    key = "proposals" if cfg.format == SWANCTL else "ike"
    for c in conns(cfg):
        n = c.get(key)
        if n is not None and _weak(n.value):
            yield Hit(n, f"IKE proposal allows {', '.join(_weak(n.value))}")


def _esp_nodes(cfg: Config, c: Conn) -> list[tuple[Node, Node | None]]:
    """(place, esp statement or None) per CHILD_SA (ipsec.conf: the conn itself)."""
    if cfg.format == IPSEC:
        return [(c.header, c.get("esp"))]
    return [(ch, ch.first("esp_proposals")) for ch in c.children]


@check(
    "SWAN-ESP-PROPOSALS",
    _BOTH,
    "Weak ESP algorithms",
    "high",
    f"{_NSA} and NIST SP 800-77r1 reject DES/3DES, MD5 and NULL encryption for ESP; SHA-1 "
    "integrity is deprecated by NIST SP 800-131A.",
    "Use e.g. `esp_proposals = aes256gcm16-ecp384` (ipsec.conf: `esp=aes256gcm16-ecp384!`).",
)
def _esp_proposals(cfg: Config) -> Iterator[Hit]:
    for c in conns(cfg):
        for _, n in _esp_nodes(cfg, c):
            if n is not None and _weak(n.value):
                yield Hit(n, f"ESP proposal allows {', '.join(_weak(n.value))}")


@check(
    "SWAN-PFS",
    _BOTH,
    "No perfect forward secrecy on CHILD_SA rekey",
    "medium",
    f"{_MAN} (esp_proposals) says a proposal without a key exchange method rekeys the "
    "CHILD_SA without fresh DH, so one stolen key decrypts later traffic; NIST SP 800-77r1 "
    "recommends PFS.",
    "Add a DH group to the ESP proposal, e.g. `esp_proposals = aes256gcm16-ecp384`.",
)
def _pfs(cfg: Config) -> Iterator[Hit]:
    for c in conns(cfg):
        for place, n in _esp_nodes(cfg, c):
            if n is None:
                yield Hit(place, "default ESP proposal has no DH group (no PFS)")
            elif not _KE.search(n.value):
                yield Hit(n, "ESP proposal has no DH group (no PFS)")


@check(
    "SWAN-PSK",
    _BOTH,
    "Pre-shared key authentication",
    "high",
    f"{_NSA} asks for certificate-based, multi-factor authentication; a PSK is one password "
    "shared by every peer that knows it and, with IKEv1, crackable offline.",
    "Use `auth = pubkey` (certificates) or EAP-TLS; keep PSKs only for site-to-site with a "
    "unique random key of 32+ characters per peer.",
)
def _psk(cfg: Config) -> Iterator[Hit]:
    for c in conns(cfg):
        for side, n in c.auth:
            if n.value.lower() in ("psk", "secret", "xauthpsk"):
                yield Hit(n, f"{side} side authenticates with a pre-shared key")


_PASSWORD_METHODS = ("eap-md5", "eap-mschapv2", "eap-gtc", "xauth", "xauth-generic", "xauthpsk")


@check(
    "SWAN-MFA",
    _BOTH,
    "Remote users authenticate by password only",
    "high",
    f"{_NSA} requires multi-factor authentication for VPN users; EAP-MD5/MSCHAPv2/GTC and "
    "XAuth check one password with no certificate round.",
    "Add a certificate round (`remote-1 { auth = pubkey }` then `remote-2 { auth = eap-... }`), "
    "use EAP-TLS, or EAP-RADIUS backed by MFA.",
)
def _mfa(cfg: Config) -> Iterator[Hit]:
    for c in conns(cfg):
        remote = [n for side, n in c.auth if side == "remote"]
        methods = {n.value.lower() for n in remote}
        if remote and methods <= set(_PASSWORD_METHODS):
            yield Hit(remote[0], f"remote auth {remote[0].value} is a password alone")


@check(
    "SWAN-PSK-WEAK",
    (SWANCTL,),
    "Short pre-shared key",
    "high",
    f"{_MAN} (secrets.ike) keys are only as strong as their entropy: a short PSK falls to an "
    "offline dictionary attack on a captured handshake (NIST SP 800-77r1).",
    "Generate a random key of at least 32 characters (e.g. `openssl rand -base64 32`).",
)
def _psk_weak(cfg: Config) -> Iterator[Hit]:
    for top in cfg.find("secrets"):
        for sec in top.children:
            if not sec.key.startswith("ike"):
                continue  # eap-/xauth- secrets are user passwords, not IKE keys
            for n in sec.find("secret"):
                raw = n.value
                if raw.startswith(("0x", "0s")):
                    continue  # hex or base64 blobs are generated keys
                if len(raw) < 20:
                    yield Hit(n, f"PSK of {len(raw)} characters")


@check(
    "SWAN-REVOCATION",
    _BOTH,
    "Certificate revocation not enforced",
    "medium",
    f"{_MAN} (remote.revocation) defaults to `relaxed`, which accepts a certificate when the "
    "CRL/OCSP status is unknown, so a revoked laptop certificate may still connect.",
    "Set `revocation = strict` (or `ifuri`) in remote sections; ipsec.conf: "
    "`strictcrlpolicy=yes` in `config setup`.",
)
def _revocation(cfg: Config) -> Iterator[Hit]:
    if cfg.format == IPSEC:
        strict = _setup(cfg, "strictcrlpolicy")
        if strict is not None and strict.value in ("yes", "ifuri"):
            return
        for c in conns(cfg):
            auth = {n.value for _, n in c.auth} or {"pubkey"}
            if auth & {"pubkey", "rsasig", "ecdsasig", "eap-tls"}:
                yield Hit(strict or c.header, "no strictcrlpolicy: revocation is best effort")
                return
        return
    for c in conns(cfg):
        for part in c.header.children:
            if not part.key.startswith("remote") or part.args:
                continue
            if part.get("auth") in ("pubkey", "eap-tls", ""):
                rev = part.first("revocation")
                if rev is None or rev.value == "relaxed":
                    yield Hit(rev or part, "remote certificates checked with relaxed revocation")


@check(
    "SWAN-UNIQUE",
    _BOTH,
    "One credential may hold many sessions",
    "low",
    f"{_MAN} (unique) `never` lets the same identity open parallel sessions, so a stolen "
    "credential is used unnoticed beside its owner.",
    "Set `unique = replace` (ipsec.conf: `uniqueids=yes`).",
)
def _unique(cfg: Config) -> Iterator[Hit]:
    if cfg.format == IPSEC:
        n = _setup(cfg, "uniqueids")
        if n is not None and n.value in ("no", "never"):
            yield Hit(n, f"uniqueids={n.value}")
        return
    for c in conns(cfg):
        u = c.get("unique")
        if u is not None and u.value == "never":
            yield Hit(u, "unique = never")


@check(
    "SWAN-REKEY",
    _BOTH,
    "Rekeying or reauthentication disabled",
    "low",
    f"{_MAN} (rekey_time, reauth_time) rekeys IKE SAs every 4 h and CHILD SAs every hour by "
    "default; turning it off keeps one key and one authentication for the whole session.",
    "Remove `rekey_time = 0` / `rekey=no`; set `reauth_time` for road warriors.",
)
def _rekey(cfg: Config) -> Iterator[Hit]:
    for c in conns(cfg):
        if cfg.format == IPSEC:
            n = c.get("rekey")
            if n is not None and n.value == "no":
                yield Hit(n, "rekey=no")
            continue
        n = c.get("rekey_time")
        if n is not None and n.value in ("0", "0s") and c.get("reauth_time") is None:
            yield Hit(n, "IKE SA never rekeyed nor reauthenticated")
        for ch in c.children:
            r = ch.first("rekey_time")
            if r is not None and r.value in ("0", "0s"):
                yield Hit(r, "CHILD_SA never rekeyed")


@check(
    "SWAN-IDLE",
    _BOTH,
    "No dead-peer detection or inactivity timeout",
    "low",
    f"{_NSA} asks for idle VPN sessions to be closed; without DPD or an inactivity timeout "
    f"({_MAN}: dpd_delay, children.inactivity) abandoned tunnels stay up.",
    "Set `dpd_delay = 30s` and `inactivity = 15m` in the children (ipsec.conf: "
    "`dpddelay=30s`, `dpdaction=clear`, `inactivity=15m`).",
)
def _idle(cfg: Config) -> Iterator[Hit]:
    for c in conns(cfg):
        if cfg.format == IPSEC:
            dpd = c.get("dpdaction")
            if (dpd is None or dpd.value == "none") and c.get("inactivity") is None:
                yield Hit(dpd or c.header, "no dpdaction and no inactivity timeout")
            continue
        idle = any(ch.first("inactivity") for ch in c.children)
        if c.get("dpd_delay") is None and not idle:
            yield Hit(c.header, "no dpd_delay and no children inactivity timeout")


@check(
    "SWAN-LEGACY-CONFIG",
    (IPSEC,),
    "Legacy ipsec.conf / stroke configuration",
    "info",
    "strongSwan's NEWS for 6.0.0 disables the stroke plugin by default; ipsec.conf is "
    "deprecated in favour of swanctl.conf via vici.",
    "Migrate to swanctl.conf (strongSwan's wiki has a migration guide).",
)
def _legacy(cfg: Config) -> Iterator[Hit]:
    first = next((s for s in cfg.root.children if s.key in ("config", "conn")), None)
    if first is not None:
        yield Hit(first, "configured through ipsec.conf (stroke)")
