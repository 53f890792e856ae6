"""Compiled kernels over whole chunks (numba), imported only when a chunk is processed.

Why: some steps of ingest walk every byte of a chunk with a decision per byte (where a key
starts, where a quoted value ends), which array libraries can only express as many
full-array passes. Each kernel here is one call per chunk over Arrow buffers, never a
Python loop per line, and writes Arrow string views (``write_view``) that point into the
chunk's own bytes, so extracting a value copies at most its first 12 bytes. (A kernel that
splits TSV/CSV fields was measured no faster than Polars' ``str.split`` and is not here.)

numba's import costs about half a second, so this module is imported inside the functions
that need it, not at CLI start-up; compiled code is cached on disk (``cache=True``).
"""

# mypy: disable-error-code="no-untyped-def,untyped-decorator"

from __future__ import annotations

import numba
import numpy as np


@numba.njit(nogil=True, cache=True, inline="always")
def write_view(out, out32, row, data, start, length):
    """Arrow string view ``row`` (16 bytes of ``out``; ``out32`` is the same memory as
    uint32): the length, then the bytes inline when <= 12, else a 4-byte prefix, buffer 0
    and the offset. ``out`` must be zeroed beforehand (views of absent values stay zero)."""
    out32[row * 4] = length
    o = row * 16 + 4
    if length <= 12:
        for j in range(length):
            out[o + j] = data[start + j]
    else:
        for j in range(4):
            out[o + j] = data[start + j]
        out32[row * 4 + 3] = start


@numba.njit(nogil=True, cache=True)
def scan_kv(data, offsets, cls, escapes, table, key_bytes, key_offsets, out, out32, present):
    """The ``parse/kv.py`` tokenizer. For each line, left to right: skip ``<PRI>``, then
    words; a word that is a key followed by ``=`` has its value read (quoted or bare) and,
    if the key is wanted (``table``: open addressing by ``kv._hash``) and not seen yet on
    this line, written as a view into ``out[k]`` while the line is still in cache.
    ``cls`` gives each byte's roles (``kv.KEY_START``, ``KEY``, ``SPACE``, ``QUOTE``,
    ``END``); with ``escapes`` a backslash keeps the next byte inside a quoted value."""
    mask = len(table) - 1
    for i in range(len(offsets) - 1):
        p = offsets[i]
        end = offsets[i + 1]
        while end > p and (data[end - 1] == 13 or data[end - 1] == 10):
            end -= 1
        if p < end and data[p] == 60:  # <PRI>
            q = p + 1
            while q < end and q - p <= 3 and 48 <= data[q] <= 57:
                q += 1
            if q < end and q > p + 1 and data[q] == 62:
                p = q + 1
        at_word = True
        while p < end:
            c = data[p]
            if cls[c] & 4:  # SPACE
                p += 1
                at_word = True
                continue
            if at_word and cls[c] & 1:  # KEY_START
                h = np.uint32(c)
                q = p + 1
                while q < end and cls[data[q]] & 3:  # KEY_START | KEY
                    h = np.uint32(h * np.uint32(31) + np.uint32(data[q]))
                    q += 1
                if q < end and data[q] == 61:  # '='
                    v = q + 1
                    if v < end and cls[data[v]] & 8:  # QUOTE: to the same quote
                        quote = data[v]
                        vs = v + 1
                        r = vs
                        while r < end and data[r] != quote:
                            r += 2 if escapes and data[r] == 92 else 1
                        ve = min(r, end)
                        nxt = min(r + 1, end)
                    else:
                        vs = v
                        r = v
                        while r < end and not cls[data[r]] & 28:  # SPACE | QUOTE | END
                            r += 1
                        ve = r
                        nxt = r
                    klen = q - p
                    slot = np.int64(h) & mask
                    while table[slot] >= 0:
                        k = table[slot]
                        a = key_offsets[k]
                        if key_offsets[k + 1] - a == klen:
                            j = 0
                            while j < klen and key_bytes[a + j] == data[p + j]:
                                j += 1
                            if j == klen:
                                if not present[k, i]:
                                    present[k, i] = True
                                    write_view(out[k], out32[k], i, data, vs, ve - vs)
                                break
                        slot = (slot + 1) & mask
                    p = nxt
                    at_word = False
                    continue
            while p < end and not cls[data[p]] & 4:  # not a key: skip the word
                p += 1
            at_word = False
