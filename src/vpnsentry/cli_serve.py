"""``vpnsentry serve``: the long-lived syslog and NetFlow/IPFIX collector.

The work is :class:`vpnsentry.serve.service.Service`; this module merges flags over the
config file, prints one line per listener (the real port, so ``:0`` is usable) and a summary
at shutdown. With ``--json`` every status line is a JSON object instead.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from vpnsentry.safe import term
from vpnsentry.ui import JsonOpt, err, out, print_json


def register(app: typer.Typer) -> None:
    """Add ``serve`` to ``app``."""
    app.command(name="serve")(serve_command)


def serve_command(
    config: Annotated[
        Path | None,
        typer.Option("--config", help="TOML settings (see deploy/serve.toml); flags win."),
    ] = None,
    store: Annotated[
        Path | None,
        typer.Option(
            "--store",
            envvar="VPNSENTRY_STORE",
            help="Store folder (env VPNSENTRY_STORE; default vpnsentry-data).",
        ),
    ] = None,
    syslog_udp: Annotated[
        list[str] | None,
        typer.Option("--syslog-udp", metavar="ADDR:PORT", help="Syslog over UDP (repeatable)."),
    ] = None,
    syslog_tcp: Annotated[
        list[str] | None,
        typer.Option(
            "--syslog-tcp",
            metavar="ADDR:PORT",
            help="Syslog over TCP, octet-counted or LF-framed (repeatable).",
        ),
    ] = None,
    syslog_tls: Annotated[
        list[str] | None,
        typer.Option(
            "--syslog-tls",
            metavar="ADDR:PORT",
            help="Syslog over TLS, RFC 5425 (repeatable; needs --tls-cert/--tls-key).",
        ),
    ] = None,
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="PEM certificate.")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="PEM private key.")] = None,
    netflow: Annotated[
        list[str] | None,
        typer.Option(
            "--netflow", metavar="ADDR:PORT", help="NetFlow v5/v9 and IPFIX over UDP (repeatable)."
        ),
    ] = None,
    metrics: Annotated[
        str | None,
        typer.Option("--metrics", metavar="ADDR:PORT", help="Serve Prometheus /metrics here."),
    ] = None,
    spool: Annotated[
        Path | None,
        typer.Option("--spool", help="Write-ahead spool folder (default <store>/.spool)."),
    ] = None,
    batch_seconds: Annotated[
        float | None,
        typer.Option("--batch-seconds", help="Seconds between commits to the store (default 1)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Receive syslog and NetFlow/IPFIX, spool it, and append it to the store until SIGTERM."""
    from vpnsentry.serve.config import load
    from vpnsentry.serve.service import Service

    cfg = load(
        config,
        {
            "store": store,
            "spool": spool,
            "syslog_udp": syslog_udp,
            "syslog_tcp": syslog_tcp,
            "syslog_tls": syslog_tls,
            "tls_cert": tls_cert,
            "tls_key": tls_key,
            "netflow": netflow,
            "metrics": metrics,
            "batch_seconds": batch_seconds,
        },
    )

    def announce(event: dict[str, Any]) -> None:
        if as_json:
            print_json(event)
        elif event["event"] == "listening":
            out.print(Text(f"listening {event['listener']} on {event['address']}:{event['port']}"))
        else:
            out.print(Text(" ".join(term(v) for v in event.values())))
        sys.stdout.flush()

    def log(message: str) -> None:
        err.print(Text(f"serve: {term(message, 500)}"))

    summary = Service(cfg, announce=announce, log=log).run()
    if as_json:
        print_json(
            {
                "event": "stopped",
                "received": summary.received,
                "rows": summary.rows,
                "batches": summary.batches,
                "dropped": summary.dropped,
            }
        )
    else:
        rows = ", ".join(f"{k} {v:,}" for k, v in summary.rows.items())
        out.print(
            Text(
                f"stopped: {summary.received:,} received, {rows}, "
                f"{summary.batches:,} batches, {summary.dropped:,} dropped by the kernel"
            )
        )
