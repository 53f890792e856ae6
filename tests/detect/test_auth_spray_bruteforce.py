"""Authentication detections, part 1: password spray, brute force, success after failures,
login from a hosting network, dormant account.

Hand-written rows use the fields the parsers produce: Cisco ASA sessions (113039 start,
722051 address assigned, 113019 disconnect with duration) and 113005 login failures, and
FortiGate administrator logins (0100032001/0100032002, ``user.roles`` Administrator).
Addresses are real ones of their networks in the embedded geo data: 5.9.0.0/16 Hetzner,
128.199.0.0/16 DigitalOcean, 45.32.0.0/16 and 149.28.0.0/16 Vultr (all hosting),
2.56.252.0/24 NordVPN (commercial VPN), 126.0.0.0/8 SoftBank (home ISP).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Callable, Iterable
from typing import Any

import polars as pl
import pytest
from tests.detect.conftest import Estate, ts

from vpnsentry.detect.config import Config

Row = dict[str, Any]
Run = Callable[..., pl.DataFrame]

ASA = "asa-tyo-hq01"
FGT = "FGT-CHI-BR01"
HOME = "126.211.208.159"  # SoftBank, a home line
HETZNER_A, HETZNER_B = "5.9.170.157", "5.9.61.128"
DIGITALOCEAN = "128.199.214.186"
VULTR = "149.28.15.23"
NORDVPN = "2.56.252.10"

_tunnel = itertools.count(10)


def _asa(t: dt.datetime, code: str, action: str, category: str, type_: str, **kw: Any) -> Row:
    return {
        "@timestamp": t,
        "event.dataset": "cisco_asa.log",
        "event.module": "cisco_asa",
        "observer.name": ASA,
        "observer.vendor": "Cisco",
        "observer.product": "ASA",
        "event.kind": "event",
        "event.code": code,
        "event.action": action,
        "event.category": category,
        "event.type": type_,
        **kw,
    }


def login(user: str, ip: str, t: dt.datetime, minutes: float = 60) -> list[Row]:
    """A Cisco ASA AnyConnect session: connected, address assigned, disconnected."""
    n = next(_tunnel)
    tunnel = f"10.100.{n // 250 % 250}.{n % 250 + 1}"
    common = {"user.name": user, "source.ip": ip, "vpn.group": "GP-Employees"}
    end = t + dt.timedelta(minutes=minutes)
    return [
        _asa(t, "113039", "client-vpn-connected", "session", "start", **common,
             **{"event.outcome": "success"}),
        _asa(t + dt.timedelta(seconds=2), "722051", "address-assigned", "network", "info",
             **common, **{"event.outcome": "success", "vpn.tunnel_ip": tunnel}),
        _asa(end, "113019", "client-vpn-disconnected", "session", "end", **common,
             **{"event.duration": int(minutes * 60e9), "event.reason": "User Requested"}),
    ]  # fmt: skip


def fail(user: str, ip: str, t: dt.datetime, reason: str = "AAA failure") -> Row:
    """A Cisco ASA 113005 VPN login failure."""
    return _asa(
        t,
        "113005",
        "logon-failed",
        "authentication",
        "denied",
        **{
            "event.outcome": "failure",
            "event.reason": reason,
            "user.name": user,
            "source.ip": ip,
            "destination.ip": "10.10.32.10",
            "message": f"AAA user authentication Rejected : reason = {reason} : server = "
            f"10.10.32.10 : user = {user} : user IP = {ip}",
        },
    )


def admin(user: str, ip: str, t: dt.datetime, ok: bool) -> Row:
    """A FortiGate administrator login (0100032001) or failed login (0100032002)."""
    return {
        "@timestamp": t,
        "event.dataset": "fortinet_fortigate.event",
        "event.module": "fortinet_fortigate",
        "observer.name": FGT,
        "observer.vendor": "Fortinet",
        "observer.product": "FortiGate",
        "event.kind": "event",
        "event.category": "authentication",
        "event.type": "start",
        "event.action": "login",
        "event.outcome": "success" if ok else "failure",
        "event.code": "0100032001" if ok else "0100032002",
        "event.reason": "none" if ok else "passwd_invalid",
        "user.name": user,
        "user.roles": "Administrator",
        "source.ip": ip,
        "destination.ip": "10.50.250.2",
        "message": f"Administrator {user} logged in successfully from https({ip})"
        if ok
        else f"Administrator {user} login failed from https({ip}) because of invalid password",
    }


def asa_admin_denied(user: str, ip: str, t: dt.datetime) -> Row:
    """A Cisco ASA 605004 management login failure (ASDM/SSH to the firewall itself)."""
    return _asa(
        t,
        "605004",
        "logon-failed",
        "authentication",
        "denied",
        **{
            "event.outcome": "failure",
            "user.name": user,
            "source.ip": ip,
            "source.port": 51000,
            "destination.ip": "126.213.38.65",
            "message": f"Login denied from {ip}/51000 to outside:126.213.38.65/https for "
            f'user "{user}"',
        },
    )


def history(users: Iterable[str], days: Iterable[int] = (0, 1, 2)) -> list[Row]:
    """Ordinary working-day sessions from home (so the names are real accounts)."""
    rows: list[Row] = []
    for i, u in enumerate(users):
        for d in days:
            rows += login(u, f"126.211.{10 + i}.{20 + d}", ts(days=d, hours=0, minutes=i))
    return rows


def evidence(alerts: pl.DataFrame, i: int = 0) -> dict[str, Any]:
    return dict(json.loads(alerts["alert.evidence"][i]))


STAFF = [f"e.user{i:02d}" for i in range(40)]
DEFAULTS = ["admin", "test", "vpn", "guest", "support", "backup"]


# -- auth_password_spray --------------------------------------------------------------------


def spray(
    addresses: list[str], accounts: list[str], start: dt.datetime, step_s: int = 90
) -> list[Row]:
    """Each account tried once, the addresses taking turns, ``step_s`` seconds apart."""
    return [
        fail(u, addresses[k % len(addresses)], start + dt.timedelta(seconds=k * step_s))
        for k, u in enumerate(accounts)
    ]


def test_spray_from_rotating_hosting_addresses(run_detection: Run) -> None:
    targets = STAFF[:24] + DEFAULTS  # 30 names, 24 real
    events = history(STAFF) + spray(
        [HETZNER_A, DIGITALOCEAN, VULTR, HETZNER_B], targets * 2, ts(days=5, hours=16)
    )
    alerts = run_detection("auth_password_spray", events=events)
    assert alerts.height == 1
    a = alerts.row(0, named=True)
    assert a["observer.name"] == ASA
    assert sorted(a["related.ip"]) == sorted([HETZNER_A, HETZNER_B, DIGITALOCEAN, VULTR])
    assert a["@timestamp"] == ts(days=5, hours=16)
    assert a["event.end"] == ts(days=5, hours=16, seconds=59 * 90)
    assert a["rule.id"] == "auth_password_spray" and a["alert.severity"] == "high"
    ev = evidence(alerts)
    assert (ev["attempts"], ev["accounts"], ev["real_accounts"], ev["addresses"]) == (60, 30, 24, 4)
    assert sorted(ev["networks"]) == ["AS-CHOOPA", "DIGITALOCEAN-ASN", "Hetzner Online GmbH"]
    assert "60 failed logins against 30 accounts (24 real) from 4 address(es)" in a["alert.summary"]
    # Re-running gives the same alert id (the key holds no run-dependent value).
    again = run_detection("auth_password_spray", events=events)
    assert again["alert.id"].to_list() == alerts["alert.id"].to_list()


def test_spray_thresholds_are_exact(run_detection: Run) -> None:
    base = history(STAFF)
    nine = spray([HETZNER_A], STAFF[:9], ts(days=5, hours=16))
    ten = spray([HETZNER_A], STAFF[:10], ts(days=5, hours=16))
    assert run_detection("auth_password_spray", events=base + nine).is_empty()
    assert run_detection("auth_password_spray", events=base + ten).height == 1
    # Ten names, only four of them real: a guess list, not a spray of the company's users.
    guess = spray([HETZNER_A], STAFF[:4] + [f"x{i}" for i in range(6)], ts(days=5, hours=16))
    assert run_detection("auth_password_spray", events=base + guess).is_empty()
    assert (
        run_detection(
            "auth_password_spray", events=base + guess, params={"min_real_accounts": 4}
        ).height
        == 1
    )


def test_many_employees_mistyping_from_one_isp_is_not_a_spray(run_detection: Run) -> None:
    # Thirty employees, each from their own SoftBank line, fail once and then log in: as
    # many accounts from one network in one hour as a spray, but one account per address.
    events = history(STAFF)
    for i, u in enumerate(STAFF[:30]):
        t = ts(days=5, hours=0, minutes=2 * i)
        ip = f"126.211.{10 + i}.99"
        events += [fail(u, ip, t), *login(u, ip, t + dt.timedelta(seconds=40))]
    assert run_detection("auth_password_spray", events=events).is_empty()


def test_background_noise_with_default_names_is_not_a_spray(run_detection: Run) -> None:
    events = history(STAFF)
    # Internet background noise: many hosting addresses, default names, a few tries each.
    for k in range(40):
        ip = f"5.9.{100 + k}.{7 + k}"
        t = ts(days=5, hours=k % 24, minutes=k)
        events += [fail(DEFAULTS[(k + j) % 6], ip, t + dt.timedelta(seconds=j)) for j in range(3)]
    assert run_detection("auth_password_spray", events=events).is_empty()


def test_many_tries_per_account_is_brute_force_not_spray(run_detection: Run) -> None:
    events = history(STAFF) + spray([HETZNER_A], STAFF[:12] * 4, ts(days=5, hours=16), 20)
    assert run_detection("auth_password_spray", events=events).is_empty()
    assert (
        run_detection(
            "auth_password_spray", events=events, params={"max_attempts_per_account": 4}
        ).height
        == 1
    )


def test_spray_bursts_split_on_long_gaps_and_scanners_are_allowed(run_detection: Run) -> None:
    base = history(STAFF)
    halves = spray([HETZNER_A], STAFF[:6], ts(days=5, hours=10)) + spray(
        [HETZNER_A], STAFF[6:12], ts(days=5, hours=14)
    )
    assert run_detection("auth_password_spray", events=base + halves).is_empty()
    assert (
        run_detection(
            "auth_password_spray", events=base + halves, params={"max_gap_minutes": 300}
        ).height
        == 1
    )
    one = spray([HETZNER_A], STAFF[:20], ts(days=5, hours=10))
    allowed = Config(allow={"scanners": ("5.9.170.0/24",)})
    assert run_detection("auth_password_spray", events=base + one).height == 1
    assert run_detection("auth_password_spray", events=base + one, config=allowed).is_empty()


# -- auth_brute_force -----------------------------------------------------------------------


def burst(
    make: Callable[[dt.datetime], Row], start: dt.datetime, n: int, gap_s: int = 25
) -> list[Row]:
    return [make(start + dt.timedelta(seconds=k * gap_s)) for k in range(n)]


def test_brute_force_on_the_admin_interface(run_detection: Run) -> None:
    t0 = ts(days=9, hours=8)
    events = burst(lambda t: admin("admin", VULTR, t, ok=False), t0, 6)
    events.append(admin("admin", VULTR, t0 + dt.timedelta(minutes=4), ok=True))
    # The network admin's own logins from the jump host are not part of it.
    events += [admin("t.nakamura", "10.10.40.10", ts(days=d, hours=3), ok=True) for d in range(5)]
    alerts = run_detection("auth_brute_force", events=events)
    assert alerts.height == 1
    a = alerts.row(0, named=True)
    assert (a["user.name"], a["source.ip"], a["observer.name"]) == ("admin", VULTR, FGT)
    assert a["alert.severity"] == "high"
    assert a["@timestamp"] == t0 and a["event.end"] == t0 + dt.timedelta(minutes=4)
    ev = evidence(alerts)
    assert ev["failures"] == 6 and ev["plane"] == "admin" and ev["success_after"] is not None
    assert "6 failed administrator logins for admin" in a["alert.summary"]
    # The same against a Cisco ASA's management interface (605004), with no success.
    asa = burst(lambda t: asa_admin_denied("enable_15", DIGITALOCEAN, t), t0, 7, gap_s=5)
    alerts = run_detection("auth_brute_force", events=asa)
    assert alerts["observer.name"].to_list() == [ASA]
    assert alerts["alert.severity"].to_list() == ["high"]
    assert evidence(alerts)["plane"] == "admin" and evidence(alerts)["success_after"] is None


def test_brute_force_on_a_vpn_account_and_severity(run_detection: Run) -> None:
    user = STAFF[0]
    t0 = ts(days=6, hours=2)
    guessing = burst(lambda t: fail(user, HETZNER_A, t), t0, 8)
    alerts = run_detection("auth_brute_force", events=history([user]) + guessing)
    assert alerts.height == 1
    assert alerts["alert.severity"][0] == "medium"
    assert evidence(alerts)["failures"] == 8 and evidence(alerts)["plane"] == "vpn"
    # The same burst from an address the account has used before: a stale saved password.
    own_ip = "126.211.10.20"
    stale = burst(lambda t: fail(user, own_ip, t), t0, 8)
    alerts = run_detection("auth_brute_force", events=history([user]) + stale)
    assert alerts["alert.severity"].to_list() == ["low"]
    assert evidence(alerts)["known_source"] is True


def test_typos_expired_passwords_and_slow_failures_are_not_brute_force(run_detection: Run) -> None:
    users = STAFF[:6]
    events = history(users)
    t = ts(days=5, hours=1)
    # password typo: two failures then success, from home
    events += [fail(users[0], HOME, t), fail(users[0], HOME, t + dt.timedelta(seconds=30))]
    events += login(users[0], HOME, t + dt.timedelta(seconds=70))
    # expired password, then success after changing it
    events += [fail(users[1], HOME, t, reason="Password has expired")]
    events += login(users[1], HOME, t + dt.timedelta(minutes=6))
    # four failures: under the threshold
    events += burst(lambda x: fail(users[2], HETZNER_A, x), t, 4)
    # five failures, but an hour apart each: not one burst
    events += burst(lambda x: fail(users[3], HETZNER_B, x), t, 5, gap_s=3600)
    assert run_detection("auth_brute_force", events=events).is_empty()
    assert run_detection("auth_brute_force", events=events, params={"min_failures": 4}).height == 1


def test_brute_force_from_an_allowed_scanner_is_ignored(run_detection: Run) -> None:
    events = burst(lambda t: admin("admin", "10.10.40.50", t, ok=False), ts(days=3, hours=18), 9)
    assert run_detection("auth_brute_force", events=events).height == 1
    cfg = Config(allow={"scanners": ("10.10.40.50",)})
    assert run_detection("auth_brute_force", events=events, config=cfg).is_empty()


# -- auth_success_after_failures ------------------------------------------------------------


def test_login_from_the_spraying_address(run_detection: Run) -> None:
    victim = STAFF[30]
    t0 = ts(days=5, hours=16)
    events = history(STAFF) + spray([HETZNER_B], STAFF[:5], t0)
    events += login(victim, HETZNER_B, t0 + dt.timedelta(minutes=20))
    alerts = run_detection("auth_success_after_failures", events=events)
    assert alerts.height == 1
    a = alerts.row(0, named=True)
    assert (a["user.name"], a["source.ip"], a["observer.name"]) == (victim, HETZNER_B, ASA)
    assert a["related.user"] == [victim]
    assert a["@timestamp"] == t0 and a["event.end"] == t0 + dt.timedelta(minutes=20)
    ev = evidence(alerts)
    assert ev["other_accounts_same_address"] == 5
    assert ev["sample_other_accounts"] == sorted(STAFF[:5])
    # Two other accounts is under min_accounts (3).
    few = history(STAFF) + spray([HETZNER_B], STAFF[:2], t0)
    few += login(victim, HETZNER_B, t0 + dt.timedelta(minutes=20))
    assert run_detection("auth_success_after_failures", events=few).is_empty()


def test_login_from_another_address_of_the_spraying_network(run_detection: Run) -> None:
    victim = STAFF[30]
    t0 = ts(days=5, hours=16)
    events = history(STAFF) + spray([HETZNER_A], STAFF[:6], t0)
    events += login(victim, HETZNER_B, t0 + dt.timedelta(hours=2))
    alerts = run_detection("auth_success_after_failures", events=events)
    assert alerts.height == 1
    assert sorted(alerts["related.ip"][0]) == sorted([HETZNER_A, HETZNER_B])
    ev = evidence(alerts)
    assert ev["other_accounts_same_network"] == 6 and ev["other_accounts_same_address"] == 0
    # A failing address of another provider does not make a Hetzner login suspicious.
    other = history(STAFF) + spray([DIGITALOCEAN], STAFF[:6], t0)
    other += login(victim, HETZNER_B, t0 + dt.timedelta(hours=2))
    assert run_detection("auth_success_after_failures", events=other).is_empty()
    # Nor do failures long before (outside lookback_minutes).
    old = history(STAFF) + spray([HETZNER_A], STAFF[:6], t0)
    old += login(victim, HETZNER_B, t0 + dt.timedelta(hours=30))
    assert run_detection("auth_success_after_failures", events=old).is_empty()


def test_own_failures_then_success_from_a_new_address(run_detection: Run) -> None:
    user = STAFF[0]
    t0 = ts(days=6, hours=2)
    guessed = burst(lambda t: fail(user, VULTR, t), t0, 6)
    guessed += login(user, VULTR, t0 + dt.timedelta(minutes=5))
    alerts = run_detection("auth_success_after_failures", events=history([user]) + guessed)
    assert alerts.height == 1 and evidence(alerts)["own_failures_same_address"] == 6
    # The same from the account's usual address: the owner fixing a stale password.
    own_ip = "126.211.10.20"
    fixed = burst(lambda t: fail(user, own_ip, t), t0, 6)
    fixed += login(user, own_ip, t0 + dt.timedelta(minutes=5))
    assert run_detection("auth_success_after_failures", events=history([user]) + fixed).is_empty()


def test_admin_login_after_admin_password_guessing(run_detection: Run) -> None:
    t0 = ts(days=9, hours=8)
    events = burst(lambda t: admin("admin", VULTR, t, ok=False), t0, 6)
    events.append(admin("admin", VULTR, t0 + dt.timedelta(minutes=4), ok=True))
    alerts = run_detection("auth_success_after_failures", events=events)
    assert alerts.height == 1
    assert evidence(alerts)["admin_login"] is True
    assert alerts["user.name"][0] == "admin" and alerts["observer.name"][0] == FGT


def test_typos_and_shared_addresses_do_not_fire(run_detection: Run) -> None:
    users = STAFF[:8]
    events = history(users)
    t = ts(days=5, hours=1)
    # password typo (three failures) and expired password, each then success, from home
    events += [fail(users[0], HOME, t + dt.timedelta(seconds=20 * k)) for k in range(3)]
    events += login(users[0], HOME, t + dt.timedelta(minutes=2))
    events += [fail(users[1], "126.211.50.1", t, reason="Password has expired")]
    events += login(users[1], "126.211.50.1", t + dt.timedelta(minutes=8))
    # a hotel: four guests mistype and get in, then a fifth logs in at once
    hotel = "126.33.44.55"
    for k, u in enumerate(users[2:6]):
        tk = t + dt.timedelta(minutes=10 * k)
        events += [fail(u, hotel, tk), *login(u, hotel, tk + dt.timedelta(minutes=1))]
    events += login(users[6], hotel, t + dt.timedelta(hours=1))
    assert run_detection("auth_success_after_failures", events=events).is_empty()


def test_success_after_failures_from_a_partner_is_ignored(run_detection: Run) -> None:
    victim = STAFF[30]
    t0 = ts(days=5, hours=16)
    events = history(STAFF) + spray([HETZNER_B], STAFF[:5], t0)
    events += login(victim, HETZNER_B, t0 + dt.timedelta(minutes=20))
    cfg = Config(allow={"partners": ("5.9.61.0/24",)})
    assert run_detection("auth_success_after_failures", events=events, config=cfg).is_empty()


# -- auth_hosting_asn -----------------------------------------------------------------------


def test_login_from_a_hosting_provider(run_detection: Run) -> None:
    user = STAFF[0]
    t0 = ts(days=6, hours=8, minutes=46)
    events = history([user]) + login(user, DIGITALOCEAN, t0, minutes=95)
    alerts = run_detection("auth_hosting_asn", events=events)
    assert alerts.height == 1
    a = alerts.row(0, named=True)
    assert (a["user.name"], a["source.ip"], a["observer.name"]) == (user, DIGITALOCEAN, ASA)
    assert a["source.as.number"] == 14061
    assert a["source.as.organization.name"] == "DIGITALOCEAN-ASN"
    assert a["alert.severity"] == "high" and a["@timestamp"] == t0
    assert DIGITALOCEAN in a["related.ip"] and len(a["related.ip"]) == 2  # plus the tunnel
    assert evidence(alerts)["hosting_kind"] == "hosting"
    # From home: nothing.
    assert run_detection("auth_hosting_asn", events=history([user])).is_empty()


def test_commercial_vpn_is_medium(run_detection: Run) -> None:
    events = login(STAFF[0], NORDVPN, ts(days=2, hours=1))
    alerts = run_detection("auth_hosting_asn", events=events)
    assert alerts["alert.severity"].to_list() == ["medium"]
    assert evidence(alerts)["hosting_kind"] == "vpn"


def test_routine_cloud_desktop_user_stops_alerting(run_detection: Run) -> None:
    user = STAFF[0]
    # A cloud desktop at Hetzner, every working day: the first min_known_days days alert,
    # then it is the user's routine. Another provider still alerts.
    events = [r for d in range(6) for r in login(user, f"5.9.170.{10 + d}", ts(days=d, hours=1))]
    events += login(user, VULTR, ts(days=7, hours=1))
    alerts = run_detection("auth_hosting_asn", events=events)
    assert alerts["source.ip"].to_list() == ["5.9.170.10", "5.9.170.11", "5.9.170.12", VULTR]
    assert [evidence(alerts, i)["earlier_days_from_this_network"] for i in range(4)] == [
        0,
        1,
        2,
        0,
    ]
    # Two logins the same day from the same provider are one alert.
    twice = login(user, HETZNER_A, ts(days=1, hours=1)) + login(
        user, HETZNER_B, ts(days=1, hours=5)
    )
    alerts = run_detection("auth_hosting_asn", events=twice)
    assert alerts.height == 1 and evidence(alerts)["logins"] == 2
    assert run_detection("auth_hosting_asn", events=events, params={"min_known_days": 1})[
        "source.ip"
    ].to_list() == ["5.9.170.10", VULTR]


def test_hosting_login_from_a_partner_is_ignored(run_detection: Run) -> None:
    events = login(STAFF[0], HETZNER_A, ts(days=2, hours=1))
    cfg = Config(allow={"partners": ("5.9.170.0/24",)})
    assert run_detection("auth_hosting_asn", events=events).height == 1
    assert run_detection("auth_hosting_asn", events=events, config=cfg).is_empty()


# -- auth_dormant_account -------------------------------------------------------------------


def test_dormant_account_wakes_up(run_detection: Run) -> None:
    user = STAFF[0]
    events = history([user], days=(0, 1, 2)) + login(user, HETZNER_A, ts(days=26, hours=3))
    alerts = run_detection("auth_dormant_account", events=events)
    assert alerts.height == 1
    a = alerts.row(0, named=True)
    assert (a["user.name"], a["source.ip"]) == (user, HETZNER_A)
    assert a["@timestamp"] == ts(days=26, hours=3)
    assert a["alert.severity"] == "high"  # and from a hosting provider
    ev = evidence(alerts)
    assert ev["active_days_before"] == 3 and ev["silent_days"] == 24.1
    assert "after 24 days without a login" in a["alert.summary"]


def test_dormancy_needs_a_rhythm_a_long_silence_and_history(run_detection: Run) -> None:
    user = STAFF[0]
    wake = login(user, HOME, ts(days=26, hours=3))
    # Occasional user: two login days before the silence.
    assert run_detection(
        "auth_dormant_account", events=history([user], days=(1, 2)) + wake
    ).is_empty()
    # Twenty days of silence is under dormant_days (21).
    short = history([user], days=(4, 5, 6)) + wake
    assert run_detection("auth_dormant_account", events=short).is_empty()
    assert run_detection("auth_dormant_account", events=short, params={"dormant_days": 19}).height
    # A new account's first login is not a wake-up.
    assert run_detection("auth_dormant_account", events=wake).is_empty()


def test_only_the_first_return_of_a_seasonal_account_alerts(run_detection: Run) -> None:
    user = STAFF[0]
    events = (
        history([user], days=(0, 1, 2))
        + history([user], days=(30, 31))
        + login(user, HOME, ts(days=60, hours=2))
    )
    alerts = run_detection("auth_dormant_account", events=events)
    assert alerts["@timestamp"].to_list() == [ts(days=30)]


# -- the simulated estate -------------------------------------------------------------------

MINE = (
    "auth_password_spray",
    "auth_brute_force",
    "auth_success_after_failures",
    "auth_hosting_asn",
    "auth_dormant_account",
)


def step_of(estate: Estate, scenario: str, name: str) -> dict[str, Any]:
    """The ground-truth step by scenario and name (ids depend on the scenarios simulated)."""
    return next(s for s in estate.truth["steps"] if (s["scenario"], s["name"]) == (scenario, name))


@pytest.mark.parametrize(
    ("scenario", "name", "rule"),
    [
        ("password-spray", "password-spray", "auth_password_spray"),
        ("password-spray", "valid-account-login", "auth_success_after_failures"),
        ("password-spray", "valid-account-login", "auth_hosting_asn"),
        ("rogue-admin", "admin-password-guessing", "auth_brute_force"),
        ("rogue-admin", "admin-login", "auth_success_after_failures"),
        ("stolen-credential", "concurrent-login-from-elsewhere", "auth_hosting_asn"),
    ],
)
def test_estate_attack_steps_are_detected(
    estate: Estate, scenario: str, name: str, rule: str
) -> None:
    assert rule in estate.rules_for_step(step_of(estate, scenario, name)["id"])


def test_estate_no_false_positives(estate: Estate) -> None:
    for rule in MINE:
        assert estate.evaluation.fp_by_rule.get(rule, 0) == 0, rule
    assert estate.of("auth_dormant_account").is_empty()


def test_estate_benign_failures_and_new_joiners_stay_silent(estate: Estate) -> None:
    noisy = set()
    for trap in ("password-typo", "username-typo", "password-expired", "new-joiner", "travel"):
        noisy |= {i["user"].lower() for i in estate.trap(trap)["instances"]}
    assert noisy
    mine = estate.alerts.filter(pl.col("rule.id").is_in(MINE))
    assert mine.height >= 5
    named = {u.lower() for users in mine["related.user"].to_list() for u in users or ()}
    attacked = {
        str(step_of(estate, *s)["entities"]["user"]).lower()
        for s in (
            ("password-spray", "valid-account-login"),
            ("stolen-credential", "concurrent-login-from-elsewhere"),
        )
    }
    assert not (named - attacked) & noisy
    # The spray alert names the spraying addresses, not the sprayed accounts' homes.
    spray_alert = estate.of("auth_password_spray")
    assert spray_alert.height == 1
    assert set(spray_alert["related.ip"][0]) == set(
        step_of(estate, "password-spray", "password-spray")["entities"]["attacker_ips"]
    )
