"""The simulator: determinism, formats the parsers read, ground truth, and realistic shape.

One small simulated estate (all scenarios, 8 days, 150 people) is shared by most tests; they
check distributions and relations (a beacon's period, the share of office-hours traffic),
never exact values or timings.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from tests.conftest import make_ctx
from tests.helpers import read_lines
from vpnsentry.enrich.sites import load_inventory
from vpnsentry.errors import UsageError
from vpnsentry.parse.base import registry
from vpnsentry.parse.run import parse_chunk
from vpnsentry.simulate import list_scenarios, simulate
from vpnsentry.simulate.writers.zeek_conn import FIELDS

ALL = [name for name, _ in list_scenarios()]
DAYS, USERS, SEED = 8, 150, 11


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("sim") / "out"
    simulate(out, days=DAYS, users=USERS, scenarios=ALL, seed=SEED, sites=None)
    return out, json.loads((out / "ground_truth.json").read_text(encoding="utf-8"))


def _steps(gt: dict[str, Any], scenario: str) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in gt["steps"] if s["scenario"] == scenario}


def _evidence(out: Path, step: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(file, line text) of every evidence line of a step, in files starting with prefix."""
    for ev in step["evidence"]:
        if not ev["file"].startswith(prefix):
            continue
        lines = read_lines(out / ev["file"])
        for n in ev["lines"]:
            yield ev["file"], lines[n - 1]


def _zeek(out: Path, gt: dict[str, Any], sensor: str) -> pl.DataFrame:
    """All rows of a Zeek sensor's conn logs (garbled lines left out)."""
    frames = []
    for rel, info in gt["files"].items():
        if not rel.startswith(f"logs/zeek/{sensor}/"):
            continue
        bad = {g["line"] for g in info["garbled_lines"]}
        rows = [
            ln
            for i, ln in enumerate(read_lines(out / rel), 1)
            if i not in bad and not ln.startswith("#")
        ]
        parts = pl.Series(rows).str.split_exact("\t", len(FIELDS) - 1).struct.unnest()
        frames.append(parts.rename(dict(zip(parts.columns, FIELDS, strict=True))))
    return pl.concat(frames).with_columns(
        pl.col("ts").cast(pl.Float64),
        pl.col("orig_bytes").cast(pl.Int64, strict=False),
    )


# ---- interface ---------------------------------------------------------------------------


def test_library_lists_the_six_scenarios_with_descriptions() -> None:
    assert ALL == [
        "vpn-appliance-breach",
        "password-spray",
        "stolen-credential",
        "session-hijack",
        "rogue-admin",
        "slow-exfil",
    ]
    assert all(len(text) > 120 for _, text in list_scenarios())


def test_same_seed_gives_byte_identical_output(tmp_path: Path) -> None:
    """Also across worker counts: each log source is written by one process, in order."""

    def digest(out: Path) -> dict[str, str]:
        return {
            str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*"))
            if p.is_file()
        }

    runs = []
    for name, seed, workers in (("a", 5, 1), ("b", 5, 2), ("c", 6, 1)):
        simulate(
            tmp_path / name, days=2, users=60, scenarios=ALL, seed=seed, sites=None, workers=workers
        )
        runs.append(digest(tmp_path / name))
    assert runs[0] == runs[1]
    assert runs[0].keys() == runs[2].keys()
    assert runs[0] != runs[2]


def test_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown scenario 'nope'"):
        simulate(tmp_path / "x", days=1, users=10, scenarios=["nope"], seed=1, sites=None)
    with pytest.raises(UsageError, match="--days"):
        simulate(tmp_path / "x", days=0, users=10, scenarios=[], seed=1, sites=None)
    # The breach's timeline needs days to spread over (it crashed on one day before).
    with pytest.raises(UsageError, match="needs --days 2 or more"):
        simulate(
            tmp_path / "x", days=1, users=10, scenarios=["vpn-appliance-breach"], seed=1,
            sites=None,
        )  # fmt: skip
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(UsageError, match="not an empty directory"):
        simulate(tmp_path / "full", days=1, users=10, scenarios=[], seed=1, sites=None)
    bad = tmp_path / "sites.yaml"
    bad.write_text(
        "version: 1\ncompany: {name: a, domain: b, ad_domain: C}\nsites: 3\ngateways: []\n"
    )
    with pytest.raises(UsageError, match=r"sites.yaml:3: sites: expected a list"):
        simulate(tmp_path / "y", days=1, users=10, scenarios=[], seed=1, sites=bad)


