"""OpenVPN 2.x server log, in every way it reaches a file.

Line shapes, as OpenVPN 2.6 really writes them (``tests/fixtures/openvpn/capture.sh`` runs a
server and clients on loopback and keeps what they wrote) and as older releases wrote them:

* ``--log FILE`` and stdout: ``2026-11-30 04:53:52 <message>`` (2.5 and later), with
  `` us=97082`` after the time at ``--verb 4`` and up (microseconds, not zero-padded);
  ``Mon Nov 30 04:53:52 2026 <message>`` (``ctime``, 2.4 and older; a one-digit day is
  space-padded). Local wall time without a zone: read in ``ctx.tz``.
* ``--machine-readable-output``: ``1796014432.256608 14000002 <message>``: Unix seconds and
  microseconds (UTC), then the message flags in hex (we keep the severity they encode).
* ``--syslog`` / journald through rsyslog: any header :mod:`vpnsentry.parse.syslog` reads
  (RFC 3164, RFC 5424, RFC 3339), program ``openvpn``, ``ovpn-<name>`` (``--daemon``) or
  ``openvpn-server``; a native timestamp right after the syslog header (stdout captured by
  journald without ``--suppress-timestamps``) wins over the syslog one, as it has a year.
* OpenWrt ``logread``: ``Sat Aug  5 11:37:27 2023 daemon.notice openvpn(server)[16342]: ``.

A message may start with the client it concerns: ``alice/203.0.113.11:45217 `` (certificate
common name, or the username with ``--username-as-common-name``) or, before the TLS
handshake has named the client, ``203.0.113.11:45217 ``, or, while the server sets up a new
client instance, ``Connection Attempt ``. An IPv6 client is printed without port
(``alice/2001:db8::7``). A second form names the client in brackets: ``[alice] Peer
Connection Initiated with [AF_INET]203.0.113.11:45217``. Socket addresses in messages carry
the family: ``[AF_INET]ip:port``, ``[AF_INET6]ip:port``; a dual-stack server shows IPv4
clients as ``[AF_INET6]::ffff:203.0.113.16:59277``, which we store as the IPv4 address.

``user.name`` is the name the line states: the username of ``username '...'`` messages, else
the common name (``VERIFY`` lines: only the client certificate at ``depth=0``; the prefix;
the bracket). Common name and username differ when certificates name devices
(``dave-laptop`` authenticating as ``dave``); OpenVPN itself then names the session by the
common name. ``UNDEF`` (no name yet) is no name.

``event.action`` values (``event.category`` / ``event.type`` / ``event.outcome``):

==========================  ============================================================
certificate-verify          ``VERIFY OK|ERROR|CRL|<check> OK|ERROR``: authentication/info,
                            success or failure; ``event.reason`` the OpenSSL error,
                            ``certificate revoked`` or ``<check> verification failed``
user-auth                   ``TLS: Username/Password authentication succeeded|deferred|failed
                            for username '...'``: authentication/info, success, unknown
                            (``event.reason`` ``deferred``) or failure; also ``TLS Auth
                            Error: ...`` and ``TLS Error: Auth Username/Password was not
                            provided by peer`` (failure, reason the error text)
token-auth                  ``TLS: Username/auth-token authentication ...`` (a session
                            renewing with its token, not a password login)
auth-failed-sent            ``SENT CONTROL [name]: 'AUTH_FAILED...'``: the server tells the
                            client it failed (authentication/info/failure). OpenVPN writes it
                            once more for the same failure with ``[UNDEF]``; count failures
                            by ``user-auth``, not by this.
auth-failed-received        the client-side ``AUTH: Received control message: AUTH_FAILED``
pam-auth                    ``[PLUGIN ]AUTH-PAM: BACKGROUND: user '...' failed to authenticate:
                            ...`` (authentication/info/failure): the only failure line that
                            names the user; before 2.5 the plugin wrote it without timestamp
connection-initiated        ``Peer Connection Initiated with ...``: the TLS control channel is
                            up (session/start). Not an authorization: a client whose password
                            failed gets one too; authorized clients get a tunnel address.
pool-address-assigned       ``MULTI_sva: pool returned IPv4=..., IPv6=...`` (session/info,
                            ``vpn.tunnel_ip``, IPv4 preferred)
primary-address-assigned    ``MULTI: primary virtual IP[v6] for <client>: <ip>``
route-learned               ``MULTI: Learn: <ip> -> <client>`` (``vpn.tunnel_ip`` only for a
                            host address, not an ``--iroute`` subnet or a TAP MAC address)
session-replaced            ``MULTI: new connection by client '...' will cause previous active
                            sessions by this client to be dropped`` (same name, second place)
session-end                 ``SIG...[soft|hard,<reason>] received, client-instance
                            exiting|restarting``: the server drops that client instance
                            (session/end, ``event.reason`` e.g. ``ping-restart``,
                            ``connection-reset``, ``delayed-exit``, ``tls-error``)
inactivity-timeout          ``Inactivity timeout (--ping-restart|--inactive|...)`` (session/
                            info; the session-end line follows, count ends by that)
connection-reset            ``Connection reset, restarting`` (TCP; session/info)
session-timeout             ``Session timeout, exiting`` (``--session-timeout``)
exit-notification           ``CC-EEN exit message received by peer``: the client said goodbye
session-status              a client row of the status list a server writes on SIGUSR2 (see
                            :mod:`.openvpn_status`: bytes, connected since, tunnel address)
tls-handshake-failed        ``TLS Error: TLS handshake failed`` (network/info/failure)
tls-negotiation-timeout     ``TLS Error: TLS key negotiation failed to occur within N seconds``
packet-rejected             ``TLS Error: tls-crypt unwrapping failed|cannot locate HMAC|
                            incoming packet authentication failed from <addr>``: a packet
                            without the shared key (network/denied/failure): scanners
tls-error                   any other ``TLS Error:``/``TLS_ERROR:`` (network/info/failure)
connection-rate-limited     ``MULTI: Connection from <ip:port> would exceed new connection
                            frequency limit`` (``--connect-freq``; network/denied)
max-clients-reached         ``MULTI: new incoming connection would exceed maximum number of
                            clients`` (network/denied)
client-rejected             ``MULTI: client has been rejected due to ...`` / ``MULTI: connection
                            rejected: ...`` (authentication/info/failure)
bad-source-address          ``MULTI: bad source address from client [ip], packet dropped``: a
                            client sent from an address it was not given (network/denied)
tcp-connection-accepted     ``TCP connection established with <addr>`` (network/start)
connection-attempt          ``TLS: Initial packet from <addr>`` (network/start)
peer-info                   ``peer info: IV_...=...``: ``IV_VER`` -> ``vpn.client_version``,
                            ``IV_PLAT`` -> ``vpn.client_os``, ``IV_GUI_VER`` ->
                            ``user_agent.original`` (session/info)
initialization-completed    ``Initialization Sequence Completed`` (process/start)
process-exit                ``SIG...[...] received, process exiting`` (process/end)
process-restart             ``SIG...[...] received, process restarting`` (process/info)
==========================  ============================================================

Every other line of OpenVPN's is an event with its ``message`` and no action. OpenVPN does
not log bytes when a client disconnects (they only reach ``--client-disconnect`` scripts as
``bytes_received``/``bytes_sent``); the bytes it does log are the SIGUSR2 status dump.
Client logs parse too, but there a bracketed name is the server's certificate.

Quarantined: lines with no OpenVPN or syslog timestamp (``bad_timestamp`` when they look
like OpenVPN, else ``no_match``), impossible times, and syslog lines of other programs that
do not look like OpenVPN (``no_match``).
"""

