"""Authentication detections about places and times: new country/hosting network, impossible
travel, concurrent sessions from two places, unusual hour.

Hand-written cases use Cisco ASA session start/end lines (113039/113019), which the session
table pairs by (gateway, user, public address), and real, country-allocated public addresses
that the embedded GeoIP data places (the same ones the simulator uses):
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

import duckdb
import polars as pl
import pytest
from tests.detect.conftest import Estate, memory_views, ts

from vpnsentry.detect import engine, geodata
from vpnsentry.detect.base import detections
from vpnsentry.detect.config import Config
from vpnsentry.detect.context import Context

DE_HOME = "79.193.89.253"  # Deutsche Telekom, DE
DE_HOME2 = "79.210.193.203"  # Deutsche Telekom, DE
DE_VODAFONE = "88.70.1.1"  # Vodafone, DE (another residential ISP)
DE_HETZNER = "5.9.61.128"  # Hetzner, DE (hosting)
SG_DO = "128.199.88.175"  # DigitalOcean, SG (hosting)
FR_HOME = "90.31.223.122"  # Orange, FR
GB_HOME = "86.156.12.188"  # BT, GB
JP_HOME = "126.214.3.12"  # SoftBank, JP
US_HOME = "73.172.207.170"  # Comcast, US
US_VULTR = "149.28.98.229"  # Vultr, US (hosting)

GEO_RULES = (
    "auth_new_country_asn",
    "auth_impossible_travel",
    "auth_concurrent_sessions",
    "auth_unusual_hour",
)


def session(
    user: str, ip: str, start: dt.datetime, hours: float, gw: str = "asa-hq01"
) -> list[dict[str, Any]]:
    """One ASA VPN session: the AnyConnect parent-session start and the disconnect line."""
    base = {"event.module": "cisco_asa", "observer.name": gw, "user.name": user, "source.ip": ip}
    return [
        {**base, "@timestamp": start, "event.code": "113039", "event.category": "session",
         "event.type": "start"},
        {**base, "@timestamp": start + dt.timedelta(hours=hours), "event.code": "113019",
         "event.category": "session", "event.type": "end",
         "event.duration": int(hours * 3600) * 1_000_000_000},
    ]  # fmt: skip


def workdays(
    user: str, ip: str, days: Iterable[int], start_hour: float = 8, hours: float = 8
) -> list[dict[str, Any]]:
    """A session a day from ``ip``, ``start_hour`` to ``start_hour + hours`` UTC."""
    return [r for d in days for r in session(user, ip, ts(d, start_hour), hours)]


def evidence(alerts: pl.DataFrame, i: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(alerts["alert.evidence"][i])
    return out


# -- auth_new_country_asn -------------------------------------------------------------------


def test_new_country_hosting_while_home_session_is_up(run_detection: Any) -> None:
    events = workdays("alice", DE_HOME, range(10)) + session("alice", SG_DO, ts(10, 8, 40), 1)
    events += session("alice", DE_HOME, ts(10, 8), 8)
    out = run_detection("auth_new_country_asn", events=events)
    assert out.height == 1
    row = out.row(0, named=True)
    assert row["alert.key"] == "alice|country:SG"
    assert row["alert.severity"] == "high"
    assert row["source.ip"] == SG_DO and row["source.geo.country_iso_code"] == "SG"
    assert row["related.user"] == ["alice"] and row["related.ip"] == [SG_DO]
    assert row["@timestamp"] == ts(10, 8, 40)
    ev = evidence(out)
    assert ev["known_countries"] == ["DE"] and ev["concurrent_countries"] == ["DE"]
    assert ev["hosting"] is True and ev["previous_login"]["country"] == "DE"
    assert "still connected" in row["alert.summary"] and "hosting" in row["alert.summary"]


def test_new_country_cold_start_and_repeat(run_detection: Any) -> None:
    # Day 3 is inside the learning period: nothing, even from a hosting network abroad.
    early = workdays("bob", DE_HOME, range(5)) + session("bob", SG_DO, ts(3, 20), 1)
    assert run_detection("auth_new_country_asn", events=early).is_empty()
    assert (
        run_detection("auth_new_country_asn", events=early, params={"learning_days": 2}).height == 1
    )
    # Only the first login from a country is new; the key is stable across reruns.
    late = workdays("bob", DE_HOME, range(9)) + [
        r for d in (9.5, 11.5) for r in session("bob", SG_DO, ts(d), 1)
    ]
    out = run_detection("auth_new_country_asn", events=late)
    assert out["alert.key"].to_list() == ["bob|country:SG"]
    assert out["@timestamp"].to_list() == [ts(9.5)]


def test_new_country_plausible_travel(run_detection: Any) -> None:
    """Residential line abroad after a travel day: low outside the footprint, else nothing."""
    home = workdays("carol", JP_HOME, range(10), start_hour=0)
    trip = workdays("carol", FR_HOME, range(12, 15))
    out = run_detection("auth_new_country_asn", events=home + trip)
    assert out.height == 1
    assert out["alert.severity"][0] == "low"
    assert out["alert.key"][0] == "carol|country:FR"
    assert "footprint" in out["alert.summary"][0]
    # Two other users already log in from FR: it is part of the company's footprint.
    others = session("dan", FR_HOME, ts(1), 8) + session("erin", "90.59.184.72", ts(2), 8)
    assert run_detection("auth_new_country_asn", events=home + trip + others).is_empty()
    # ... unless the traveller arrives too fast: JP at 00:00, FR (9,900 km) 3 hours later.
    rushed = (
        home + session("carol", JP_HOME, ts(10, 0), 1) + session("carol", FR_HOME, ts(10, 3), 2)
    )
    out = run_detection("auth_new_country_asn", events=rushed + others)
    assert out["alert.severity"].to_list() == ["high"]
    assert "km from the previous login" in out["alert.summary"][0]
    # A session left connected at home while the traveller logs in abroad: medium.
    left_open = session("carol", JP_HOME, ts(10, 0), 60) + session("carol", FR_HOME, ts(12, 8), 8)
    out = run_detection("auth_new_country_asn", events=home + left_open + others)
    assert out["alert.severity"].to_list() == ["medium"]
    assert evidence(out)["concurrent_countries"] == ["JP"]


def test_new_network_in_known_country(run_detection: Any) -> None:
    home = workdays("frank", DE_HOME, range(10))
    hosting = session("frank", DE_HETZNER, ts(10, 20), 1)
    out = run_detection("auth_new_country_asn", events=home + hosting)
    assert out["alert.key"].to_list() == ["frank|net:24940"]
    assert out["alert.severity"].to_list() == ["medium"]
    assert evidence(out)["novelty"] == "network"
    # A new residential ISP (Vodafone instead of Telekom) in the same country is not news.
    isp = session("frank", DE_VODAFONE, ts(10, 20), 1)
    assert run_detection("auth_new_country_asn", events=home + isp).is_empty()


# -- auth_impossible_travel -----------------------------------------------------------------


def test_impossible_travel_country_level(run_detection: Any) -> None:
    # A new account: impossible travel needs no history. JP then DE three hours later.
    events = session("gina", JP_HOME, ts(0, 0), 2) + session("gina", DE_HOME, ts(0, 3), 2)
    out = run_detection("auth_impossible_travel", events=events)
    assert out.height == 1
    row = out.row(0, named=True)
    assert row["alert.key"] == "gina|2025-03-03"
    assert row["alert.severity"] == "medium"  # both residential, country level
    assert row["@timestamp"] == ts(0, 0) and row["event.end"] == ts(0, 3)
    assert set(row["related.ip"]) == {JP_HOME, DE_HOME}
    assert "country" in row["alert.summary"] and "margin" in row["alert.summary"]
    leg = evidence(out)["legs"][0]
    assert leg["from_country"] == "JP" and leg["to_country"] == "DE"
    assert 8500 < leg["km"] < 9500 and leg["precision"] == "country"
    # With a hosting end it is high, and the rarer place is named as the source.
    events = workdays("gina", DE_HOME, range(1, 4)) + session("gina", SG_DO, ts(3, 9), 1)
    out = run_detection("auth_impossible_travel", events=events)
    assert out["alert.severity"].to_list() == ["high"]
    assert out["source.ip"].to_list() == [SG_DO]


def test_impossible_travel_negatives(run_detection: Any) -> None:
    # Neighbouring countries an hour apart: within the country-level margin.
    near = session("hans", DE_HOME, ts(0, 8), 1) + session("hans", FR_HOME, ts(0, 9), 1)
    assert run_detection("auth_impossible_travel", events=near).is_empty()
    # JP to GB with a travel day in between: plausible.
    trip = session("hans", JP_HOME, ts(1, 0), 8) + session("hans", GB_HOME, ts(2, 9), 8)
    assert run_detection("auth_impossible_travel", events=trip).is_empty()
    # The same JP -> GB leg two hours apart is not.
    fast = session("hans", JP_HOME, ts(1, 0), 1) + session("hans", GB_HOME, ts(1, 2), 1)
    assert run_detection("auth_impossible_travel", events=fast).height == 1
    # A higher speed limit accepts it (the parameter is honoured).
    slow = run_detection("auth_impossible_travel", events=fast, params={"max_kmh": 5000.0})
    assert slow.is_empty()


def _run_with_city(events: list[dict[str, Any]], det_id: str) -> pl.DataFrame:
    """``run_detection`` with a City database: geo_city placing two DE addresses apart."""
    con = memory_views(events=events)
    try:
        det = detections()[det_id]
        ctx = Context(con, None, Config())
        ctx.need(det.needs)
        # Berlin and Munich (505 km), as a City database would place the two lines.
        con.execute(
            "CREATE OR REPLACE TEMP TABLE geo_city AS SELECT * FROM (VALUES "
            "(ip4($a), ip4($a), 'DE', 'Berlin', 52.52, 13.40), "
            "(ip4($b), ip4($b), 'DE', 'Munich', 48.14, 11.58)) "
            "t(lo, hi, country, city, lat, lon) ORDER BY lo",
            {"a": DE_HOME, "b": DE_HOME2},
        )
        rows = engine.run_one(det, con, Config().params_for(det))
        return engine.to_alerts(det, rows, ts(100))
    finally:
        con.close()


def test_impossible_travel_city_level() -> None:
    """City coordinates see a jump inside one country that country centres cannot."""
    events = session("ida", DE_HOME, ts(0, 8), 1) + session("ida", DE_HOME2, ts(0, 8, 10), 1)
    out = _run_with_city(events, "auth_impossible_travel")
    assert out.height == 1
    assert out["alert.severity"][0] == "high"
    assert "city level" in out["alert.summary"][0]
    assert 450 < evidence(out)["legs"][0]["km"] < 560
    # Two hours apart, 505 km is a train ride.
    later = session("ida", DE_HOME, ts(0, 8), 1) + session("ida", DE_HOME2, ts(0, 10), 1)
    assert _run_with_city(later, "auth_impossible_travel").is_empty()


def test_impossible_travel_without_city_database_is_country_level(run_detection: Any) -> None:
    events = session("ida", DE_HOME, ts(0, 8), 1) + session("ida", DE_HOME2, ts(0, 8, 10), 1)
    assert run_detection("auth_impossible_travel", events=events).is_empty()


# -- auth_concurrent_sessions ---------------------------------------------------------------


def test_concurrent_sessions_two_countries(run_detection: Any) -> None:
    events = session("jan", DE_HOME, ts(0, 8), 8) + session("jan", SG_DO, ts(0, 8, 40), 1.5)
    out = run_detection("auth_concurrent_sessions", events=events)
    assert out.height == 1
    row = out.row(0, named=True)
    assert row["alert.key"] == "jan|2025-03-03"
    assert row["alert.severity"] == "high"
    assert row["source.ip"] == SG_DO and set(row["related.ip"]) == {DE_HOME, SG_DO}
    pair = evidence(out)["pairs"][0]
    assert pair["first_country"] == "DE" and pair["second_country"] == "SG"
    assert pair["travel_possible"] is False


def test_concurrent_sessions_negatives(run_detection: Any) -> None:
    # Same country, residential lines (the home address changed under a long session,
    # or a phone on another ISP): one place.
    same = session("kai", DE_HOME, ts(0, 8), 30) + session("kai", DE_HOME2, ts(1, 8), 8)
    same += session("kai", DE_VODAFONE, ts(1, 9), 1)
    assert run_detection("auth_concurrent_sessions", events=same).is_empty()
    # One after the other, not overlapping.
    seq = session("kai", DE_HOME, ts(0, 8), 1) + session("kai", SG_DO, ts(0, 9, 30), 1)
    assert run_detection("auth_concurrent_sessions", events=seq).is_empty()


def test_concurrent_sessions_left_open_while_travelling(run_detection: Any) -> None:
    """A session left connected at home while its owner flies: medium, and said so."""
    events = session("lea", JP_HOME, ts(0, 0), 60) + session("lea", GB_HOME, ts(2, 8), 8)
    out = run_detection("auth_concurrent_sessions", events=events)
    assert out["alert.severity"].to_list() == ["medium"]
    assert "left connected" in out["alert.summary"][0]
    # The same country with a hosting network on one side is two places.
    events = session("lea", DE_HOME, ts(0, 8), 8) + session("lea", DE_HETZNER, ts(0, 9), 1)
    out = run_detection("auth_concurrent_sessions", events=events)
    assert out["alert.severity"].to_list() == ["high"]
    assert out["source.ip"].to_list() == [DE_HETZNER]


# -- auth_unusual_hour ----------------------------------------------------------------------


def test_unusual_hour_positive_and_gap(run_detection: Any) -> None:
    home = workdays("max", DE_HOME, range(12))  # 08:00-16:00 UTC
    night = session("max", DE_HOME, ts(12, 2), 1)
    out = run_detection("auth_unusual_hour", events=home + night)
    assert out.height == 1
    row = out.row(0, named=True)
    assert row["alert.key"] == "max|2025-03-15"
    assert row["alert.severity"] == "low"
    assert row["@timestamp"] == ts(12, 2)
    ev = evidence(out)
    assert ev["clock"] == "utc" and ev["known_hours"] == list(range(8, 17))
    assert ev["logins"][0]["gap_hours"] == 6
    # 19:00 is three hours after the last connected hour (16): unusual; 18:00 is not.
    for hour, alerts in ((19, 1), (18, 0), (14, 0)):  # 14:00: a reconnect after lunch
        late = session("max", DE_HOME, ts(12, hour), 1)
        assert run_detection("auth_unusual_hour", events=home + late).height == alerts, hour


def test_unusual_hour_needs_history(run_detection: Any) -> None:
    few = workdays("ned", DE_HOME, range(0, 12, 2)) + session("ned", DE_HOME, ts(12, 2), 1)
    assert run_detection("auth_unusual_hour", events=few).is_empty()  # 6 logins < 10
    assert run_detection("auth_unusual_hour", events=few, params={"min_logins": 5}).height == 1


def test_unusual_hour_traveller_judged_in_local_time(run_detection: Any) -> None:
    # JP user, 09:00-17:00 JST (00:00-08:00 UTC); in the US they work 8:00 local (14:00 UTC).
    home = workdays("oda", JP_HOME, range(12), start_hour=0)
    abroad = session("oda", US_HOME, ts(13, 14), 8)
    assert run_detection("auth_unusual_hour", events=home + abroad).is_empty()
    # From a hosting network the place says nothing about the person: the user's own clock.
    rented = session("oda", US_VULTR, ts(13, 14), 1)
    out = run_detection("auth_unusual_hour", events=home + rented)
    assert out["alert.severity"].to_list() == ["medium"]
    assert evidence(out)["clock"] == "utc"


# -- geodata --------------------------------------------------------------------------------


def test_centroids_and_distance() -> None:
    assert len(geodata.CENTROIDS) > 240
    assert geodata.CENTROIDS["JP"] == (36.0, 138.0)
    con = duckdb.connect(":memory:")
    try:
        geodata.register_geo_points(con)
        km = con.execute(
            "SELECT geo_km(a.lat, a.lon, b.lat, b.lon) FROM country_centroids a, "
            "country_centroids b WHERE a.iso2 = 'DE' AND b.iso2 = 'SG'"
        ).fetchall()[0][0]
        assert 10_000 < km < 10_300
        assert con.execute("SELECT count(*) FROM geo_city_points").fetchall()[0][0] == 0
    finally:
        con.close()


def test_bind_rejects_undeclared_parameters() -> None:
    assert geodata.bind("SELECT $a", {"a": 1, "b": 2}) == {"a": 1}
    with pytest.raises(ValueError, match="undeclared"):
        geodata.bind("SELECT $a, $c", {"a": 1})


# -- the simulated estate -------------------------------------------------------------------


def _trap_users(estate: Estate, name: str) -> set[str]:
    return {str(i["user"]).lower() for i in estate.trap(name)["instances"]}


def _users(alerts: pl.DataFrame) -> set[str]:
    return {str(u).lower() for u in alerts["user.name"].to_list()}


def _step_id(estate: Estate, scenario: str, name: str) -> int:
    """Step ids follow the simulator's scenario order: look the step up by name."""
    return next(
        int(s["id"])
        for s in estate.truth["steps"]
        if s["scenario"] == scenario and s["name"] == name
    )


