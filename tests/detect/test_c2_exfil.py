"""Command and control, and exfiltration: beaconing, long connections, upload volume,
uploads to rare networks, low-and-slow uploads, staging then upload.

Hand-written flows are Zeek ``conn`` rows (one row per connection, originator bytes in
``source.bytes``, responder bytes in ``destination.bytes``) over the simulator's bundled
estate (HQ 10.10.0.0/20 workstations, crown-jewel servers 10.10.33.10/.20/.30, WSUS
10.10.32.50, backup host 10.10.32.60 on the ``backup_hosts`` allow-list, HQ gateway outside
address 126.213.38.65). External addresses: 128.199.55.106 (DigitalOcean), 149.28.98.229
(Vultr), 5.9.86.115 (Hetzner), 13.107.x.x (Microsoft), 23.x (Akamai).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import polars as pl
import pytest
from tests.detect.conftest import Estate, memory_views, ts

from vpnsentry.detect.config import Config
from vpnsentry.detect.context import Context
from vpnsentry.enrich.sites import Inventory

Row = dict[str, Any]
Run = Callable[..., pl.DataFrame]

PC, PC2, RD_PC = "10.10.0.50", "10.10.0.51", "10.10.16.10"
C2, DROP, SLOW_DROP = "128.199.55.106", "149.28.98.229", "5.9.86.115"
CROWN = ("10.10.33.10", "10.10.33.20", "10.10.33.30")
FILE_SERVER, WSUS, BACKUP = "10.10.32.20", "10.10.32.50", "10.10.32.60"
HQ_GATEWAY_OUTSIDE = "126.213.38.65"
MB = 1_000_000


def conn(
    t: dt.datetime,
    src: str,
    dst: str,
    *,
    port: int = 443,
    up: int = 1500,
    down: int = 2000,
    seconds: float = 0.5,
    transport: str = "tcp",
) -> Row:
    """One Zeek conn.log row: ``src`` opened a connection to ``dst``:``port``."""
    return {
        "@timestamp": t,
        "event.end": t + dt.timedelta(seconds=seconds),
        "event.dataset": "zeek_conn.conn",
        "event.module": "zeek_conn",
        "source.ip": src,
        "source.port": 49152 + int(t.timestamp()) % 16000,
        "destination.ip": dst,
        "destination.port": port,
        "network.transport": transport,
        "source.bytes": up,
        "destination.bytes": down,
        "network.bytes": up + down,
        "event.duration": int(seconds * 1e9),
    }


def daily(
    src: str, dst: str, days: Iterable[int], up: int, down: int, chunks: int = 1, hour: float = 2
) -> list[Row]:
    """``up`` bytes a day from ``src`` to ``dst`` in ``chunks`` connections, business hours."""
    return [
        conn(ts(days=d, hours=hour + k * 0.5), src, dst, up=up // chunks, down=down // chunks)
        for d in days
        for k in range(chunks)
    ]


def office_uploads(src: str, days: Iterable[int], per_day: int, seed: int = 0) -> list[Row]:
    """Ordinary daily uploads to popular networks (a different CDN address each time)."""
    rng = np.random.default_rng(seed)
    rows = []
    for d in days:
        for k in range(4):
            up = int(per_day / 4 * rng.uniform(0.7, 1.3))
            dst = f"23.{32 + k}.{rng.integers(0, 250)}.{rng.integers(1, 250)}"
            rows.append(conn(ts(days=d, hours=1 + 2 * k), src, dst, up=up, down=up * 5))
    return rows


def popular(dst: str, hosts: int = 25, day: int = 0) -> list[Row]:
    """``hosts`` HQ workstations each talk to ``dst`` once: its /24 is not rare."""
    return [conn(ts(days=day, hours=3, minutes=i), f"10.10.1.{i + 1}", dst) for i in range(hosts)]


def only(alerts: pl.DataFrame) -> dict[str, Any]:
    assert alerts.height == 1, alerts.select("alert.key", "alert.summary")
    return alerts.row(0, named=True)


# -- c2_beaconing ---------------------------------------------------------------------------


def beacon_rows(src: str, dst: str, hours: float, every: float, jitter: float) -> list[Row]:
    """A timer every ``every`` s +- ``jitter`` (fraction), ~1.5 KB each way per check-in."""
    rng = np.random.default_rng(1)
    n = int(hours * 3600 / every)
    gaps = every * (1 + rng.uniform(-jitter, jitter, n))
    offsets = np.cumsum(gaps)
    sizes = rng.normal(1500, 60, n).astype(int)
    return [
        conn(ts(hours=8, seconds=float(o)), src, dst, up=int(s), down=int(s) + 300)
        for o, s in zip(offsets, sizes, strict=True)
    ]


def browsing_rows(src: str, dst: str, n: int) -> list[Row]:
    """``n`` connections at random moments over the same span, sizes all over the place."""
    rng = np.random.default_rng(2)
    offsets = np.sort(rng.uniform(0, 48 * 3600, n))
    ups = rng.lognormal(7.5, 1.2, n).astype(int)
    return [
        conn(ts(hours=8, seconds=float(o)), src, dst, up=int(u), down=int(u) * 8)
        for o, u in zip(offsets, ups, strict=True)
    ]


def test_beacon_every_minute_with_jitter(run_detection: Run, bundled_inventory: Inventory) -> None:
    rows = beacon_rows(PC, C2, hours=48, every=60, jitter=0.2)
    a = only(run_detection("c2_beaconing", flows=rows, inventory=bundled_inventory))
    assert (a["source.ip"], a["destination.ip"], a["destination.port"]) == (PC, C2, 443)
    assert a["alert.key"] == f"{PC}|{C2}"
    assert a["@timestamp"] == rows[0]["@timestamp"]
    assert set(a["related.ip"]) == {PC, C2}
    ev = json.loads(a["alert.evidence"])
    assert ev["connections"] == len(rows)
    assert 55 <= ev["median_interval_s"] <= 65
    assert ev["score"] >= 0.9 and ev["internal_hosts_to_network"] == 1


def test_random_browsing_to_the_same_rare_address_is_not_a_beacon(
    run_detection: Run, bundled_inventory: Inventory
) -> None:
    rows = browsing_rows(PC, C2, n=2880)
    assert run_detection("c2_beaconing", flows=rows, inventory=bundled_inventory).is_empty()
    # ...and the score is what keeps it out, not the count: with no bar it would be listed.
    low = run_detection(
        "c2_beaconing", flows=rows, inventory=bundled_inventory, params={"min_score": 0.0}
    )
    assert json.loads(only(low)["alert.evidence"])["score"] < 0.75


def test_beacon_to_a_popular_network_and_short_bursts_do_not_fire(
    run_detection: Run, bundled_inventory: Inventory
) -> None:
    update_check = "13.107.4.50"  # a telemetry/update service many hosts poll
    rows = beacon_rows(PC, update_check, hours=48, every=60, jitter=0.2) + popular(
        "13.107.4.10", hosts=25
    )
    assert run_detection("c2_beaconing", flows=rows, inventory=bundled_inventory).is_empty()
    wide = run_detection(
        "c2_beaconing", flows=rows, inventory=bundled_inventory, params={"max_sources": 30}
    )
    assert only(wide)["destination.ip"] == update_check  # popularity is what kept it out
    # A beacon to the company's own VPN gateway (an always-on client's health check).
    rows = beacon_rows(PC, HQ_GATEWAY_OUTSIDE, hours=48, every=60, jitter=0.2)
    assert run_detection("c2_beaconing", flows=rows, inventory=bundled_inventory).is_empty()
    # Fewer check-ins than min_connections.
    rows = beacon_rows(PC, C2, hours=0.3, every=60, jitter=0.2)
    assert len(rows) < 20
    assert run_detection("c2_beaconing", flows=rows, inventory=bundled_inventory).is_empty()


def test_beacon_logged_by_two_sensors_is_scored_on_one(
    run_detection: Run, bundled_inventory: Inventory
) -> None:
    zeek = beacon_rows(PC, C2, hours=24, every=60, jitter=0.1)
    netflow = [
        {
            **r,
            "@timestamp": r["@timestamp"] + dt.timedelta(seconds=2.7),
            "event.module": "nfdump",
            "event.dataset": "nfdump.flow",
            "observer.ip": "10.10.250.254",
            "destination.bytes": None,
        }
        for r in zeek[: len(zeek) // 2]
    ]
    a = only(run_detection("c2_beaconing", flows=zeek + netflow, inventory=bundled_inventory))
    ev = json.loads(a["alert.evidence"])
    assert ev["sensor"] == "zeek_conn" and ev["connections"] == len(zeek)
    assert ev["interval_mad_score"] >= 0.9  # no 2.7 s gaps from mixing the sensors


# -- c2_long_connection ---------------------------------------------------------------------


def test_long_connection_to_a_rare_address(
    run_detection: Run, bundled_inventory: Inventory
) -> None:
    t = ts(days=1, hours=9)
    rows = [conn(t, PC, "5.9.7.203", port=8443, up=4 * MB, down=3 * MB, seconds=3 * 3600)]
    a = only(run_detection("c2_long_connection", flows=rows, inventory=bundled_inventory))
    assert (a["source.ip"], a["destination.ip"], a["destination.port"]) == (PC, "5.9.7.203", 8443)
    assert a["@timestamp"] == t and a["event.end"] == t + dt.timedelta(hours=3)
    assert json.loads(a["alert.evidence"])["opened_by"] == PC
    # Opened from outside (an inbound hole), seen by NetFlow in both directions: one alert.
    inbound = conn(t, "45.32.232.114", "10.10.32.20", port=3389, seconds=1.5 * 3600)
    reverse = {
        **conn(t, "10.10.32.20", "45.32.232.114", port=51407, seconds=1.5 * 3600),
        "event.module": "nfdump",
        "observer.ip": "10.10.250.254",
    }
    a = only(
        run_detection("c2_long_connection", flows=[inbound, reverse], inventory=bundled_inventory)
    )
    assert a["destination.port"] == 3389 and "opened from outside" in a["alert.summary"]


def test_vpn_tunnels_meetings_and_short_connections_are_not_long_c2(
    run_detection: Run, bundled_inventory: Inventory
) -> None:
    t = ts(days=1, hours=9)
    rows = [
        # A VPN client left connected for 30 hours: public to the gateway's outside address.
        conn(t, "126.14.190.71", HQ_GATEWAY_OUTSIDE, port=443, seconds=30 * 3600),
        # An HQ PC connected to the company's own VPN portal all day: a gateway address.
        conn(t, PC, HQ_GATEWAY_OUTSIDE, port=443, seconds=30 * 3600),
        # A five-hour meeting relay in a network everybody uses.
        conn(t, PC, "13.107.64.69", port=3478, transport="udp", seconds=5 * 3600),
        *popular("13.107.64.10", hosts=25),
        # Fifty minutes to a rare address: below min_hours.
        conn(t, PC2, "5.9.7.203", seconds=50 * 60),
    ]
    assert run_detection("c2_long_connection", flows=rows, inventory=bundled_inventory).is_empty()
    shorter = run_detection(
        "c2_long_connection", flows=rows, inventory=bundled_inventory, params={"min_hours": 0.8}
    )
    assert only(shorter)["source.ip"] == PC2


def _slices(t: dt.datetime, src: str, dst: str, sport: int, n: int, every: float) -> list[Row]:
    """One connection as a flow exporter with an active timeout of ``every`` s reports it."""
    rows = []
    for i in range(n):
        r = conn(t + dt.timedelta(seconds=i * every), src, dst, port=8443, seconds=every - 1)
        rows.append(
            {**r, "source.port": sport, "event.module": "nfdump", "observer.ip": "10.10.250.254"}
        )
    return rows


def test_open_connections_are_seen_before_they_close(
    run_detection: Run, bundled_inventory: Inventory
) -> None:
    t = ts(days=1, hours=9)
    # Zeek's conn_long: 10 min, then 1.5 h so far; the connection has not closed.
    zeek_open = [
        {**conn(t, PC, "5.9.7.203", port=8443, up=up, seconds=s), "flow.id": "Cq1",
         "event.action": "flow-update", "observer.name": "zeek-hq"}
        for s, up in ((600, 90_000), (5400, 800_000))
    ]  # fmt: skip
    a = only(run_detection("c2_long_connection", flows=zeek_open, inventory=bundled_inventory))
    assert a["event.end"] == t + dt.timedelta(hours=1.5)
    assert a["network.bytes"] == 800_000 + 2000  # the latest totals, not their sum
    # NetFlow with a 5-minute active timeout: 14 records of one connection (70 min so far).
    sliced = _slices(t, PC2, "5.9.7.203", 50123, 14, 300)
    a = only(run_detection("c2_long_connection", flows=sliced, inventory=bundled_inventory))
    assert a["source.ip"] == PC2 and a["@timestamp"] == t
    assert json.loads(a["alert.evidence"])["longest_hours"] >= 1.1


def test_open_connection_totals_are_not_counted_twice() -> None:
    """pairs (and so every volume detection) read one record per connection, the latest."""
    t = ts(days=1, hours=9)

    def rec(uid: str, dst: str, up: int, hours: float, open_: bool) -> Row:
        r = {**conn(t, PC, dst, up=up, seconds=hours * 3600), "flow.id": uid}
        return {**r, "observer.name": "zeek-hq", "event.action": "flow-update" if open_ else None}

    rows = [
        rec("Cq1", "5.9.7.203", 90_000, 0.2, True),
        rec("Cq1", "5.9.7.203", 800_000, 1.5, True),
        rec("Cq1", "5.9.7.203", 1_200_000, 3.0, False),  # closed: its conn.log line
        rec("Cq2", "5.9.7.204", 50_000, 0.2, True),
        rec("Cq2", "5.9.7.204", 70_000, 1.0, True),  # still open
    ]
    con = memory_views(flows=rows)
    try:
        Context(con, None, Config()).need(["pairs"])
        got = dict(con.sql("SELECT dst, bytes_out FROM pairs ORDER BY dst").fetchall())
    finally:
        con.close()
    assert got == {"5.9.7.203": 1_200_000, "5.9.7.204": 70_000}


def test_slices_of_different_connections_are_not_stitched(
    run_detection: Run, bundled_inventory: Inventory
) -> None:
    t = ts(days=1, hours=9)
    # Beacon-like: many 5-minute connections, each from a new source port.
    rows = [r for i in range(14) for r in _slices(t + dt.timedelta(seconds=300 * i), PC,
                                                     "5.9.7.203", 50000 + i, 1, 300)]  # fmt: skip
    # One connection, but with a 20-minute silence (the exporter's inactive timeout ended it).
    rows += _slices(t, PC2, "5.9.7.203", 50999, 6, 300)
    rows += _slices(t + dt.timedelta(minutes=50), PC2, "5.9.7.203", 50999, 6, 300)
    assert run_detection("c2_long_connection", flows=rows, inventory=bundled_inventory).is_empty()


# -- exfil_volume_anomaly -------------------------------------------------------------------


def test_upload_far_above_the_hosts_own_baseline(
    run_detection: Run, bundled_inventory: Inventory
) -> None:
    rows = office_uploads(PC, range(10), per_day=2 * MB)
    rows += office_uploads(PC, [10], per_day=2 * MB, seed=9)
    rows += daily(PC, DROP, [10], up=210 * MB, down=60_000, chunks=20)
    a = only(run_detection("exfil_volume_anomaly", flows=rows, inventory=bundled_inventory))
    assert a["alert.key"] == f"{PC}|2025-03-13"
    assert (a["source.ip"], a["destination.ip"]) == (PC, DROP)
    assert a["network.bytes"] > 210 * MB and DROP in a["related.ip"]
    assert a["@timestamp"] == ts(days=10, hours=2)  # the first upload to the drop site
    ev = json.loads(a["alert.evidence"])
    assert ev["baseline_days"] == 10 and 1.5 * MB < ev["baseline_median"] < 2.5 * MB


def test_a_host_that_always_uploads_that_much_is_quiet(
    run_detection: Run, bundled_inventory: Inventory
) -> None:
    rows = office_uploads(PC, range(11), per_day=250 * MB)  # a video editor, every day
    rows += office_uploads(PC2, range(3), per_day=2 * MB) + daily(PC2, DROP, [3], 210 * MB, 1)
    rows += office_uploads(BACKUP, range(10), per_day=2 * MB)
    rows += daily(BACKUP, DROP, [10], up=300 * MB, down=1)  # allow-listed backup host
    alerts = run_detection("exfil_volume_anomaly", flows=rows, inventory=bundled_inventory)
    # PC2 has 3 days of history (< learning_days): not judged yet.
    assert alerts.is_empty()
    alerts = run_detection(
        "exfil_volume_anomaly",
        flows=rows,
        inventory=bundled_inventory,
        params={"learning_days": 3},
    )
    assert only(alerts)["source.ip"] == PC2


def test_downloads_and_internal_transfers_are_not_uploads(
    run_detection: Run, bundled_inventory: Inventory
) -> None:
    rows = office_uploads(PC, range(11), per_day=2 * MB)
    rows += daily(PC, "13.107.4.52", [10], up=100_000, down=900 * MB)  # patch download
    rows += daily(PC, FILE_SERVER, [10], up=700 * MB, down=1000)  # copy to the file server
    rows.append({**conn(ts(days=10), PC, "23.40.1.1"), "source.bytes": None,
                 "destination.bytes": None, "network.bytes": 900 * MB})  # fmt: skip
    assert run_detection("exfil_volume_anomaly", flows=rows, inventory=bundled_inventory).is_empty()


# -- exfil_rare_destination_upload ----------------------------------------------------------


def test_large_one_sided_upload_to_a_rare_network(
    run_detection: Run, bundled_inventory: Inventory
) -> None:
    rows = office_uploads(PC, range(8), per_day=2 * MB)
    rows += daily(PC, DROP, [8], up=60 * MB, down=40_000, chunks=6)
    a = only(
        run_detection("exfil_rare_destination_upload", flows=rows, inventory=bundled_inventory)
    )
    assert a["alert.key"] == f"{PC}|{DROP}" and a["network.bytes"] == 60 * MB
    assert a["@timestamp"] == ts(days=8, hours=2)
    assert json.loads(a["alert.evidence"])["days"] == ["2025-03-11"]


def test_popular_symmetric_small_or_routine_uploads_are_not_rare_exfil(
    run_detection: Run, bundled_inventory: Inventory
) -> None:
    base = office_uploads(PC, range(8), per_day=2 * MB)
    cases: dict[str, tuple[list[Row], dict[str, Any] | None]] = {
        "popular network": (
            daily(PC, "52.192.9.9", [8], 60 * MB, 40_000) + popular("52.192.9.10", hosts=6),
            {"max_sources": 7},
        ),
        "as much down as up": (daily(PC, DROP, [8], 60 * MB, 50 * MB), {"min_ratio": 1.0}),
        "below min_bytes": (daily(PC, DROP, [8], 15 * MB, 10_000), {"min_bytes": 10 * MB}),
        "backup host": (daily(BACKUP, DROP, [8], 60 * MB, 10_000), None),
    }
    for name, (rows, loosened) in cases.items():
        alerts = run_detection(
            "exfil_rare_destination_upload", flows=base + rows, inventory=bundled_inventory
        )
        assert alerts.is_empty(), name
        if loosened:  # the one condition named is what kept it quiet
            alerts = run_detection(
                "exfil_rare_destination_upload",
                flows=base + rows,
                inventory=bundled_inventory,
                params=loosened,
            )
            assert alerts.height == 1, name
    # A nightly copy to a rented server: the first learning_days nights alert (one alert),
    # then it is the host's pattern.
    nightly = daily(PC, DROP, range(12), 60 * MB, 10_000, hour=20)
    a = only(
        run_detection("exfil_rare_destination_upload", flows=nightly, inventory=bundled_inventory)
    )
    assert len(json.loads(a["alert.evidence"])["days"]) == 7


# -- exfil_low_and_slow ---------------------------------------------------------------------


def test_small_uploads_on_many_days_add_up(
    run_detection: Run, bundled_inventory: Inventory
) -> None:
    rows = office_uploads(RD_PC, range(20), per_day=500_000)
    rows += daily(RD_PC, SLOW_DROP, range(5, 15), up=6 * MB, down=20_000, chunks=12)
    a = only(run_detection("exfil_low_and_slow", flows=rows, inventory=bundled_inventory))
    assert a["alert.key"] == f"{RD_PC}|{SLOW_DROP}" and a["network.bytes"] == 60 * MB
    ev = json.loads(a["alert.evidence"])
    assert ev["upload_days"] == 10 and ev["max_day_bytes_up"] == 6 * MB
    # No single day is anomalous for the per-day detections.
    for rule in ("exfil_volume_anomaly", "exfil_rare_destination_upload"):
        assert run_detection(rule, flows=rows, inventory=bundled_inventory).is_empty(), rule


def test_few_days_popular_networks_and_two_way_traffic_are_not_low_and_slow(
    run_detection: Run, bundled_inventory: Inventory
) -> None:
    base = office_uploads(RD_PC, range(20), per_day=500_000)
    cases = {
        "four days": daily(RD_PC, SLOW_DROP, range(5, 9), 15 * MB, 20_000, chunks=10),
        "popular": daily(RD_PC, "52.192.9.9", range(5, 15), 6 * MB, 20_000)
        + popular("52.192.9.10", hosts=6),
        "c2 check-ins": beacon_rows(RD_PC, SLOW_DROP, hours=240, every=60, jitter=0.2),
    }
    for name, rows in cases.items():
        alerts = run_detection("exfil_low_and_slow", flows=base + rows, inventory=bundled_inventory)
        assert alerts.is_empty(), name
    four = base + cases["four days"]
    loose = run_detection(
        "exfil_low_and_slow", flows=four, inventory=bundled_inventory, params={"min_days": 4}
    )
    assert only(loose)["network.bytes"] == 60 * MB
    # Enough days, but the host uploads this much elsewhere every day anyway.
    busy = office_uploads(RD_PC, range(20), per_day=20 * MB)
    rows = busy + daily(RD_PC, SLOW_DROP, range(5, 15), 6 * MB, 20_000)
    assert run_detection("exfil_low_and_slow", flows=rows, inventory=bundled_inventory).is_empty()


# -- exfil_staging --------------------------------------------------------------------------


def workday(day: int) -> list[Row]:
    """PC's ordinary day: a few MB from the file server, a few MB up to the Internet."""
    return daily(PC, FILE_SERVER, [day], up=50_000, down=5 * MB) + office_uploads(
        PC, [day], per_day=2 * MB, seed=day
    )


