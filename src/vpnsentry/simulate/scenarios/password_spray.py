"""``password-spray``: slow password spraying of a VPN portal, one success, then recon.

Several hosting-provider addresses try one or two common passwords against many accounts
(real ones harvested from the company's naming scheme, and guesses such as ``admin``), a few
minutes apart, at night in the gateway's time zone. One real account with a weak password gets
in; from its tunnel address the intruder scans the server subnets, queries the directory and
lists file shares.
"""

from __future__ import annotations

import numpy as np

from vpnsentry.simulate.core import HOUR, MINUTE, US
from vpnsentry.simulate.scenarios import Context, Scenario, ip, register

GUESSES = (
    "admin",
    "administrator",
    "test",
    "vpn",
    "user",
    "guest",
    "support",
    "backup",
    "scanner",
    "helpdesk",
    "temp",
    "training",
)


@register
class PasswordSpray(Scenario):
    name = "password-spray"
    summary = (
        "Password spraying against a VPN gateway from several hosting-provider addresses at "
        "night: many accounts (real names plus guesses like admin/test), one or two attempts "
        "each, minutes apart. One real account succeeds; from its tunnel address the intruder "
        "scans server subnets, queries the domain controller over LDAP and lists SMB shares."
    )

    def build(self, ctx: Context) -> None:
        est = ctx.est
        # The busiest password-based gateway: most accounts to spray, most noise to hide in.
        cands = [i for i, g in enumerate(est.gateways) if g.vendor != "openvpn"] or [0]
        gw = max(cands, key=lambda i: (int((est.gw == i).sum()), -i))
        g = est.gateways[gw]
        gtz = ctx.tz(est.site_ix[g.site])
        day = ctx.day_at(0.42)
        attackers = ctx.hosting(4, salt=10)
        served = (est.gw == gw) & ~est.admin
        victim = ctx.pick_user(served, salt=11)
        pool = np.flatnonzero(est.gw == gw)
        real = [
            est.names[int(u)] for u in ctx.rng.choice(pool, size=min(70, len(pool)), replace=False)
        ]
        real = [u for u in real if u != est.names[victim]]
        users = real + list(GUESSES)
        order = ctx.rng.permutation(len(users))
        users = [users[int(k)] for k in order] * 2  # two passwords tried per account
        n = len(users)
        t0 = ctx.at(day, 1.0, gtz)
        ts = t0 + np.cumsum(ctx.rng.integers(40 * US, 160 * US, n))
        src = [attackers[k % len(attackers)] for k in range(n)]
        reasons = ["unknown_user" if u in GUESSES else "bad_password" for u in users]
        tag = ctx.step(
            "password-spray",
            ("T1110.003",),
            "Failed VPN logins for many accounts from a few hosting addresses, each account"
            " tried at most twice, spread over hours at night.",
            gateway=g.id,
            attacker_ips=[ip(a) for a in attackers],
            attacker_providers=[ctx.provider_of(a) for a in attackers],
            accounts_tried=len(set(users)),
        )
        ctx.fails(tag, gw, users, src, ts, reasons)
        t_ok = int(ts[-1]) + 3 * MINUTE
        tunnel = ctx.tunnel(gw)
        end = t_ok + 2 * HOUR + 10 * MINUTE
        tag = ctx.step(
            "valid-account-login",
            ("T1078", "T1133"),
            "The spray finds a weak password: a successful VPN login for a real user from the"
            " attacker's hosting address, at night.",
            gateway=g.id,
            user=est.names[victim],
            source_ip=ip(attackers[-1]),
            tunnel_ip=ip(tunnel),
        )
        ctx.session(
            tag,
            gw,
            est.names[victim],
            attackers[-1],
            t_ok,
            end,
            tunnel,
            out_bytes=9_800_000,
            in_bytes=41_000_000,
        )
        servers = [int(h.ip) for h in est.inv.hosts]
        nets = [n.cidr for n in est.inv.subnets if n.role == "servers"]
        targets = sorted(
            {a for net in nets for a in range(int(net[0]) + 1, int(net[0]) + 60)} | set(servers)
        )
        ports = np.array([22, 80, 135, 389, 443, 445, 1433, 3389, 5985])
        dst = np.repeat(np.array(targets, dtype=np.uint32), len(ports))
        dport = np.tile(ports, len(targets))
        ts = t_ok + 5 * MINUTE + np.sort(ctx.rng.integers(0, 30 * MINUTE, len(dst)))
        up = np.isin(dst, servers)
        tag = ctx.step(
            "network-scan-from-tunnel",
            ("T1046",),
            "From the new tunnel address, a port scan of every server subnet.",
            user=est.names[victim],
            tunnel_ip=ip(tunnel),
            gateway=g.id,
        )
        uidx = est.names.index(est.names[victim])
        n_up = int(up.sum())
        ctx.flows(
            tag,
            "probe",
            ts[up],
            tunnel,
            dst[up],
            dport=dport[up],
            state="REJ",
            user=np.full(n_up, uidx),
        )
        ctx.flows(
            tag,
            "probe",
            ts[~up],
            tunnel,
            dst[~up],
            dport=dport[~up],
            state="S0",
            user=np.full(len(dst) - n_up, uidx),
        )
        dcs = [int(x) for x in est.hosts("domain_controller")]
        tag = ctx.step(
            "directory-and-share-discovery",
            ("T1087.002", "T1135"),
            "LDAP queries with large answers to a domain controller (account enumeration) and"
            " SMB sessions to every file server (share listing).",
            user=est.names[victim],
            tunnel_ip=ip(tunnel),
            servers=[ip(d) for d in dcs[:1]] + [ip(int(x)) for x in est.hosts("file_server")],
        )
        t1 = t_ok + 40 * MINUTE
        if dcs:
            k = 12
            ctx.flows(
                tag,
                "ldap",
                t1 + np.arange(k) * 15 * US,
                tunnel,
                dcs[0],
                state="SF",
                rb=ctx.rng.integers(400_000, 2_500_000, k),
                user=np.full(k, uidx),
            )
        fs = est.hosts("file_server")
        if len(fs):
            ctx.flows(
                tag,
                "smb",
                t1 + 10 * MINUTE + np.arange(len(fs)) * 20 * US,
                tunnel,
                fs,
                state="SF",
                rb=ctx.rng.integers(20_000, 90_000, len(fs)),
                user=np.full(len(fs), uidx),
            )
