"""The VPN session table: which user held which tunnel address, from where, and when.

Gateways do not log sessions; they log moments of one (login, address assigned, tunnel up,
statistics, logout), each vendor differently. :func:`build_sessions` pairs those moments into
one row per session, so that a flow from a tunnel address can be attributed to a person and a
detection can ask "was this tunnel address in a session at that time" (an address used with
no session around it is what a hijacked or forged tunnel looks like).

How moments become sessions. Every vendor's events are reduced to *marks* with a pairing key
and a kind: ``open`` (a line that starts or sets up a session), ``info`` (a line from inside
one), ``end`` (a tunnel went down; the session may still go on) and ``final`` (the gateway's
own end-of-session line). Per key, in log order, an ``open`` begins a session unless the
previous open-or-final mark of the key is an ``open`` less than :data:`MERGE_SECONDS` earlier
(vendors write several start lines per login: one session). A ``final`` closes the session;
a ``final`` right after another ``final`` is a session whose start the data does not hold.
A final whose logged duration points at a start other than its session's (two sessions
under one key, the earlier ending first: ASA keys by user and address, which two devices
behind one NAT share) is moved to the session it points at.

All of it is window functions over the session-related rows, sorted on a 64-bit hash of the
key, so it scales with the event count (10 million events in about a minute on two cores).
The "latest X before Y" matches are ASOF matches written as windows rather than ASOF joins:
DuckDB runs an ASOF join whose left side it estimates small as a nested loop, which is
quadratic when the estimate is wrong, and the store's reader connection is locked against
changing that threshold.

Per vendor (parsers in :mod:`vpnsentry.parse.vendors`):

* FortiGate (``fortinet_fortigate``): SSL VPN ``tunnel-up``/``tunnel-down`` (0101039947/48)
  and IPsec dial-up tunnel up/down share the tunnel id (``vpn.session_id``): key (observer,
  tunnel id). Tunnel statistics (0101039949, 0101037141) are ``info``: proof of life and the
  latest byte counters. The web-portal login that FortiOS logs just before a tunnel-mode
  tunnel (0101039424, ``ssl-web``, a tunnel id of its own) is folded into that tunnel's
  session when the tunnel of the same user and address comes up within
  :data:`MERGE_SECONDS`; otherwise it is a clientless session of its own (ended by
  0101039425).
* Cisco ASA (``cisco_asa``): key (observer, user, public address). ``open``: 113039
  (AnyConnect parent session), 716001/721016 (clientless), 722051/751025 (address
  assigned: the tunnel address). ``info``: 722022 (SVC tunnel up), 716059 (resumed).
  ``end``: 722023/722037 (an SVC tunnel closed; AnyConnect reopens them within a session).
  ``final``: 113019 (session disconnected, with duration, bytes and reason), 716002/721018.
  A client that roams resumes with 716059 from its new address and logs its 113019 from
  there, so that logout has no start under its key: when the start its duration implies is
  within :data:`SLACK_SECONDS` of the start of an unclosed session of the same user on the
  same gateway, it closes that session. LAN-to-LAN tunnels (ASA logs the peer address as
  the user name) are not user sessions and are left out.
* OpenVPN (``openvpn``): key (observer, client address and port), the only thing every
  line about a client instance names. ``open``: connection-initiated, pool- and
  primary-address-assigned. ``end``: inactivity-timeout, session-timeout, connection-reset.
  ``final``: session-end. The user is the username of the ``user-auth`` line just before
  connection-initiated (else the certificate name), as the status file reports it;
  connections whose ``user-auth`` failed are not sessions (OpenVPN initiates the peer
  connection before it knows the password was wrong). OpenVPN logs no bytes at logout.
* OpenVPN status (``session-status`` rows, from ``openvpn_status`` files or dumped into the
  log): one session per (observer, user, real address, connected-since); its end is the last
  snapshot that listed it (inferred), or NULL while the latest snapshot of that server still
  does. A status session that repeats a session paired from the OpenVPN log (same client
  address and port, start within :data:`SLACK_SECONDS`) is dropped and lends it its bytes.

* strongSwan (``strongswan``): key (observer, IKE_SA ``conn[unique id]``, ``vpn.session_id``).
  ``open``: ike-sa-established, address-assigned (the virtual IP and the EAP/XAuth name).
  ``info``: child-sa-established, child-sa-closed (its byte counters). ``final``:
  ike-sa-deleting. Site-to-site IKE_SAs (no peer name, no virtual IP) are left out.
* Juniper SRX (``juniper_srx``): key (observer, user, public address), remote-access
  tunnels only (a user name). ``open``: vpn-tunnel-up (KMD_VPN_UP_ALARM_USER),
  dynamic-vpn-connected. ``final``: vpn-tunnel-down, dynamic-vpn-disconnected.
* WireGuard (``wireguard``): key (observer, interface, peer public key). ``open``:
  tunnel-up, ``info``: tunnel-stats, ``final``: tunnel-down, as derived from the ``wg show
  all dump`` snapshots by the parser (with duration and the session's bytes).
* PAN-OS GlobalProtect (``panw_panos``, GLOBALPROTECT log type): key (observer, user,
  public address). ``open``: gateway-register (address-assigned, the Private IP),
  gateway-setup-ssl/-ipsec (client-vpn-tunnel-established), gateway-connected. ``final``:
  gateway-logout (with its Login Duration and reason). The portal/gateway authentication
  lines are logins, not session marks; the SYSTEM ``globalprotect`` messages name no public
  address and are left out. PAN-OS logs no byte counts per GlobalProtect session.
* Login/logout gateways: Ivanti/Pulse (``pulse_connect_secure``), Citrix ADC
  (``citrix_adc``), SonicWall (``sonicwall_firewall``), Check Point (``checkpoint``) and the
  generic CEF/LEEF readers. Key (observer, module, user, public address): their session ids
  are not on every line (Pulse writes a long one, a short one or none; Citrix names one on
  some releases only). ``open``: logged-in, session-created, client-vpn-connected and
  client-vpn-tunnel-established (Pulse: the tunnel address and SSL or ESP), address-assigned
  (SonicWall). ``info``: client-vpn-resumed. ``end``: Pulse's client-vpn-disconnected (the
  VPN tunnel closed, with its bytes; the user may stay logged in), Citrix's session-removed.
  ``final``: logged-out, session-timeout, Pulse's session-end ("Session ... deleted") and
  Citrix's LOGOUT summary (client-vpn-disconnected there, with duration and bytes). Pulse
  writes up to two final lines per session (timed out or logged out, then deleted): the
  second is taken as an ``end``. Administrator logins (``user.roles`` Administrator: the
  admin console, not the VPN) are left out. The CEF/LEEF readers cannot tell a VPN login
  from another login the device reports; every successful one is a session (their failures
  are logins for the detections already).

Gateway identity: ``observer.name`` as the gateway logs itself. OpenVPN's own log files carry
no device name, so for pairing (never in the output) a missing observer is replaced by the
folder of the log file: one folder, one gateway's logs.

Ends the data does not hold. A logout with no login (the log starts mid-session) becomes a
session starting at the logout minus the duration the gateway logged with it (its evidence
says so); without a duration it is skipped and counted in table ``sessions_skipped``. A
login with no logout ends (``session.end_inferred`` true) at the start of the next session
given the same tunnel address on that gateway (a gateway never gives one address to two
live sessions), or else ``max_open_hours`` after its start (or at the last line seen of it,
if later: FortiGate statistics) when that moment is within the gateway's data. Otherwise it
is still open as far as the data goes: ``session.end`` NULL, ``session.end_inferred`` false.
"The gateway's data" ends at its last event of any kind, per gateway, because one feed can
lag or stop while the others go on. A new session of the same user from the same address is
deliberately not taken as the end of the earlier one: people leave a laptop connected and
log in again from a phone behind the same router (the simulator's long-lived sessions do
exactly this). The cap does cut genuinely long sessions; ``session.end_inferred`` tells.
"""

