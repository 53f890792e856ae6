"""``rogue-admin``: the gateway's admin interface is taken over and reconfigured.

After a few failed admin logins from a hosting address, ``admin`` gets in over HTTPS. The
intruder adds a super-admin account of their own, adds a permissive any-to-any policy, and
turns off syslog forwarding, so the collector hears nothing from the gateway for hours; then
logging is switched back on to look normal. On a Cisco ASA the same happens through CLI
commands (``username … privilege 15``, ``access-list … permit ip any any``, ``no logging …``).
"""

from __future__ import annotations

import numpy as np

from vpnsentry.simulate.core import HOUR, MINUTE, US
from vpnsentry.simulate.scenarios import Context, Scenario, ip, register


@register
class RogueAdmin(Scenario):
    name = "rogue-admin"
    summary = (
        "Failed then successful admin logins to a gateway from a hosting address; a new "
        "super-admin account is created, a permissive any-to-any policy added, and syslog "
        "forwarding disabled (hours of silence from the gateway) before logging is restored."
    )

    def build(self, ctx: Context) -> None:
        est = ctx.est
        # A branch FortiGate if there is one (the data-centre gateway is the
        # vpn-appliance-breach target; keeping them apart keeps each log gap to one story).
        order = sorted(
            range(len(est.gateways)),
            key=lambda i: (
                {"fortinet_fortigate": 0, "cisco_asa": 1}.get(est.gateways[i].vendor, 9),
                est.sites[est.site_ix[est.gateways[i].site]].kind != "branch",
                i,
            ),
        )
        gw = order[0]
        g = est.gateways[gw]
        if g.vendor == "openvpn":
            return
        tz = ctx.tz(est.site_ix[g.site])
        day = ctx.day_at(0.3)
        attacker = ctx.hosting(1, salt=40, provider=2)[0]
        t = ctx.at(day, 3.2, tz)
        tag = ctx.step(
            "admin-password-guessing",
            ("T1110.001",),
            "Failed administrator logins to the gateway's management interface from a hosting"
            " address.",
            gateway=g.id,
            source_ip=ip(attacker),
            source_provider=ctx.provider_of(attacker),
        )
        for k in range(6):
            ctx.admin(tag, gw, t + k * 25 * US, "admin", attacker, "login_fail")
        t += 4 * MINUTE
        tag = ctx.step(
            "admin-login",
            ("T1078.001",),
            "The default administrator account logs in from the same hosting address.",
            gateway=g.id,
            user="admin",
            source_ip=ip(attacker),
        )
        ctx.admin(tag, gw, t, "admin", attacker, "login_ok")
        rogue = "fgt-support" if g.vendor == "fortinet_fortigate" else "fw-support"
        tag = ctx.step(
            "rogue-admin-account",
            ("T1136.001", "T1098"),
            f"A new super-admin account {rogue!r} is created on the gateway.",
            gateway=g.id,
            user="admin",
            new_account=rogue,
        )
        fg = g.vendor == "fortinet_fortigate"
        if fg:
            ctx.admin(
                tag,
                gw,
                t + 2 * MINUTE,
                "admin",
                attacker,
                "config",
                "Add",
                "system.admin",
                rogue,
                "accprofile[super_admin]vdom[root]password[*]trusthost1[0.0.0.0 0.0.0.0]",
            )
        else:
            ctx.admin(
                tag,
                gw,
                t + 2 * MINUTE,
                "admin",
                attacker,
                "command",
                attr=f"username {rogue} password ***** privilege 15",
            )
        tag = ctx.step(
            "permissive-policy",
            ("T1562.004",),
            "An any-to-any allow policy from the Internet side to the inside is added.",
            gateway=g.id,
            user="admin",
        )
        if fg:
            ctx.admin(
                tag,
                gw,
                t + 5 * MINUTE,
                "admin",
                attacker,
                "config",
                "Add",
                "firewall.policy",
                "99",
                "name[maint]srcintf[port1]dstintf[port2]srcaddr[all]dstaddr[all]"
                "action[accept]schedule[always]service[ALL]",
            )
        else:
            ctx.admin(
                tag,
                gw,
                t + 5 * MINUTE,
                "admin",
                attacker,
                "command",
                attr="access-list outside_access_in line 1 extended permit ip any any",
            )
        off = t + 7 * MINUTE
        back = off + int(ctx.rng.uniform(5, 8) * HOUR)
        tag = ctx.step(
            "logging-disabled",
            ("T1562.006",),
            "Syslog forwarding to the collector is switched off; nothing is heard from the"
            " gateway until it is switched back on hours later.",
            gateway=g.id,
            user="admin",
        )
        if fg:
            ctx.admin(
                tag,
                gw,
                off,
                "admin",
                attacker,
                "config_attr",
                "Edit",
                "log.syslogd.setting",
                attr="status[enable->disable]",
            )
        else:
            ctx.admin(tag, gw, off, "admin", attacker, "command", attr="no logging enable")
        tag_gap = ctx.step(
            "log-silence",
            ("T1562.006",),
            "No line reaches the collector from the gateway.",
            absence=True,
            gateway=g.id,
        )
        ctx.gap(tag_gap, gw, off + 2 * US, back)
        inside = [int(h.ip) for h in est.inv.hosts if h.role in ("file_server", "database")]
        if inside:
            tag = ctx.step(
                "inbound-through-new-policy",
                ("T1133",),
                "While the gateway is silent, the attacker reaches an internal server straight"
                " through the new policy (seen only by flow sensors).",
                source_ip=ip(attacker),
                servers=[ip(inside[0])],
            )
            ctx.flows(
                tag,
                "rdp",
                np.array([off + 40 * MINUTE]),
                attacker,
                inside[0],
                dur=np.array([70 * MINUTE]),
                state="SF",
            )
        tag = ctx.step(
            "logging-restored",
            ("T1562.006",),
            "Logging is switched back on, by the rogue account, to look normal.",
            gateway=g.id,
            user=rogue,
        )
        if fg:
            ctx.admin(tag, gw, back + 10 * US, rogue, attacker, "login_ok")
            ctx.admin(
                tag,
                gw,
                back + 60 * US,
                rogue,
                attacker,
                "config_attr",
                "Edit",
                "log.syslogd.setting",
                attr="status[disable->enable]",
            )
        else:
            ctx.admin(tag, gw, back + 10 * US, rogue, attacker, "login_ok")
            ctx.admin(tag, gw, back + 60 * US, rogue, attacker, "command", attr="logging enable")
