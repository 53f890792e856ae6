"""OpenVPN configuration files (``server.conf``, ``client.conf``, ``.ovpn`` profiles).

The tokenizer follows ``parse_line()`` in OpenVPN's ``options.c``: whitespace separates
parameters, ``#`` or ``;`` where a parameter would start begins a comment, ``"..."`` quotes
with backslash escapes, ``'...'`` quotes literally, a backslash outside single quotes
escapes the next character, and a leading ``--`` on the option name is dropped. An option
alone on its line written ``<tag>`` opens an inline file that ends at ``</tag>``; ``config
FILE`` includes another file (resolved relative to the including file). Options are
case-sensitive, as in OpenVPN.

Checks cite the OpenVPN reference manual (``doc/man-sections``), the NSA/CISA
"Selecting and Hardening Remote Access VPN Solutions" sheet (2021) and CNSA/CNSSP 15.
"""

from __future__ import annotations

import base64
import binascii
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
    register_format,
)

NAME = "openvpn"
#: Inline blocks whose content is a secret: never echoed, only named.
INLINE_TAGS = frozenset(
    {
        "ca",
        "cert",
        "key",
        "dh",
        "tls-auth",
        "tls-crypt",
        "tls-crypt-v2",
        "secret",
        "pkcs12",
        "extra-certs",
        "crl-verify",
        "http-proxy-user-pass",
        "auth-user-pass",
        "peer-fingerprint",
    }
)
_MAX_DEPTH = 10  # OpenVPN's own limit on nested --config files


def tokenize(line: str, file: str, lineno: int) -> list[str]:
    """Split one line into parameters exactly like OpenVPN's ``parse_line``."""
    params: list[str] = []
    cur: list[str] = []
    state = "initial"  # initial | unquoted | dquoted | squoted
    backslash = False
    for ch in line:
        if not backslash and ch == "\\" and state != "squoted":
            backslash = True
            continue
        done = False
        if state == "initial":
            if not ch.isspace() or backslash:
                if ch in "#;" and not backslash:
                    break
                if not backslash and ch == '"':
                    state = "dquoted"
                elif not backslash and ch == "'":
                    state = "squoted"
                else:
                    cur.append(ch)
                    state = "unquoted"
        elif state == "unquoted":
            if not backslash and ch.isspace():
                done = True
            else:
                cur.append(ch)
        elif state == "dquoted":
            if not backslash and ch == '"':
                done = True
            else:
                cur.append(ch)
        elif ch == "'":
            done = True
        else:
            cur.append(ch)
        backslash = False
        if done:
            params.append("".join(cur))
            cur = []
            state = "initial"
    if state in ("dquoted", "squoted"):
        quote = '"' if state == "dquoted" else "'"
        raise ConfigError(file, lineno, f"no closing quotation ({quote})")
    if state == "unquoted":
        params.append("".join(cur))
    return params


def _parse_file(path: Path, root: Node, seen: tuple[Path, ...], including: Node | None) -> None:
    lines = read_text(path, including)
    file = str(path)
    i = 0
    while i < len(lines):
        raw = lines[i]
        lineno = i + 1
        i += 1
        params = tokenize(raw, file, lineno)
        if not params:
            continue
        name = params[0].removeprefix("--")
        text = raw.strip()
        if len(name) > 2 and name.startswith("<") and name.endswith(">") and len(params) == 1:
            tag = name[1:-1]
            close = f"</{tag}>"
            body: list[str] = []
            while i < len(lines) and not lines[i].strip().startswith(close):
                body.append(lines[i])
                i += 1
            if i >= len(lines):
                raise ConfigError(file, lineno, f"inline block <{tag}> is never closed by {close}")
            i += 1
            root.children.append(Node(tag, ["\n".join(body)], file, lineno, text))
            continue
        node = Node(name, params[1:], file, lineno, text)
        if name == "config" and params[1:]:
            target = (path.parent / params[1]).resolve()
            if target in seen:
                raise ConfigError(file, lineno, f"config include loop: {params[1]} is already open")
            if len(seen) >= _MAX_DEPTH:
                raise ConfigError(file, lineno, f"config includes nested over {_MAX_DEPTH} deep")
            _parse_file(path.parent / params[1], root, (*seen, target), node)
            continue
        root.children.append(node)