from __future__ import annotations

from typing import Final

import duckdb

#: Start lines of one key this close together, with no end between them, are one session.
MERGE_SECONDS: Final = 60
#: How far the start implied by a logged duration may be from a logged start and still be the
#: same session: durations are whole seconds, counted from whichever start line the vendor
#: means (ASA: the parent session or the address assignment, seconds apart).
SLACK_SECONDS: Final = 30

#: Event codes of the Cisco ASA messages that make sessions, by kind (see the module doc).
_ASA_OPEN: Final = ("113039", "716001", "721016", "722051", "751025")
_ASA_INFO: Final = ("722022", "716059")
_ASA_END: Final = ("722023", "722037")
_ASA_FINAL: Final = ("113019", "716002", "721018")
#: FortiGate SSL VPN and IPsec tunnel statistics.
_FGT_STATS: Final = ("0101039949", "0101037141")
_OVPN_OPEN: Final = ("connection-initiated", "pool-address-assigned", "primary-address-assigned")
_OVPN_END: Final = ("inactivity-timeout", "session-timeout", "connection-reset")
#: strongSwan, Juniper SRX and WireGuard actions that make sessions, by kind.
_OTHER_OPEN: Final = (
    "ike-sa-established",
    "address-assigned",
    "vpn-tunnel-up",
    "dynamic-vpn-connected",
    "tunnel-up",
)
_OTHER_INFO: Final = ("child-sa-established", "child-sa-closed", "tunnel-stats")
_OTHER_FINAL: Final = (
    "ike-sa-deleting",
    "vpn-tunnel-down",
    "dynamic-vpn-disconnected",
    "tunnel-down",
)

#: PAN-OS GlobalProtect actions that make sessions, by kind.
_PANOS_OPEN: Final = ("address-assigned", "client-vpn-tunnel-established", "client-vpn-connected")
_PANOS_FINAL: Final = ("client-vpn-disconnected",)

#: Gateways that log a login and a logout per user and address, paired on (gateway, user,
#: public address): Ivanti/Pulse, Citrix, SonicWall, Check Point and the CEF/LEEF readers.
_LOGIN_MODULES: Final = (
    "pulse_connect_secure",
    "citrix_adc",
    "sonicwall_firewall",
    "checkpoint",
    "cef",
    "leef",
)
_LOGIN_OPEN: Final = (
    "logged-in",
    "session-created",
    "client-vpn-connected",
    "client-vpn-tunnel-established",
    "address-assigned",
)
_LOGIN_INFO: Final = ("client-vpn-resumed",)
#: Ends: Pulse's VPN tunnel going down (``client-vpn-disconnected``, with its bytes; the
#: user's session may go on) and Citrix's session removal.
_LOGIN_END: Final = ("client-vpn-disconnected", "session-removed")
#: Finals: logouts, timeouts, Pulse's session deletion and Citrix's LOGOUT (there
#: ``client-vpn-disconnected`` is the session's summary, with duration and bytes).
_LOGIN_FINAL: Final = ("logged-out", "client-vpn-disconnected", "session-end", "session-timeout")