def test_pull_from_crown_jewels_then_upload(
    run_detection: Run, bundled_inventory: Inventory
) -> None:
    rows = [r for d in range(14) for r in workday(d)]
    for d in (10, 11):  # ~240 MB a day from the three crown-jewel servers (SMB reads)
        rows += [r for s in CROWN for r in daily(PC, s, [d], 400_000, 80 * MB, chunks=2)]
    rows += daily(PC, DROP, [13], up=200 * MB, down=50_000, chunks=20)
    a = only(run_detection("exfil_staging", flows=rows, inventory=bundled_inventory))
    assert a["alert.key"] == f"{PC}|2025-03-13"
    assert a["@timestamp"] == ts(days=10, hours=2)  # the first crown-jewel pull
    assert a["event.end"] == ts(days=13, hours=2 + 19 * 0.5)  # the last upload
    assert a["destination.ip"] == DROP and {*CROWN, PC, DROP} <= set(a["related.ip"])
    ev = json.loads(a["alert.evidence"])
    assert ev["collection_days"] == 2 and sorted(ev["crown_jewel_servers"]) == list(CROWN)


def test_patch_day_backup_and_collection_without_upload_are_not_staging(
    run_detection: Run, bundled_inventory: Inventory
) -> None:
    base = [r for d in range(14) for r in workday(d)]
    upload = daily(PC, DROP, [13], up=200 * MB, down=50_000, chunks=20)
    patch = daily(PC, WSUS, [10], up=1 * MB, down=600 * MB, chunks=3)
    crown = [r for s in CROWN for r in daily(PC, s, [10, 11], 400_000, 80 * MB, chunks=2)]
    backup = [r for s in CROWN for r in daily(BACKUP, s, range(14), 1 * MB, 900 * MB)]
    backup += daily(BACKUP, DROP, [13], up=200 * MB, down=50_000)
    cases = {
        "patch day, then an upload": base + patch + upload,
        "collection, no upload": base + crown,
        "collection, upload three weeks later": base
        + crown
        + [r for d in range(14, 33) for r in workday(d)]
        + daily(PC, DROP, [32], 200 * MB, 50_000),
        "backup host": base + backup,
    }
    for name, rows in cases.items():
        alerts = run_detection("exfil_staging", flows=rows, inventory=bundled_inventory)
        assert alerts.is_empty(), name
    late = cases["collection, upload three weeks later"]
    wide = run_detection(
        "exfil_staging", flows=late, inventory=bundled_inventory, params={"window_days": 25}
    )
    assert only(wide)["alert.key"] == f"{PC}|2025-03-13"