from __future__ import annotations

import re
from typing import Final

import polars as pl

from vpnsentry.ecs import UTC_TS
from vpnsentry.parse.base import ParseContext, Parser, ParseResult, Reason, register
from vpnsentry.parse.fields import canonical_ip
from vpnsentry.parse.syslog import split_header
from vpnsentry.parse.timeparse import MONTHS, parse_naive, plausible
from vpnsentry.parse.vendors.openvpn_status import (
    CLIENT_LAYOUTS,
    LATEST,
    SESSION_COLUMNS,
    addresses,
    client_columns,
    session_status,
)

_MONTH = r"Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
#: OpenVPN's own timestamp, one regex per form (see the module docstring), each with a
#: cheap test that picks it. Only the head is captured: the message is the rest, cut off by
#: length (capturing it costs a lot).
_NATIVE_FORMS: Final = (
    (  # 2.5+ --log and stdout, at --verb 4 and up with microseconds
        r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} ",
        r"^(?P<head>(?P<date>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})(?: us=(?P<us>\d{1,6}))? )",
    ),
    (  # --machine-readable-output
        r"^\d{9,11}\.\d{6} [0-9a-f]{1,8} ",
        r"^(?P<head>(?P<esec>\d{9,11})\.(?P<eus>\d{6}) (?P<flags>[0-9a-f]{1,8}) )",
    ),
    (  # ctime of 2.4 and older, optionally followed by OpenWrt logread's level and program
        rf"^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?:{_MONTH}) +\d",
        rf"^(?P<head>(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?P<cmon>{_MONTH}) +(?P<cday>\d{{1,2}}) "
        r"(?P<cclock>\d{2}:\d{2}:\d{2}) (?P<cyear>\d{4})(?: us=(?P<cus>\d{1,6}))? "
        r"(?:[a-z]+\.(?P<wlvl>[a-z]+) (?P<wtag>[^\s\[:]+)(?:\[\d+\])?: )?)",
    ),
)
_NATIVE_COLUMNS: Final = sorted(
    {f"_n_{g}" for _, pattern in _NATIVE_FORMS for g in re.findall(r"\?P<(\w+)>", pattern)}
)
#: Timestamp forms no other program writes: ``--verb 4`` microseconds, machine-readable.
_OWN_FORMS: Final = (
    r"^(?:\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} us=\d{1,6} |\d{9,11}\.\d{6} [0-9a-f]{1,8} )"
)
#: An RFC 3164 syslog header, whose time has no zone.
_BSD_START: Final = rf"^(?:<\d{{1,3}}>)?(?:{_MONTH}) "
#: Lines starting like this carry OpenVPN's own timestamp and no syslog header.
_NATIVE_START: Final = "|".join(test for test, _ in _NATIVE_FORMS)
#: Lines starting like this may carry a syslog header (RFC 3164, RFC 5424, RFC 3339).
_SYSLOG_START: Final = rf"^(?:<\d{{1,3}}>|1 \d{{4}}-|\d{{4}}-\d{{2}}-\d{{2}}T|(?:{_MONTH}) )"
#: The client a message is about: ``[cn/]address `` and/or ``[name] ``; while a client instance
#: is being created, OpenVPN's prefix is the words ``Connection Attempt``.
_PREFIX: Final = (
    r"^(?P<head>(?:Connection Attempt )?(?:(?:(?P<cn>[^/:\s\[](?:[^/:]*[^/:\s])?)/)?"
    r"(?P<paddr>\d{1,3}(?:\.\d{1,3}){3}:\d{1,5}|[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}) )?"
    r"(?:\[(?P<bname>[^\]]+)\] )?)"
)
#: A client prefix that is a single token (a common name without spaces, or none).
_ONE_WORD_PREFIX: Final = (
    r"^(?:[^/:\s\[]+/)?"
    r"(?:\d{1,3}(?:\.\d{1,3}){3}:\d{1,5}|[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7})$"
)
#: Messages whose prefix the token test cannot take apart.
_PREFIX_SLOW: Final = (
    r"^Connection Attempt |^[^/:\[]{1,64} [^/:\[]*/(?:\d{1,3}\.\d|[0-9A-Fa-f]{0,4}:)"
)
#: Words that mark a line as OpenVPN's when neither its program nor its form says so.
_MARKERS: Final = (
    r"OpenVPN|TUN/TAP|Data Channel|Control Channel|IFCONFIG POOL|net_(?:addr|iface|route)"
    r"|OPTIONS IMPORT|PUSH|Socket Buffers|link (?:local|remote)|Initialization Sequence"
    r"|MULTI|TLS|VERIFY|SIG[A-Z0-9]+\[|\[AF_INET|peer info:|AUTH-PAM|PLUGIN_CALL"
)
_PROGRAM: Final = r"(?i)^(?:openvpn|ovpn)"
_AF_ADDR = r"(?P<addr>\[AF_INET6?\][^\s,]+)"