def parse(path: Path) -> Config:
    """Parse an OpenVPN configuration file and the files it includes, in order."""
    first = read_text(path)
    root = Node("", [], str(path), 1, first[0].strip() if first else "")
    _parse_file(path, root, (path.resolve(),), None)
    return Config(NAME, str(path), root)


_SNIFF = re.compile(
    r"^\s*(?:--)?(?:dev\s+tun|dev\s+tap|proto\s+(?:udp|tcp)|remote\s+\S+|client\s*$|server\s+\d|"
    r"<ca>|tls-crypt|tls-auth|cipher\s|data-ciphers|persist-tun|remote-cert-tls|verb\s+\d)",
    re.MULTILINE,
)


def sniff(name: str, text: str) -> int:
    score = len(_SNIFF.findall(text))
    if name.endswith(".ovpn"):
        score += 5
    return score


register_format(Format(NAME, "OpenVPN server or client configuration", parse, sniff))


# -- helpers -------------------------------------------------------------------------------


def _last(cfg: Config, *keys: str) -> Node | None:
    """The statement that wins for an option: OpenVPN applies the last occurrence."""
    found = [n for n in _options(cfg) if n.key in keys]
    return found[-1] if found else None


def _options(cfg: Config) -> Iterator[Node]:
    """Every option, including options a server pushes (``push "comp-lzo yes"``)."""
    for n in cfg.root.children:
        yield n
        if n.key == "push" and n.args:
            try:
                params = tokenize(n.args[0], n.file, n.line)
            except ConfigError:
                continue
            if params:
                yield Node(params[0], params[1:], n.file, n.line, n.text)


def _has(cfg: Config, *keys: str) -> bool:
    return any(n.key in keys for n in cfg.root.children)


def is_server(cfg: Config) -> bool:
    """Server mode: ``server``, ``server-bridge``, ``mode server`` or ``tls-server``."""
    return any(
        n.key in ("server", "server-ipv6", "server-bridge", "tls-server")
        or (n.key == "mode" and n.value == "server")
        for n in cfg.root.children
    )


def is_client(cfg: Config) -> bool:
    return not is_server(cfg) and _has(cfg, "client", "tls-client", "remote")


# -- checks --------------------------------------------------------------------------------

_MAN = "OpenVPN reference manual"
_NSA = 'NSA/CISA "Selecting and Hardening Remote Access VPN Solutions" (2021)'
_S = (NAME,)


@check(
    "OVPN-TLS-MIN",
    _S,
    "TLS minimum version below 1.2 or not set",
    "high",
    f"{_NSA} requires TLS 1.2 or later; the {_MAN} (--tls-version-min) notes that builds "
    "before 2.6 accept TLS 1.0 unless a minimum is set.",
    "Add `tls-version-min 1.2` (or `tls-version-min 1.3 or-highest` when every peer supports it).",
)
def _tls_min(cfg: Config) -> Iterator[Hit]:
    n = _last(cfg, "tls-version-min")
    if n is None:
        if not _has(cfg, "secret"):
            yield Hit(anchor(cfg), "tls-version-min is not set")
    elif n.args and n.args[0] in ("1.0", "1.1"):
        yield Hit(n, f"tls-version-min {n.args[0]} allows TLS {n.args[0]}")


_WEAK_TLS = re.compile(r"(?i)(?<![a-z!])(NULL|EXPORT|RC4|DES|MD5|ANON|ADH|SECLEVEL=0|PSK)")


@check(
    "OVPN-TLS-CIPHER",
    _S,
    "Weak TLS control-channel cipher suites",
    "high",
    f"{_NSA} allows only strong TLS suites; RC4, (3)DES, NULL, EXPORT and anonymous suites "
    "are broken (NIST SP 800-52r2).",
    "Remove `tls-cipher` to use OpenSSL's defaults, or list only ECDHE suites with AES-GCM or "
    "ChaCha20-Poly1305.",
)
def _tls_cipher(cfg: Config) -> Iterator[Hit]:
    for n in _options(cfg):
        if n.key in ("tls-cipher", "tls-ciphersuites"):
            weak = sorted({m.upper() for m in _WEAK_TLS.findall(n.value)})
            if weak:
                yield Hit(n, f"{n.key} allows {', '.join(weak)}")


_WEAK_DATA = re.compile(r"(?i)^(none|bf-.*|des.*|rc2.*|cast5?-.*|idea.*|desx.*|.*-cbc-hmac-.*)$")


