"""Field conversions shared by the parsers (addresses first).

Why here: every vendor names addresses, and each parser writing its own IP check gave three
slightly different ones. Conversions work on distinct values where Python is involved, so
their cost follows the number of different addresses, not the number of lines.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

import polars as pl


@lru_cache(maxsize=65536)
def canon_ipv6(text: str) -> str | None:
    """Canonical text of an IPv6 address; IPv4-mapped ones as plain IPv4 (that is what
    they are: a dual-stack socket's view of an IPv4 client)."""
    try:
        addr = ipaddress.IPv6Address(text)
    except ValueError:
        return None
    return str(addr.ipv4_mapped) if addr.ipv4_mapped else str(addr)


def canonical_ip(values: pl.Series) -> tuple[pl.Series, int]:
    """Validated, canonical IP strings and the count of non-empty values that were not IPs.

    Works on the distinct values (a log names the same few addresses over and over): IPv4
    is checked with string kernels, IPv6 through ``ipaddress``, once per distinct value.
    """
    text = values.cast(pl.String)
    distinct = pl.DataFrame({"v": text.unique().drop_nulls()})
    octets = pl.col("v").str.split_exact(".", 3).struct
    parts = [octets.field(f"field_{i}").cast(pl.Int32, strict=False) for i in range(4)]
    v4_ok = pl.col("v").str.contains(r"^\d{1,3}(?:\.\d{1,3}){3}$") & pl.all_horizontal(
        [p <= 255 for p in parts]
    )
    v4 = pl.when(v4_ok).then(pl.concat_str([p.cast(pl.String) for p in parts], separator="."))
    distinct = distinct.with_columns(v4.alias("ip"))
    six = distinct.filter(pl.col("ip").is_null() & pl.col("v").str.contains(":", literal=True))
    if six.height:
        v6 = pl.Series([canon_ipv6(v) for v in six["v"]], dtype=pl.String)
        distinct = distinct.update(six.with_columns(v6.alias("ip")), on="v")
    result = text.replace_strict(
        distinct["v"], distinct["ip"], default=None, return_dtype=pl.String
    )
    given = text.is_not_null() & (text != "")
    return result.rename(values.name), int((given & result.is_null()).sum())
