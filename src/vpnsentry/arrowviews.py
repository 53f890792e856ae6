"""Arrow string views over a chunk's own bytes: the buffers ``jit`` kernels read, and the
Polars columns made from the views they write.

Why views: Polars stores strings as 16-byte views (length, inline bytes or prefix, buffer,
offset). A kernel that writes views pointing into the chunk's bytes hands Polars columns
without copying any text, which is most of what extracting fields used to cost.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa


def line_buffers(lines: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, bytes) of ``lines`` as one Arrow large-string buffer, for the kernels:
    line ``i`` is ``bytes[offsets[i]:offsets[i + 1]]``; a null line is empty. Views made
    over these bytes address them with 32-bit offsets, so a larger input is refused (the
    parse runner then retries on halves)."""
    arr = lines.to_arrow()
    offsets, data = string_buffers(
        arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    )
    if len(data) >= 2**31:
        raise ValueError("chunk too large for string views (2 GiB)")
    return offsets, data


def string_buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(int64 offsets, bytes) of any Arrow string array, as numpy arrays a kernel reads:
    string ``i`` is ``bytes[offsets[i]:offsets[i + 1]]``; a null string is empty."""
    arr = arr.cast(pa.large_string())
    n = len(arr)
    validity, offsets_buf, data_buf = arr.buffers()[:3]
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[arr.offset : arr.offset + n + 1]
    data = (
        np.frombuffer(data_buf, dtype=np.uint8)
        if data_buf is not None and data_buf.size
        else np.zeros(1, dtype=np.uint8)
    )
    if validity is not None and arr.null_count:
        offsets = offsets.copy()
        isnull = np.asarray(arr.is_null())
        offsets[:-1][isnull] = offsets[1:][isnull]
    return offsets, data


def view_column(
    name: str, views: np.ndarray, data: np.ndarray, present: np.ndarray | None
) -> pl.Series:
    """A String column from the 16-byte ``views`` a kernel wrote over ``data``; rows where
    ``present`` is False are null (None: every row is present)."""
    n = len(views) // 16
    bitmap = None if present is None else pa.py_buffer(np.packbits(present, bitorder="little"))
    nulls = 0 if present is None else int(n - np.count_nonzero(present))
    arr = pa.Array.from_buffers(
        pa.string_view(), n, [bitmap, pa.py_buffer(views), pa.py_buffer(data)], null_count=nulls
    )
    return pl.Series(name, arr)