@check(
    "OVPN-DATA-CIPHER",
    _S,
    "Weak or legacy data-channel cipher",
    "high",
    f"The {_MAN} (--data-ciphers, --cipher) deprecates BF-CBC and 64-bit block ciphers "
    "(SWEET32) and `none`; NCP must stay on so peers negotiate an AEAD cipher.",
    "Use `data-ciphers AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305`, drop `ncp-disable` and any "
    "BF/DES/CAST/none cipher or fallback.",
)
def _data_cipher(cfg: Config) -> Iterator[Hit]:
    for n in _options(cfg):
        if n.key == "ncp-disable":
            yield Hit(n, "ncp-disable turns cipher negotiation off")
        elif n.key in ("cipher", "data-ciphers", "ncp-ciphers", "data-ciphers-fallback"):
            for name in ":".join(n.args).split(":"):
                if name and _WEAK_DATA.match(name.strip()):
                    yield Hit(n, f"{n.key} allows {name.strip()}")


@check(
    "OVPN-AUTH-DIGEST",
    _S,
    "Weak HMAC digest (auth)",
    "medium",
    f"The {_MAN} (--auth) uses the digest for tls-auth and CBC data packets; MD5 and SHA1 are "
    "deprecated by NIST SP 800-131A and `none` disables authentication.",
    "Set `auth SHA256` (or SHA384/SHA512).",
)
def _auth_digest(cfg: Config) -> Iterator[Hit]:
    n = _last(cfg, "auth")
    if n is not None and n.value.upper().replace("-", "") in ("MD5", "SHA1", "SHA", "NONE", "MD4"):
        yield Hit(n, f"auth {n.value}")
    elif n is None and _has(cfg, "tls-auth"):
        tls = _last(cfg, "tls-auth")
        assert tls is not None
        yield Hit(tls, "tls-auth without `auth` uses the default SHA1 digest")


@check(
    "OVPN-TLS-CRYPT",
    _S,
    "No control-channel protection (tls-crypt / tls-auth)",
    "medium",
    f"The {_MAN} (--tls-crypt, --tls-auth) recommends an HMAC or encryption key on the control "
    "channel so unauthenticated packets are dropped before TLS (DoS, port scanning, TLS bugs).",
    "Generate a key with `openvpn --genkey tls-crypt ta.key` and add `tls-crypt ta.key` "
    "(or per-client `tls-crypt-v2`) on server and clients.",
)
def _tls_crypt(cfg: Config) -> Iterator[Hit]:
    if not _has(cfg, "tls-crypt", "tls-crypt-v2", "tls-auth", "secret"):
        yield Hit(anchor(cfg), "neither tls-crypt, tls-crypt-v2 nor tls-auth is configured")


@check(
    "OVPN-TLS-AUTH",
    _S,
    "tls-auth instead of tls-crypt",
    "low",
    f"The {_MAN} (--tls-crypt) encrypts and authenticates the control channel, hiding the "
    "certificates exchanged; tls-auth only authenticates it.",
    "Replace `tls-auth ta.key 0/1` by `tls-crypt` with a new key on every peer.",
)
def _tls_auth(cfg: Config) -> Iterator[Hit]:
    n = _last(cfg, "tls-auth")
    if n is not None and not _has(cfg, "tls-crypt", "tls-crypt-v2"):
        yield Hit(n, "control channel is authenticated but not encrypted")


@check(
    "OVPN-REMOTE-CERT-TLS",
    _S,
    "Peer certificate purpose not verified",
    "high",
    f"The {_MAN} (--remote-cert-tls) warns that without it any certificate signed by the same "
    "CA (e.g. another client's) can impersonate the server (man-in-the-middle).",
    "Clients: add `remote-cert-tls server` (and `verify-x509-name <server CN> name`); "
    "servers: add `remote-cert-tls client`.",
)
def _remote_cert_tls(cfg: Config) -> Iterator[Hit]:
    if _has(cfg, "secret"):
        return
    if is_server(cfg):
        if not _has(cfg, "remote-cert-tls", "remote-cert-eku", "remote-cert-ku"):
            yield Hit(anchor(cfg), "server does not require the client TLS usage (remote-cert-tls)")
    elif is_client(cfg) and not _has(
        cfg, "remote-cert-tls", "verify-x509-name", "peer-fingerprint", "remote-cert-eku"
    ):
        yield Hit(anchor(cfg), "client accepts any certificate from the CA as the server")


