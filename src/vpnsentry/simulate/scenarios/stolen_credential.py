"""``stolen-credential``: a valid account used from an impossible place at the same time.

A user is connected from home through their usual gateway; forty minutes later the same
account logs in from a hosting address on another continent while the home session is still
up, and pulls files from the file servers.
"""

from __future__ import annotations

import numpy as np

from vpnsentry.simulate.core import HOUR, MINUTE, US
from vpnsentry.simulate.scenarios import Context, Scenario, ip, register


@register
class StolenCredential(Scenario):
    name = "stolen-credential"
    summary = (
        "A valid user is logged in from home; 40 minutes later the same account logs in from "
        "a hosting address on another continent (impossible travel, concurrent sessions) and "
        "downloads ~150 MB from file servers."
    )

    def build(self, ctx: Context) -> None:
        est = ctx.est
        victim = ctx.pick_user(est.remote & ~est.admin, salt=20)
        gw = int(est.gw[victim])
        g = est.gateways[gw]
        tz = ctx.tz(int(est.site[victim]))
        day = ctx.day_at(0.55)
        while day > 0 and not est.sites[int(est.site[victim])].is_workday(ctx.win.date(day)):
            day -= 1
        home = int(est.home_ip(np.array([victim]), day)[0])
        start = ctx.at(day, 9.1, tz)
        # The victim's own session (benign: it is what makes the other one impossible).
        tun_home = ctx.tunnel(gw)
        ctx.session(
            -1,
            gw,
            est.names[victim],
            home,
            start,
            start + 7 * HOUR,
            tun_home,
            out_bytes=35_000_000,
            in_bytes=240_000_000,
        )
        far = [i for i, h in enumerate(est.cfg.hosting) if h.country != est.country[victim]]
        attacker = ctx.hosting(1, salt=21, provider=far[0] if far else None)[0]
        t = start + 40 * MINUTE
        tunnel = ctx.tunnel(gw)
        tag = ctx.step(
            "concurrent-login-from-elsewhere",
            ("T1078", "T1133"),
            "The same account logs in from a hosting address in another country while its"
            " session from home is still connected: impossible travel.",
            gateway=g.id,
            user=est.names[victim],
            home_ip=ip(home),
            home_tunnel_ip=ip(tun_home),
            source_ip=ip(attacker),
            source_provider=ctx.provider_of(attacker),
            tunnel_ip=ip(tunnel),
        )
        ctx.session(
            tag,
            gw,
            est.names[victim],
            attacker,
            t,
            t + 95 * MINUTE,
            tunnel,
            out_bytes=3_100_000,
            in_bytes=160_000_000,
        )
        fs = est.hosts("file_server")
        tag = ctx.step(
            "file-collection-over-vpn",
            ("T1039",),
            "From the attacker's tunnel address, ~150 MB are read from file servers over SMB.",
            user=est.names[victim],
            tunnel_ip=ip(tunnel),
            servers=[ip(int(x)) for x in fs],
        )
        if len(fs):
            k = 10
            ts = t + 5 * MINUTE + np.sort(ctx.rng.integers(0, 80 * MINUTE, k))
            rb = ctx.rng.integers(10_000_000, 20_000_000, k)
            ctx.flows(
                tag,
                "smb",
                ts,
                tunnel,
                fs[ctx.rng.integers(0, len(fs), k)],
                rb=rb,
                ob=rb // 300,
                dur=(rb / 3e6 * US).astype(np.int64),
                state="SF",
                user=np.full(k, victim),
            )