# -- the simulated estate -------------------------------------------------------------------

MINE = (
    "c2_beaconing",
    "c2_long_connection",
    "exfil_volume_anomaly",
    "exfil_rare_destination_upload",
    "exfil_low_and_slow",
    "exfil_staging",
)


def step_of(estate: Estate, scenario: str, name: str) -> dict[str, Any]:
    return next(s for s in estate.truth["steps"] if (s["scenario"], s["name"]) == (scenario, name))


@pytest.mark.parametrize(
    ("scenario", "name", "rule"),
    [
        ("vpn-appliance-breach", "c2-beacon-branch", "c2_beaconing"),
        ("vpn-appliance-breach", "c2-beacon-hq", "c2_beaconing"),
        ("vpn-appliance-breach", "collection-from-crown-jewels", "exfil_staging"),
        ("vpn-appliance-breach", "exfiltration-over-https", "exfil_volume_anomaly"),
        ("vpn-appliance-breach", "exfiltration-over-https", "exfil_rare_destination_upload"),
        ("vpn-appliance-breach", "exfiltration-over-https", "exfil_staging"),
        ("slow-exfil", "low-and-slow-exfiltration", "exfil_low_and_slow"),
    ],
)
def test_estate_attack_steps_are_detected(
    estate: Estate, scenario: str, name: str, rule: str
) -> None:
    assert rule in estate.rules_for_step(step_of(estate, scenario, name)["id"])