@check(
    "OVPN-VERIFY-CLIENT-CERT",
    _S,
    "Client certificates not required",
    "high",
    f"The {_MAN} (--verify-client-cert) warns that `none` or `optional` leaves the server "
    f"authenticating users by password alone, against {_NSA} (MFA).",
    "Remove `verify-client-cert none|optional` (the default is `require`) and combine the "
    "certificate with a second factor.",
)
def _verify_client_cert(cfg: Config) -> Iterator[Hit]:
    for n in cfg.root.children:
        if n.key == "verify-client-cert" and n.value in ("none", "optional"):
            yield Hit(n, f"verify-client-cert {n.value}")
        elif n.key in ("client-cert-not-required", "duplicate-cn-not-required"):
            yield Hit(n, f"{n.key}: clients log in without a certificate")


@check(
    "OVPN-COMPRESSION",
    _S,
    "Compression enabled (VORACLE)",
    "high",
    f"The {_MAN} (--compress, --comp-lzo, --allow-compression) deprecates compression: "
    "compressing before encryption leaks plaintext (VORACLE attack).",
    "Remove `comp-lzo`/`compress` and pushed compression; set `allow-compression no`.",
)
def _compression(cfg: Config) -> Iterator[Hit]:
    for n in _options(cfg):
        arg = n.args[0].lower() if n.args else ""
        if n.key == "comp-lzo" and arg != "no":
            yield Hit(n, "comp-lzo compresses the data channel")
        elif n.key == "compress" and arg in ("lzo", "lz4", "lz4-v2"):
            yield Hit(n, f"compress {arg}")
        elif n.key == "allow-compression" and arg in ("yes", "asym"):
            yield Hit(n, f"allow-compression {arg}")


@check(
    "OVPN-DUPLICATE-CN",
    _S,
    "Several clients may share one certificate (duplicate-cn)",
    "medium",
    f"The {_MAN} (--duplicate-cn) says it is not recommended: clients sharing a certificate "
    "cannot be told apart, revoked one by one, or attributed in logs.",
    "Remove `duplicate-cn` and issue one certificate per user or device.",
)
def _duplicate_cn(cfg: Config) -> Iterator[Hit]:
    for n in cfg.root.children:
        if n.key == "duplicate-cn":
            yield Hit(n, "duplicate-cn lets many clients use the same certificate")


@check(
    "OVPN-CLIENT-TO-CLIENT",
    _S,
    "Clients can reach each other inside the VPN",
    "medium",
    f"The {_MAN} (--client-to-client) routes client traffic inside OpenVPN, past the host "
    "firewall: one compromised client reaches all others.",
    "Remove `client-to-client` and filter inter-client traffic on the tun interface.",
)
def _client_to_client(cfg: Config) -> Iterator[Hit]:
    for n in cfg.root.children:
        if n.key == "client-to-client":
            yield Hit(n, "client-to-client is enabled")