#: The actions that make sessions, in the order of a session's life. A group of marks keeps
#: the set of its actions as a bit mask (one cheap aggregate) and ``session.evidence`` lists
#: them in this order; an action not listed here is named after them.
_STEPS: Final = (
    "FortiGate-event-ssl-vpn-user-tunnel-up",
    "FortiGate-event-ssl-vpn-session-tunnel-up",
    "FortiGate-event-ipsec-tunnel-up",
    "FortiGate-event-conn-updown",
    "FortiGate-event-ssl-vpn-session-tunnel-stats",
    "FortiGate-event-conn-stats",
    "FortiGate-event-ssl-vpn-session-tunnel-down",
    "FortiGate-event-ipsec-tunnel-down",
    "FortiGate-event-ssl-vpn-user-tunnel-down",
    "logged-in",
    "session-created",
    "client-vpn-connected",
    "address-assigned",
    "client-vpn-tunnel-established",
    "client-vpn-resumed",
    "client-vpn-tunnel-terminated",
    "client-vpn-disconnected",
    "session-removed",
    "logged-out",
    "connection-initiated",
    "pool-address-assigned",
    "primary-address-assigned",
    "inactivity-timeout",
    "session-timeout",
    "connection-reset",
    "session-end",
    "ike-sa-established",
    "vpn-tunnel-up",
    "dynamic-vpn-connected",
    "tunnel-up",
    "child-sa-established",
    "tunnel-stats",
    "child-sa-closed",
    "ike-sa-deleting",
    "vpn-tunnel-down",
    "dynamic-vpn-disconnected",
    "tunnel-down",
)


def _steps(mask: str, other: str = "NULL") -> str:
    """SQL: the actions of bit mask ``mask`` (see :data:`_STEPS`), then ``other``."""
    named = ", ".join(
        f"CASE WHEN {mask} & {1 << i} <> 0 THEN '{a}' END" for i, a in enumerate(_STEPS, 1)
    )
    return f"concat_ws(' > ', {named}, {other})"


#: Mark kinds. ``_STATUS`` and ``_AUTH`` rows are not paired; they are read on the side.
_OPEN, _INFO, _END, _FINAL, _STATUS, _AUTH = 0, 1, 2, 3, 8, 9
#: An offset above any mark's sequence number, to rank marks by kind first in ``arg_min``.
_LATER: Final = 10**15


def _in(values: tuple[str, ...]) -> str:
    """A SQL ``IN`` list of constant strings."""
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


#: The gateway as the pairing sees it: the observer, else the folder of the log file.
_GKEY: Final = (
    "coalesce(\"observer.name\", 'dir:' || "
    "regexp_replace(coalesce(\"log.file.path\", ''), '[^/\\\\]*$', ''))"
)

#: The pairing key of the login/logout gateways, one ``WHEN`` of a ``CASE "event.module"``
#: per module (the module is in the key: two formats of one gateway are paired apart).
_LOGIN_KEYS: Final = "\n        ".join(
    f"WHEN '{m}' THEN hash('l', {_GKEY}, '{m}', \"user.name\", \"source.ip\")"
    for m in _LOGIN_MODULES
)

