"""``session-hijack``: a tunnel address keeps being used after its user logged out.

A user's VPN session ends normally (the gateway logs the logout), yet traffic from the same
tunnel address continues for well over an hour: file shares, the directory, the intranet. The
session was taken over (a stolen session cookie replayed), so the gateway kept the tunnel up.
"""

from __future__ import annotations

import numpy as np

from vpnsentry.simulate.core import HOUR, MINUTE
from vpnsentry.simulate.scenarios import Context, Scenario, ip, register


@register
class SessionHijack(Scenario):
    name = "session-hijack"
    summary = (
        "A user's VPN session ends with a logged logout, but traffic from the same tunnel "
        "address continues for ~100 minutes (SMB, LDAP, intranet): a hijacked session (stolen "
        "session cookie replayed) that the gateway kept alive."
    )

    def build(self, ctx: Context) -> None:
        est = ctx.est
        ok = est.remote & np.isin(
            est.gw, [i for i, g in enumerate(est.gateways) if g.vendor != "openvpn"]
        )
        victim = ctx.pick_user(ok if ok.any() else est.remote, salt=30)
        gw = int(est.gw[victim])
        g = est.gateways[gw]
        tz = ctx.tz(int(est.site[victim]))
        day = ctx.day_at(0.66)
        home = int(est.home_ip(np.array([victim]), day)[0])
        start = ctx.at(day, 13.0, tz)
        end = start + 3 * HOUR
        tunnel = ctx.tunnel(gw)
        ctx.session(
            -1,
            gw,
            est.names[victim],
            home,
            start,
            end,
            tunnel,
            out_bytes=12_000_000,
            in_bytes=95_000_000,
        )
        tag = ctx.step(
            "traffic-after-logout",
            ("T1563", "T1550.004"),
            "After the gateway logged the session's end, the same tunnel address keeps"
            " reaching internal servers for ~100 minutes.",
            gateway=g.id,
            user=est.names[victim],
            tunnel_ip=ip(tunnel),
            home_ip=ip(home),
        )
        t = end + 4 * MINUTE
        fs = est.hosts("file_server")
        dcs = est.hosts("domain_controller")
        intra = est.hosts("intranet")
        for svc, hosts, k in (("smb", fs, 14), ("ldap", dcs, 8), ("intranet", intra, 10)):
            if not len(hosts):
                continue
            ts = t + np.sort(ctx.rng.integers(0, 100 * MINUTE, k))
            ctx.flows(
                tag,
                svc,
                ts,
                tunnel,
                hosts[ctx.rng.integers(0, len(hosts), k)],
                state="SF",
                user=np.full(k, victim),
            )