def dh_bits(pem: str) -> int | None:
    """Bit length of the prime in a PEM ``DH PARAMETERS`` block (DER: SEQUENCE { INTEGER p })."""
    m = re.search(r"-----BEGIN DH PARAMETERS-----(.*?)-----END DH PARAMETERS-----", pem, re.S)
    if not m:
        return None
    try:
        der = base64.b64decode("".join(m.group(1).split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    pos = 0

    def length() -> int:
        nonlocal pos
        first = der[pos]
        pos += 1
        if first < 0x80:
            return first
        n = first & 0x7F
        value = int.from_bytes(der[pos : pos + n], "big")
        pos += n
        return value

    try:
        if der[pos] != 0x30:
            return None
        pos += 1
        length()
        if der[pos] != 0x02:
            return None
        pos += 1
        size = length()
        prime = der[pos : pos + size].lstrip(b"\x00")
    except IndexError:
        return None
    return int.from_bytes(prime, "big").bit_length() or None


@check(
    "OVPN-DH",
    _S,
    "Finite-field DH parameters below 2048 bits",
    "medium",
    f"The {_MAN} (--dh) recommends `dh none` (ECDHE); primes under 2048 bits are breakable "
    "(Logjam) and CNSSP 15 asks for 3072.",
    "Use `dh none`, or regenerate with `openssl dhparam -out dh.pem 3072`.",
)
def _dh(cfg: Config) -> Iterator[Hit]:
    n = _last(cfg, "dh")
    if n is None or n.value == "none":
        return
    bits: int | None
    if n.text.startswith("<"):
        bits = dh_bits(n.value)
    else:
        file = Path(n.file).parent / n.value
        try:
            bits = dh_bits(file.read_text(errors="replace")) if file.is_file() else None
        except OSError:
            bits = None
        if bits is None:
            m = re.search(r"(\d{3,4})", Path(n.value).name)
            bits = int(m.group(1)) if m else None
    if bits is not None and bits < 2048:
        yield Hit(n, f"DH prime of {bits} bits")


@check(
    "OVPN-MFA",
    _S,
    "No second authentication factor on the server",
    "high",
    f"{_NSA} requires multi-factor authentication for VPN users; an OpenVPN server without "
    "`plugin` or `auth-user-pass-verify` authenticates by certificate alone.",
    "Add an authentication plugin or `auth-user-pass-verify` script checking a second factor "
    "(TOTP, RADIUS/LDAP with MFA, SAML).",
)
def _mfa(cfg: Config) -> Iterator[Hit]:
    second = _has(cfg, "plugin", "auth-user-pass-verify", "management-client-auth")
    if is_server(cfg) and not second:
        yield Hit(anchor(cfg), "no plugin or auth-user-pass-verify: certificate-only logins")


_LOOPBACK = re.compile(r"^(127\.\d+\.\d+\.\d+|::1|localhost)$")


@check(
    "OVPN-MGMT-EXPOSED",
    _S,
    "Management interface listens beyond loopback",
    "critical",
    f"The {_MAN} (--management) says the management port must listen on 127.0.0.1 or a unix "
    f"socket: it controls the daemon; {_NSA} requires restricting management access.",
    "Use `management /run/openvpn/server.sock unix` or `management 127.0.0.1 PORT pw-file`.",
)
def _mgmt_exposed(cfg: Config) -> Iterator[Hit]:
    for n in cfg.root.children:
        unix = len(n.args) >= 2 and n.args[1] == "unix"
        if n.key == "management" and n.args and not unix and not _LOOPBACK.match(n.args[0]):
            yield Hit(n, f"management listens on {n.args[0]}")


@check(
    "OVPN-MGMT-NOPW",
    _S,
    "TCP management interface without a password file",
    "high",
    f"The {_MAN} (--management) calls TCP management without a pw-file insecure: any local "
    "user can connect and control the daemon.",
    "Add a password file: `management 127.0.0.1 7505 /etc/openvpn/mgmt-pw`.",
)
def _mgmt_nopw(cfg: Config) -> Iterator[Hit]:
    for n in cfg.root.children:
        if n.key == "management" and len(n.args) == 2 and n.args[1] != "unix":
            yield Hit(n, "no pw-file")


@check(
    "OVPN-LOG-VERB",
    _S,
    "Logging off or too verbose",
    "low",
    f"The {_MAN} (--verb) recommends level 3 or 4; `verb 0` logs only fatal errors, so logins "
    f"leave no trace, and 5+ floods the log; {_NSA} asks for monitored VPN logs.",
    "Set `verb 3`.",
)
def _log_verb(cfg: Config) -> Iterator[Hit]:
    n = _last(cfg, "verb")
    if n is not None and n.value.isdigit() and (int(n.value) == 0 or int(n.value) >= 5):
        yield Hit(n, f"verb {n.value}")


@check(
    "OVPN-LOG-OFFBOX",
    _S,
    "Logs not sent to syslog for forwarding",
    "info",
    f"{_NSA} and the Five Eyes edge-device guidance (2025) ask for VPN logs to be collected "
    "centrally; `syslog` hands them to the system logger that forwards them off-box.",
    "Add `syslog openvpn` (or ship the `log`/`status` files) and forward to the SIEM.",
)
def _log_offbox(cfg: Config) -> Iterator[Hit]:
    if is_server(cfg) and not _has(cfg, "syslog"):
        n = _last(cfg, "log", "log-append")
        yield Hit(n or anchor(cfg), "logs go to a local file or stdout only")


@check(
    "OVPN-IDLE-TIMEOUT",
    _S,
    "No idle timeout or key renegotiation disabled",
    "low",
    f"{_NSA} asks for sessions to end when idle; the {_MAN} (--inactive, --reneg-sec) ends "
    "idle tunnels and re-keys them hourly by default (`reneg-sec 0` disables it).",
    'Push an idle timeout (`push "inactive 900"`) and keep the default `reneg-sec 3600`.',
)
def _idle(cfg: Config) -> Iterator[Hit]:
    reneg = _last(cfg, "reneg-sec")
    if reneg is not None and reneg.args and reneg.args[0] == "0":
        yield Hit(reneg, "reneg-sec 0 never renegotiates keys")
    if is_server(cfg) and not any(n.key == "inactive" for n in _options(cfg)):
        yield Hit(anchor(cfg), "no inactive timeout set or pushed")


@check(
    "OVPN-INLINE-SECRET",
    _S,
    "Private key embedded in a server configuration",
    "high",
    f"The {_MAN} (inline files) lets <key>/<secret> blocks live in the config; a server config "
    "holding its private key leaks the key wherever the file is copied, backed up or shared.",
    "Move the key to a root-only file (`key /etc/openvpn/server.key`, mode 0600).",
)
def _inline_secret(cfg: Config) -> Iterator[Hit]:
    if not is_server(cfg):
        return
    for n in cfg.root.children:
        if n.text.startswith("<") and n.key in ("key", "secret", "pkcs12"):
            yield Hit(n, f"inline <{n.key}> block in a server config")


@check(
    "OVPN-STATIC-KEY",
    _S,
    "Static-key mode (no TLS, no forward secrecy)",
    "high",
    f"The {_MAN} (--secret) deprecates static-key mode: one shared key, no forward secrecy, "
    "no certificate authentication; removed in OpenVPN 2.7.",
    "Move to TLS mode with certificates (`tls-server`/`tls-client`, or `peer-fingerprint`).",
)
def _static_key(cfg: Config) -> Iterator[Hit]:
    n = _last(cfg, "secret")
    if n is not None:
        yield Hit(n, "static-key mode (--secret)")


@check(
    "OVPN-CERT-PROFILE",
    _S,
    "Certificate profile accepts weak signatures",
    "medium",
    f"The {_MAN} (--tls-cert-profile) says `insecure` and `legacy` accept SHA-1 signatures "
    "and short RSA keys.",
    "Set `tls-cert-profile preferred` (or `suiteb`).",
)
def _cert_profile(cfg: Config) -> Iterator[Hit]:
    n = _last(cfg, "tls-cert-profile")
    if n is not None and n.value in ("insecure", "legacy"):
        yield Hit(n, f"tls-cert-profile {n.value}")


@check(
    "OVPN-CRL",
    _S,
    "No certificate revocation check on the server",
    "medium",
    f"The {_MAN} (--crl-verify) is how a server refuses revoked client certificates; without "
    "it a lost laptop's certificate works until it expires.",
    "Add `crl-verify crl.pem` and refresh the CRL before its nextUpdate.",
)
def _crl(cfg: Config) -> Iterator[Hit]:
    if is_server(cfg) and _has(cfg, "ca") and not _has(cfg, "crl-verify"):
        yield Hit(_last(cfg, "ca") or anchor(cfg), "server checks no CRL")


@check(
    "OVPN-PRIV-DROP",
    _S,
    "Daemon keeps root privileges",
    "medium",
    f"The {_MAN} (--user, --group) drops privileges after start-up so a compromise of the "
    "daemon is not a compromise of the gateway.",
    "Add `user nobody` and `group nogroup` (or a dedicated account) with `persist-tun`.",
)
def _priv_drop(cfg: Config) -> Iterator[Hit]:
    if is_server(cfg) and not _has(cfg, "user"):
        yield Hit(anchor(cfg), "no `user` to drop root after start-up")


@check(
    "OVPN-SCRIPT-SECURITY",
    _S,
    "Passwords may be passed to scripts",
    "medium",
    f"The {_MAN} (--script-security) says level 3 passes passwords to scripts through "
    "environment variables, where other processes can read them.",
    "Use `script-security 2` and `auth-user-pass-verify script via-file`.",
)
def _script_security(cfg: Config) -> Iterator[Hit]:
    n = _last(cfg, "script-security")
    if n is not None and n.args and n.args[0] == "3":
        yield Hit(n, "script-security 3")