#: Message beginnings (literal) -> message kind. Longer beginnings first where they overlap.
_ANCHORS: Final[tuple[tuple[str, str], ...]] = (
    ("Peer Connection Initiated with ", "connect"),
    ("VERIFY ", "verify"),
    ("TLS: Username/Password authentication ", "user_auth"),
    ("TLS: Username/auth-token authentication ", "token_auth"),
    ("TLS Auth Error: ", "auth_error"),
    ("TLS Error: Auth Username/Password was not provided by peer", "auth_missing"),
    ("TLS Error: TLS handshake failed", "handshake"),
    ("TLS Error: TLS key negotiation failed to occur within ", "negotiation"),
    ("TLS Error: tls-crypt unwrapping failed from ", "rejected_packet"),
    ("TLS Error: cannot locate HMAC in incoming packet from ", "rejected_packet"),
    ("TLS Error: incoming packet authentication failed from ", "rejected_packet"),
    ("TLS Error: ", "tls_error"),
    ("TLS_ERROR: ", "tls_error"),
    ("SENT CONTROL [", "sent_control"),
    ("AUTH: Received control message: AUTH_FAILED", "auth_failed_received"),
    ("PLUGIN AUTH-PAM: BACKGROUND: user '", "pam"),
    ("AUTH-PAM: BACKGROUND: user '", "pam"),
    ("MULTI_sva: pool returned ", "pool"),
    ("MULTI: Learn", "learn"),
    ("MULTI: primary virtual IP", "primary"),
    ("MULTI: new connection by client '", "replaced"),
    ("MULTI: bad source address from client [", "bad_source"),
    ("MULTI: Connection from ", "rate_limited"),
    ("MULTI: new incoming connection would exceed maximum number of clients", "max_clients"),
    ("MULTI: client has been rejected due to ", "client_rejected"),
    ("MULTI: connection rejected: ", "connection_rejected"),
    ("Inactivity timeout (--", "inactivity"),
    ("Connection reset, restarting", "reset"),
    ("Session timeout, exiting", "session_timeout"),
    ("SIGTERM[", "signal"),
    ("SIGUSR1[", "signal"),
    ("SIGHUP[", "signal"),
    ("SIGINT[", "signal"),
    ("CC-EEN exit message received by peer", "exit_notify"),
    ("TCP connection established with ", "tcp"),
    ("TLS: Initial packet from ", "initial_packet"),
    ("peer info: ", "peer_info"),
    ("Initialization Sequence Completed", "init_done"),
    ("CLIENT_LIST", "status_tagged"),
)
_ANCHOR_RE: Final = "^(" + "|".join(re.escape(a) for a, _ in _ANCHORS) + ")"
_KIND_OF: Final = dict(_ANCHORS)
#: A version-1 status client row (``cn,address,bytes,bytes,since``) dumped into the log.
_STATUS_V1: Final = r"^[^,]+,(?:\d{1,3}(?:\.\d{1,3}){3}:\d{1,5}|[0-9A-Fa-f:]+),\d+,\d+,."

