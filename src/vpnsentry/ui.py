"""Terminal output shared by the command modules: consoles, tables, JSON, common options.

Everything printed that came from a log goes through ``safe.term`` and is printed as plain
Rich ``Text``, never markup, so attacker-chosen text cannot style or move the terminal.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from vpnsentry.safe import term

#: Piped output is not wrapped at 80 columns: it is read by tools and wide terminals.
out = Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 200)

StoreOpt = Annotated[
    Path,
    typer.Option(
        "--store",
        envvar="VPNSENTRY_STORE",
        help="Store folder (env VPNSENTRY_STORE).",
        show_default=True,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
DEFAULT_STORE = Path("vpnsentry-data")


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, default=str, ensure_ascii=False) + "\n")


def cell(v: Any) -> str:
    if isinstance(v, dt.datetime):
        return v.isoformat()
    if isinstance(v, int):
        return f"{v:,}" if abs(v) >= 10000 else str(v)
    return term(v, 120)


def print_table(cols: list[str], rows: list[tuple[Any, ...]]) -> None:
    """A table: boxed on a terminal, plain aligned columns when piped (no box characters)."""
    table = Table(show_edge=False, box=box.HEAVY_HEAD if out.is_terminal else None)
    for c in cols:
        table.add_column(Text(term(c)))
    for r in rows:
        table.add_row(*(Text(cell(v)) for v in r))
    out.print(table)