#: One scan of ``events``: the rows that make sessions, reduced to marks.
_MARKS_SQL: Final = f"""
CREATE OR REPLACE TEMP TABLE _sessions_marks AS
SELECT
    "event.module" AS module,
    "observer.name" AS gw,
    {_GKEY} AS gkey,
    "@timestamp" AS ts,
    hash("log.file.path") AS src,
    coalesce("log.offset", 0) AS off,
    "event.action" AS action,
    CAST(CASE
        WHEN "event.action" = 'session-status' THEN {_STATUS}
        WHEN "event.module" = 'fortinet_fortigate' THEN
            CASE "event.type" WHEN 'start' THEN {_OPEN} WHEN 'end' THEN {_FINAL} ELSE {_INFO} END
        WHEN "event.module" = 'cisco_asa' THEN
            CASE
                WHEN "event.code" IN {_in(_ASA_OPEN)} THEN {_OPEN}
                WHEN "event.code" IN {_in(_ASA_FINAL)} THEN {_FINAL}
                WHEN "event.code" IN {_in(_ASA_END)} THEN {_END}
                ELSE {_INFO}
            END
        WHEN "event.module" IN ('strongswan', 'juniper_srx', 'wireguard') THEN
            CASE
                WHEN "event.action" IN {_in(_OTHER_OPEN)} THEN {_OPEN}
                WHEN "event.action" IN {_in(_OTHER_FINAL)} THEN {_FINAL}
                ELSE {_INFO}
            END
        WHEN "event.module" = 'panw_panos' THEN
            CASE WHEN "event.action" IN {_in(_PANOS_FINAL)} THEN {_FINAL} ELSE {_OPEN} END
        WHEN "event.module" IN {_in(_LOGIN_MODULES)} THEN
            CASE
                WHEN "event.action" IN {_in(_LOGIN_OPEN)} THEN {_OPEN}
                WHEN "event.action" IN {_in(_LOGIN_INFO)} THEN {_INFO}
                WHEN "event.module" = 'pulse_connect_secure'
                    AND "event.action" = 'client-vpn-disconnected' THEN {_END}
                WHEN "event.action" IN {_in(_LOGIN_FINAL)} THEN {_FINAL}
                ELSE {_END}
            END
        WHEN "event.action" = 'user-auth' THEN {_AUTH}
        WHEN "event.action" IN {_in(_OVPN_OPEN)} THEN {_OPEN}
        WHEN "event.action" = 'session-end' THEN {_FINAL}
        ELSE {_END}
    END AS TINYINT) AS kind,
    "user.name" AS usr,
    "source.ip" AS sip,
    "source.port" AS sport,
    "vpn.tunnel_ip" AS tip,
    "vpn.session_id" AS sid,
    "vpn.tunnel_type" AS ttype,
    "vpn.group" AS vgroup,
    "event.reason" AS reason,
    "event.outcome" AS outcome,
    "source.bytes" AS sbytes,
    "destination.bytes" AS dbytes,
    "event.duration" AS dur,
    "event.start" AS since,
    CASE "event.module"
        WHEN 'fortinet_fortigate' THEN hash('f', {_GKEY}, "vpn.session_id")
        WHEN 'cisco_asa' THEN hash('a', {_GKEY}, "user.name", "source.ip")
        WHEN 'strongswan' THEN hash('s', {_GKEY}, "vpn.session_id")
        WHEN 'juniper_srx' THEN hash('j', {_GKEY}, "user.name", "source.ip")
        WHEN 'wireguard' THEN hash('w', {_GKEY}, "vpn.group", "user.name")
        WHEN 'panw_panos' THEN hash('p', {_GKEY}, "user.name", "source.ip")
        {_LOGIN_KEYS}
        ELSE hash('o', {_GKEY}, "source.ip", "source.port")
    END AS pk,
    false AS failed
FROM events
WHERE "@timestamp" IS NOT NULL AND (
    ("event.module" = 'fortinet_fortigate' AND "vpn.session_id" IS NOT NULL
        AND (("event.category" = 'session' AND "event.type" IN ('start', 'end'))
            OR "event.code" IN {_in(_FGT_STATS)}))
    OR ("event.module" = 'cisco_asa'
        AND "event.code" IN {_in(_ASA_OPEN + _ASA_INFO + _ASA_END + _ASA_FINAL)}
        AND "user.name" IS DISTINCT FROM "source.ip")
    OR ("event.module" = 'openvpn'
        AND "event.action" IN {_in(("user-auth", "session-end", *_OVPN_OPEN, *_OVPN_END))})
    OR ("event.module" = 'strongswan' AND "vpn.session_id" IS NOT NULL
        AND "event.action" IN {_in(_OTHER_OPEN + _OTHER_INFO + _OTHER_FINAL)})
    OR ("event.module" = 'juniper_srx' AND "user.name" IS NOT NULL
        AND "event.action" IN {_in(_OTHER_OPEN + _OTHER_FINAL)})
    OR ("event.module" = 'wireguard' AND "user.name" IS NOT NULL
        AND "event.action" IN {_in(_OTHER_OPEN + _OTHER_INFO + _OTHER_FINAL)})
    OR ("event.module" = 'panw_panos' AND "event.dataset" = 'panw_panos.globalprotect'
        AND "user.name" IS NOT NULL AND "source.ip" IS NOT NULL
        AND "event.action" IN {_in(_PANOS_OPEN + _PANOS_FINAL)})
    OR ("event.module" IN {_in(_LOGIN_MODULES)} AND "user.name" IS NOT NULL
        AND "user.roles" IS DISTINCT FROM 'Administrator'
        AND "event.action" IN {_in(_LOGIN_OPEN + _LOGIN_INFO + _LOGIN_END + _LOGIN_FINAL)})
    OR "event.action" = 'session-status'
)
"""

#: Last event of any kind per gateway: where "the data" ends for its open sessions. Grouped
#: by observer and file first, so the folder is worked out once per file, not per row.
_DATA_END_SQL: Final = f"""
CREATE OR REPLACE TEMP TABLE _sessions_data_end AS
SELECT {_GKEY} AS gkey, max(last_ts) AS data_end
FROM (
    SELECT "observer.name", "log.file.path", max("@timestamp") AS last_ts
    FROM events GROUP BY ALL
)
GROUP BY ALL
"""

#: Marks are paired by ``pk``, a 64-bit hash of their key (sorting and partitioning on it is
#: several times cheaper than on the key's text). Three corrections before pairing, all small
#: updates. OpenVPN's connection-initiated takes the username and the outcome of the
#: ``user-auth`` line just before it:
_AUTH_SQL: Final = f"""
UPDATE _sessions_marks AS m
SET usr = coalesce(x.usr, m.usr), failed = x.failed
FROM (
    SELECT rid,
        CASE WHEN ts - auth.ts <= INTERVAL {MERGE_SECONDS} SECOND THEN auth.usr END AS usr,
        coalesce(
            ts - auth.ts <= INTERVAL {MERGE_SECONDS} SECOND AND auth.outcome = 'failure', false
        ) AS failed
    FROM (
        SELECT rowid AS rid, action, ts,
            lag(
                CASE WHEN kind = {_AUTH}
                    THEN struct_pack(usr := usr, outcome := outcome, ts := ts) END
                IGNORE NULLS
            ) OVER (PARTITION BY gkey, sip, sport ORDER BY ts, src, off) AS auth
        FROM _sessions_marks
        WHERE module = 'openvpn' AND (kind = {_AUTH} OR action = 'connection-initiated')
    )
    WHERE action = 'connection-initiated'
) AS x
WHERE m.rowid = x.rid
"""

