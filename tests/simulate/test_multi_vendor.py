"""The simulator's multi-vendor estate: a PAN-OS GlobalProtect gateway among the others.

One run through the real CLI (``simulate --sites multi-vendor``, ``ingest``, ``detect``) of
3 days x 100 people with every scenario is shared by the tests: every written line is
ingested (only the deliberately garbled ones quarantined), the firewall's files are
recognised as PAN-OS by content, its GlobalProtect lines become sessions, and attacks that
go through it are detected. The written lines are also held against the layouts of the
PAN-OS golden files, field by field count, so the writer cannot drift from what the
parser was built and reviewed on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conftest import GOLDEN
from tests.e2e.test_hunt_cli import run
from tests.helpers import read_lines
from tests.simulate.layouts import fields, golden_layouts
from vpnsentry.enrich.sessions import build_sessions
from vpnsentry.enrich.sites import load_inventory
from vpnsentry.ingest import ingest
from vpnsentry.simulate import list_scenarios, simulate
from vpnsentry.store.store import Store

ALL = [name for name, _ in list_scenarios()]
PANOS = "vpn-tyo-hq01"  # the multi-vendor estate's PAN-OS gateway (site id of its files)
HOST = "PA-TYO-HQ01"
DETECTIONS = ("auth_password_spray", "auth_success_after_failures", "appliance_tunnel_ip")


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Simulate, ingest and detect once; what each step said and wrote."""
    root = tmp_path_factory.mktemp("multi")
    out, store = root / "sim", root / "store"
    scen = [a for name in ALL for a in ("--scenario", name)]
    proc = run("simulate", "--out", str(out), "--days", "3", "--users", "100", "--seed", "3",
               "--sites", "multi-vendor", *scen, "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    proc = run("ingest", str(out / "logs"), "--store", str(store), "--json")
    # Garbled lines are quarantined on purpose, so ingest exits 1 as it does for any.
    assert proc.returncode == 1, proc.stderr
    ingested = json.loads(proc.stdout)
    only = [a for d in DETECTIONS for a in ("--only", d)]
    proc = run("detect", "--store", str(store), "--sites", str(out / "sites.yaml"), *only)
    assert proc.returncode == 0, proc.stderr
    proc = run("alerts", "--store", str(store), "--json")
    assert proc.returncode == 0, proc.stderr
    alerts = [json.loads(line) for line in proc.stdout.splitlines()]
    con = Store.open(store, create=False).reader()
    build_sessions(con)
    return {
        "out": out,
        "summary": summary,
        "ingest": ingested,
        "alerts": alerts,
        "con": con,
        "truth": json.loads((out / "ground_truth.json").read_text(encoding="utf-8")),
    }


def rows(con: duckdb.DuckDBPyConnection, sql: str, *params: object) -> list[dict[str, Any]]:
    cur = con.execute(sql, list(params))
    names = [d[0] for d in cur.description or ()]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def step(truth: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [s for s in truth["steps"] if s["name"] == name]
    return dict(found)


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


# ---- the files ------------------------------------------------------------------------------


def test_every_gateway_vendor_is_written(estate: dict[str, Any]) -> None:
    by_format = estate["summary"]["lines_by_format"]
    for fmt in ("panw_panos", "fortinet_fortigate", "cisco_asa", "openvpn"):
        assert by_format.get(fmt, 0) > 0, by_format
    # The busiest gateway, with traffic logging on: a large share of the gateway lines.
    assert by_format["panw_panos"] > by_format["fortinet_fortigate"]


def test_every_line_is_ingested_except_the_garbled_ones(estate: dict[str, Any]) -> None:
    out, truth, con = estate["out"], estate["truth"], estate["con"]
    garbled = {
        (str(out / "logs" / Path(rel).relative_to("logs")), g["line"]): g["kind"]
        for rel, info in truth["files"].items()
        for g in info["garbled_lines"]
    }
    quarantined = {
        (r["log.file.path"], r["log.file.line"]): r["event.original"]
        for r in rows(
            con, 'SELECT "log.file.path", "log.file.line", "event.original" FROM quarantine'
        )
    }
    unexpected = sorted(set(quarantined) - set(garbled))
    assert not unexpected, [quarantined[k] for k in unexpected[:3]]
    corrupt = {k for k, kind in garbled.items() if kind == "nul_bytes"}
    assert corrupt <= set(quarantined)
    files = estate["ingest"]["files"]
    assert sum(f["lines"] for f in files) == sum(i["lines"] for i in truth["files"].values())


def test_panos_files_are_recognised_by_content(estate: dict[str, Any]) -> None:
    files = [f for f in estate["ingest"]["files"] if f"/gateways/{PANOS}/" in f["path"]]
    assert len(files) == 3  # one per UTC day
    assert {f["format"] for f in files} == {"panw_panos"}
    kinds = rows(
        estate["con"],
        """SELECT "event.dataset" AS ds, "event.action" AS action, count(*) AS n FROM events
           WHERE "observer.name" = ? GROUP BY ALL""",
        HOST,
    )
    seen = {(r["ds"], r["action"]) for r in kinds}
    for expected in (
        ("panw_panos.globalprotect", "logged-in"),
        ("panw_panos.globalprotect", "logon-failed"),
        ("panw_panos.globalprotect", "address-assigned"),
        ("panw_panos.globalprotect", "client-vpn-connected"),
        ("panw_panos.globalprotect", "client-vpn-disconnected"),
    ):
        assert expected in seen, seen
    flows = rows(
        estate["con"],
        """SELECT count(*) AS n, count("user.name") AS users,
                  count(*) FILTER (WHERE "source.nat.ip" IS NOT NULL) AS natted
           FROM flows WHERE "observer.name" = ?""",
        HOST,
    )[0]
    assert flows["n"] > 1000 and 0 < flows["users"] < flows["n"] and flows["natted"] > 0


def test_records_have_the_golden_layouts(estate: dict[str, Any]) -> None:
    """Field counts per log type equal those of the reviewed golden lines."""
    golden = golden_layouts()
    written: dict[str, set[int]] = {}
    for rel, info in estate["truth"]["files"].items():
        if info["format"] != "panw_panos":
            continue
        garbled = {g["line"] for g in info["garbled_lines"]}
        for n, line in enumerate(read_lines(estate["out"] / rel), 1):
            if n not in garbled:
                f = fields(line)
                written.setdefault(f[3], set()).add(len(f))
    assert (
        {"GLOBALPROTECT", "TRAFFIC"}
        <= set(written)
        <= {"GLOBALPROTECT", "SYSTEM", "CONFIG", "TRAFFIC"}
    )
    for kind, counts in written.items():
        assert counts <= golden[kind], (kind, counts, golden[kind])


# ---- sessions ---------------------------------------------------------------------------------


def test_sessions_are_built_for_globalprotect_users(estate: dict[str, Any]) -> None:
    con, out = estate["con"], estate["out"]
    pool = {g.hostname: g.pool for g in load_inventory(out / "sites.yaml").gateways}[HOST]
    sessions = rows(con, 'SELECT * FROM sessions WHERE "observer.name" = ?', HOST)
    connected = rows(
        con,
        """SELECT count(*) AS n FROM events WHERE "observer.name" = ?
           AND "event.action" = 'client-vpn-connected'""",
        HOST,
    )[0]["n"]
    # One per login, and one per logout of a session that began before the window.
    began = [s for s in sessions if "client-vpn-connected" in s["session.evidence"]]
    assert len(began) == connected > 30
    assert all("start = end - logged duration" in s["session.evidence"]
               for s in sessions if s not in began)  # fmt: skip
    for s in sessions:
        assert s["user.name"] and s["source.ip"] and s["vpn.tunnel_ip"], s
        assert ipaddress.ip_address(s["vpn.tunnel_ip"]) in pool
        assert not ipaddress.ip_address(s["source.ip"]).is_private
        if s["session.end"] is not None:
            assert s["session.start"] < s["session.end"]
    closed = [s for s in sessions if s["session.end"] is not None]
    assert len(closed) > 0.8 * len(sessions)
    # The session-hijack victim's session: the address the intruder keeps using after it.
    hijack = step(estate["truth"], "traffic-after-logout")["entities"]
    [victim] = [
        s
        for s in sessions
        if s["user.name"] == hijack["user"] and s["vpn.tunnel_ip"] == hijack["tunnel_ip"]
    ]
    assert victim["source.ip"] == hijack["home_ip"]
    assert victim["session.end"] < utc(
        step(estate["truth"], "traffic-after-logout")["window"]["start"]
    )


def test_sessions_from_the_golden_globalprotect_log(tmp_path: Path) -> None:
    """The parser's reviewed lines: one session, failed logins none."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "gp.log").write_bytes((GOLDEN / "parse/panw_panos/globalprotect.log").read_bytes())
    ingest([str(logs)], tmp_path / "store")
    con = Store.open(tmp_path / "store", create=False).reader()
    build_sessions(con)
    [s] = rows(con, "SELECT * FROM sessions")
    assert (s["user.name"], s["source.ip"], s["vpn.tunnel_ip"]) == (
        "jdoe",
        "198.51.100.23",
        "10.31.0.17",
    )
    utc0 = dt.UTC
    assert s["session.start"] == dt.datetime(2026, 11, 2, 8, 15, 4, tzinfo=utc0)
    assert s["session.end"] == dt.datetime(2026, 11, 2, 17, 42, 9, tzinfo=utc0)
    assert s["session.end_reason"] == "client logout" and not s["session.end_inferred"]


# ---- detections -------------------------------------------------------------------------------


def _alerts(estate: dict[str, Any], rule: str) -> list[dict[str, Any]]:
    return [a for a in estate["alerts"] if a["rule.id"] == rule and a["observer.name"] == HOST]


def test_password_spray_through_globalprotect_is_detected(estate: dict[str, Any]) -> None:
    truth = estate["truth"]
    spray = step(truth, "password-spray")
    assert spray["entities"]["gateway"] == PANOS
    [alert] = _alerts(estate, "auth_password_spray")
    first, last = utc(spray["window"]["start"]), utc(spray["window"]["end"])
    assert abs(utc(alert["@timestamp"]) - first) < dt.timedelta(minutes=1)
    assert abs(utc(alert["event.end"]) - last) < dt.timedelta(minutes=1)
    assert alert["alert.evidence"]["addresses"] == len(set(spray["entities"]["attacker_ips"]))
    # ... and the one login that worked, from an address that failed for many accounts.
    login = step(truth, "valid-account-login")["entities"]
    assert any(
        a["user.name"] == login["user"] for a in _alerts(estate, "auth_success_after_failures")
    )


def test_hijacked_tunnel_address_is_detected(estate: dict[str, Any]) -> None:
    hijack = step(estate["truth"], "traffic-after-logout")["entities"]
    [alert] = _alerts(estate, "appliance_tunnel_ip_outside_session")
    assert hijack["tunnel_ip"] in alert["alert.summary"]


# ---- determinism ------------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_output(tmp_path: Path) -> None:
    """Also across worker counts: each log source is written by one process, in order."""
    digests = []
    for name, workers in (("a", 1), ("b", 2)):
        out = tmp_path / name
        simulate(out, days=2, users=40, scenarios=ALL, seed=5, sites=Path("multi-vendor"),
                 workers=workers)  # fmt: skip
        files = sorted(p for p in out.rglob("*") if p.is_file())
        assert any(f"gateways/{PANOS}/" in str(p) for p in files)
        tree = hashlib.sha256()
        for p in files:
            tree.update(str(p.relative_to(out)).encode() + b"\0" + p.read_bytes())
        digests.append(tree.hexdigest())
    assert digests[0] == digests[1]
