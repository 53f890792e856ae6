"""A compiled ``key=value`` tokenizer over whole chunks of lines.

Why compiled: FortiOS, SonicWall and similar logs carry 30-60 ``key=value`` fields per
line, and a parser needs 20-80 of them. Polars' regex kernels pay per capture group and
per pass (measured: ~22 µs per FortiGate line for the fields the mappings read, 4x the
rest of ingest together), and a numpy tokenizer needs ~25 array operations per delimiter,
which was no faster. This module scans each line once, left to right, in a loop compiled
by numba over the chunk's Arrow buffers (one call per chunk, never a Python loop per line),
and returns one string column per wanted key.

Semantics (the same as a careful hand tokenizer, which is what makes it safe):

* A key is ``[A-Za-z_][A-Za-z0-9_.-]*`` immediately followed by ``=``, starting the line
  (after an optional ``<PRI>``) or after a space or tab. Words that are not keys (a relay's
  syslog header, bare text) are skipped.
* A value starting with a quote (``"``; SonicOS also ``'``: per format) runs to the next
  same quote, not escaped by a backslash where the format escapes (``\\"`` is kept as
  written); an unterminated quote runs to the end of the line. Anything inside quotes is
  value, never a key: an attacker who writes ``x srcip=10.0.0.1`` into a quoted user name
  cannot choose the address a detection sees.
* A bare value runs to the next space, tab, quote or CR.
* The first occurrence of a key wins (FortiOS repeats a few, e.g. ``tz``).
* A key that is absent is null; a key written with an empty value is ``""``.

The kernel is ``jit.scan_kv``; the values it returns are Arrow string views into the
chunk's own bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from vpnsentry.arrowviews import line_buffers, view_column

#: Open-addressing table size for the wanted keys (a power of two, > 2x the keys).
_MAX_KEYS = 1024
_MAX_KEY_LEN = 64


def _hash(key: bytes) -> int:
    """The key hash ``jit.scan_kv`` computes while reading a key: 31-polynomial, 32-bit."""
    h = 0
    for b in key:
        h = (h * 31 + b) & 0xFFFFFFFF
    return h


#: Byte roles for the scan (bit flags): may start a key (letters, ``_``), may continue
#: one (also digits, ``.``, ``-``), separates words (space, tab), opens and closes a quoted
#: value (per ``KeySet``), ends a bare value (CR, besides spaces and quotes).
KEY_START, KEY, SPACE, QUOTE, END = 1, 2, 4, 8, 16


def _classes(quotes: str) -> np.ndarray:
    cls = np.zeros(256, dtype=np.uint8)
    for c in b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_":
        cls[c] = KEY_START
    for c in b"0123456789.-":
        cls[c] = KEY
    cls[ord(" ")] = cls[ord("\t")] = SPACE
    for q in quotes.encode("ascii"):
        cls[q] = QUOTE
    cls[ord("\r")] = END
    return cls


class KeySet:
    """The keys a parser wants and how its format quotes, prepared once for the kernel.

    ``quotes``: the characters that may open a quoted value (closed by the same one);
    ``escapes``: whether a backslash keeps the next character inside a quoted value.
    """

    def __init__(self, keys: Sequence[str], *, quotes: str = '"', escapes: bool = True) -> None:
        self.keys = tuple(dict.fromkeys(keys))
        self.classes = _classes(quotes)
        self.escapes = escapes
        if len(self.keys) * 2 > _MAX_KEYS:
            raise ValueError(f"at most {_MAX_KEYS // 2} keys")
        encoded = [k.encode("ascii") for k in self.keys]
        for k in encoded:
            if not k or len(k) > _MAX_KEY_LEN:
                raise ValueError(f"key {k!r}: 1 to {_MAX_KEY_LEN} characters")
        self.key_bytes = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        self.key_offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        self.key_offsets[1:] = np.cumsum([len(k) for k in encoded])
        self.table = np.full(_MAX_KEYS, -1, dtype=np.int64)
        for idx, k in enumerate(encoded):
            slot = _hash(k) & (_MAX_KEYS - 1)
            while self.table[slot] >= 0:
                slot = (slot + 1) & (_MAX_KEYS - 1)
            self.table[slot] = idx


def extract(lines: pl.Series, keys: KeySet) -> pl.DataFrame:
    """One String column per key of ``keys`` (null where the line lacks the key)."""
    offsets, data = line_buffers(lines)
    n = len(offsets) - 1
    nkeys = len(keys.keys)
    out = np.zeros((nkeys, n * 16), dtype=np.uint8)
    present = np.zeros((nkeys, n), dtype=np.bool_)
    from vpnsentry import jit  # numba loads here, on first use, not at start-up

    jit.scan_kv(
        data,
        offsets,
        keys.classes,
        keys.escapes,
        keys.table,
        keys.key_bytes,
        keys.key_offsets,
        out,
        out.view(np.uint32),
        present,
    )
    return pl.DataFrame(
        view_column(name, out[k], data, present[k])
        if present[k].any()
        else pl.Series(name, [], dtype=pl.String).extend_constant(None, n)
        for k, name in enumerate(keys.keys)
    )