#: ... Pulse ends one session with up to two final lines (timed out or logged out, then
#: "Session ... deleted", 22.x): a final of a key less than :data:`MERGE_SECONDS` after its
#: previous final, with no start between them, is that end written again, an ``end`` mark ...
_REPEAT_SQL: Final = f"""
UPDATE _sessions_marks AS m
SET kind = {_END}
FROM (
    SELECT rowid AS rid, kind, ts,
        lag(kind) OVER w AS prev,
        lag(ts) OVER w AS prev_ts
    FROM _sessions_marks
    WHERE module = 'pulse_connect_secure' AND kind IN ({_OPEN}, {_FINAL})
    WINDOW w AS (PARTITION BY pk ORDER BY ts, src, off)
) AS x
WHERE m.rowid = x.rid AND x.kind = {_FINAL} AND x.prev = {_FINAL}
    AND x.ts - x.prev_ts <= INTERVAL {MERGE_SECONDS} SECOND
"""

#: ... and a FortiGate portal login (and its logout) followed within :data:`MERGE_SECONDS` by
#: a tunnel of the same user and address is re-keyed onto that tunnel, losing its own id.
_FOLD_SQL: Final = f"""
UPDATE _sessions_marks AS m
SET pk = f.tunnel_pk, sid = NULL, ttype = NULL
FROM (
    SELECT gkey, sid AS web_sid, min(tunnel.pk) AS tunnel_pk
    FROM (
        SELECT gkey, sid, ttype, ts,
            lead(
                CASE WHEN ttype IS DISTINCT FROM 'clientless'
                    THEN struct_pack(pk := pk, ts := ts) END
                IGNORE NULLS
            ) OVER (PARTITION BY gkey, usr, sip ORDER BY ts, src, off) AS tunnel
        FROM _sessions_marks
        WHERE module = 'fortinet_fortigate' AND kind = {_OPEN}
            AND usr IS NOT NULL AND sip IS NOT NULL
    )
    WHERE ttype = 'clientless' AND tunnel.ts - ts <= INTERVAL {MERGE_SECONDS} SECOND
    GROUP BY ALL
) AS f
WHERE m.module = 'fortinet_fortigate' AND m.gkey = f.gkey AND m.sid = f.web_sid
"""

#: Pair the marks: one row per group of marks (a session, or an orphan end) with what it
#: says. The rule of the module doc needs, per open or final mark, only the previous open or
#: final mark of its key; ``grp`` then numbers the groups of a key in log order and ``seq``
#: the marks. Both windows sort a narrow projection; the wide columns join back by row id.
#: At most one final mark is in a group (a second one starts a group of its own).
_GROUPS_SQL: Final = f"""
CREATE OR REPLACE TEMP TABLE _sessions_groups AS
WITH
flags AS (
    SELECT rid, pk, ts, src, off,
        CASE kind
            WHEN {_OPEN} THEN prev IS NULL OR prev = {_FINAL}
                OR ts - prev_ts > INTERVAL {MERGE_SECONDS} SECOND
            ELSE coalesce(prev = {_FINAL}, false)
        END AS is_new
    FROM (
        SELECT rowid AS rid, pk, ts, src, off, kind,
            lag(kind) OVER w AS prev,
            lag(ts) OVER w AS prev_ts
        FROM _sessions_marks
        WHERE kind IN ({_OPEN}, {_FINAL})
        WINDOW w AS (PARTITION BY pk ORDER BY ts, src, off)
    )
    UNION ALL
    SELECT rowid, pk, ts, src, off, false FROM _sessions_marks WHERE kind IN ({_INFO}, {_END})
),
numbered AS (
    SELECT rid,
        sum(CAST(is_new AS INTEGER)) OVER w AS grp,
        row_number() OVER w AS seq
    FROM flags
    WINDOW w AS (PARTITION BY pk ORDER BY ts, src, off ROWS UNBOUNDED PRECEDING)
),
grouped AS (
    SELECT m.*, n.grp, n.seq,
        -- Preference keys for arg_min: open lines first, then the rest, in log order.
        n.seq + CASE WHEN m.kind = {_OPEN} THEN 0 ELSE {_LATER} END AS open_first,
        n.seq + CASE
            WHEN m.kind = {_FINAL} THEN 0
            WHEN m.kind = {_OPEN} AND m.ttype <> 'clientless' THEN {_LATER}
            ELSE 2 * {_LATER}
        END AS type_first,
        CASE WHEN m.kind = {_FINAL} THEN 0 ELSE {_LATER} - n.seq END AS final_or_latest,
        CAST(1 AS BIGINT) << coalesce(list_position({list(_STEPS)}, m.action), 0) AS step
    FROM _sessions_marks AS m
    JOIN numbered AS n ON m.rowid = n.rid
),
summary AS (
    SELECT
        pk,
        grp,
        any_value(module) AS module,
        any_value(gw) AS gw,
        any_value(gkey) AS gkey,
        min(ts) FILTER (WHERE kind = {_OPEN}) AS opened,
        max(ts) FILTER (WHERE kind = {_OPEN}) AS last_open,
        max(ts) FILTER (WHERE kind = {_FINAL}) AS final_ts,
        max(ts) FILTER (WHERE kind = {_END}) AS last_end,
        max(ts) FILTER (WHERE kind <= {_INFO}) AS last_live,
        max(ts) AS last_seen,
        arg_min(usr, open_first) FILTER (WHERE usr IS NOT NULL) AS usr,
        arg_min(sip, open_first) FILTER (WHERE sip IS NOT NULL) AS sip,
        arg_min(sport, open_first) FILTER (WHERE sport IS NOT NULL) AS sport,
        arg_min(vgroup, open_first) FILTER (WHERE vgroup IS NOT NULL) AS vgroup,
        arg_min(tip, seq) FILTER (WHERE tip IS NOT NULL) AS tip,
        arg_min(sid, seq) FILTER (WHERE sid IS NOT NULL) AS sid,
        -- The gateway's end-of-session summary names the session type best; else the most
        -- specific start line (an ASA AnyConnect login also logs a clientless 716001).
        arg_min(ttype, type_first) FILTER (WHERE ttype IS NOT NULL) AS ttype,
        max(reason) FILTER (WHERE kind = {_FINAL}) AS final_reason,
        arg_max(reason, seq) FILTER (WHERE kind = {_END}) AS end_reason,
        max(dur) FILTER (WHERE kind = {_FINAL}) AS final_dur,
        max(action) FILTER (WHERE kind = {_FINAL}) AS final_action,
        -- Counters of the final line; for a session still open, the latest logged.
        arg_min(sbytes, final_or_latest) FILTER (WHERE sbytes IS NOT NULL) AS sbytes,
        arg_min(dbytes, final_or_latest) FILTER (WHERE dbytes IS NOT NULL) AS dbytes,
        bool_or(failed) AS failed,
        bit_or(step) AS steps,
        bit_or(step) FILTER (WHERE kind <> {_FINAL}) AS open_steps,
        any_value(action) FILTER (WHERE step = 1) AS other_step
    FROM grouped
    GROUP BY pk, grp
)
SELECT row_number() OVER () AS gid, * FROM summary
"""

