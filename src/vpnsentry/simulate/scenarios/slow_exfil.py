"""``slow-exfil``: low-and-slow upload below naive thresholds, over many days.

An R&D workstation at HQ reads from the source-code server as usual, but every working day it
also sends a few megabytes to the same hosting address in small uploads (300-800 KB), spread
over business hours: no single day or connection stands out, the sum does.
"""

from __future__ import annotations

import numpy as np

from vpnsentry.simulate.core import HOUR, US
from vpnsentry.simulate.scenarios import Context, Scenario, ip, register


@register
class SlowExfil(Scenario):
    name = "slow-exfil"
    summary = (
        "An HQ R&D workstation uploads 5-10 MB per working day in 300-800 KB HTTPS chunks to "
        "one hosting address, spread over business hours for up to 12 days: each connection "
        "and each day stays below naive volume thresholds."
    )

    def build(self, ctx: Context) -> None:
        est = ctx.est
        mask = est.rd if est.rd.any() else (est.site == est.hq)
        victim = ctx.pick_user(mask, salt=50)
        src = int(est.ws[victim])
        site = int(est.site[victim])
        tz = ctx.tz(site)
        drop = ctx.hosting(1, salt=51, provider=0)[0]
        first = ctx.day_at(0.25)
        days = [
            d
            for d in range(first, min(ctx.win.days, first + 16))
            if est.sites[site].is_workday(ctx.win.date(d))
        ][:12]
        tag = ctx.step(
            "low-and-slow-exfiltration",
            ("T1048.002", "T1030"),
            "Small HTTPS uploads (300-800 KB) to one rare hosting address, 10-15 per working"
            " day over many days; a few MB per day.",
            hosts=[ip(src)],
            host_owner=est.names[victim],
            destination_ip=ip(drop),
            destination_provider=ctx.provider_of(drop),
        )
        total = 0
        for d in days:
            k = int(ctx.rng.integers(10, 16))
            ts = np.sort(ctx.at(d, 9.5, tz) + ctx.rng.integers(0, 8 * HOUR, k))
            ob = ctx.rng.integers(300_000, 800_000, k)
            total += int(ob.sum())
            ctx.flows(
                tag,
                "https",
                ts,
                src,
                drop,
                ob=ob,
                rb=ctx.rng.integers(900, 2500, k),
                dur=ctx.rng.integers(2 * US, 9 * US, k),
                state="SF",
            )
        ctx.steps[-1].entities["total_bytes"] = total
        ctx.steps[-1].entities["days"] = [ctx.win.date(d).isoformat() for d in days]
