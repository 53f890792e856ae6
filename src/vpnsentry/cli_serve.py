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
    detect: Annotated[
        bool | None,
        typer.Option(
            "--detect/--no-detect",
            help="Run the detections as batches arrive (default on): the live tier on every "
            "batch, all of them every --full-every-minutes.",
        ),
    ] = None,
    sites: Annotated[
        Path | None, typer.Option("--sites", help="Site inventory (docs/sites.md) for detection.")
    ] = None,
    detect_config: Annotated[
        Path | None,
        typer.Option("--detect-config", help="Detection tuning file (docs/detections.md)."),
    ] = None,
    lookback_hours: Annotated[
        float | None,
        typer.Option("--lookback-hours", help="Window the live tier rereads (default 24)."),
    ] = None,
    full_every_minutes: Annotated[
        float | None,
        typer.Option(
            "--full-every-minutes", help="Minutes between full-store runs (default 15; 0: never)."
        ),
    ] = None,
    alerts_stdout: Annotated[
        bool | None,
        typer.Option("--alerts-stdout", help="Print each new alert as a JSON line on stdout."),
    ] = None,
    webhook: Annotated[
        str | None,
        typer.Option("--webhook", metavar="URL", help="POST each new alert as JSON to this URL."),
    ] = None,
    webhook_header: Annotated[
        list[str] | None,
        typer.Option(
            "--webhook-header", metavar="'NAME: VALUE'", help="Extra header (repeatable)."
        ),
    ] = None,
    cef: Annotated[
        str | None,
        typer.Option("--cef", metavar="ADDR:PORT", help="Send each new alert as syslog CEF."),
    ] = None,
    cef_protocol: Annotated[
        str | None, typer.Option("--cef-protocol", help="udp (default) or tcp.")
    ] = None,
    dead_letter: Annotated[
        Path | None,
        typer.Option(
            "--dead-letter",
            help="Alerts an output could not deliver (default <store>/alerts-dead-letter.ndjson).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Receive syslog and NetFlow/IPFIX, spool it, append it to the store and detect, until SIGTERM.

    New alerts go to the store and to the outputs chosen (--alerts-stdout, --webhook, --cef).
    """
    from vpnsentry.serve.alerting import build as build_alerting
    from vpnsentry.serve.config import load
    from vpnsentry.serve.metrics import Metrics
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
            "detect": detect,
            "sites": sites,
            "detect_config": detect_config,
            "lookback_hours": lookback_hours,
            "full_every_minutes": full_every_minutes,
            "alerts_stdout": alerts_stdout,
            "webhook": webhook,
            "webhook_header": webhook_header,
            "cef": cef,
            "cef_protocol": cef_protocol,
            "dead_letter": dead_letter,
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

    metrics_ = Metrics()
    service = Service(cfg, announce=announce, log=log, metrics=metrics_)
    alerting = (
        build_alerting(cfg, metrics_, lambda: service.batch.writer, log) if cfg.detect else None
    )
    if alerting is not None:
        service.hooks.append(alerting.hook)
    try:
        summary = service.run()
    finally:
        if alerting is not None:
            alerting.close()
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
