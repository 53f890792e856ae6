"""Benign life of the estate, one local calendar day at a time, generated in whole columns.

The variety is the point: each of these makes a naive detection fire in a real SOC, and each
is recorded in ground truth as a named *trap* so a detection's false positives can be counted:

* working hours in each site's time zone, weekends and public holidays;
* hybrid work: VPN sessions from home ISPs, 1-3 per day, some idle-timed-out, a few left
  connected for days (``long-lived-session``), RDP from home to the office PC;
* ``travel``: a trip abroad, with a travel day without logins between the last login at home
  and the first from the destination (physically plausible);
* ``new-joiner``: accounts that start logging in mid-window;
* ``password-typo``, ``password-expired``, ``username-typo``: failed logins followed by success;
* ``admin-cross-site``: IT admins RDP/SSH/WinRM to servers at other sites;
* ``nightly-backup``: the backup server pulls gigabytes from every branch file server;
* ``vulnerability-scan``: the scanner fans out over every subnet on Wednesday nights;
* ``patch-day``: WSUS downloads gigabytes from Windows Update, then every PC pulls hundreds
  of megabytes from WSUS (across the WAN for branches);
* ``portal-background-noise``: the Internet knocks on every VPN portal all day, with the odd
  failed login as ``admin`` or ``test``;
* ``gateway-admin``: network admins log in to gateways and save configurations.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import polars as pl

from vpnsentry.simulate.core import (
    ADMIN_SCHEMA,
    DAY,
    FAIL_SCHEMA,
    HOUR,
    I64,
    MINUTE,
    PORTAL_SCHEMA,
    SESSION_SCHEMA,
    US,
    Window,
    frame,
    in_prefixes,
    iso,
    local_midnight,
    mix,
)
from vpnsentry.simulate.estate import Estate
from vpnsentry.simulate.events import Events, make_flows
from vpnsentry.simulate.route import SERVICES
from vpnsentry.simulate.services import INTERNAL, INTERNET, WINDOWS_UPDATE, internet_weights

#: Addresses at the top of each VPN pool kept for scenarios, so attack sessions never
#: collide with benign ones.
RESERVED_POOL = 256


@dataclass
class Trap:
    """A benign pattern that looks suspicious, and where it happened."""

    name: str
    description: str
    instances: list[dict[str, Any]] = field(default_factory=list)
    count: int = 0

    def add(self, **instance: Any) -> None:
        self.count += 1
        if len(self.instances) < 200:
            self.instances.append(instance)


def pool_range(est: Estate, gw: int) -> tuple[int, int]:
    """First and last address of the gateway pool's benign part."""
    pool = est.gateways[gw].pool
    return int(pool[0]) + 2, int(pool[-1]) - RESERVED_POOL