#: Message kind -> regex over the message (after any client prefix). Group names are shared
#: across kinds: user, addr, tip, tip6, reason, res, depth, subject, check, key, value, sig,
#: who.
_PATTERNS: Final[dict[str, str]] = {
    "connect": rf"^Peer Connection Initiated with {_AF_ADDR}",
    "verify": (
        r"^VERIFY(?: (?P<check>\w+))? (?P<res>OK|ERROR|CRL|WARNING)\b:? ?"
        r"(?:depth=(?P<depth>\d+), )?(?:error=(?P<reason>[^:]*): )?(?P<subject>(?s:.*))$"
    ),
    "user_auth": (
        r"^TLS: Username/Password authentication (?P<res>\w+) for username "
        r"'?(?P<user>.*?)'?(?: \[CN SET\])? *$"
    ),
    "token_auth": (
        r"^TLS: Username/auth-token authentication (?P<res>\w+) for username "
        r"'?(?P<user>.*?)'? *$"
    ),
    "auth_error": (
        r"^TLS Auth Error: (?P<reason>.+?)(?: for (?:peer|common name '(?P<user>[^']*)'.*))?$"
    ),
    "rejected_packet": rf"^TLS Error: (?P<reason>.+?) from {_AF_ADDR}",
    "tls_error": rf"^TLS(?: Error|_ERROR): (?P<reason>.+?)(?: from {_AF_ADDR}.*)?$",
    "sent_control": (
        r"^SENT CONTROL \[(?P<user>[^\]]*)\]: '(?P<res>AUTH_FAILED)?(?:,(?P<reason>[^']*))?"
    ),
    "auth_failed_received": r"^AUTH: Received control message: AUTH_FAILED(?:,(?P<reason>.*))?",
    "pam": (
        r"^(?:PLUGIN )?AUTH-PAM: BACKGROUND: user '(?P<user>.*)' (?P<res>failed) to authenticate: "
        r"(?P<reason>.*)$"
    ),
    "pool": r"^MULTI_sva: pool returned IPv4=(?P<tip>[^,]*), IPv6=(?P<tip6>.*)$",
    "learn": r"^MULTI: Learn[^:]*: (?P<tip>\S+) -> (?:(?P<user>.+)/)?(?P<addr>[^/\s]+)$",
    "primary": (
        r"^MULTI: primary virtual IP(?:v6)? for (?:(?P<user>.+)/)?(?P<addr>[^/\s]+): "
        r"(?P<tip>\S+)$"
    ),
    "replaced": r"^MULTI: new connection by client '(?P<user>[^']*)'",
    "rate_limited": r"^MULTI: Connection from (?P<addr>\S+) would exceed",
    "client_rejected": r"^MULTI: client has been rejected due to (?P<reason>.+)$",
    "connection_rejected": r"^MULTI: connection rejected: (?P<reason>.*?)(?:, CLI:.*)?$",
    "inactivity": r"^Inactivity timeout \(--(?P<reason>[\w-]+)\)",
    "signal": (
        r"^(?P<sig>SIG\w+)\[(?:soft|hard),(?P<reason>[^\]]*)\] received, "
        r"(?P<who>client-instance|process) (?P<res>exiting|restarting)"
    ),
    "tcp": rf"^TCP connection established with {_AF_ADDR}",
    "initial_packet": rf"^TLS: Initial packet from {_AF_ADDR}",
    "peer_info": r"^peer info: (?P<key>\w+)=(?P<value>(?s:.*))$",
}
_GROUPS: Final = (
    "user",
    "addr",
    "tip",
    "tip6",
    "reason",
    "res",
    "depth",
    "subject",
    "check",
    "key",
    "value",
    "sig",
    "who",
)

#: Message kind -> (event.action, event.category, event.type, event.outcome, event.reason);
#: kinds whose values depend on the line are completed in :func:`_classified`.
_SPEC: Final[dict[str, tuple[str | None, ...]]] = {
    "connect": ("connection-initiated", "session", "start", None, None),
    "verify": ("certificate-verify", "authentication", "info", None, None),
    "user_auth": ("user-auth", "authentication", "info", None, None),
    "token_auth": ("token-auth", "authentication", "info", None, None),
    "auth_error": ("user-auth", "authentication", "info", "failure", None),
    "auth_missing": (
        "user-auth",
        "authentication",
        "info",
        "failure",
        "username/password not provided",
    ),
    "handshake": ("tls-handshake-failed", "network", "info", "failure", None),
    "negotiation": ("tls-negotiation-timeout", "network", "info", "failure", None),
    "rejected_packet": ("packet-rejected", "network", "denied", "failure", None),
    "tls_error": ("tls-error", "network", "info", "failure", None),
    "sent_control": (None, None, None, None, None),
    "auth_failed_received": ("auth-failed-received", "authentication", "info", "failure", None),
    "pam": (None, None, None, None, None),
    "pool": ("pool-address-assigned", "session", "info", None, None),
    "learn": ("route-learned", "session", "info", None, None),
    "primary": ("primary-address-assigned", "session", "info", None, None),
    "replaced": ("session-replaced", "session", "info", None, None),
    "bad_source": ("bad-source-address", "network", "denied", "failure", "bad source address"),
    "rate_limited": ("connection-rate-limited", "network", "denied", "failure", None),
    "max_clients": ("max-clients-reached", "network", "denied", "failure", None),
    "client_rejected": ("client-rejected", "authentication", "info", "failure", None),
    "connection_rejected": ("client-rejected", "authentication", "info", "failure", None),
    "inactivity": ("inactivity-timeout", "session", "info", None, None),
    "reset": ("connection-reset", "session", "info", None, "connection-reset"),
    "session_timeout": ("session-timeout", "session", "info", None, "session-timeout"),
    "signal": (None, None, None, None, None),
    "exit_notify": ("exit-notification", "session", "info", None, None),
    "tcp": ("tcp-connection-accepted", "network", "start", None, None),
    "initial_packet": ("connection-attempt", "network", "start", None, None),
    "peer_info": ("peer-info", "session", "info", None, None),
    "init_done": ("initialization-completed", "process", "start", None, None),
}
_SPEC_TABLE: Final = pl.DataFrame(
    [(k, *v) for k, v in _SPEC.items()],
    schema=["_kind", "event.action", "event.category", "event.type", "event.outcome", "_reason"],
    orient="row",
)