def test_estate_stolen_credential_is_found(estate: Estate) -> None:
    step = _step_id(estate, "stolen-credential", "concurrent-login-from-elsewhere")
    rules = estate.rules_for_step(step)
    for rule in ("auth_new_country_asn", "auth_impossible_travel", "auth_concurrent_sessions"):
        assert rule in rules, rule
    victim = str(estate.step(step)["entities"]["user"]).lower()
    attacker = estate.step(step)["entities"]["source_ip"]
    for rule in ("auth_impossible_travel", "auth_concurrent_sessions"):
        hits = estate.of(rule).filter(pl.col("user.name").str.to_lowercase() == victim)
        assert hits["alert.severity"].to_list() == ["high"], rule
        assert attacker in hits["related.ip"][0]


def test_estate_benign_traps_stay_quiet(estate: Estate) -> None:
    travellers = _trap_users(estate, "travel")
    joiners = _trap_users(estate, "new-joiner")
    long_lived = _trap_users(estate, "long-lived-session")
    rdp = _trap_users(estate, "rdp-from-home")
    new_country = estate.of("auth_new_country_asn")
    # New joiners are never judged on novelty; travellers get at most a low alert.
    assert not (_users(new_country) & joiners)
    trav = new_country.filter(pl.col("user.name").str.to_lowercase().is_in(list(travellers)))
    assert set(trav["alert.severity"]) <= {"low"}
    assert trav.height <= len(travellers)
    for rule in ("auth_impossible_travel", "auth_concurrent_sessions", "auth_unusual_hour"):
        assert not (_users(estate.of(rule)) & (travellers | long_lived | joiners)), rule
    assert not (_users(estate.of("auth_unusual_hour")) & rdp)


def test_estate_false_positives_are_rare(estate: Estate) -> None:
    """Well under 1 false positive per day per 1,000 users for each of these detections."""
    ev = estate.evaluation
    for rule in GEO_RULES:
        fp = ev.fp_by_rule.get(rule, 0)
        assert ev.fp_rate(fp) < 1.0, (rule, fp)