#: From groups to sessions: observed ends, duration checks, roaming, status snapshots,
#: inferred ends. ``misfit``: a group whose final line's logged duration points at a start
#: other than the group's (two sessions of one key, the earlier ending first); that final is
#: detached and, like an orphan end, closes the session whose start it points at.
_SESSIONS_SQL: Final = """
CREATE OR REPLACE TABLE sessions AS
WITH
checked AS (
    SELECT *,
        CASE
            WHEN final_ts IS NOT NULL THEN final_ts
            WHEN last_end >= coalesce(last_live, last_end) THEN last_end
        END AS end_obs,
        CASE
            -- A final line without a reason after an end line with one (Pulse: timed
            -- out, then the session deleted) keeps the end line's.
            WHEN final_ts IS NOT NULL THEN coalesce(final_reason, end_reason)
            WHEN end_obs IS NOT NULL THEN end_reason
        END AS end_why,
        final_ts - to_microseconds(final_dur // 1000) AS implied,
        coalesce(
            implied < opened - INTERVAL {slack} SECOND
                OR implied > last_open + INTERVAL {slack} SECOND,
            false
        ) AS misfit
    FROM _sessions_groups
    WHERE NOT failed
),
g AS (
    SELECT gid, module, gw, gkey, usr, sip, sport, vgroup, tip, sid, ttype, opened,
        coalesce(opened, implied) AS start,
        CASE WHEN misfit THEN coalesce(last_live, opened) ELSE last_seen END AS last_seen,
        CASE WHEN NOT misfit THEN end_obs END AS end_obs,
        CASE WHEN NOT misfit THEN end_why END AS end_why,
        CASE WHEN NOT misfit THEN final_dur END AS dur,
        CASE WHEN NOT misfit THEN sbytes END AS sbytes,
        CASE WHEN NOT misfit THEN dbytes END AS dbytes,
        CASE
            WHEN misfit THEN {open_steps}
            ELSE {steps}
        END AS evidence
    FROM checked
    UNION ALL
    SELECT -gid, module, gw, gkey, usr, sip, sport, vgroup, NULL, NULL, ttype, NULL,
        implied, final_ts, final_ts, final_reason, final_dur, sbytes, dbytes, final_action
    FROM checked
    WHERE misfit
),
orphans AS (SELECT * FROM g WHERE opened IS NULL AND start IS NOT NULL),
unclosed AS (SELECT * FROM g WHERE opened IS NOT NULL AND end_obs IS NULL),
-- For each orphan, the unclosed session of its gateway and user that opened last before
-- the start its duration implies (plus the slack): an ASOF match, written as a window.
roam_pairs AS (
    SELECT gid AS from_gid, prior.gid AS into_gid
    FROM (
        SELECT gid, orphan, start, end_obs,
            lag(CASE WHEN NOT orphan THEN struct_pack(gid := gid, opened := start) END IGNORE NULLS)
                OVER (PARTITION BY module, gkey, usr ORDER BY sort_ts, orphan) AS prior
        FROM (
            SELECT gid, module, gkey, usr, start, end_obs, true AS orphan,
                start + INTERVAL {slack} SECOND AS sort_ts
            FROM orphans
            UNION ALL
            SELECT gid, module, gkey, usr, start, NULL, false, start FROM unclosed
        )
        WHERE usr IS NOT NULL
    )
    WHERE orphan AND start - INTERVAL {slack} SECOND <= prior.opened
    QUALIFY row_number() OVER (PARTITION BY prior.gid ORDER BY end_obs) = 1
),
roam AS (
    SELECT p.into_gid, p.from_gid, o.end_obs, o.end_why, o.dur, o.sbytes, o.dbytes,
        o.evidence, o.last_seen
    FROM roam_pairs AS p
    JOIN orphans AS o ON o.gid = p.from_gid
),
paired AS (
    SELECT g.gid, g.module, g.gw, g.gkey, g.usr, g.sip, g.sport, g.tip, g.sid,
        g.ttype, g.vgroup, g.start,
        coalesce(g.end_obs, r.end_obs) AS end_obs,
        coalesce(g.end_why, r.end_why) AS end_why,
        coalesce(g.dur, r.dur) AS dur,
        coalesce(r.sbytes, g.sbytes) AS sbytes,
        coalesce(r.dbytes, g.dbytes) AS dbytes,
        greatest(g.last_seen, r.last_seen) AS last_seen,
        CASE
            WHEN r.into_gid IS NOT NULL THEN g.evidence || ' > ' || r.evidence
            WHEN g.opened IS NULL THEN g.evidence || ' (start = end - logged duration)'
            ELSE g.evidence
        END AS evidence
    FROM g
    LEFT JOIN roam AS r ON g.gid = r.into_gid
    WHERE g.start IS NOT NULL AND g.gid NOT IN (SELECT from_gid FROM roam)
),
snap AS (
    SELECT gkey, usr, sip, sport, since AS start,
        any_value(module) AS module,
        any_value(gw) AS gw,
        max(ts) AS last_seen,
        count(*) AS snapshots,
        arg_min(tip, ts) FILTER (WHERE tip IS NOT NULL) AS tip,
        arg_max(sid, ts) AS sid,
        any_value(ttype) AS ttype,
        arg_max(sbytes, ts) AS sbytes,
        arg_max(dbytes, ts) AS dbytes
    FROM _sessions_marks
    WHERE kind = {status} AND since IS NOT NULL
    GROUP BY gkey, usr, sip, sport, since
),
snap_latest AS (
    SELECT gkey, max(ts) AS latest FROM _sessions_marks WHERE kind = {status} GROUP BY gkey
),
snap_dup AS (
    SELECT p.gid, s.gkey, s.usr, s.sip, s.sport, s.start, s.sbytes, s.dbytes, s.last_seen
    FROM snap AS s
    JOIN paired AS p
        ON p.module = 'openvpn' AND s.sip = p.sip AND s.sport = p.sport
        AND s.start BETWEEN p.start - INTERVAL {slack} SECOND AND p.start + INTERVAL {slack} SECOND
    QUALIFY row_number() OVER (PARTITION BY p.gid ORDER BY s.last_seen DESC) = 1
),
merged AS (
    SELECT p.gw, p.module, p.gkey, p.usr, p.sip, p.sport, p.tip, p.sid, p.ttype,
        p.vgroup, p.start, p.end_obs, p.end_why,
        coalesce(p.sbytes, d.sbytes) AS sbytes,
        coalesce(p.dbytes, d.dbytes) AS dbytes,
        p.dur,
        greatest(p.last_seen, d.last_seen) AS last_seen,
        p.evidence,
        CAST(NULL AS BOOLEAN) AS snap_open
    FROM paired AS p
    LEFT JOIN snap_dup AS d ON p.gid = d.gid
    UNION ALL
    SELECT s.gw, s.module, s.gkey, s.usr, s.sip, s.sport, s.tip, s.sid, s.ttype, NULL,
        s.start, NULL, NULL, s.sbytes, s.dbytes, NULL, s.last_seen,
        'session-status x' || s.snapshots,
        s.last_seen >= l.latest
    FROM snap AS s
    JOIN snap_latest AS l ON s.gkey = l.gkey
    ANTI JOIN snap_dup AS d
        ON s.gkey = d.gkey AND s.usr IS NOT DISTINCT FROM d.usr AND s.sip = d.sip
        AND s.sport = d.sport AND s.start = d.start
),
kept AS (
    SELECT row_number() OVER () AS rid, *
    FROM merged
    WHERE usr IS NOT NULL OR tip IS NOT NULL
),
-- The next session given the same tunnel address on the same gateway.
following AS (
    SELECT rid, lead(start) OVER (PARTITION BY hash(gkey, tip) ORDER BY start) AS next_start
    FROM kept
    WHERE tip IS NOT NULL
),
sequenced AS (
    SELECT k.*, d.data_end,
        CASE WHEN f.next_start > k.start THEN f.next_start END AS next_same_tunnel
    FROM kept AS k
    LEFT JOIN following AS f ON k.rid = f.rid
    LEFT JOIN _sessions_data_end AS d ON k.gkey = d.gkey
),
ended AS (
    SELECT *,
        CASE
            WHEN end_obs IS NOT NULL THEN end_obs
            WHEN snap_open IS NOT NULL THEN CASE WHEN NOT snap_open THEN last_seen END
            ELSE least(
                next_same_tunnel,
                CASE WHEN start + to_microseconds({cap_us}) <= data_end
                    THEN greatest(start + to_microseconds({cap_us}), last_seen) END
            )
        END AS end_at
    FROM sequenced
)
SELECT
    gw AS "observer.name",
    module AS "event.module",
    usr AS "user.name",
    sip AS "source.ip",
    CAST(sport AS INTEGER) AS "source.port",
    tip AS "vpn.tunnel_ip",
    sid AS "vpn.session_id",
    ttype AS "vpn.tunnel_type",
    vgroup AS "vpn.group",
    start AS "session.start",
    end_at AS "session.end",
    end_obs IS NULL AND end_at IS NOT NULL AS "session.end_inferred",
    end_why AS "session.end_reason",
    CAST(sbytes AS BIGINT) AS "source.bytes",
    CAST(dbytes AS BIGINT) AS "destination.bytes",
    CAST(coalesce(dur, epoch_ns(end_obs) - epoch_ns(start)) AS BIGINT) AS "event.duration",
    evidence AS "session.evidence"
FROM ended
ORDER BY "session.start", "observer.name", "user.name", "source.ip", "vpn.session_id"
"""