_OUTCOMES: Final = {
    "OK": "success",
    "ERROR": "failure",
    "CRL": "failure",
    "succeeded": "success",
    "failed": "failure",
    "deferred": "unknown",
}
_SEVERITY: Final = {
    0: "emergency",
    1: "alert",
    2: "critical",
    3: "error",
    4: "warning",
    5: "notice",
    6: "informational",
    7: "debug",
}
#: ``--machine-readable-output`` flag bits (``error.h``) that OpenVPN itself sends to syslog as
#: LOG_ERR (M_FATAL, M_NONFATAL, M_USAGE_SMALL) and LOG_WARNING (M_WARN); the rest is
#: LOG_NOTICE. We name the level the way its syslog line would.
_ERROR_FLAGS: Final = (1 << 4) | (1 << 5) | (1 << 13)
_WARN_FLAG: Final = 1 << 6
#: OpenWrt's short syslog level names -> the names used for ``<PRI>`` severities.
_LEVEL_WORDS: Final = {
    "emerg": "emergency",
    "crit": "critical",
    "err": "error",
    "warn": "warning",
    "info": "informational",
}
_STATUS_KINDS: Final = ["status_v1", "status_tagged"]
_TEXT_COLUMNS: Final = (
    "@timestamp",
    "event.timezone",
    "observer.name",
    "log.level",
    "message",
    "event.dataset",
    "observer.type",
    "vpn.tunnel_type",
)


@register
class OpenVPN(Parser):
    """OpenVPN 2.x server logs: ``--log``, stdout, machine-readable output and syslog."""

    name = "openvpn"
    title = "OpenVPN 2.x server log (--log, stdout, syslog)"
    vendor = "OpenVPN"
    product = "OpenVPN"
    datasets = ("events",)
    sniff_literals = (
        "OpenVPN",
        "openvpn",
        "ovpn",
        "VERIFY",
        "MULTI",
        "TLS",
        "peer info",
        "Peer Connection",
        "[AF_INET",
        "SIGTERM",
        "SIGUSR1",
        "Inactivity timeout",
        "Connection reset",
        "Data Channel",
        "Control Channel",
        "TUN/TAP",
        "Initialization Sequence",
    )
    sample = (
        "2026-11-30 04:53:52 203.0.113.11:45217 [alice] Peer Connection Initiated with "
        "[AF_INET]203.0.113.11:45217"
    )

    def sniff(self, head: list[str]) -> float:
        """Share of lines in an OpenVPN-only form (microsecond or machine-readable timestamps,
        an OpenVPN syslog program) or in a common form that reads like OpenVPN. A bare
        ``YYYY-MM-DD HH:MM:SS`` or ``ctime`` prefix is common to many programs, and OpenVPN's
        words (TLS, VERIFY) to many logs: only both together count."""
        lines = [ln for ln in head if ln.strip()]
        if not lines:
            return 0.0
        series = pl.Series(lines, dtype=pl.String)
        frame = _split(series, ParseContext(path=""))
        own = series.str.contains(_OWN_FORMS)
        hits = frame.select(
            ((pl.col("_native") & pl.col("_looks")) | pl.col("_program") | own).sum()
        ).item()
        return float(hits) / len(lines)

    def parse(self, lines: pl.Series, ctx: ParseContext) -> ParseResult:
        df = _split(lines, ctx)
        header = pl.col("_native") | pl.col("_syslog")
        named = pl.col("_program_name").is_not_null()
        trusted = (
            pl.when(named)
            .then(pl.col("_program") | pl.col("_looks"))
            .otherwise(pl.col("_native") | pl.col("_looks"))
        )
        fate = (
            pl.when(~header & ~pl.col("_looks"))
            .then(pl.lit(Reason.NO_MATCH.value))
            .when(~header)
            .then(pl.lit(Reason.BAD_TIMESTAMP.value))
            .when(~trusted)
            .then(pl.lit(Reason.NO_MATCH.value))
            .when(pl.col("@timestamp").is_null())
            .then(pl.lit(Reason.BAD_TIMESTAMP.value))
        )
        df = df.with_columns(fate.alias("_fate"))
        res = ParseResult()
        res.rejected = df.filter(pl.col("_fate").is_not_null()).select(
            "_row",
            pl.col("_fate").alias("reason"),
            pl.when(pl.col("_fate") == Reason.BAD_TIMESTAMP.value)
            .then(pl.lit("no readable OpenVPN or syslog timestamp"))
            .when(header & pl.col("_program_name").is_not_null())
            .then(pl.format("syslog program {} is not OpenVPN", pl.col("_program_name")))
            .otherwise(pl.lit("not an OpenVPN log line"))
            .alias("detail"),
        )
        events, dropped = _events(df.filter(pl.col("_fate").is_null()), ctx)
        res.dropped_values = dropped
        if events.height:
            res.tables["events"] = events
        return res


def _headers(lines: pl.Series, ctx: ParseContext) -> pl.DataFrame:
    """:func:`split_header` columns plus ``_row`` and ``_bsd`` (an RFC 3164 header, whose
    time has no zone). The syslog splitter only sees lines that can start with a syslog
    header: it is far costlier per line than these tests, and most OpenVPN logs are OpenVPN's
    own files. Row order is not kept."""
    frame = pl.DataFrame({"_body": lines}).with_row_index("_row")
    syslog = ~pl.col("_body").str.contains(_NATIVE_START) & pl.col("_body").str.contains(
        _SYSLOG_START
    )
    plain = frame.filter(~syslog).with_columns(
        pl.lit(False).alias("_bsd"),
        pl.lit(None, UTC_TS).alias("_sys_ts"),
        *(pl.lit(None, pl.String).alias(c) for c in ("_sys_host", "_sys_app", "_sys_pid")),
        pl.lit(None, pl.Int32).alias("_sys_pri"),
    )
    rest = frame.filter(syslog)
    if rest.height == 0:
        return plain
    split = split_header(rest["_body"], ctx).drop("_line", strict=False)
    split = split.with_columns(
        rest["_row"],
        rest["_body"].str.contains(_BSD_START).alias("_bsd"),
        # RFC 5424 as rsyslog writes it leaves a space before the message
        pl.col("_body").str.strip_chars_start(" "),
    )
    return pl.concat([plain, split], how="diagonal_relaxed")


