"""Property tests: text written with a format's own escaping comes back exactly.

A producer that follows the CEF rules (``\\=``, ``\\\\`` in extension values; ``\\|`` in
the header), the LEEF 2.0 rules (any delimiter) or CSV quoting (PAN-OS: quotes around a
field with a comma, ``""`` inside) must not be able to move a value into another field,
whatever text it escapes. Hypothesis writes the text; the parsers must read it back.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import parse_rows

#: Printable text with the characters that matter to these formats, no line breaks (a log
#: line cannot hold one) and no leading/trailing space (CEF and the parsers strip it).
TEXT = st.text(
    alphabet=st.sampled_from(list("abcXYZ019 =\\|,\"';-%$<>[]{}:é")),
    min_size=1,
    max_size=40,
).filter(lambda s: s == s.strip())


def _cef_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace("=", "\\=")


def _cef_header(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|")


@settings(max_examples=60, deadline=None)
@given(user=TEXT, msg=TEXT, product=TEXT)
def test_cef_escaped_text_round_trips(user: str, msg: str, product: str) -> None:
    line = (
        f"CEF:0|Acme|{_cef_header(product)}|1.0|100|Test|5|rt=1796029921000 "
        f"suser={_cef_value(user)} src=192.0.2.7 msg={_cef_value(msg)}"
    )
    (row,) = parse_rows("cef", [line])
    assert row["user.name"] == user
    assert row["message"] == msg
    assert row["observer.product"] == product
    assert row["source.ip"] == "192.0.2.7"


@settings(max_examples=60, deadline=None)
@given(user=TEXT, delimiter=st.sampled_from(["^", "|", "x09", "0x7C", ";"]))
def test_leef_delimiters_round_trip(user: str, delimiter: str) -> None:
    sep = {"x09": "\t", "0x7C": "|"}.get(delimiter, delimiter)
    if sep in user:  # LEEF has no escape for its delimiter
        user = user.replace(sep, "_")
    attrs = sep.join(["devTime=1796029921000", f"usrName={user}", "src=192.0.2.7"])
    line = f"LEEF:2.0|Acme|Gw|1.0|Login|{delimiter}|{attrs}"
    (row,) = parse_rows("leef", [line])
    assert row["user.name"] == user.strip()
    assert row["source.ip"] == "192.0.2.7"


def _csv(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if ("," in text or '"' in text) else text


@settings(max_examples=60, deadline=None)
@given(user=TEXT, portal=TEXT)
def test_panos_csv_quoting_round_trips(user: str, portal: str) -> None:
    user = user.replace("\\", "/").replace("@", "_")  # domain\user and user@domain are split
    fields = [
        "1", "2026/11/02 08:15:03", "012801096514", "GLOBALPROTECT", "0", "2561",
        "2026/11/02 08:15:02", "vsys1", "gateway-auth", "login", "LDAP", "", _csv(user), "NL",
        "LAPTOP-7", "198.51.100.23", "", "0.0.0.0", "", "hostid", "SER", "6.1.3", "Windows",
        _csv("Microsoft Windows 10 Pro , 64-bit"), "1", "", "", "", "success", "", "0",
        "user-logon", "0", _csv(portal), "7212345678901234", "0x8000000000000000",
    ]  # fmt: skip
    (row,) = parse_rows("panw_panos", [",".join(fields)])
    assert row["user.name"] == user
    assert row["vpn.group"] == portal
    assert row["source.ip"] == "198.51.100.23"
    assert row["vpn.client_os"] == "Microsoft Windows 10 Pro , 64-bit"


def _cp_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


@settings(max_examples=60, deadline=None)
@given(user=TEXT, reason=TEXT)
def test_checkpoint_escaped_values_round_trip(user: str, reason: str) -> None:
    line = (
        '<134>1 2026-11-30T08:02:40Z gw-hq CheckPoint 2211 - [action:"Failed Log In"; '
        f'origin:"192.0.2.1"; product:"VPN-1 & FireWall-1"; reason:"{_cp_value(reason)}"; '
        f'src:"203.0.113.66"; user:"{_cp_value(user)}"]'
    )
    (row,) = parse_rows("checkpoint", [line])
    assert row["user.name"] == user
    assert row["event.reason"] == reason
    assert row["source.ip"] == "203.0.113.66"
    assert row["event.outcome"] == "failure"