#: Logouts that could not be placed: no login under their key and no logged duration.
_SKIPPED_SQL: Final = """
CREATE OR REPLACE TABLE sessions_skipped AS
SELECT gw AS "observer.name", module AS "event.module",
    'end without start or logged duration' AS reason, count(*) AS events
FROM _sessions_groups
WHERE opened IS NULL AND final_dur IS NULL AND NOT failed
    AND (final_ts IS NOT NULL OR last_end >= coalesce(last_live, last_end))
GROUP BY ALL
ORDER BY ALL
"""

_TEMP_TABLES: Final = ("_sessions_marks", "_sessions_data_end", "_sessions_groups")


def build_sessions(con: duckdb.DuckDBPyConnection, *, max_open_hours: float = 24.0) -> int:
    """Create (or replace) table `sessions` in `con` from the `events` view; return its row count.

    Also replaces table ``sessions_skipped``: per gateway, the logouts that could not become
    sessions (no login and no logged duration), so a gap in coverage is visible rather than
    silent. ``max_open_hours`` bounds a session whose logout the data lacks (module doc).
    """
    if not max_open_hours > 0:
        raise ValueError(f"max_open_hours must be positive, got {max_open_hours}")
    cap_us = round(max_open_hours * 3600 * 1_000_000)
    try:
        con.execute(_MARKS_SQL)
        con.execute(_DATA_END_SQL)
        con.execute(_AUTH_SQL)
        con.execute(_REPEAT_SQL)
        con.execute(_FOLD_SQL)
        con.execute(_GROUPS_SQL)
        con.execute(
            _SESSIONS_SQL.format(
                slack=SLACK_SECONDS,
                status=_STATUS,
                cap_us=cap_us,
                steps=_steps("steps", "other_step"),
                open_steps=_steps("open_steps"),
            )
        )
        con.execute(_SKIPPED_SQL)
        row = con.execute("SELECT count(*) FROM sessions").fetchall()[0]
    finally:
        for name in _TEMP_TABLES:
            con.execute(f"DROP TABLE IF EXISTS {name}")
    return int(row[0]) if row else 0