def _native_heads(df: pl.DataFrame) -> pl.DataFrame:
    """``_n_<group>``: the parts of OpenVPN's own timestamp at the start of ``_body``.

    Each form has its own small regex; lines of none of them (syslog bodies without an
    OpenVPN timestamp) see no regex at all. Row order is not kept.
    """
    body = pl.col("_body")
    form = pl.lit(len(_NATIVE_FORMS))
    for code, (test, _) in reversed(list(enumerate(_NATIVE_FORMS))):
        form = pl.when(body.str.contains(test)).then(code).otherwise(form)
    parts = df.with_columns(form.alias("_form")).partition_by("_form", as_dict=True)
    df = pl.concat(
        [
            part.with_columns(
                body.str.extract_groups(_NATIVE_FORMS[int(code)][1])
                .name.prefix_fields("_n_")
                .struct.unnest()
            )
            if int(code) < len(_NATIVE_FORMS)
            else part
            for (code,), part in parts.items()
        ],
        how="diagonal_relaxed",
    ).drop("_form")
    missing = [c for c in _NATIVE_COLUMNS if c not in df.columns]
    return df.with_columns(pl.lit(None, pl.String).alias(c) for c in missing)


def _client_prefix(df: pl.DataFrame) -> pl.DataFrame:
    """``cn``, ``paddr``, ``bname`` (the client prefix of ``message``) and ``_text`` (the
    message after it).

    Most prefixes are one space-free token (``alice/203.0.113.11:45217``), cut with string
    kernels; the full regex only sees the rest that may hold one (a common name with spaces,
    ``Connection Attempt``).
    """
    m = pl.col("message")
    df = df.with_columns(m.str.slice(0, m.str.find(" ", literal=True)).alias("_tok"))
    tok = pl.col("_tok")
    fast = tok.str.contains(_ONE_WORD_PREFIX).fill_null(False)
    df = df.with_columns(fast.alias("_fast"), tok.str.find("/", literal=True).alias("_slash"))
    fast, slash = pl.col("_fast"), pl.col("_slash")
    df = df.with_columns(
        pl.when(fast & slash.is_not_null()).then(tok.str.slice(0, slash)).alias("cn"),
        pl.when(fast).then(tok.str.slice((slash + 1).fill_null(0))).alias("paddr"),
        pl.when(fast).then(m.str.slice(tok.str.len_chars() + 1)).otherwise(m).alias("_rest"),
    ).with_columns(pl.col("_rest").str.extract(r"^\[([^\]]+)\] ", 1).alias("bname"))
    bname = pl.col("bname")
    df = df.with_columns(
        pl.when(bname.is_not_null())
        .then(pl.col("_rest").str.slice(bname.str.len_chars() + 3))
        .otherwise(pl.col("_rest"))
        .alias("_text")
    )
    slow = ~fast & m.str.contains(_PREFIX_SLOW)
    if not df.select(slow.any()).item():
        return df.drop("_tok", "_fast", "_slash", "_rest")
    g = pl.col("_g").struct.field
    redo = df.filter(slow).with_columns(m.str.extract_groups(_PREFIX).alias("_g"))
    redo = redo.with_columns(
        g("cn").alias("cn"),
        g("paddr").alias("paddr"),
        g("bname").alias("bname"),
        m.str.slice(g("head").str.len_chars()).alias("_text"),
    ).drop("_g")
    return pl.concat([df.filter(~slow), redo]).drop("_tok", "_fast", "_slash", "_rest")


