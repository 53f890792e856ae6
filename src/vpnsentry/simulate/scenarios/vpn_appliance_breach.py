"""``vpn-appliance-breach``: the Mitsubishi Electric pattern (see docs/case.md).

An overseas data centre's VPN gateway is exploited without any login. From then on its *inside*
address talks to internal hosts with no VPN session behind it (the gateway's own logs show
nothing: a box does not log the traffic it originates). Malware is pushed to branch PCs over
SMB and beacons to a C2 server about once a minute with jitter; with stolen domain credentials
the intruder moves from the branch to HQ over SMB, RDP and WinRM, stages crown-jewel files on
one HQ PC and sends about 200 MB to a rare external address over HTTPS in 10 MB chunks over a
few hours. The campaign spreads over the window with quiet gaps, and ends with the gateway's
logs going missing for a few hours (the case's deleted logs).
"""

from __future__ import annotations

import numpy as np

from vpnsentry.errors import UsageError
from vpnsentry.simulate.core import HOUR, MINUTE, US
from vpnsentry.simulate.scenarios import Context, Scenario, ip, register


@register
class VpnApplianceBreach(Scenario):
    name = "vpn-appliance-breach"
    min_days = 2  # recon, exploit, implant, lateral, staging and exfil need distinct days
    summary = (
        "The headline case (Mitsubishi Electric 2019): a VPN gateway in an overseas data "
        "centre is exploited with no prior login; its inside address scans and reaches branch "
        "PCs with no user session behind it; malware lands on branch PCs and beacons to C2 "
        "every ~60 s with jitter; stolen domain credentials carry the intruder from the branch "
        "to HQ over SMB/RDP/WinRM; crown-jewel files are staged on one HQ PC and ~200 MB leave "
        "to a rare external address over HTTPS in 10 MB chunks over hours. Spread over the "
        "window with quiet gaps; the gateway's logs go missing for a few hours at the end."
    )

    def build(self, ctx: Context) -> None:
        est = ctx.est
        gw = self._target(ctx)
        g = est.gateways[gw]
        gsite = est.site_ix[g.site]
        gtz = ctx.tz(gsite)
        branches = [est.site_ix[s] for s in g.serves if est.site_ix[s] != est.hq]
        branch = branches[0] if branches else gsite
        btz = ctx.tz(branch)
        hq, hqtz = est.hq, ctx.tz(est.hq)
        inside = int(g.inside)
        attackers = ctx.hosting(2, salt=1)
        c2 = ctx.hosting(1, salt=2, provider=1)[0]
        drop = ctx.hosting(1, salt=3, provider=2)[0]
        dc = [int(x) for x in est.hosts("domain_controller")]
        days = ctx.win.days

        # Campaign calendar as fractions of the window, like the case's weeks-long spread.
        d_recon, d_exploit = ctx.day_at(0.02), ctx.day_at(0.1)
        d_push, d_lateral = ctx.day_at(0.18), ctx.day_at(0.4)
        d_stage, d_exfil, d_gap = ctx.day_at(0.62), ctx.day_at(0.75), ctx.day_at(0.85)

        # 1. Reconnaissance of the VPN portal from hosting addresses.
        tag = ctx.step(
            "portal-reconnaissance",
            ("T1595.002",),
            "Hosting-provider addresses probe the gateway's SSL-VPN portal for days before the"
            " exploit (version fingerprinting, vulnerability scanning).",
            gateway=g.id,
            gateway_outside=str(g.outside),
            attacker_ips=[ip(a) for a in attackers],
            attacker_providers=[ctx.provider_of(a) for a in attackers],
        )
        for d in range(d_recon, max(d_recon + 1, d_exploit)):
            n = int(ctx.rng.integers(20, 45))
            ts = np.sort(ctx.at(d, 0, gtz) + ctx.rng.integers(0, 24 * HOUR, n))
            src = [attackers[int(k)] for k in ctx.rng.integers(0, 2, n)]
            ctx.portal(tag, gw, src, ts)
            ctx.flows(
                tag,
                "vpn-ssl",
                ts,
                np.array(src, dtype=np.uint32),
                int(g.outside),
                ob=ctx.rng.integers(400, 700, n),
                rb=ctx.rng.integers(1800, 5200, n),
                dur=ctx.rng.integers(200_000, 2_000_000, n),
                state="SF",
            )

        # 2. Exploit of the portal: a handful of requests with oversized responses, no login.
        t0 = ctx.at(d_exploit, 2.3, gtz)
        tag = ctx.step(
            "gateway-exploit",
            ("T1190",),
            "Pre-authentication exploit of the SSL-VPN portal: requests whose responses are far"
            " larger than the login page (file read / code execution). No VPN login follows.",
            gateway=g.id,
            gateway_outside=str(g.outside),
            attacker_ip=ip(attackers[0]),
            attacker_provider=ctx.provider_of(attackers[0]),
        )
        ts = t0 + np.arange(4, dtype=np.int64) * 40 * US
        ctx.portal(tag, gw, [attackers[0]] * 4, ts)
        ctx.flows(
            tag,
            "vpn-ssl",
            ts,
            attackers[0],
            int(g.outside),
            state="SF",
            ob=np.array([520, 611, 580, 2140]),
            rb=np.array([28_000, 412_000, 96_000, 1_310]),
            dur=np.array([900_000, 2_400_000, 1_300_000, 400_000]),
        )

        # 3. The gateway's inside address discovers the branch and HQ networks.
        tag = ctx.step(
            "internal-discovery-from-gateway",
            ("T1046", "T1018"),
            "The gateway's own inside address scans branch and HQ subnets (SMB, RDP, RPC)."
            " There is no VPN session behind these connections, and the gateway does not log"
            " traffic it originates.",
            gateway=g.id,
            source_ip=str(g.inside),
        )
        targets = self._subnet_sample(ctx, branch, 200) + self._server_ips(ctx, hq)
        ports = np.array([445, 3389, 135])
        dst = np.repeat(np.array(targets, dtype=np.uint32), len(ports))
        dport = np.tile(ports, len(targets))
        n = len(dst)
        ts = t0 + 25 * MINUTE + np.sort(ctx.rng.integers(0, 40 * MINUTE, n))
        alive = ctx.rng.random(n) < 0.25
        ctx.flows(tag, "probe", ts[alive], inside, dst[alive], dport=dport[alive], state="REJ")
        ctx.flows(tag, "probe", ts[~alive], inside, dst[~alive], dport=dport[~alive], state="S0")

        # 4. Malware pushed from the gateway to branch PCs over SMB, run as a service.
        branch_users = np.flatnonzero(est.site == branch)
        if len(branch_users) < 3:
            raise UsageError(f"{self.name}: the branch behind {g.id} has too few staff (need 3)")
        victims = branch_users[
            ctx.rng.choice(len(branch_users), size=min(6, len(branch_users)), replace=False)
        ]
        victim_ips = [int(est.ws[v]) for v in victims]
        tag = ctx.step(
            "malware-delivery-to-branch",
            ("T1021.002", "T1570", "T1569.002"),
            "From the gateway's inside address, an implant (~1.4 MB) is copied to branch PCs"
            " over SMB admin shares and started as a service over RPC.",
            gateway=g.id,
            source_ip=str(g.inside),
            branch=est.sites[branch].id,
            hosts=[ip(v) for v in victim_ips],
            host_owners=[est.names[v] for v in victims],
        )
        for k, v in enumerate(victim_ips):
            t = ctx.at(d_push + k // 3, 3.0 + 0.4 * k, btz)
            ctx.flows(
                tag,
                "smb-copy",
                np.array([t]),
                inside,
                v,
                ob=np.array([1_402_112]),
                rb=np.array([24_600]),
                dur=np.array([6 * US]),
                state="SF",
            )
            ctx.flows(tag, "rpc", np.array([t + 8 * US]), inside, v, state="SF")

        # 5. Beacons from branch PCs, with a quiet stretch in the middle.
        tag_b = ctx.step(
            "c2-beacon-branch",
            ("T1071.001", "T1573"),
            "Infected branch PCs check in with the C2 server over HTTPS about every 60 s"
            " (+-20 % jitter), small and regular; the implant sleeps for a few quiet days.",
            hosts=[ip(v) for v in victim_ips],
            c2_ip=ip(c2),
            c2_provider=ctx.provider_of(c2),
        )
        quiet = (ctx.day_at(0.5), ctx.day_at(0.58))
        end_all = ctx.at(days - 1, 24, "UTC")
        for k, v in enumerate(victim_ips):
            start = ctx.at(d_push + k // 3, 3.1 + 0.4 * k, btz)
            for a, b in ((start, ctx.at(quiet[0], 0, btz)), (ctx.at(quiet[1], 8, btz), end_all)):
                if b > a:
                    ctx.beacons(tag_b, v, c2, a, b, 60.0, 0.2)

        # 6. Lateral movement branch -> HQ with stolen domain credentials.
        admins = np.flatnonzero(est.admin)
        stolen = est.names[int(admins[0])] if len(admins) else est.names[0]
        hq_users = np.flatnonzero(est.site == hq)
        managers = hq_users[
            ctx.rng.choice(len(hq_users), size=min(4, len(hq_users)), replace=False)
        ]
        stage_host = int(est.ws[managers[0]])
        pivot = victim_ips[0]
        tag = ctx.step(
            "lateral-movement-branch-to-hq",
            ("T1078.002", "T1021.002", "T1021.001", "T1021.006"),
            "With a stolen domain account, the intruder moves from a branch PC to HQ PCs over"
            " the site-to-site tunnel: tool transfer over SMB, RDP and WinRM sessions.",
            user=f"{est.inv.company.ad_domain}\\{stolen}",
            source_host=ip(pivot),
            branch=est.sites[branch].id,
            hq=est.sites[hq].id,
            hosts=[ip(int(est.ws[m])) for m in managers],
            host_owners=[est.names[m] for m in managers],
        )
        for k, m in enumerate(managers):
            t = ctx.at(d_lateral + k // 2, 10.5 + k * 0.7, hqtz)
            pc = int(est.ws[m])
            ctx.flows(
                tag,
                "smb-copy",
                np.array([t]),
                pivot,
                pc,
                ob=np.array([1_405_950]),
                rb=np.array([31_000]),
                dur=np.array([9 * US]),
                state="SF",
            )
            ctx.flows(tag, "winrm", np.array([t + 30 * US]), pivot, pc, state="SF")
        ctx.flows(
            tag,
            "rdp",
            np.array([ctx.at(d_lateral, 14.2, hqtz)]),
            pivot,
            stage_host,
            dur=np.array([52 * MINUTE]),
            state="SF",
        )
        if dc:
            ctx.flows(
                tag,
                "ldap",
                ctx.at(d_lateral, 10.2, hqtz) + np.arange(6) * 20 * US,
                pivot,
                dc[0],
                state="SF",
            )

        # 7. The HQ staging PC beacons too (through HQ's own Internet edge).
        tag = ctx.step(
            "c2-beacon-hq",
            ("T1071.001", "T1573"),
            "The HQ staging PC checks in with the same C2 server every ~60 s.",
            hosts=[ip(stage_host)],
            c2_ip=ip(c2),
        )
        ctx.beacons(tag, stage_host, c2, ctx.at(d_lateral, 14.5, hqtz), end_all, 60.0, 0.2)

        # 8. Collection from crown-jewel shares to the staging PC, business hours.
        jewels = [int(h.ip) for h in est.inv.hosts if h.crown_jewel] or self._server_ips(ctx, hq)
        tag = ctx.step(
            "collection-from-crown-jewels",
            ("T1135", "T1039", "T1074.001"),
            "The staging PC lists shares and pulls ~600 MB from crown-jewel servers over SMB"
            " in business hours, over several days.",
            hosts=[ip(stage_host)],
            servers=[ip(j) for j in jewels],
        )
        for d in range(d_stage, min(days, d_stage + 3)):
            k = 6
            ts = np.sort(ctx.at(d, 10, hqtz) + ctx.rng.integers(0, 6 * HOUR, k))
            dst = np.array(
                [jewels[int(x)] for x in ctx.rng.integers(0, len(jewels), k)], dtype=np.uint32
            )
            rb = ctx.rng.integers(25_000_000, 45_000_000, k)
            ctx.flows(
                tag,
                "smb",
                ts,
                stage_host,
                dst,
                ob=rb // 200,
                rb=rb,
                dur=(rb / 8e6 * US).astype(np.int64),
                state="SF",
            )
        ctx.step(
            "archive-collected-data",
            ("T1560.001",),
            "Collected files are packed into 10 MB password-protected RAR volumes on the"
            " staging PC.",
            note="host activity only: no VPN, Zeek or NetFlow line shows it",
            hosts=[ip(stage_host)],
        )

        # 9. Exfiltration: ~200 MB in 10 MB chunks to a rare address, over a few hours.
        tag = ctx.step(
            "exfiltration-over-https",
            ("T1048.002", "T1030"),
            "About 200 MB leave the staging PC for a never-seen hosting address over HTTPS,"
            " in ~10 MB uploads 10-25 minutes apart during business hours.",
            hosts=[ip(stage_host)],
            destination_ip=ip(drop),
            destination_provider=ctx.provider_of(drop),
            total_bytes=20 * 10_485_760,
        )
        gaps = ctx.rng.integers(10 * MINUTE, 25 * MINUTE, 20)
        ts = ctx.at(d_exfil, 10.2, hqtz) + np.cumsum(gaps)
        ctx.flows(
            tag,
            "https",
            ts,
            stage_host,
            drop,
            state="SF",
            ob=10_485_760 + ctx.rng.integers(2000, 40_000, 20),
            rb=ctx.rng.integers(1500, 4000, 20),
            dur=ctx.rng.integers(40 * US, 140 * US, 20),
        )

        # 10. Logs of the gateway go missing for a few hours.
        tag = ctx.step(
            "gateway-log-deletion",
            ("T1070",),
            "The gateway's logs stop reaching the collector for a few hours (logs deleted on"
            " the box): a gap in a file that otherwise never pauses.",
            absence=True,
            gateway=g.id,
        )
        # In working hours: a gap at night on a gateway nobody uses then deletes nothing,
        # so nothing could (or should) detect it.
        gs = ctx.at(d_gap, 13.5, gtz)
        ctx.gap(tag, gw, gs, gs + 3 * HOUR + 20 * MINUTE)

    def _target(self, ctx: Context) -> int:
        """The gateway to breach: in a data centre if there is one, else away from HQ."""
        est = ctx.est
        order = sorted(
            range(len(est.gateways)),
            key=lambda i: (
                est.sites[est.site_ix[est.gateways[i].site]].kind != "datacenter",
                est.site_ix[est.gateways[i].site] == est.hq,
                est.gateways[i].vendor != "fortinet_fortigate",
                i,
            ),
        )
        if not order:
            raise UsageError(f"{self.name}: the estate has no VPN gateway")
        return order[0]

    def _subnet_sample(self, ctx: Context, site: int, n: int) -> list[int]:
        nets = [
            x.cidr for x in ctx.est.sites[site].subnets if x.role in ("workstations", "servers")
        ]
        out: list[int] = []
        for net in nets:
            out.extend(range(int(net[0]) + 1, min(int(net[-1]), int(net[0]) + 1 + n)))
        return out

    def _server_ips(self, ctx: Context, site: int) -> list[int]:
        return [int(h.ip) for h in ctx.est.sites[site].hosts]