def _held(column: str, grace: str) -> str:
    """``column`` of the session holding the address at ``_attr_ts``, from one ASOF match ``s``.

    The match is the session that started last before ``_attr_ts`` plus the grace. If the
    flow is before its start (a sensor clock a little behind the gateway's), the session that
    held the address before it is preferred while it still covers the flow: at a hand-over
    the grace must not move the flow of the leaving user to the arriving one.
    """
    return f"""CASE
        WHEN s.start IS NULL THEN NULL
        WHEN f._attr_ts >= s.start THEN
            CASE WHEN s.end_at IS NULL OR f._attr_ts <= s.end_at + {grace} THEN s.{column} END
        WHEN s.prev_start IS NOT NULL
            AND (s.prev_end IS NULL OR f._attr_ts <= s.prev_end + {grace}) THEN s.prev_{column}
        ELSE s.{column}
    END"""


def attribute_sql(
    flows_relation: str,
    ip_column: str = '"source.ip"',
    ts_column: str = '"@timestamp"',
    grace_seconds: int = 120,
) -> str:
    """SQL text of a SELECT that returns every row of `flows_relation` plus "session.user"
    (user.name of the session that held the tunnel address at that time, within grace) and
    "session.gateway", via ASOF JOIN on sessions (tunnel_ip, start).

    ``flows_relation`` is a table or view name or a parenthesised subquery. ``ip_column`` and
    ``ts_column`` are SQL expressions over its columns, so a detection can attribute by the
    flow's start where a record is stamped at its end (firewall teardown lines):
    ``ts_column='coalesce("event.end" - to_microseconds("event.duration" // 1000),
    "@timestamp")'``. A session covers its tunnel address from ``grace_seconds`` before its
    start (clock skew between sensor and gateway) to ``grace_seconds`` after its end, and
    from its start on while its end is NULL. Rows outside every session come back with NULL
    "session.user": for a pool address, a tunnel used outside any session. Tunnel addresses
    are matched across gateways: two gateways handing out one pool cannot be told apart.
    """
    grace_seconds = int(grace_seconds)
    if grace_seconds < 0:
        raise ValueError(f"grace_seconds must not be negative, got {grace_seconds}")
    grace = f"INTERVAL {grace_seconds} SECOND"
    return f"""SELECT f.* EXCLUDE (_attr_ip, _attr_ts),
    {_held("usr", grace)} AS "session.user",
    {_held("gw", grace)} AS "session.gateway"
FROM (
    SELECT *, {ip_column} AS _attr_ip, {ts_column} AS _attr_ts FROM {flows_relation}
) AS f
ASOF LEFT JOIN (
    SELECT "vpn.tunnel_ip" AS tip, "session.start" AS start, "session.end" AS end_at,
        "user.name" AS usr, "observer.name" AS gw,
        lag("session.start") OVER w AS prev_start, lag("session.end") OVER w AS prev_end,
        lag("user.name") OVER w AS prev_usr, lag("observer.name") OVER w AS prev_gw
    FROM sessions
    WHERE "vpn.tunnel_ip" IS NOT NULL AND "session.start" IS NOT NULL
    WINDOW w AS (PARTITION BY "vpn.tunnel_ip" ORDER BY "session.start")
) AS s
    ON f._attr_ip = s.tip AND f._attr_ts + {grace} >= s.start"""