def _split(lines: pl.Series, ctx: ParseContext) -> pl.DataFrame:
    """Headers, timestamp, client prefix and message kind of every line.

    Columns: ``_row``, ``@timestamp``, ``event.timezone`` (``ctx.tz`` where the time carried
    no zone), ``observer.name``, ``log.level``, ``message``, ``_native``/``_syslog`` (which
    header was found), ``_program`` (an OpenVPN program name),
    ``_program_name``, ``_looks`` (reads like OpenVPN), ``cn``, ``paddr``, ``bname``,
    ``_text`` (message without client prefix) and ``_kind``.
    """
    df = _native_heads(_headers(lines, ctx))

    def n(group: str) -> pl.Expr:
        return pl.col(f"_n_{group}")

    us = pl.coalesce(n("us"), n("cus")).cast(pl.Int64, strict=False).fill_null(0)
    mon = n("cmon").replace_strict(MONTHS, default=None, return_dtype=pl.Int32)
    ctime = pl.format(
        "{}-{}-{} {}",
        n("cyear"),
        mon.cast(pl.String).str.zfill(2),
        n("cday").str.zfill(2),
        n("cclock"),
    )
    epoch_us = n("esec").cast(pl.Int64) * 1_000_000 + n("eus").cast(pl.Int64)
    naive = pl.coalesce(n("date"), ctime)
    local = parse_naive(naive, "%Y-%m-%d %H:%M:%S", ctx.tz) + pl.duration(microseconds=us)
    epoch = epoch_us.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    native_ts = pl.when(n("esec").is_not_null()).then(epoch).otherwise(local)
    flags = n("flags").str.to_integer(base=16, strict=False)
    level = (
        pl.when((flags & _ERROR_FLAGS) != 0)
        .then(pl.lit("error"))
        .when((flags & _WARN_FLAG) != 0)
        .then(pl.lit("warning"))
        .when(flags.is_not_null())
        .then(pl.lit("notice"))
    )
    program = pl.coalesce(pl.col("_sys_app"), n("wtag"))
    zone_less = n("date").is_not_null() | n("cyear").is_not_null()
    zone_less = zone_less | (n("esec").is_null() & pl.col("_bsd") & pl.col("_sys_ts").is_not_null())
    df = df.with_columns(
        pl.when(zone_less).then(pl.lit(ctx.tz)).alias("event.timezone"),
        (n("esec").is_not_null() | n("date").is_not_null() | n("cyear").is_not_null()).alias(
            "_native"
        ),
        (
            pl.col("_sys_ts").is_not_null()
            | pl.col("_sys_app").is_not_null()
            | pl.col("_sys_host").is_not_null()
        ).alias("_syslog"),
        program.str.contains(_PROGRAM).fill_null(False).alias("_program"),
        program.alias("_program_name"),
        plausible(pl.coalesce(native_ts, pl.col("_sys_ts")), ctx.now).alias("@timestamp"),
        pl.col("_sys_host").alias("observer.name"),
        pl.coalesce(
            level,
            n("wlvl").replace(_LEVEL_WORDS),
            (pl.col("_sys_pri") % 8).replace_strict(
                _SEVERITY, default=None, return_dtype=pl.String
            ),
        ).alias("log.level"),
        pl.col("_body").str.slice(n("head").str.len_chars().fill_null(0)).alias("message"),
    )
    df = _client_prefix(df)
    kind = (
        pl.col("_text")
        .str.extract(_ANCHOR_RE, 1)
        .replace_strict(_KIND_OF, default=None, return_dtype=pl.String)
    )
    df = df.with_columns(kind.alias("_kind"))
    v1 = pl.col("_kind").is_null() & pl.col("_text").str.contains(_STATUS_V1)
    df = df.with_columns(
        pl.when(v1).then(pl.lit("status_v1")).otherwise(pl.col("_kind")).alias("_kind")
    )
    looks = (
        pl.col("_kind").is_not_null()
        | pl.col("paddr").is_not_null()
        | pl.col("message").str.contains(_MARKERS)
    )
    return df.with_columns(looks.fill_null(False).alias("_looks")).drop(
        "_body",
        "_bsd",
        "_sys_ts",
        "_sys_app",
        "_sys_host",
        "_sys_pid",
        *_NATIVE_COLUMNS,
    )


def _events(df: pl.DataFrame, ctx: ParseContext) -> tuple[pl.DataFrame, int]:
    """ECS events of the accepted lines and the number of values dropped as invalid."""
    df = df.with_columns(
        pl.lit("event").alias("event.kind"),
        pl.lit("openvpn.log").alias("event.dataset"),
        pl.lit("vpn").alias("observer.type"),
        pl.lit("openvpn").alias("vpn.tunnel_type"),
    )
    status, short = _status_fields(df.filter(pl.col("_kind").is_in(_STATUS_KINDS)))
    other = pl.concat(
        [df.filter(~pl.col("_kind").is_in(_STATUS_KINDS) | pl.col("_kind").is_null()), short],
        how="diagonal_relaxed",
    )
    parts = []
    for (kind,), part in other.partition_by("_kind", as_dict=True, maintain_order=True).items():
        pattern = _PATTERNS.get(str(kind))
        if pattern is not None:
            part = part.with_columns(
                pl.col("_text").str.extract_groups(pattern).alias("_g")
            ).unnest("_g")
        parts.append(part)
    frame = pl.concat(parts, how="diagonal_relaxed") if parts else other
    for g in _GROUPS:
        if g not in frame.columns:
            frame = frame.with_columns(pl.lit(None, pl.String).alias(g))
    events, dropped = _classified(frame)
    if status.height:
        rows, more = _status_rows(status, ctx)
        events = pl.concat([events, rows], how="diagonal_relaxed")
        dropped += more
    return events.sort("_row"), dropped


