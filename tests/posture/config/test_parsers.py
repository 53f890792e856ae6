"""Parser edge cases: quoting, comments, includes, inline blocks, continuation, broken files
(each error names the file and line), and the file-permission checks."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from vpnsentry.posture.config import ConfigError, audit, parse
from vpnsentry.posture.config.model import run_checks
from vpnsentry.posture.config.openvpn import dh_bits, tokenize


def write(tmp: Path, name: str, text: str) -> Path:
    p = tmp / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    p.chmod(0o600)
    return p


def error(path: Path, fmt: str) -> ConfigError:
    with pytest.raises(ConfigError) as exc:
        parse(path, fmt)
    return exc.value


# -- OpenVPN ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "params"),
    [
        (
            'plugin /usr/lib/auth.so "login USERNAME password PASSWORD"',
            ["plugin", "/usr/lib/auth.so", "login USERNAME password PASSWORD"],
        ),
        (
            r'key "C:\\Program Files\\OpenVPN\\a b.key"',
            ["key", r"C:\Program Files\OpenVPN\a b.key"],
        ),
        (r"status a\ b.log 10", ["status", "a b.log", "10"]),
        (
            "auth-user-pass-verify '/bin/check \\x' via-file",
            ["auth-user-pass-verify", "/bin/check \\x", "via-file"],
        ),
        ("  # a comment", []),
        ("; commented-out directive", []),
        ("verb 3 # trailing comment", ["verb", "3"]),
        ("verb 3 ;trailing", ["verb", "3"]),
        ("remote host#1 1194", ["remote", "host#1", "1194"]),
        ('push "route 10.0.0.0 255.0.0.0"', ["push", "route 10.0.0.0 255.0.0.0"]),
        (r'push "dhcp-option DOMAIN \"corp\""', ["push", 'dhcp-option DOMAIN "corp"']),
    ],
)
def test_openvpn_tokenizer_follows_parse_line(line: str, params: list[str]) -> None:
    assert tokenize(line, "f", 1) == params


def test_openvpn_unclosed_quote_names_the_line(tmp_path: Path) -> None:
    p = write(tmp_path, "s.conf", 'dev tun\nplugin "/usr/lib/x.so\n')
    e = error(p, "openvpn")
    assert (e.file, e.line) == (str(p), 2) and "quotation" in str(e)


def test_openvpn_unterminated_inline_block(tmp_path: Path) -> None:
    p = write(tmp_path, "c.ovpn", "client\n<ca>\n-----BEGIN CERTIFICATE-----\n<cert>\n")
    e = error(p, "openvpn")
    assert e.line == 2 and "</ca>" in str(e)


def test_openvpn_inline_blocks_and_double_dash(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "c.ovpn",
        "--client\n--remote vpn.example.com\n<tls-crypt>\nK\n</tls-crypt>\n"
        "<ca>\nC\n  </ca>\nremote-cert-tls server\n",
    )
    cfg = parse(p, "openvpn")
    assert [n.key for n in cfg.root.children] == [
        "client",
        "remote",
        "tls-crypt",
        "ca",
        "remote-cert-tls",
    ]
    assert cfg.root.children[2].args == ["K"] and cfg.root.children[2].text == "<tls-crypt>"
    assert "OVPN-TLS-CRYPT" not in {f.check for f in run_checks(cfg)}


def test_openvpn_include_loop_and_missing_include(tmp_path: Path) -> None:
    a = write(tmp_path, "a.conf", "dev tun\nconfig sub/b.conf\n")
    write(tmp_path, "sub/b.conf", "verb 3\nconfig ../a.conf\n")
    e = error(a, "openvpn")
    assert e.file.endswith("b.conf") and e.line == 2 and "loop" in str(e)
    m = write(tmp_path, "m.conf", "dev tun\n\nconfig nowhere.conf\n")
    e = error(m, "openvpn")
    assert (e.file, e.line) == (str(m), 3) and "nowhere.conf" in str(e)


def _dh_pem(bits: int) -> str:
    p = (1 << (bits - 1)) | 1
    body = p.to_bytes(bits // 8, "big")
    body = (b"\x00" + body) if body[0] & 0x80 else body

    def tlv(tag: int, value: bytes) -> bytes:
        n = len(value)
        head = bytes([n]) if n < 0x80 else bytes([0x82, n >> 8, n & 0xFF])
        return bytes([tag]) + head + value

    der = tlv(0x30, tlv(0x02, body) + tlv(0x02, b"\x02"))
    b64 = base64.b64encode(der).decode()
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return "-----BEGIN DH PARAMETERS-----\n" + "\n".join(lines) + "\n-----END DH PARAMETERS-----\n"


@pytest.mark.parametrize("bits", [1024, 2048, 3072])
def test_dh_prime_size_is_read_from_the_pem(bits: int, tmp_path: Path) -> None:
    assert dh_bits(_dh_pem(bits)) == bits
    p = write(tmp_path, "s.conf", f"server 10.8.0.0 255.255.255.0\n<dh>\n{_dh_pem(bits)}</dh>\n")
    weak = [f for f in run_checks(parse(p, "openvpn")) if f.check == "OVPN-DH"]
    assert bool(weak) == (bits < 2048)
    write(tmp_path, "params.pem", _dh_pem(bits))
    q = write(tmp_path, "t.conf", "server 10.8.0.0 255.255.255.0\ndh params.pem\n")
    assert bool([f for f in run_checks(parse(q, "openvpn")) if f.check == "OVPN-DH"]) == (
        bits < 2048
    )


# -- strongSwan --------------------------------------------------------------------------------


def test_swanctl_quoted_value_spans_lines_and_unescapes(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "swanctl.conf",
        'connections {\n  a {\n    remote_addrs = "x\\"y\n z"\n    version = 2 # c\n  }\n}\n',
    )
    a = parse(p, "swanctl").root.children[0].children[0]
    assert a.get("remote_addrs") == 'x"y\n z'
    assert (a.first("version").line, a.get("version")) == (5, "2")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("connections {\n  a {\n    version = 2\n", 2, "never closed"),
        ("connections {\n}\n}\n", 3, "closes no section"),
        ('connections {\n  a = "open\n', 2, "unterminated"),
        ("connections {\n  lonely\n}\n", 2, "no value"),
    ],
)
def test_swanctl_broken_files(tmp_path: Path, text: str, line: int, words: str) -> None:
    e = error(write(tmp_path, "swanctl.conf", text), "swanctl")
    assert e.line == line and words in str(e)


def test_swanctl_include_glob_missing_and_loop(tmp_path: Path) -> None:
    p = write(tmp_path, "swanctl.conf", "connections {\n  include conf.d/*.conf\n}\n")
    write(tmp_path, "conf.d/a.conf", "a {\n  version = 1\n}\n")
    write(tmp_path, "conf.d/b.conf", "b {\n  version = 2\n}\n")
    conns = parse(p, "swanctl").root.children[0].children
    assert [c.key for c in conns] == ["a", "b"]
    assert conns[0].children[0].file.endswith("a.conf")
    write(tmp_path, "empty.conf", "include nothing/*.conf\n")
    assert parse(tmp_path / "empty.conf", "swanctl").root.children == []
    e = error(write(tmp_path, "m.conf", "\ninclude missing.conf\n"), "swanctl")
    assert e.line == 2 and "missing.conf" in str(e)
    e = error(write(tmp_path, "loop.conf", "include loop.conf\n"), "swanctl")
    assert "loop" in str(e)


def test_ipsec_conf_rules(tmp_path: Path) -> None:
    e = error(write(tmp_path, "ipsec.conf", "conn a\nleft=1.2.3.4\n"), "ipsec")
    assert e.line == 2 and "indented" in str(e)
    e = error(write(tmp_path, "ipsec.conf", "  left=1.2.3.4\n"), "ipsec")
    assert e.line == 1
    p = write(tmp_path, "ipsec.conf", "conn a\n\talso=b\n\tauto=add\nconn b\n\talso=a\n")
    with pytest.raises(ConfigError, match="loops"):
        audit([p], "ipsec")
    p = write(tmp_path, "ipsec.conf", 'conn a\n\tleftid="CN=moon, O=x" # c\n\tauto=add\n')
    assert parse(p, "ipsec").root.children[0].get("leftid") == "CN=moon, O=x"


# -- WireGuard, FortiGate, ASA -----------------------------------------------------------------


def test_wireguard_rules(tmp_path: Path) -> None:
    e = error(write(tmp_path, "wg0.conf", "PrivateKey = x\n"), "wireguard")
    assert e.line == 1 and "outside" in str(e)
    e = error(write(tmp_path, "wg0.conf", "[Interface]\n[Peers]\n"), "wireguard")
    assert e.line == 2
    e = error(write(tmp_path, "wg0.conf", "[Interface]\nListenPort\n"), "wireguard")
    assert e.line == 2


def test_wireguard_file_mode_checks(tmp_path: Path) -> None:
    p = write(tmp_path, "wg0.conf", "[Interface]\nPrivateKey = k\nPostUp = true\n")
    assert not {f.check for f in run_checks(parse(p, "wireguard"))} & {"WG-FILE-MODE", "WG-HOOKS"}
    p.chmod(0o664)
    found = {f.check: f for f in run_checks(parse(p, "wireguard"))}
    assert found["WG-FILE-MODE"].line == 2 and found["WG-HOOKS"].line == 3


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("config system global\n    set hostname x\n", 1, "never closed"),
        ('config system interface\n    edit "wan1"\n        set role wan\n', 2, "never closed"),
        ("end\n", 1, "closes no"),
        ("config system interface\n    next\nend\n", 2, "closes no"),
        ('config system global\n    set alias "open\n', 2, "never closed"),
        ("    set hostname x\n", 1, "outside"),
    ],
)
def test_fortigate_broken_files(tmp_path: Path, text: str, line: int, words: str) -> None:
    e = error(write(tmp_path, "fgt.conf", text), "fortigate")
    assert e.line == line and words in str(e)


def test_fortigate_multiline_quoted_value_keeps_line_numbers(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "fgt.conf",
        'config vpn certificate local\n    edit "c"\n        set certificate "-----BEGIN\n'
        'AAAA\n-----END"\n    next\nend\nconfig vpn ssl settings\n'
        "    set ssl-min-proto-ver tls1-1\nend\n",
    )
    [f] = [f for f in run_checks(parse(p, "fortigate")) if f.check == "FGT-SSLVPN-TLS"]
    assert f.line == 9


def test_asa_nesting_by_indentation(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "asa.cfg",
        "ASA Version 9.16(4)48\n!\ngroup-policy G attributes\n vpn-idle-timeout none\n"
        " webvpn\n  anyconnect keep-installer none\nno logging message 106015\n",
    )
    cfg = parse(p, "cisco_asa")
    gp = cfg.first("group-policy")
    assert gp is not None and [c.key for c in gp.children] == ["vpn-idle-timeout", "webvpn"]
    assert gp.children[1].children[0].key == "anyconnect"
    assert cfg.root.children[-1].key == "no logging"


def test_unknown_format_is_an_error_not_a_guess(tmp_path: Path) -> None:
    p = write(tmp_path, "notes.txt", "hello\nworld\n")
    with pytest.raises(ConfigError, match="--type"):
        parse(p)