class Benign:
    """Generates the benign events of one local date at every site."""

    def __init__(self, est: Estate, window: Window) -> None:
        self.est = est
        self.win = window
        self.names = pl.Series("names", est.names, dtype=pl.String)
        n_gw = len(est.gateways)
        self.pool_next = np.zeros(n_gw, dtype=np.int64)
        self.sid_next = np.array([1_000_000 * (i + 1) for i in range(n_gw)], dtype=np.int64)
        self.vendor = [g.vendor for g in est.gateways]
        self.traps = {
            t.name: t
            for t in (
                Trap(
                    "travel",
                    "user works abroad for some days; the first login from the"
                    " destination follows a travel day without logins",
                ),
                Trap("new-joiner", "account first seen mid-window (a new employee)"),
                Trap("password-typo", "failed VPN login (wrong password) followed by success"),
                Trap("username-typo", "failed VPN login with a mistyped user name"),
                Trap("password-expired", "VPN login rejected as password expired, then success"),
                Trap("long-lived-session", "VPN session left connected for more than 16 hours"),
                Trap("rdp-from-home", "VPN user RDPs to their own office PC"),
                Trap("admin-cross-site", "IT admin RDP/SSH/WinRM to servers at another site"),
                Trap("nightly-backup", "backup server pulls gigabytes from a branch file server"),
                Trap("vulnerability-scan", "scanner fans out over every subnet"),
                Trap("patch-day", "WSUS downloads gigabytes; PCs pull hundreds of MB from WSUS"),
                Trap(
                    "portal-background-noise",
                    "Internet hosts probe VPN portals and try default accounts",
                ),
                Trap("gateway-admin", "network admin logs in to a gateway and saves config"),
            )
        }
        rng = np.random.default_rng([est.seed, 3])
        self.join_day = np.full(est.n, -(10**6), dtype=np.int64)
        joiners = np.flatnonzero(rng.random(est.n) < 0.015)
        if window.days > 3 and len(joiners):
            self.join_day[joiners] = rng.integers(2, window.days - 1, len(joiners))
            for u in joiners:
                self.traps["new-joiner"].add(
                    user=est.names[u], first_day=window.date(int(self.join_day[u])).isoformat()
                )
        self._plan_trips(rng)
        self.dc = {i: est.hosts("domain_controller", i) for i in range(len(est.sites))}
        self.fs = {i: est.hosts("file_server", i) for i in range(len(est.sites))}
        self.hq = est.hq

    # ---- trips ---------------------------------------------------------------------

    def _plan_trips(self, rng: np.random.Generator) -> None:
        est, days = self.est, self.win.days
        cand = np.flatnonzero(est.remote)
        p = min(0.5, 0.05 * days / 30)
        trav = cand[rng.random(len(cand)) < p] if days >= 6 else cand[:0]
        self.trip_user = trav
        self.trip_start = rng.integers(1, max(2, days - 4), len(trav))
        self.trip_end = np.minimum(self.trip_start + rng.integers(4, 10, len(trav)), days)
        dest = []
        for u in trav:
            opts = [c for c in est.cfg.travel if c != est.country[u]]
            dest.append(opts[int(rng.integers(len(opts)))] if opts else est.country[u])
        self.trip_dest = dest
        self.trip_isp = np.array(
            [est.isps_in(c)[int(rng.integers(len(est.isps_in(c))))] for c in dest], dtype=np.int32
        )
        for u, s, e, c in zip(trav, self.trip_start, self.trip_end, dest, strict=True):
            self.traps["travel"].add(
                user=est.names[u],
                home=str(est.country[u]),
                destination=c,
                travel_out=self.win.date(int(s)).isoformat(),
                travel_back=self.win.date(int(e)).isoformat(),
            )

    def _trip_state(self, users: npt.NDArray[np.int64], day: int) -> tuple[np.ndarray, np.ndarray]:
        """Per user: 0 at home, 1 on a travel day, 2 abroad; and the trip index (or -1)."""
        state = np.zeros(len(users), dtype=np.int8)
        trip = np.full(len(users), -1, dtype=np.int64)
        pos = {int(u): i for i, u in enumerate(users)}
        for t, u in enumerate(self.trip_user):
            i = pos.get(int(u))
            if i is None:
                continue
            s, e = int(self.trip_start[t]), int(self.trip_end[t])
            if day in (s, e):
                state[i], trip[i] = 1, t
            elif s < day < e:
                state[i], trip[i] = 2, t
        return state, trip

    # ---- one day ---------------------------------------------------------------------

    def day(self, date: dt.date, i: int) -> Events:
        """Events of local date ``date`` (window day ``i``, -1 for the eve) at every site."""
        est = self.est
        ev = Events()
        rng = np.random.default_rng([est.seed, 2, i + 2])
        for si, site in enumerate(est.sites):
            users = np.flatnonzero(est.site == si)
            if not len(users):
                continue
            n = len(users)
            m0 = local_midnight(date, site.timezone)
            workday = site.is_workday(date)
            joined = self.join_day[users] <= i
            away = rng.random(n) < 0.05
            trip_state, trip = self._trip_state(users, i)
            p_remote = est.remote_p[users] if workday else np.where(est.remote[users], 0.03, 0.0)
            remote = rng.random(n) < p_remote
            home = joined & ~away & (trip_state == 0)
            office = home & ~remote & workday
            remote &= home
            start = m0 + ((est.start_h[users] + rng.normal(0, 0.3, n)) * HOUR).astype(np.int64)
            end = start + ((est.len_h[users] + rng.normal(0, 0.5, n)) * HOUR).astype(np.int64)
            patch = self._patch_wave(date, site.timezone)
            self._office(ev, rng, users[office], start[office], end[office], si, patch)
            self._remote(ev, rng, users[remote], start[remote], end[remote], i, None, patch)
            abroad = joined & (trip_state == 2)
            if abroad.any():
                for t in np.unique(trip[abroad]):
                    sel = abroad & (trip == t)
                    tz = est.tz_of_country(self.trip_dest[t])
                    m1 = local_midnight(date, tz)
                    st = m1 + ((est.start_h[users[sel]] + rng.normal(0, 0.5)) * HOUR).astype(
                        np.int64
                    )
                    en = st + ((est.len_h[users[sel]] - 1.5) * HOUR).astype(np.int64)
                    self._remote(ev, rng, users[sel], st, en, i, int(self.trip_isp[t]), False)
            on = joined & (rng.random(n) < 0.6)
            self._telemetry(ev, rng, users[on], m0)
        self._infrastructure(ev, rng, date)
        return ev

    def _patch_wave(self, date: dt.date, tz: str) -> bool:
        """PCs pull updates from WSUS the two days after Patch Tuesday (2nd Tuesday)."""
        second_tuesday = 8 + (1 - dt.date(date.year, date.month, 1).weekday()) % 7
        return date.day in (second_tuesday + 1, second_tuesday + 2)

    # ---- office ----------------------------------------------------------------------

    def _site_host(self, table: dict[int, np.ndarray], site: int) -> int:
        hosts = table.get(site)
        if hosts is None or not len(hosts):
            hosts = table[self.hq]
        return int(hosts[0])

    def _office(
        self,
        ev: Events,
        rng: np.random.Generator,
        users: np.ndarray,
        start: I64,
        end: I64,
        site: int,
        patch: bool,
    ) -> None:
        est = self.est
        if not len(users):
            return
        src = est.ws[users]
        self._internet(ev, rng, users, src, start, end, 70.0)
        local = {
            "dns": (self._site_host(self.dc, site), 10.0),
            "kerberos": (self._site_host(self.dc, site), 4.0),
            "ldap": (self._site_host(self.dc, site), 4.0),
            "smb": (self._site_host(self.fs, site), 6.0),
        }
        hq_hosts = {
            "smb": (self._site_host(self.fs, self.hq), 1.5),
            "mail": (int(est.hosts("mail")[0]) if len(est.hosts("mail")) else 0, 6.0),
            "intranet": (int(est.hosts("intranet")[0]) if len(est.hosts("intranet")) else 0, 4.0),
            "erp": (int(est.hosts("erp")[0]) if len(est.hosts("erp")) else 0, 2.0),
        }
        for table in (local, hq_hosts):
            for svc, (dst, lam) in table.items():
                if dst:
                    self._service(ev, rng, users, src, start, end, svc, dst, lam)
        rd = est.rd[users]
        if rd.any():
            self._crown_jewels(ev, rng, users[rd], src[rd], start[rd], end[rd], 1.0)
        self._admin_work(ev, rng, users, src, start, end, site)
        if patch:
            self._wsus_pull(ev, rng, users, src, start, end)

    def _service(
        self,
        ev: Events,
        rng: np.random.Generator,
        users: np.ndarray,
        src: np.ndarray,
        start: I64,
        end: I64,
        svc: str,
        dst: int,
        lam: float,
        user_col: bool = False,
    ) -> None:
        k = rng.poisson(lam, len(users))
        if not k.sum():
            return
        rep = np.repeat(np.arange(len(users)), k)
        ts = start[rep] + (rng.random(len(rep)) * (end[rep] - start[rep])).astype(np.int64)
        ev.flows.append(
            make_flows(
                rng,
                INTERNAL[svc],
                ts,
                src[rep],
                np.full(len(rep), dst, dtype=np.uint32),
                user=users[rep] if user_col else None,
            )
        )

    def _internet(
        self,
        ev: Events,
        rng: np.random.Generator,
        users: np.ndarray,
        src: np.ndarray,
        start: I64,
        end: I64,
        lam: float,
        user_col: bool = False,
    ) -> None:
        k = rng.poisson(lam, len(users))
        rep = np.repeat(np.arange(len(users)), k)
        if not len(rep):
            return
        ts = start[rep] + (rng.random(len(rep)) * (end[rep] - start[rep])).astype(np.int64)
        which = rng.choice(len(INTERNET), size=len(rep), p=internet_weights())
        h = mix(self.est.seed, 21, rng.integers(0, 1 << 62, len(rep)))
        for j, svc in enumerate(INTERNET):
            sel = which == j
            if not sel.any():
                continue
            dst = in_prefixes(list(svc.networks), h[sel])
            ev.flows.append(
                make_flows(
                    rng,
                    svc,
                    ts[sel],
                    src[rep[sel]],
                    dst,
                    user=users[rep[sel]] if user_col else None,
                )
            )

    def _crown_jewels(
        self,
        ev: Events,
        rng: np.random.Generator,
        users: np.ndarray,
        src: np.ndarray,
        start: I64,
        end: I64,
        scale: float,
        user_col: bool = False,
    ) -> None:
        for svc, role, lam in (
            ("git", "source_code", 8.0),
            ("gitweb", "source_code", 6.0),
            ("smb", "file_server", 4.0),
            ("mssql", "database", 2.0),
        ):
            hosts = [h for h in self.est.inv.hosts_with_role(role) if h.crown_jewel]
            if hosts:
                self._service(
                    ev, rng, users, src, start, end, svc, int(hosts[0].ip), lam * scale, user_col
                )

    def _admin_work(
        self,
        ev: Events,
        rng: np.random.Generator,
        users: np.ndarray,
        src: np.ndarray,
        start: I64,
        end: I64,
        site: int,
        user_col: bool = False,
    ) -> None:
        """IT admins reach servers at every site (from the jump host when in the office)."""
        est = self.est
        adm = est.admin[users]
        if not adm.any():
            return
        servers = np.array([int(h.ip) for h in est.inv.hosts], dtype=np.uint32)
        jump = est.hosts("jump")
        a_users, a_src = users[adm], src[adm]
        if not user_col and len(jump):
            a_src = np.full(len(a_users), jump[0], dtype=np.uint32)
        for svc, lam in (("rdp", 3.0), ("ssh", 2.0), ("winrm", 1.0)):
            k = rng.poisson(lam, len(a_users))
            rep = np.repeat(np.arange(len(a_users)), k)
            if not len(rep):
                continue
            s, e = start[adm][rep], end[adm][rep]
            ts = s + (rng.random(len(rep)) * (e - s)).astype(np.int64)
            dst = servers[rng.integers(0, len(servers), len(rep))]
            ev.flows.append(
                make_flows(
                    rng,
                    INTERNAL[svc],
                    ts,
                    a_src[rep],
                    dst,
                    user=a_users[rep] if user_col else None,
                    state="SF",
                )
            )
            for u, d, t in zip(a_users[rep][:3], dst[:3], ts[:3], strict=False):
                self.traps["admin-cross-site"].add(
                    user=est.names[u], service=svc, dst=_ip(int(d)), time=iso(int(t))
                )

    def _wsus_pull(
        self,
        ev: Events,
        rng: np.random.Generator,
        users: np.ndarray,
        src: np.ndarray,
        start: I64,
        end: I64,
        user_col: bool = False,
    ) -> None:
        wsus = self.est.hosts("wsus")
        if not len(wsus):
            return
        n = len(users)
        ts = start + (rng.random(n) * (end - start) * 0.3).astype(np.int64)
        rb = rng.lognormal(19.8, 0.4, n).astype(np.int64)
        dur = (rb / rng.uniform(2e6, 8e6, n) * US).astype(np.int64)
        ev.flows.append(
            make_flows(
                rng,
                INTERNAL["wsus"],
                ts,
                src,
                np.full(n, wsus[0], dtype=np.uint32),
                user=users if user_col else None,
                rb=rb,
                dur=dur,
                state="SF",
            )
        )
        self.traps["patch-day"].add(
            kind="clients", pcs=n, day=iso(int(ts.min()))[:10], bytes=int(rb.sum())
        )

    def _telemetry(self, ev: Events, rng: np.random.Generator, users: np.ndarray, m0: int) -> None:
        """PCs left on talk to update and telemetry services around the clock."""
        if not len(users):
            return
        src = self.est.ws[users]
        self._internet(
            ev,
            rng,
            users,
            src,
            np.full(len(users), m0, dtype=np.int64),
            np.full(len(users), m0 + DAY, dtype=np.int64),
            3.0,
        )

    # ---- remote work -----------------------------------------------------------------

    def _remote(
        self,
        ev: Events,
        rng: np.random.Generator,
        users: np.ndarray,
        start: I64,
        end: I64,
        day: int,
        isp: int | None,
        patch: bool,
    ) -> None:
        est = self.est
        users = users[est.gw[users] >= 0]
        if not len(users):
            return
        m = len(users)
        k = rng.choice([1, 2, 3], size=m, p=[0.7, 0.25, 0.05])
        rep = np.repeat(np.arange(m), k)
        first = np.repeat(np.cumsum(k) - k, k)
        j = np.arange(len(rep)) - first
        kk = k[rep]
        span = (end - start)[rep] // kk
        gap = (rng.uniform(5, 40, len(rep)) * MINUTE).astype(np.int64)
        s = start[rep] + j * span + np.where(j > 0, gap, 0)
        e = start[rep] + (j + 1) * span - np.where(j < kk - 1, gap, 0)
        u = users[rep]
        long = rng.random(len(rep)) < 0.01
        e = np.where(long, e + (rng.uniform(16, 60, len(rep)) * HOUR).astype(np.int64), e)
        idle = rng.random(len(rep)) < 0.1
        gw = est.gw[u].astype(np.int64)
        if isp is None:
            src = est.home_ip(u, day)
        else:
            h = mix(est.seed, 31, u, day)
            src = est.isp_addresses(np.full(len(u), isp, dtype=np.int32), h)
        tunnel = np.zeros(len(u), dtype=np.uint32)
        sid = np.zeros(len(u), dtype=np.int64)
        order = np.argsort(s, kind="stable")
        for g in np.unique(gw):
            sel = order[gw[order] == g]
            lo, hi = pool_range(est, int(g))
            span_pool = hi - lo + 1
            tunnel[sel] = (lo + (self.pool_next[g] + np.arange(len(sel))) % span_pool).astype(
                np.uint32
            )
            self.pool_next[g] += len(sel)
            sid[sel] = self.sid_next[g] + 2 * np.arange(len(sel))
            self.sid_next[g] += 2 * len(sel)
        sport = rng.integers(1024, 65535, len(u)).astype(np.int32)
        # Traffic through the tunnel.
        flows_before = len(ev.flows)
        frac = np.clip((e - s) / ((est.len_h[u] + 0.01) * HOUR), 0.05, 3.0)
        site = est.site[u]
        full_tunnel = np.array([self.vendor[g] != "openvpn" for g in gw])
        for svc, lam, table in (
            ("dns", 10.0, self.dc),
            ("kerberos", 3.0, self.dc),
            ("ldap", 3.0, self.dc),
            ("smb", 5.0, self.fs),
        ):
            dst = np.array([self._site_host(table, int(x)) for x in site], dtype=np.uint32)
            self._sessions_service(ev, rng, u, tunnel, s, e, frac, svc, dst, lam)
        for svc, role, lam in (
            ("mail", "mail", 6.0),
            ("intranet", "intranet", 4.0),
            ("erp", "erp", 2.0),
        ):
            hosts = est.hosts(role)
            if len(hosts):
                dst = np.full(len(u), hosts[0], dtype=np.uint32)
                self._sessions_service(ev, rng, u, tunnel, s, e, frac, svc, dst, lam)
        ft = full_tunnel
        if ft.any():
            self._internet(ev, rng, u[ft], tunnel[ft], s[ft], e[ft], 40.0, user_col=True)
        rd = est.rd[u]
        if rd.any():
            self._crown_jewels(ev, rng, u[rd], tunnel[rd], s[rd], e[rd], 0.6, user_col=True)
        self._admin_work(ev, rng, u, tunnel, s, e, int(site[0]), user_col=True)
        if patch:
            self._wsus_pull(ev, rng, u, tunnel, s, e, user_col=True)
        rdp = rng.random(len(u)) < 0.1
        if rdp.any():
            n = int(rdp.sum())
            dur = ((e - s)[rdp] * rng.uniform(0.3, 0.9, n)).astype(np.int64)
            ev.flows.append(
                make_flows(
                    rng,
                    INTERNAL["rdp"],
                    s[rdp] + 2 * MINUTE,
                    tunnel[rdp],
                    est.ws[u[rdp]],
                    user=u[rdp],
                    dur=dur,
                    state="SF",
                )
            )
            for x, t in zip(u[rdp][:2], s[rdp][:2], strict=False):
                self.traps["rdp-from-home"].add(user=est.names[x], time=iso(int(t)))
        # Session byte counts: what went through the tunnel plus protocol overhead.
        new = [b for b in ev.flows[flows_before:] if len(b["ts"])]
        out_b = np.zeros(len(u), dtype=np.int64)
        in_b = np.zeros(len(u), dtype=np.int64)
        if new:
            fsrc = np.concatenate([b["src"] for b in new])
            order_t = np.argsort(tunnel, kind="stable")
            pos = np.searchsorted(tunnel[order_t], fsrc)
            pos = np.clip(pos, 0, len(u) - 1)
            hit = tunnel[order_t][pos] == fsrc
            owner = order_t[pos[hit]]
            out_b += np.bincount(
                owner, np.concatenate([b["ob"] for b in new])[hit], minlength=len(u)
            ).astype(np.int64)
            in_b += np.bincount(
                owner, np.concatenate([b["rb"] for b in new])[hit], minlength=len(u)
            ).astype(np.int64)
        overhead = (e - s) // US * 40
        out_b = (out_b * 1.06).astype(np.int64) + overhead
        in_b = (in_b * 1.06).astype(np.int64) + overhead
        groups = np.where(est.admin[u], "admins", "users")
        group = np.array([_group(self.vendor[g], gr) for g, gr in zip(gw, groups, strict=True)])
        reason = np.where(idle, "idle", "user")
        ev.sessions.append(
            frame(
                SESSION_SCHEMA,
                gw=gw.astype(np.int16),
                user=[est.names[x] for x in u],
                group=list(group),
                src=src,
                sport=sport,
                tunnel=tunnel,
                start=s,
                end=e,
                out_bytes=out_b,
                in_bytes=in_b,
                sid=sid,
                reason=list(reason),
                tag=np.full(len(u), -1, dtype=np.int32),
            )
        )
        self._outer(ev, rng, u, gw, src, sport, s, e, out_b, in_b)
        self._login_failures(ev, rng, u, gw, src, s)
        for x, a, b in zip(u[long], s[long], e[long], strict=True):
            self.traps["long-lived-session"].add(
                user=est.names[x],
                gateway=est.gateways[int(est.gw[x])].id,
                start=iso(int(a)),
                end=iso(int(b)),
            )

    def _sessions_service(
        self,
        ev: Events,
        rng: np.random.Generator,
        u: np.ndarray,
        tunnel: np.ndarray,
        s: I64,
        e: I64,
        frac: np.ndarray,
        svc: str,
        dst: np.ndarray,
        lam: float,
    ) -> None:
        k = rng.poisson(lam * frac)
        rep = np.repeat(np.arange(len(u)), k)
        if not len(rep):
            return
        ts = s[rep] + (rng.random(len(rep)) * (e - s)[rep]).astype(np.int64)
        ev.flows.append(make_flows(rng, INTERNAL[svc], ts, tunnel[rep], dst[rep], user=u[rep]))

    def _outer(
        self,
        ev: Events,
        rng: np.random.Generator,
        u: np.ndarray,
        gw: np.ndarray,
        src: np.ndarray,
        sport: np.ndarray,
        s: I64,
        e: I64,
        out_b: I64,
        in_b: I64,
    ) -> None:
        """The encrypted tunnel itself, as the Internet edge at the gateway's site sees it."""
        est = self.est
        for g in np.unique(gw):
            sel = gw == g
            svc = _TUNNEL_SERVICE[self.vendor[g]]
            n = int(sel.sum())
            ev.flows.append(
                make_flows(
                    rng,
                    SERVICES[svc],
                    s[sel] - 3 * US,
                    src[sel],
                    np.full(n, int(est.gateways[g].outside), dtype=np.uint32),
                    ob=out_b[sel],
                    rb=in_b[sel],
                    dur=(e - s)[sel] + 3 * US,
                    state="SF",
                    sport=sport[sel],
                )
            )

    def _login_failures(
        self,
        ev: Events,
        rng: np.random.Generator,
        u: np.ndarray,
        gw: np.ndarray,
        src: np.ndarray,
        s: I64,
    ) -> None:
        est = self.est
        r = rng.random(len(u))
        kinds = (
            ("bad_password", 0.03, "password-typo"),
            ("unknown_user", 0.004, "username-typo"),
            ("expired", 0.002, "password-expired"),
        )
        lo = 0.0
        for reason, p, trap in kinds:
            sel = (r >= lo) & (r < lo + p)
            lo += p
            if not sel.any():
                continue
            back = (rng.uniform(8, 90, int(sel.sum())) * US).astype(np.int64)
            if reason == "expired":
                back = (rng.uniform(3, 12, int(sel.sum())) * MINUTE).astype(np.int64)
            names = [est.names[x] for x in u[sel]]
            if reason == "unknown_user":
                names = [n[:-1] if len(n) > 3 else n + "x" for n in names]
            ev.fails.append(
                frame(
                    FAIL_SCHEMA,
                    gw=gw[sel].astype(np.int16),
                    user=names,
                    src=src[sel],
                    sport=rng.integers(1024, 65535, int(sel.sum())),
                    ts=s[sel] - back,
                    reason=reason,
                    tag=np.full(int(sel.sum()), -1, dtype=np.int32),
                )
            )
            for name, t in zip(names[:3], (s[sel] - back)[:3], strict=False):
                self.traps[trap].add(user=name, time=iso(int(t)))
            self.traps[trap].count += max(0, int(sel.sum()) - 3)

    # ---- infrastructure ---------------------------------------------------------------

    def _infrastructure(self, ev: Events, rng: np.random.Generator, date: dt.date) -> None:
        """Servers' own schedules, on HQ's calendar."""
        est = self.est
        hq_site = est.sites[self.hq]
        m0 = local_midnight(date, hq_site.timezone)
        self._replication(ev, rng, m0)
        self._backup(ev, rng, m0)
        if date.isoweekday() == 3:
            self._scan(ev, rng, m0 + 2 * HOUR)
        second_tuesday = 8 + (1 - dt.date(date.year, date.month, 1).weekday()) % 7
        if date.day == second_tuesday:
            self._wsus_download(ev, rng, m0 + 3 * HOUR)
        if hq_site.is_workday(date):
            self._gateway_admin(ev, rng, m0)
        self._portal_noise(ev, rng, m0)

    def _replication(self, ev: Events, rng: np.random.Generator, m0: int) -> None:
        """Branch domain controllers replicate with HQ every 15 minutes."""
        hub = self.dc.get(self.hq)
        if hub is None or not len(hub):
            return
        others = [int(x) for si, d in self.dc.items() if si != self.hq for x in d[:1]]
        if not others:
            return
        t = m0 + np.arange(96, dtype=np.int64) * 15 * MINUTE
        for dc in others:
            ts = t + rng.integers(0, 30 * US, len(t))
            for svc in ("rpc", "drsr"):
                ev.flows.append(
                    make_flows(
                        rng,
                        INTERNAL[svc],
                        ts + (0 if svc == "rpc" else US),
                        np.full(len(t), dc, dtype=np.uint32),
                        np.full(len(t), hub[0], dtype=np.uint32),
                        state="SF",
                    )
                )

    def _backup(self, ev: Events, rng: np.random.Generator, m0: int) -> None:
        est = self.est
        bkp = est.hosts("backup")
        if not len(bkp):
            return
        targets = [int(h.ip) for h in est.inv.hosts_with_role("file_server")]
        n = len(targets)
        ts = m0 + HOUR + (np.arange(n) * 20 * MINUTE).astype(np.int64)
        rb = rng.lognormal(22.5, 0.6, n).astype(np.int64)
        dur = (rb / rng.uniform(20e6, 60e6, n) * US).astype(np.int64)
        ev.flows.append(
            make_flows(
                rng,
                SERVICES["smb-copy"],
                ts,
                np.full(n, bkp[0], dtype=np.uint32),
                np.array(targets, dtype=np.uint32),
                ob=(rb * 0.004).astype(np.int64),
                rb=rb,
                dur=dur,
                state="SF",
            )
        )
        for d, t, b in zip(targets, ts, rb, strict=True):
            self.traps["nightly-backup"].add(
                src=_ip(int(bkp[0])), dst=_ip(d), start=iso(int(t)), bytes=int(b)
            )

    def _scan(self, ev: Events, rng: np.random.Generator, t0: int) -> None:
        est = self.est
        scanners = est.hosts("scanner")
        if not len(scanners):
            return
        ports = np.array([22, 80, 135, 139, 443, 445, 1433, 3389, 5985, 8080])
        servers = np.array([int(h.ip) for h in est.inv.hosts], dtype=np.uint32)
        ws_nets = [n.cidr for n in est.inv.subnets if n.role == "workstations"]
        ws = np.concatenate(
            [np.arange(int(n[0]) + 1, int(n[0]) + 255, dtype=np.uint64) for n in ws_nets]
        ).astype(np.uint32)
        dst = np.concatenate([np.repeat(servers, len(ports)), np.repeat(ws, 3)])
        dport = np.concatenate([np.tile(ports, len(servers)), np.tile([135, 445, 3389], len(ws))])
        n = len(dst)
        ts = t0 + np.sort(rng.integers(0, 2 * HOUR, n))
        alive = np.isin(dst, servers) | (rng.random(n) < 0.3)
        for state, sel in (("REJ", alive & (rng.random(n) < 0.8)), ("SF", alive), ("S0", ~alive)):
            sel = sel.copy()
            alive &= ~sel  # each row once
            if not sel.any():
                continue
            ev.flows.append(
                make_flows(
                    rng,
                    SERVICES["probe"],
                    ts[sel],
                    np.full(int(sel.sum()), scanners[0], dtype=np.uint32),
                    dst[sel],
                    state=state,
                    dport=dport[sel],
                    ob=np.full(int(sel.sum()), 0),
                    rb=np.full(int(sel.sum()), 120),
                    dur=np.full(int(sel.sum()), 20_000),
                )
            )
        self.traps["vulnerability-scan"].add(
            src=_ip(int(scanners[0])), start=iso(int(ts[0])), end=iso(int(ts[-1])), targets=int(n)
        )

    def _wsus_download(self, ev: Events, rng: np.random.Generator, t0: int) -> None:
        wsus = self.est.hosts("wsus")
        if not len(wsus):
            return
        n = 12
        ts = t0 + np.arange(n, dtype=np.int64) * 4 * MINUTE
        h = mix(self.est.seed, 41, ts)
        dst = in_prefixes(list(WINDOWS_UPDATE.networks), h)
        df = make_flows(
            rng, WINDOWS_UPDATE, ts, np.full(n, wsus[0], dtype=np.uint32), dst, state="SF"
        )
        ev.flows.append(df)
        self.traps["patch-day"].add(
            kind="wsus-download",
            src=_ip(int(wsus[0])),
            start=iso(int(ts[0])),
            bytes=int(df["rb"].sum()),
        )

    def _gateway_admin(self, ev: Events, rng: np.random.Generator, m0: int) -> None:
        est = self.est
        admins = np.flatnonzero(est.admin)
        jump = est.hosts("jump")
        if not len(admins) or not len(jump):
            return
        rows: list[dict[str, Any]] = []
        for g, gw in enumerate(est.gateways):
            if gw.vendor == "openvpn" or rng.random() > 0.2:
                continue
            who = est.names[int(admins[rng.integers(len(admins))])]
            t = m0 + int(rng.uniform(10, 17) * HOUR)
            base = {"gw": g, "user": who, "src": int(jump[0]), "tag": -1}
            rows.append({**base, "ts": t, "kind": "login_ok"})
            if gw.vendor == "fortinet_fortigate":
                obj = f"srv-{int(rng.integers(1, 400))}"
                rows.append(
                    {
                        **base,
                        "ts": t + 4 * MINUTE,
                        "kind": "config",
                        "action": "Edit",
                        "path": "firewall.address",
                        "obj": obj,
                        "attr": f"subnet[10.10.32.{int(rng.integers(2, 250))} 255.255.255.255]",
                    }
                )
            elif gw.vendor == "panw_panos":
                obj = f"srv-{int(rng.integers(1, 400))}"
                rows.append(
                    {
                        **base,
                        "ts": t + 4 * MINUTE,
                        "kind": "config",
                        "action": "set",
                        "path": f" vsys  vsys1 address  {obj}",
                        "attr": f"ip-netmask: 10.10.32.{int(rng.integers(2, 250))}/32",
                    }
                )
                rows.append({**base, "ts": t + 5 * MINUTE, "kind": "config", "action": "commit"})
            else:
                rows.append(
                    {
                        **base,
                        "ts": t + 4 * MINUTE,
                        "kind": "command",
                        "attr": "object network srv-app01",
                    }
                )
                rows.append(
                    {**base, "ts": t + 5 * MINUTE, "kind": "command", "attr": "write memory"}
                )
            self.traps["gateway-admin"].add(gateway=gw.id, user=who, time=iso(t))
        if rows:
            ev.admin.append(
                pl.DataFrame(rows)
                .with_columns(
                    *[
                        pl.lit(None, dtype=pl.String).alias(c)
                        for c in ("action", "path", "obj", "attr")
                        if c not in rows[0] and not any(c in r for r in rows)
                    ]
                )
                .select([pl.col(c).cast(t) for c, t in ADMIN_SCHEMA.items()])
            )

    def _portal_noise(self, ev: Events, rng: np.random.Generator, m0: int) -> None:
        """Scanners and bots knock on every portal; some try default account names."""
        est = self.est
        sources = [*est.cfg.hosting, *est.isp_list]
        for g, gw in enumerate(est.gateways):
            n = int(rng.poisson(15)) + 1
            ts = m0 + np.sort(rng.integers(0, DAY, n))
            which = rng.integers(0, len(sources), n)
            h = mix(est.seed, 51, g, ts)
            src = np.zeros(n, dtype=np.uint32)
            for w in np.unique(which):
                sel = which == w
                src[sel] = in_prefixes(list(sources[w].prefixes), h[sel])
            ev.portal.append(
                frame(
                    PORTAL_SCHEMA,
                    gw=np.full(n, g, dtype=np.int16),
                    ts=ts,
                    src=src,
                    sport=rng.integers(1024, 65535, n),
                    tag=np.full(n, -1, dtype=np.int32),
                )
            )
            self.traps["portal-background-noise"].count += n
            k = min(int(rng.poisson(2)), n)
            if gw.vendor == "openvpn" or not k:
                continue
            pick = rng.choice(n, size=k, replace=False)
            users = [
                str(x) for x in rng.choice(["admin", "test", "vpn", "user", "guest", "support"], k)
            ]
            ev.fails.append(
                frame(
                    FAIL_SCHEMA,
                    gw=np.full(k, g, dtype=np.int16),
                    user=users,
                    src=src[pick],
                    sport=rng.integers(1024, 65535, k),
                    ts=ts[pick] + 2 * US,
                    reason="unknown_user",
                    tag=np.full(k, -1, dtype=np.int32),
                )
            )


#: The service of the encrypted tunnel itself, per gateway vendor (GlobalProtect and
#: Pulse/Ivanti tunnel over TLS on 443 when ESP/UDP is not configured).
_TUNNEL_SERVICE: Final = {
    "fortinet_fortigate": "vpn-ssl",
    "cisco_asa": "vpn-dtls",
    "openvpn": "openvpn",
    "panw_panos": "vpn-ssl",
}


def _group(vendor: str, kind: str) -> str:
    if vendor == "cisco_asa":
        return "GP-IT-Admins" if kind == "admins" else "GP-Employees"
    if vendor == "fortinet_fortigate":
        return "VPN-Admins" if kind == "admins" else "VPN-Users"
    return ""


def _ip(x: int) -> str:
    return f"{x >> 24}.{(x >> 16) & 255}.{(x >> 8) & 255}.{x & 255}"
