"""Live detection tiers over a real store: windowed reruns add alerts once, publish once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from vpnsentry.detect.base import detections
from vpnsentry.detect.config import load_config
from vpnsentry.detect.stream import LiveDetector, live_ids
from vpnsentry.ingest import ingest
from vpnsentry.store.store import Store

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def _openvpn_failures(path: Path, start: dt.datetime, user: str, ip: str, n: int) -> None:
    """OpenVPN 2.6 server log lines of ``n`` rejected passwords (the server's own format)."""
    lines = []
    for i in range(n):
        t = (start + dt.timedelta(seconds=20 * i)).strftime("%Y-%m-%d %H:%M:%S")
        peer = f"{ip}:{40000 + i}"
        lines += [
            f"{t} {peer} TLS: Initial packet from [AF_INET]{peer}, sid=1a2b3c4d 5e6f7a8b",
            f"{t} {peer} VERIFY OK: depth=0, CN={user}",
            f"{t} {peer} TLS Auth Error: Auth Username/Password verification failed for peer",
            f"{t} {peer} SENT CONTROL [{user}]: 'AUTH_FAILED' (status=1)",
        ]
    with path.open("a") as f:
        f.write("\n".join(lines) + "\n")


def test_live_tier_is_the_detections_marked_live() -> None:
    ids = live_ids(load_config(None, detections()))
    assert "auth_brute_force" in ids and "lateral_fan_out" in ids
    assert "exfil_volume_anomaly" not in ids  # needs weeks of baseline


def test_windowed_reruns_publish_each_alert_once(tmp_path: Path) -> None:
    log = tmp_path / "openvpn.log"
    store = tmp_path / "store"
    # Old history: outside any window used below, must not be read by the live tier.
    _openvpn_failures(log, T0 - dt.timedelta(days=3), "bob", "203.0.113.5", 6)
    ingest([str(log)], store)
    published: list[pl.DataFrame] = []
    live = LiveDetector(
        store, load_config(None, detections()), None, published.append, full_every=None
    )
    runs = live.on_batch(T0 - dt.timedelta(days=3) + dt.timedelta(hours=25))
    assert [r.tier for r in runs] == ["live"] and runs[0].new == 0 and not runs[0].errors

    _openvpn_failures(log, T0, "mallory", "198.51.100.9", 7)
    ingest([str(log)], store)
    runs = live.on_batch(T0)
    assert runs[0].new == 1 and len(published) == 1
    alert = published[0].row(0, named=True)
    assert alert["rule.id"] == "auth_brute_force" and alert["user.name"] == "mallory"
    assert alert["source.ip"] == "198.51.100.9"

    # The same evidence seen again (next batch, a scheduled full run): nothing new to send,
    # and the full run adds bob's old burst, which the window never saw.
    assert live.on_batch(T0)[0].new == 0
    full = live.run_full()
    assert full.tier == "full" and full.new == 1 and len(published) == 2
    assert published[1]["user.name"].to_list() == ["bob"]
    stored = Store.open(store, create=False).alerts()
    assert stored.filter(pl.col("rule.id") == "auth_brute_force").height == 2


def test_reader_window_prunes_days_and_rows(tmp_path: Path) -> None:
    log = tmp_path / "openvpn.log"
    _openvpn_failures(log, T0 - dt.timedelta(days=2), "bob", "203.0.113.5", 2)
    _openvpn_failures(log, T0, "eve", "198.51.100.3", 2)
    ingest([str(log)], tmp_path / "store")
    st = Store.open(tmp_path / "store", create=False)
    con = st.reader(since=T0 - dt.timedelta(minutes=1))
    users = {r[0] for r in con.sql('SELECT DISTINCT "user.name" FROM events').fetchall()}
    assert users == {"eve", None}
    # Only the day partitions that can hold the window are read at all.
    view = con.sql("SELECT sql FROM duckdb_views() WHERE view_name = 'events'").fetchall()[0][0]
    assert f"day={T0.date()}" in view and f"day={(T0 - dt.timedelta(days=2)).date()}" not in view
    full = st.reader()
    assert (
        full.sql("SELECT count(*) FROM events").fetchall()[0][0]
        > con.sql("SELECT count(*) FROM events").fetchall()[0][0]
    )