def _classified(df: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Action, category, type, outcome, reason, user and addresses of non-status lines."""
    kind = pl.col("_kind")
    df = df.join(_SPEC_TABLE, on="_kind", how="left", maintain_order="left")
    res = pl.col("res")
    is_verify = kind == "verify"
    verified = is_verify & res.is_in(["OK", "ERROR", "CRL"])
    auth = kind.is_in(["user_auth", "token_auth"])
    auth_failed = (kind == "sent_control") & (res == "AUTH_FAILED")
    pam_failed = (kind == "pam") & (res == "failed")
    sig = kind == "signal"
    instance = pl.col("who") == "client-instance"
    exiting = res == "exiting"
    subject_cn = pl.col("subject").str.extract(r"(?:^|[,/] ?)CN=([^,/]*)", 1)
    df = df.with_columns(
        pl.when(is_verify & ~verified)
        .then(pl.lit(None, pl.String))
        .when(auth_failed)
        .then(pl.lit("auth-failed-sent"))
        .when(pam_failed)
        .then(pl.lit("pam-auth"))
        .when(sig & instance)
        .then(pl.lit("session-end"))
        .when(sig & exiting)
        .then(pl.lit("process-exit"))
        .when(sig)
        .then(pl.lit("process-restart"))
        .otherwise(pl.col("event.action"))
        .alias("event.action"),
        pl.when(is_verify & ~verified)
        .then(pl.lit(None, pl.String))
        .when(auth_failed | pam_failed)
        .then(pl.lit("authentication"))
        .when(sig & instance)
        .then(pl.lit("session"))
        .when(sig)
        .then(pl.lit("process"))
        .otherwise(pl.col("event.category"))
        .alias("event.category"),
        pl.when(is_verify & ~verified)
        .then(pl.lit(None, pl.String))
        .when(auth_failed | pam_failed)
        .then(pl.lit("info"))
        .when(sig & (instance | exiting))
        .then(pl.lit("end"))
        .when(sig)
        .then(pl.lit("info"))
        .otherwise(pl.col("event.type"))
        .alias("event.type"),
        pl.when(verified | auth)
        .then(res.replace_strict(_OUTCOMES, default=None, return_dtype=pl.String))
        .when(auth_failed | pam_failed)
        .then(pl.lit("failure"))
        .otherwise(pl.col("event.outcome"))
        .alias("event.outcome"),
        pl.when(is_verify & (res == "CRL"))
        .then(pl.lit("certificate revoked"))
        .when(is_verify & (res == "ERROR") & pl.col("reason").is_null() & pl.col("check").is_null())
        .then(pl.col("subject"))
        .when(is_verify & (res == "ERROR") & pl.col("reason").is_null())
        .then(pl.format("{} verification failed", pl.col("check").str.to_lowercase()))
        .when(is_verify & ~verified)
        .then(pl.lit(None, pl.String))
        .when(auth & (res == "deferred"))
        .then(pl.lit("deferred"))
        .when(sig & (pl.col("reason") == ""))
        .then(pl.col("sig"))
        .when(kind == "sent_control")
        .then(pl.when(auth_failed).then(pl.col("reason")))
        .otherwise(pl.coalesce(pl.col("reason"), pl.col("_reason")))
        .alias("event.reason"),
        pl.when(is_verify)
        .then(pl.when(pl.col("depth") == "0").then(subject_cn))
        .otherwise(pl.col("user"))
        .alias("_user"),
        pl.when((kind == "peer_info") & (pl.col("key") == "IV_VER"))
        .then(pl.col("value"))
        .alias("vpn.client_version"),
        pl.when((kind == "peer_info") & (pl.col("key") == "IV_PLAT"))
        .then(pl.col("value"))
        .alias("vpn.client_os"),
        pl.when((kind == "peer_info") & (pl.col("key") == "IV_GUI_VER"))
        .then(pl.col("value"))
        .alias("user_agent.original"),
    )
    unnamed = ["", "UNDEF"]
    named = [
        pl.when(~pl.col(c).str.strip_chars().is_in(unnamed)).then(pl.col(c))
        for c in ("_user", "cn", "bname")
    ]
    host_only = ~pl.col("tip").str.contains(r"/|^(?:[0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}(?:@\d+)?$")
    df = df.with_columns(
        pl.coalesce(named).alias("user.name"),
        pl.when(host_only).then(pl.col("tip")).alias("_tip"),
        pl.when(pl.col("tip6") != "(Not enabled)").then(pl.col("tip6")).alias("_tip6"),
    )
    src, port, dropped = addresses(df.select(pl.coalesce("addr", "paddr")).to_series())
    tip, bad4 = canonical_ip(df["_tip"])
    tip6, bad6 = canonical_ip(df["_tip6"])
    df = df.with_columns(
        src.alias("source.ip"),
        port.alias("source.port"),
        pl.coalesce(tip, tip6).alias("vpn.tunnel_ip"),
    )
    dropped += bad4 + bad6
    return df.select(
        "_row",
        *_TEXT_COLUMNS,
        "event.kind",
        "event.action",
        "event.category",
        "event.type",
        "event.outcome",
        "event.reason",
        "user.name",
        "source.ip",
        "source.port",
        "vpn.tunnel_ip",
        "vpn.client_version",
        "vpn.client_os",
        "user_agent.original",
    ), dropped


def _status_fields(df: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Status-dump rows split into fields (``_f``, ``_n``), and the rows too short to be client
    rows, returned as ordinary messages (kind null).

    Tagged rows are split on TAB (status version 3; rsyslog shows TAB as ``#011``) or comma;
    their header may be far away, so the layout is told by field count.
    """
    text = pl.col("_text").str.replace_all("#011", "\t", literal=True)
    fields = (
        pl.when(text.str.contains("\t", literal=True))
        .then(text.str.split("\t"))
        .otherwise(text.str.split(","))
    )
    df = df.with_columns(fields.alias("_f")).with_columns(pl.col("_f").list.len().alias("_n"))
    short = (pl.col("_kind") == "status_tagged") & (pl.col("_n") <= min(CLIENT_LAYOUTS))
    return df.filter(~short), df.filter(short).drop("_f", "_n").with_columns(
        pl.lit(None, pl.String).alias("_kind")
    )


def _status_rows(df: pl.DataFrame, ctx: ParseContext) -> tuple[pl.DataFrame, int]:
    """Session-status events from the client list a server writes into its log on SIGUSR2."""
    parts = []
    for (kind, n), part in df.group_by(["_kind", "_n"], maintain_order=True):
        if kind == "status_v1":
            cols = client_columns(pl.col("_f"), None)
        else:
            layout = CLIENT_LAYOUTS.get(int(n) - 1, CLIENT_LAYOUTS[LATEST])
            cols = client_columns(pl.col("_f").list.slice(1), layout)
        parts.append(part.with_columns(**cols))
    rows, dropped = session_status(pl.concat(parts), ctx.tz, ctx.now)
    return rows.select("_row", *_TEXT_COLUMNS, *SESSION_COLUMNS), dropped