def test_summary_and_ground_truth_agree_with_the_files(
    run: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    out, gt = run
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()} - {
        "ground_truth.json",
        "sites.yaml",
    }
    assert on_disk == set(gt["files"])
    for rel, info in gt["files"].items():
        assert len(read_lines(out / rel)) == info["lines"]
    kinds = {rel.split("/")[1] for rel in gt["files"]}
    assert all(rel.startswith("logs/") for rel in gt["files"])
    assert kinds == {"gateways", "zeek", "netflow"}
    fmts = {info["format"] for info in gt["files"].values()}
    assert fmts == {"fortinet_fortigate", "cisco_asa", "openvpn", "zeek_conn", "nfdump"}
    assert gt["garbled_total"] == sum(info["garbled"] for info in gt["files"].values())
    summary = simulate(tmp_path / "s", days=1, users=30, scenarios=[], seed=2, sites=None)
    assert summary.lines == sum(summary.files.values()) > 0
    assert summary.lines_by_format and summary.seconds > 0
    assert summary.ground_truth.exists()


def test_written_inventory_is_valid_and_names_the_admins(
    run: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    out, _ = run
    inv = load_inventory(out / "sites.yaml")
    assert inv.allow.admin_users  # the generated IT admins, as an operator would list them
    again = simulate(
        tmp_path / "again", days=1, users=40, scenarios=[], seed=1, sites=out / "sites.yaml"
    )
    assert again.lines > 0


# ---- the formats parse -------------------------------------------------------------------


@pytest.mark.parametrize(
    "fmt", ["fortinet_fortigate", "cisco_asa", "openvpn", "zeek_conn", "nfdump"]
)
def test_every_line_parses_except_the_garbled_ones(
    run: tuple[Path, dict[str, Any]], fmt: str
) -> None:
    if fmt not in registry():
        pytest.skip(f"no {fmt} parser yet")
    out, gt = run
    parser = registry()[fmt]()
    checked = 0
    for rel, info in gt["files"].items():
        if info["format"] != fmt:
            continue
        lines = read_lines(out / rel)
        res = parse_chunk(
            parser,
            pl.Series(lines, dtype=pl.String),
            pl.Series(range(len(lines)), dtype=pl.Int64),
            make_ctx(path=rel),
            first_line=1,
        )
        q = res.tables.get("quarantine")
        quarantined = set(q["log.file.line"].to_list()) if q is not None else set()
        garbled = {g["line"]: g["kind"] for g in info["garbled_lines"]}
        unexpected = sorted(quarantined - set(garbled))
        assert not unexpected, f"{rel}: lines {unexpected[:5]} quarantined: " + "; ".join(
            q.filter(pl.col("log.file.line").is_in(unexpected[:3]))["event.original"].to_list()
        )
        binary = {n for n, k in garbled.items() if k == "nul_bytes"}
        assert binary <= quarantined, f"{rel}: corrupt lines {sorted(binary - quarantined)} parsed"
        checked += len(lines)
    assert checked > 0


# ---- ground truth: the headline case -------------------------------------------------------


def test_headline_case_steps_and_techniques(run: tuple[Path, dict[str, Any]]) -> None:
    _, gt = run
    steps = _steps(gt, "vpn-appliance-breach")
    expected = {
        "portal-reconnaissance": "T1595.002",
        "gateway-exploit": "T1190",
        "internal-discovery-from-gateway": "T1046",
        "malware-delivery-to-branch": "T1021.002",
        "c2-beacon-branch": "T1071.001",
        "lateral-movement-branch-to-hq": "T1021.001",
        "c2-beacon-hq": "T1071.001",
        "collection-from-crown-jewels": "T1039",
        "archive-collected-data": "T1560.001",
        "exfiltration-over-https": "T1048.002",
        "gateway-log-deletion": "T1070",
    }
    assert set(steps) == set(expected)
    for name, technique in expected.items():
        step = steps[name]
        assert technique in step["techniques"]
        if step["evidence_kind"] == "none":  # host-only activity, documented as a blind spot
            assert step["note"] and not step["evidence"]
            continue
        assert step["window"]["start"] <= step["window"]["end"]
        if step["evidence_kind"] == "lines":
            assert step["evidence"], f"{name} has no evidence lines"
    starts = [
        steps[n]["window"]["start"]
        for n in (
            "gateway-exploit",
            "malware-delivery-to-branch",
            "lateral-movement-branch-to-hq",
            "exfiltration-over-https",
        )
    ]
    assert starts == sorted(starts)  # the campaign unfolds in order, over days
    first = dt.datetime.fromisoformat(starts[0])
    last = dt.datetime.fromisoformat(starts[-1])
    assert (last - first).days >= 3


def test_gateway_inside_address_acts_without_a_session(run: tuple[Path, dict[str, Any]]) -> None:
    out, gt = run
    steps = _steps(gt, "vpn-appliance-breach")
    inside = steps["internal-discovery-from-gateway"]["entities"]["source_ip"]
    gw = steps["internal-discovery-from-gateway"]["entities"]["gateway"]
    evidence = list(_evidence(out, steps["internal-discovery-from-gateway"]))
    assert evidence and all(inside in line for _, line in evidence)
    # The box does not log what it originates (other gateways on the path may), and
    # nobody logged in before the exploit.
    assert not [f for f, _ in evidence if f.startswith(f"logs/gateways/{gw}/")]
    assert [f for f, _ in evidence if f.startswith("logs/netflow/")]
    attacker = steps["gateway-exploit"]["entities"]["attacker_ip"]
    for path in sorted((out / "logs" / "gateways" / gw).glob("*.log")):
        text = path.read_text(encoding="utf-8", errors="replace")
        assert f"remip={attacker} tunnelip" not in text
        assert f"tunnelip={inside}" not in text


def test_beacons_are_periodic_with_jitter(run: tuple[Path, dict[str, Any]]) -> None:
    out, gt = run
    step = _steps(gt, "vpn-appliance-breach")["c2-beacon-hq"]
    host, c2 = step["entities"]["hosts"][0], step["entities"]["c2_ip"]
    zeek = _zeek(out, gt, "zeek-tyo-hq")
    ts = zeek.filter((pl.col("id.orig_h") == host) & (pl.col("id.resp_h") == c2)).sort("ts")["ts"]
    gaps = np.diff(ts.to_numpy())
    assert len(gaps) > 500
    assert 55 < float(np.median(gaps)) < 65
    assert np.percentile(gaps, 2) > 45 and np.percentile(gaps, 98) < 75
    assert np.std(gaps) > 3  # jittered, not a metronome


def test_exfiltration_is_about_200_mb_in_chunks(run: tuple[Path, dict[str, Any]]) -> None:
    out, gt = run
    step = _steps(gt, "vpn-appliance-breach")["exfiltration-over-https"]
    zeek = _zeek(out, gt, "zeek-tyo-hq")
    rows = zeek.filter(pl.col("id.resp_h") == step["entities"]["destination_ip"])
    total = int(rows["orig_bytes"].sum())
    assert 195e6 < total < 215e6
    assert len(rows) >= 15 and int(rows["orig_bytes"].max()) < 11e6
    span = rows["ts"].max() - rows["ts"].min()  # type: ignore[operator]
    assert span > 2 * 3600  # over hours


def test_log_gaps_leave_no_lines(run: tuple[Path, dict[str, Any]]) -> None:
    out, gt = run
    for scenario, name in (
        ("vpn-appliance-breach", "gateway-log-deletion"),
        ("rogue-admin", "log-silence"),
    ):
        step = _steps(gt, scenario)[name]
        assert step["evidence_kind"] == "absence" and not step["evidence"]
        gw = step["entities"]["gateway"]
        start = dt.datetime.fromisoformat(step["window"]["start"])
        end = dt.datetime.fromisoformat(step["window"]["end"])
        assert end - start > dt.timedelta(hours=1)
        stamps = []
        for path in sorted((out / "logs" / "gateways" / gw).glob("*.log")):
            for line in read_lines(path):
                if line[:4].isdigit():  # rfc3339 collector header
                    stamps.append(dt.datetime.fromisoformat(line.split(" ")[0]))
                elif line.startswith("<"):
                    stamps.append(
                        dt.datetime.strptime(line[5:25], "%b %d %Y %H:%M:%S").replace(tzinfo=dt.UTC)
                    )
                elif line[:3].isalpha():  # rsyslog traditional: no year
                    stamps.append(
                        dt.datetime.strptime(
                            f"{start.year} {line[:15]}", "%Y %b %d %H:%M:%S"
                        ).replace(tzinfo=dt.UTC)
                    )
        assert stamps, f"no timestamps read from {gw}"
        inside = [
            s
            for s in stamps
            if start + dt.timedelta(seconds=10) < s < end - dt.timedelta(seconds=10)
        ]
        assert not inside


def test_other_scenarios_leave_their_marks(run: tuple[Path, dict[str, Any]]) -> None:
    out, gt = run
    spray = _steps(gt, "password-spray")
    fails = [ln for _, ln in _evidence(out, spray["password-spray"])]
    assert len(fails) > 100
    ips = set(spray["password-spray"]["entities"]["attacker_ips"])
    assert len(ips) <= 4 and all(any(ip in ln for ip in ips) for ln in fails)
    assert spray["valid-account-login"]["evidence"]
    stolen = _steps(gt, "stolen-credential")["concurrent-login-from-elsewhere"]
    assert stolen["entities"]["source_ip"] != stolen["entities"]["home_ip"]
    assert any(stolen["entities"]["source_ip"] in ln for _, ln in _evidence(out, stolen))
    hijack = _steps(gt, "session-hijack")["traffic-after-logout"]
    tunnel = hijack["entities"]["tunnel_ip"]
    assert all(tunnel in ln for _, ln in _evidence(out, hijack))
    rogue = _steps(gt, "rogue-admin")
    created = [ln for _, ln in _evidence(out, rogue["rogue-admin-account"])]
    assert created and rogue["rogue-admin-account"]["entities"]["new_account"] in created[0]
    slow = _steps(gt, "slow-exfil")["low-and-slow-exfiltration"]
    assert slow["entities"]["total_bytes"] > 5e6
    zeek = _zeek(out, gt, "zeek-tyo-hq")
    up = zeek.filter(pl.col("id.resp_h") == slow["entities"]["destination_ip"])["orig_bytes"]
    assert len(up) >= 10 and int(up.max()) < 1_000_000  # each upload small


# ---- benign life -------------------------------------------------------------------------


def test_traps_are_recorded(run: tuple[Path, dict[str, Any]]) -> None:
    _, gt = run
    traps = {t["name"]: t for t in gt["traps"]}
    for name in (
        "travel",
        "password-typo",
        "long-lived-session",
        "admin-cross-site",
        "nightly-backup",
        "vulnerability-scan",
        "portal-background-noise",
    ):
        assert traps[name]["count"] > 0, name
    assert all(i["bytes"] > 1e9 for i in traps["nightly-backup"]["instances"])
    assert traps["vulnerability-scan"]["instances"][0]["targets"] > 500
    for trip in traps["travel"]["instances"]:
        assert trip["destination"] != trip["home"]
        assert trip["travel_back"] > trip["travel_out"]


def test_office_hours_and_weekends_shape_the_traffic(run: tuple[Path, dict[str, Any]]) -> None:
    out, gt = run
    zeek = _zeek(out, gt, "zeek-tyo-hq")
    attackers = {h for s in gt["steps"] for h in s["entities"].get("hosts", [])}
    internet = zeek.filter(
        pl.col("id.orig_h").str.starts_with("10.10.")
        & ~pl.col("id.orig_h").is_in(sorted(attackers))
        & ~pl.col("id.resp_h").str.starts_with("10.")
    )
    local = internet.select(
        pl.from_epoch(pl.col("ts"), time_unit="s")
        .dt.replace_time_zone("UTC")
        .dt.convert_time_zone("Asia/Tokyo")
        .alias("t")
    ).with_columns(
        pl.col("t").dt.hour().alias("h"),
        pl.col("t").dt.weekday().alias("wd"),
        pl.col("t").dt.date().alias("d"),
    )
    weekday = local.filter(pl.col("wd") <= 5)
    busy = weekday.filter(pl.col("h").is_between(8, 19)).height / weekday.height
    assert busy > 0.7
    per_day = local.group_by("d", "wd").len()
    wk = per_day.filter(pl.col("wd") <= 5)["len"].median()
    we = per_day.filter(pl.col("wd") >= 6)["len"].median()
    assert we is not None and wk is not None and we < 0.4 * wk  # type: ignore[operator]
    night = weekday.filter(pl.col("h") < 5).height
    assert night > 0  # PCs left on still talk at night


def test_volume_is_proportionate_to_people(run: tuple[Path, dict[str, Any]]) -> None:
    _, gt = run
    total = sum(info["lines"] for info in gt["files"].values())
    per_person_day = total / (USERS * DAYS)
    assert 100 < per_person_day < 1000


def test_device_clocks_are_off_by_seconds_only(run: tuple[Path, dict[str, Any]]) -> None:
    out, _ = run
    path = next(p for p in sorted((out / "logs" / "gateways" / "vpn-sha-dc01").glob("*.log")))
    diffs = []
    tz = zoneinfo.ZoneInfo("Asia/Shanghai")
    for line in read_lines(path)[:2000]:
        if "\x00" in line or " time=" not in line:
            continue
        header = dt.datetime.fromisoformat(line.split(" ")[0])
        date = line.split("date=")[1][:10]
        clock = line.split(" time=")[1][:8]
        device = dt.datetime.fromisoformat(f"{date}T{clock}").replace(tzinfo=tz)
        diffs.append((device - header).total_seconds())
    assert diffs and max(abs(d) for d in diffs) < 6


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failed_file_write_fails_the_run(tmp_path: Path, workers: int) -> None:
    """Files are written on a thread of their own (and in worker processes with
    ``workers``): a file that cannot be written must fail the run, not vanish or hang it."""
    out = tmp_path / "out"

    def block_zeek(done: int, total: int) -> None:
        # after the first day: a plain file where the Zeek sensors' folders go
        if done == 1:
            (out / "logs").mkdir(exist_ok=True)
            (out / "logs" / "zeek").write_text("in the way")

    with pytest.raises(RuntimeError, match=r"writing a log file failed|simulate writer failed"):
        simulate(
            out, days=3, users=30, scenarios=[], seed=1, sites=None, progress=block_zeek,
            workers=workers,
        )  # fmt: skip
