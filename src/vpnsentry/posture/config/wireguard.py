"""WireGuard ``wg0.conf`` files as read by ``wg setconf`` and ``wg-quick`` (wg(8), wg-quick(8)).

INI-like: one ``[Interface]`` section and any number of ``[Peer]`` sections (the name
repeats, so sections are kept as a list, not a dict), ``Key = Value`` lines whose keys are
case-insensitive, ``#`` comments to the end of the line. A line outside a section, an
unknown section or a line without ``=`` is an error, as it is for ``wg``. Private and
preshared keys are masked in every snippet.

Checks cite wg(8)/wg-quick(8) (wireguard-tools) and the NSA/CISA VPN sheet (2021).
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from collections.abc import Iterator
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

NAME = "wireguard"
_SECTIONS = {"interface": "Interface", "peer": "Peer"}
_SECRETS = frozenset({"privatekey", "presharedkey"})


def parse(path: Path) -> Config:
    """Parse a WireGuard configuration into ``interface``/``peer`` sections."""
    lines = read_text(path)
    file = str(path)
    root = Node("", [], file, 1, "")
    section: Node | None = None
    for i, raw in enumerate(lines, start=1):
        body = raw.split("#", 1)[0].strip()
        if not body:
            continue
        m = re.fullmatch(r"\[\s*([^\]]*?)\s*\]", body)
        if m:
            name = m.group(1).lower()
            if name not in _SECTIONS:
                raise ConfigError(file, i, f"unknown section [{m.group(1)}]")
            section = Node(name, [], file, i, raw.strip())
            root.children.append(section)
            continue
        if "=" not in body:
            raise ConfigError(file, i, f"expected 'Key = Value', got {body[:60]!r}")
        if section is None:
            raise ConfigError(file, i, "setting outside [Interface] or [Peer]")
        key, value = (part.strip() for part in body.split("=", 1))
        key = key.lower()
        text = redact(raw.strip(), value) if key in _SECRETS else raw.strip()
        section.children.append(Node(key, [value], file, i, text))
    return Config(NAME, file, root)


def sniff(name: str, text: str) -> int:
    score = 3 * len(re.findall(r"(?mi)^\s*\[(interface|peer)\]", text))
    score += len(re.findall(r"(?mi)^\s*(privatekey|publickey|allowedips|endpoint)\s*=", text))
    return score + (2 if name.startswith("wg") and name.endswith(".conf") else 0)


register_format(Format(NAME, "WireGuard wg-quick configuration", parse, sniff))


def _peers(cfg: Config) -> list[Node]:
    return cfg.find("peer")


def _networks(n: Node) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    nets = []
    for part in n.value.split(","):
        try:
            nets.append(ipaddress.ip_network(part.strip(), strict=False))
        except ValueError:
            continue
    return nets


def is_hub(cfg: Config) -> bool:
    """A server/hub: the interface listens on a port and some peer has no Endpoint."""
    listens = any(i.first("listenport") for i in cfg.find("interface"))
    return listens and any(p.first("endpoint") is None for p in _peers(cfg))


# -- checks ----------------------------------------------------------------------------------

_S = (NAME,)
_MAN = "wg(8)"


@check(
    "WG-PSK",
    _S,
    "Peer without a preshared key",
    "medium",
    f"{_MAN} (PresharedKey) adds a symmetric key to the handshake for post-quantum "
    "resistance; without it the tunnel rests on Curve25519 alone.",
    "Generate one per peer with `wg genpsk` and set `PresharedKey` on both ends.",
)
def _psk(cfg: Config) -> Iterator[Hit]:
    for p in _peers(cfg):
        if p.first("presharedkey") is None:
            yield Hit(p.first("publickey") or p, "peer has no PresharedKey")


@check(
    "WG-ALLOWEDIPS",
    _S,
    "Server peer allowed to send from any address",
    "high",
    f"{_MAN} (AllowedIPs) is the peer's source-address allow-list as well as its route: on a "
    "hub, 0.0.0.0/0 or a large prefix lets one client spoof any source and attract traffic.",
    "Give each road-warrior peer its own /32 (and /128); site peers only their LAN prefix.",
)
def _allowed(cfg: Config) -> Iterator[Hit]:
    if not is_hub(cfg):
        return
    for p in _peers(cfg):
        for n in p.find("allowedips"):
            for net in _networks(n):
                limit = 16 if net.version == 4 else 48
                if net.prefixlen < limit:
                    yield Hit(n, f"AllowedIPs {net} on a hub peer")


@check(
    "WG-OVERLAP",
    _S,
    "Overlapping AllowedIPs between peers",
    "medium",
    f"{_MAN} (cryptokey routing) gives a prefix to one peer only; a prefix listed twice "
    "silently moves traffic to whichever peer was added last.",
    "Make every peer's AllowedIPs disjoint.",
)
def _overlap(cfg: Config) -> Iterator[Hit]:
    seen: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, Node]] = []
    for p in _peers(cfg):
        mine = [(net, n) for n in p.find("allowedips") for net in _networks(n)]
        for net, n in mine:
            for other, on in seen:
                if net.version == other.version and net.overlaps(other):
                    yield Hit(n, f"{net} overlaps {other} (line {on.line})")
                    break
        seen.extend(mine)


@check(
    "WG-DUP-KEY",
    _S,
    "Same public key on several peers",
    "high",
    f"{_MAN} (PublicKey) identifies a peer only by its key: a key pair copied between devices "
    "cannot be revoked or attributed per device.",
    "Generate a key pair per device (`wg genkey | tee priv | wg pubkey`).",
)
def _dup_key(cfg: Config) -> Iterator[Hit]:
    first: dict[str, Node] = {}
    for p in _peers(cfg):
        for n in p.find("publickey"):
            if n.value in first:
                yield Hit(n, f"public key already used by the peer at line {first[n.value].line}")
            else:
                first[n.value] = n


@check(
    "WG-SAVECONFIG",
    _S,
    "SaveConfig rewrites the file from runtime state",
    "low",
    "wg-quick(8) (SaveConfig) overwrites the file on shutdown with the running state, hiding "
    "changes made at run time from review.",
    "Set `SaveConfig = false` and keep the configuration in version control.",
)
def _saveconfig(cfg: Config) -> Iterator[Hit]:
    for i in cfg.find("interface"):
        n = i.first("saveconfig")
        if n is not None and n.value.lower() == "true":
            yield Hit(n, "SaveConfig = true")


def _mode(path: str) -> int | None:
    try:
        return os.stat(path).st_mode
    except OSError:
        return None


@check(
    "WG-FILE-MODE",
    _S,
    "Private key readable by other users",
    "high",
    f"{_MAN} creates keys under `umask 077`: a config holding PrivateKey that group or others "
    "can read hands the tunnel identity to any local account.",
    "`chown root:root` the file and `chmod 600` it.",
)
def _file_mode(cfg: Config) -> Iterator[Hit]:
    mode = _mode(cfg.path)
    if mode is None or not mode & (stat.S_IRWXG | stat.S_IRWXO):
        return
    for i in cfg.find("interface"):
        n = i.first("privatekey")
        if n is not None:
            yield Hit(n, f"file mode {stat.filemode(mode)} exposes PrivateKey")


@check(
    "WG-HOOKS",
    _S,
    "Root hook commands in a file others can modify",
    "medium",
    "wg-quick(8) (PreUp/PostUp/PreDown/PostDown) runs these through bash as root; a file "
    "writable by group or others lets any local account run commands as root.",
    "`chmod 600` the file, or move the hooks into a root-owned script.",
)
def _hooks(cfg: Config) -> Iterator[Hit]:
    mode = _mode(cfg.path)
    if mode is None or not mode & (stat.S_IWGRP | stat.S_IWOTH):
        return
    for i in cfg.find("interface"):
        for n in i.children:
            if n.key in ("preup", "postup", "predown", "postdown"):
                yield Hit(n, f"{n.key} in a file with mode {stat.filemode(mode)}")