def test_estate_every_infected_host_beacons_once(estate: Estate) -> None:
    branch = step_of(estate, "vpn-appliance-breach", "c2-beacon-branch")["entities"]
    hq = step_of(estate, "vpn-appliance-breach", "c2-beacon-hq")["entities"]
    beacons = estate.of("c2_beaconing")
    assert set(beacons["destination.ip"]) == {branch["c2_ip"]}
    assert sorted(beacons["source.ip"]) == sorted([*branch["hosts"], *hq["hosts"]])


def test_estate_no_false_positives_and_traps_stay_silent(estate: Estate) -> None:
    for rule in MINE:
        assert estate.evaluation.fp_by_rule.get(rule, 0) == 0, rule
    for trap, (_, rules) in estate.evaluation.traps_fired.items():
        assert not set(rules) & set(MINE), trap
    # The nightly backup and patch day move gigabytes; none of it is exfiltration.
    bulky = {BACKUP, WSUS}
    for trap in ("nightly-backup", "patch-day"):
        bulky |= {str(i["src"]) for i in estate.trap(trap)["instances"] if "src" in i}
    mine = estate.alerts.filter(pl.col("rule.id").is_in(MINE))
    named = {ip for ips in mine["related.ip"].to_list() for ip in ips or ()}
    assert not named & bulky
