"""Read one feed file in whichever supported format it is (or the one the user named)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

from vpnsentry.errors import InputError
from vpnsentry.intel import csv_list, misp, stix
from vpnsentry.intel.model import Feed

FORMATS: Final = ("auto", "stix", "misp", "csv")


def read_file(path: Path, fmt: str = "auto", source: str | None = None) -> Feed:
    """The feed in ``path``; ``source`` names indicators whose feed names no source.

    Raises InputError when the file cannot be read, ValueError when it is in no supported
    format (or not in the one asked for).
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    text = raw.decode("utf-8", errors="replace").lstrip("\ufeff")
    default = source or path.stem
    doc: object = None
    if fmt in ("auto", "stix", "misp") and text.lstrip()[:1] in ("{", "["):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"invalid JSON: {exc}") from exc
    if fmt in ("auto", "stix") and stix.looks_like(doc):
        assert isinstance(doc, dict)
        return stix.read(doc, default, path.name)
    if fmt in ("auto", "misp") and misp.looks_like(doc):
        return misp.read(doc, default, path.name)
    if fmt in ("auto", "csv") and doc is None and (fmt == "csv" or csv_list.looks_like(text)):
        return csv_list.read(text, default, path.name)
    wanted = "a STIX 2.1 bundle, a MISP event export or a CSV list" if fmt == "auto" else fmt
    raise ValueError(f"not {wanted} (see docs/intel.md)")
