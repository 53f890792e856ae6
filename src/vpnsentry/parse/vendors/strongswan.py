"""strongSwan (charon) IKE daemon log, through syslog or charon's own file logger.

Line shapes (strongSwan 5.x/6.x, ``charon.filelog``/``charon.syslog`` in strongswan.conf, and
the logs of strongSwan's own test scenarios):

* syslog: ``Mar 21 12:35:11 moon charon: 14[IKE] <rw|1> message``; any header
  :mod:`vpnsentry.parse.syslog` reads, program ``charon``, ``charon-systemd`` or ``charon-cmd``
  (journald forwards charon-systemd's lines with or without the ``14[IKE]`` thread/group
  prefix).
* file logger: ``Mar 21 12:35:11 14[IKE] <rw|1> message`` (``time_format = %b %e %T``, with
  ``time_add_ms`` a fraction), or ``2026-03-21 12:35:11 14[IKE] ...`` (``time_format = %F %T``).
  Times are local wall time, read in ``ctx.tz``. Without ``time_format`` the file logger
  writes no time at all: those lines are quarantined ``bad_timestamp``.
* ``14[IKE]`` is charon's thread number and log group (``[IKE2]`` with ``log_level = yes``);
  ``<rw|1>`` (``ike_name = yes``, recommended) names the IKE_SA the line is about: connection
  ``rw``, unique id 1.

Pairing the lines of one client. Most messages do not say which IKE_SA they belong to unless
``ike_name`` is on. charon handles one message of one IKE_SA per job on one thread, and a
job's lines are consecutive on that thread, starting with ``received packet: from ...``. So
a line without its own IKE_SA name, peer address or IKE version takes them from the earlier
lines of its job (same host, same thread, within the chunk). The EAP identity a client gave
(``received EAP identity``) is carried to later failure lines of the same IKE_SA or, failing
that, of the same peer address and port. ``vpn.session_id`` is ``conn[unique id]``; the
session builder pairs start and end by it.

``event.action`` (category/type/outcome); the remote peer is always the ECS source:

========================  ==================================================================
ike-sa-established        ``IKE_SA rw[1] established between me[id]...peer[id]`` (session/
                          start/success); ``user.name`` the peer identity unless an address
ike-sa-deleting           ``deleting IKE_SA rw[1] between ...`` (session/end)
ike-sa-deleted            ``IKE_SA deleted``, ``received DELETE for IKE_SA`` (session/info)
child-sa-established      ``CHILD_SA rw{1} established with SPIs ... and TS ... === ...``
child-sa-closed           ``closing CHILD_SA rw{1} with SPIs x_i (N bytes) y_o (M bytes)``:
                          ``source.bytes`` the inbound (peer-sent) bytes, ``destination.bytes``
                          the outbound
address-assigned          ``assigning virtual IP 10.3.0.1 to peer 'carol'`` (session/info,
                          ``vpn.tunnel_ip``; the name is the EAP identity where there is one)
address-requested         ``peer requested virtual IP %any``
address-assign-failed     ``no virtual IP found for ... requested by '...'`` (failure)
peer-authentication       ``authentication of 'carol' with EAP|RSA signature|pre-shared key
                          successful|failed``, ``XAuth|RADIUS authentication of ... successful|
                          failed``, ``EAP method X succeeded|failed for peer ip``
                          (authentication/info/success|failure)
local-authentication      ``authentication of 'moon' (myself) with ...``: the gateway proving
                          itself, not a login (no category)
eap-identity              ``received EAP identity 'carol'`` (authentication/info)
auth-failed-sent          ``generating IKE_AUTH response N [ N(AUTH_FAILED) ]`` (failure)
auth-failed-received      ``received AUTHENTICATION_FAILED notify error`` (failure)
ike-negotiation-failed    NO_PROPOSAL_CHOSEN sent or received, ``no IKE config found``,
                          ``received proposals inacceptable``, other error notifies (network/
                          failure, ``event.reason``)
peer-timeout              ``giving up after N retransmits``, ``establishing IKE_SA failed,
                          peer not responding`` (network/failure)
retransmit                ``retransmit N of request with message ID M`` (network/info)
connection-attempt        ``203.0.113.5 is initiating an IKE_SA`` (network/start)
packet-received|sent      ``received|sending packet: from a[p] to b[p] (N bytes)``
                          (network/info, ``network.bytes``)
ike-message               ``parsed|generating IKE_AUTH request 1 [ ... ]`` (network/info)
process-start|end         ``Starting IKE charon daemon (strongSwan 5.9.13 ...)``, ``SIG...
                          received, shutting down``
========================  ==================================================================

``event.code`` is charon's log group (``IKE``, ``NET``, ``CFG``, ``ENC`` ...), the only
message classification charon writes. ``vpn.tunnel_type`` is ``ikev2`` or ``ikev1`` from
the exchange names of the job (IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA, INFORMATIONAL vs.
ID_PROT, AGGRESSIVE, QUICK_MODE, TRANSACTION, INFORMATIONAL_V1) or Main/Aggressive Mode and
XAuth. Other charon lines are events with their
``message``. Quarantined: lines of other programs (``no_match``), impossible or missing times.
"""

from __future__ import annotations

import re
from typing import Final

import polars as pl

from vpnsentry.parse.base import ParseContext, Parser, ParseResult, Reason, register
from vpnsentry.parse.fields import bounded_int, canonical_ip, count, rejects
from vpnsentry.parse.syslog import split_header
from vpnsentry.parse.timeparse import iso_to_utc

#: Program names charon logs under.
_PROGRAM: Final = r"^(?:charon(?:-systemd|-cmd|-nm)?|ipsec|swanctl|starter|ipsec_starter)$"
#: File logger ISO time (``%F %T``), then the thread/group prefix and the IKE_SA name.
_FILE_ISO: Final = r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d{1,6})?) "
#: An RFC 3164 time (syslog or the file logger's ``%b %e %T``): local wall time.
_BSD_START: Final = r"^(?:<\d{1,3}>)?(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
_PREFIX: Final = (
    r"^(?P<pfx>(?:(?P<thread>\d{1,3})\[(?P<grp>[A-Z]{2,4})\d?\] )?"
    r"(?:<(?:(?P<pconn>[^|>]*)\|)?(?P<puid>\d+)> )?)"
)
_IKE_SA = r"(?P<conn>[^\[\s]+)\[(?P<uid>\d+)\]"
_ENDS = r"(?P<lip>[^\[\s]+)\[(?P<lid>[^\]]*)\]\.\.\.(?P<rip>[^\[\s]+)\[(?P<rid>.*)\]"
_CHILD = r"(?P<child>[^{\s]+)\{(?P<cid>\d+)\}"

#: Message beginnings (literal) -> kind; longer first where they overlap.
_ANCHORS: Final = (
    ("IKE_SA deleted", "ike_deleted"),
    ("IKE_SA ", "ike_up"),
    ("deleting IKE_SA ", "ike_del"),
    ("received DELETE for IKE_SA ", "ike_deleted"),
    ("CHILD_SA ", "child_up"),
    ("closing CHILD_SA ", "child_down"),
    ("authentication of '", "auth"),
    ("XAuth authentication of '", "auth"),
    ("RADIUS authentication of '", "auth"),
    ("EAP method ", "eap"),
    ("received EAP identity '", "eap_identity"),
    ("peer requested virtual IP ", "vip_req"),
    ("assigning virtual IP ", "vip"),
    ("no virtual IP found", "vip_fail"),
    ("received AUTHENTICATION_FAILED ", "auth_failed_rcvd"),
    ("received proposals inacceptable", "no_proposal"),
    ("received ", "notify"),
    ("no IKE config found for ", "no_config"),
    ("no acceptable proposal found", "no_proposal"),
    ("no matching peer config found", "no_peer"),
    ("no peer config found", "no_peer"),
    ("giving up after ", "timeout"),
    ("establishing IKE_SA failed, peer not responding", "timeout"),
    ("retransmit ", "retransmit"),
    ("parsed ", "message"),
    ("generating ", "message"),
    ("sending packet: ", "packet"),
    ("Starting IKE charon daemon", "start"),
)
_ANCHOR_RE: Final = "^(" + "|".join(re.escape(a) for a, _ in _ANCHORS) + ")"
_KIND_OF: Final = dict(_ANCHORS)

#: Kind -> regex over the message; group names are shared across kinds.
_PATTERNS: Final[dict[str, str]] = {
    "ike_up": rf"^IKE_SA {_IKE_SA} established between {_ENDS}$",
    "ike_del": rf"^deleting IKE_SA {_IKE_SA} between {_ENDS}$",
    "ike_deleted": rf"^(?:received DELETE for IKE_SA {_IKE_SA})?",
    "child_up": (
        rf"^CHILD_SA {_CHILD} established with SPIs (?P<spi>\w+)_i \w+_o and TS "
        r"(?P<lts>.*?) === (?P<rts>.*?)\s*$"
    ),
    "child_down": (
        rf"^closing CHILD_SA {_CHILD} with SPIs (?P<spi>\w+)_i(?: \((?P<bin>\d+) bytes\))? "
        r"\w+_o(?: \((?P<bout>\d+) bytes\))? and TS (?P<lts>.*?) === (?P<rts>.*?)\s*$"
    ),
    "auth": (
        r"^(?P<how0>XAuth |RADIUS )?authentication of '(?P<id>.*)'(?P<myself> \(myself\))?"
        r"(?: with (?P<how>.+?))? (?P<res>successful|failed)$"
    ),
    "eap": (
        r"^EAP method (?P<how>\S+) (?P<res>succeeded|failed)"
        r"(?:, (?:no )?MSK established| for peer (?P<rip>\S+))?"
    ),
    "eap_identity": r"^received EAP identity '(?P<id>.*)'$",
    "vip_req": r"^peer requested virtual IP (?P<vip>\S+)",
    "vip": r"^assigning virtual IP (?P<vip>\S+) to peer '(?P<id>.*)'$",
    "vip_fail": r"^no virtual IP found(?: for (?P<vip>\S+) requested by '(?P<id>.*)')?",
    "auth_failed_rcvd": r"^received (?P<res>AUTHENTICATION_FAILED)",
    "notify": r"^received (?P<res>[A-Z][A-Z0-9_]+) (?:error notify|notify error)",
    "no_config": r"^no IKE config found for (?P<lip>[^.\s]\S*?)\.\.\.(?P<rip>\S+?),",
    "timeout": r"^(?:giving up after (?P<n>\d+) retransmits)?",
    "retransmit": r"^retransmit (?P<n>\d+) of request with message ID \d+",
    "message": (
        r"^(?P<pd>parsed|generating) (?P<exch>[A-Z][A-Z0-9_]+) (?:request|response) \d+ "
        r"\[(?P<payloads>.*)\]"
    ),
    "packet": (
        r"^(?P<dir>received|sending) packet: from (?P<pa>[^\[\s]+)\[(?P<pap>\d+)\] to "
        r"(?P<pb>[^\[\s]+)\[(?P<pbp>\d+)\](?: \((?P<len>\d+) bytes\))?"
    ),
    "initiating": (r"^(?P<rip>\S+) is initiating an? (?:(?P<mode>Main|Aggressive) Mode )?IKE_SA$"),
    "start": r"^Starting IKE charon daemon \(strongSwan (?P<ver>[^,)]+)",
    "stop": r"^(?:signal of type )?(?P<sig>SIG[A-Z]+) received",
}
#: The group a kind's pattern must fill; where it stays null the line is some other message
#: with the same beginning (``IKE_SA rw[1] state change: ...``) and gets no kind.
_KEY_GROUP: Final = {
    "ike_up": "conn",
    "ike_del": "conn",
    "child_up": "child",
    "child_down": "child",
    "auth": "res",
    "eap": "res",
    "eap_identity": "id",
    "vip_req": "vip",
    "vip": "vip",
    "auth_failed_rcvd": "res",
    "notify": "res",
    "no_config": "rip",
    "retransmit": "n",
    "message": "exch",
    "packet": "dir",
    "initiating": "rip",
    "start": "ver",
    "stop": "sig",
}
_GROUPS: Final = sorted({g for p in _PATTERNS.values() for g in re.findall(r"\?P<(\w+)>", p)})

#: Kind -> (action, category, type, outcome); kinds whose values depend on the line are
#: completed in :func:`_classified`.
_SPEC: Final[dict[str, tuple[str | None, str | None, str | None, str | None]]] = {
    "ike_up": ("ike-sa-established", "session", "start", "success"),
    "ike_del": ("ike-sa-deleting", "session", "end", None),
    "ike_deleted": ("ike-sa-deleted", "session", "info", None),
    "child_up": ("child-sa-established", "session", "info", "success"),
    "child_down": ("child-sa-closed", "session", "info", None),
    "auth": ("peer-authentication", "authentication", "info", None),
    "eap": ("peer-authentication", "authentication", "info", None),
    "eap_identity": ("eap-identity", "authentication", "info", None),
    "vip_req": ("address-requested", "session", "info", None),
    "vip": ("address-assigned", "session", "info", "success"),
    "vip_fail": ("address-assign-failed", "session", "info", "failure"),
    "auth_failed_rcvd": ("auth-failed-received", "authentication", "info", "failure"),
    "notify": ("ike-negotiation-failed", "network", "info", "failure"),
    "no_config": ("ike-negotiation-failed", "network", "info", "failure"),
    "no_proposal": ("ike-negotiation-failed", "network", "info", "failure"),
    "no_peer": ("ike-negotiation-failed", "network", "info", "failure"),
    "timeout": ("peer-timeout", "network", "info", "failure"),
    "retransmit": ("retransmit", "network", "info", None),
    "message": ("ike-message", "network", "info", None),
    "packet": (None, "network", "info", None),
    "initiating": ("connection-attempt", "network", "start", None),
    "start": ("process-start", "process", "start", None),
    "stop": ("process-end", "process", "end", None),
}
_REASONS: Final = {
    "no_config": "no IKE config found",
    "no_proposal": "no proposal chosen",
    "no_peer": "no matching peer config",
    "timeout": "peer not responding",
}
#: Notifies sent in a response that mean the exchange failed: ``N(...)`` -> (kind, reason).
_SENT_FAILURES: Final = {
    "AUTH_FAILED": "AUTHENTICATION_FAILED",
    "NO_PROP": "NO_PROPOSAL_CHOSEN",
    "INVAL_KE": "INVALID_KE_PAYLOAD",
    "TS_UNACCEPT": "TS_UNACCEPTABLE",
    "FAIL_CP_REQ": "FAILED_CP_REQUIRED",
    "INT_ADDR_FAIL": "INTERNAL_ADDRESS_FAILURE",
}
_IKEV2_EXCHANGES: Final = (
    "IKE_SA_INIT",
    "IKE_AUTH",
    "CREATE_CHILD_SA",
    "INFORMATIONAL",
    "IKE_INTERMEDIATE",
    "IKE_FOLLOWUP_KE",
)
_IKEV1_EXCHANGES: Final = ("ID_PROT", "AGGRESSIVE", "QUICK_MODE", "TRANSACTION", "INFORMATIONAL_V1")
#: Seconds of silence on a thread after which its next line starts a new job.
_JOB_GAP_SECONDS: Final = 5
_SEVERITY: Final = {3: "error", 4: "warning", 5: "notice", 6: "informational", 7: "debug"}


@register
class StrongSwan(Parser):
    name = "strongswan"
    title = "strongSwan charon IKE daemon log (syslog or charon file log)"
    vendor = "strongSwan"
    product = "charon"
    datasets = ("events",)
    sniff_literals = ("[IKE]", "[NET]", "[CFG]", "[ENC]", "[DMN]", "[KNL]", "charon")
    sample = (
        "Mar 21 12:35:11 moon charon: 14[IKE] <rw|1> IKE_SA rw[1] established between "
        "192.0.2.1[moon.strongswan.org]...203.0.113.5[carol@strongswan.org]"
    )

    def sniff(self, head: list[str]) -> float:
        """Share of lines with charon's ``NN[GRP] `` prefix or from program ``charon``."""
        lines = [ln for ln in head if ln.strip()]
        if not lines:
            return 0.0
        pattern = re.compile(
            r"(?:^|[\s:])\d{1,3}\[(?:IKE|NET|CFG|ENC|DMN|KNL|LIB|MGR|JOB|ASN|"
            r"CHD|APP|ESP|TLS|TNC|IMC|IMV|PTS|LIB)\d?\] |\bcharon(?:-systemd)?"
            r"(?:\[\d+\])?: "
        )
        return sum(1 for ln in lines if pattern.search(ln)) / len(lines)

    def parse(self, lines: pl.Series, ctx: ParseContext) -> ParseResult:
        rows = pl.int_range(len(lines), dtype=pl.UInt32, eager=True).alias("_row")
        df = split_header(lines, ctx).with_columns(
            rows, lines.str.contains(_BSD_START).alias("_bsd")
        )
        f = pl.col
        # The file log's own ISO stamp, extracted and converted once (iso_to_utc stages the
        # parse; as one expression each reference re-ran the regexes).
        df = df.with_columns(f("_body").str.extract(_FILE_ISO, 1).alias("_iso"))
        df = df.with_columns(_iso_ts=iso_to_utc(df["_iso"], ctx.tz, ctx.now))
        iso = f("_iso")
        body = (
            pl.when(iso.is_not_null())
            .then(f("_body").str.slice(iso.str.len_chars() + 1))
            .otherwise(f("_body"))
        )
        df = (
            df.with_columns(
                pl.coalesce(f("_sys_ts"), f("_iso_ts")).alias("@timestamp"),
                body.str.strip_chars_start(" ").alias("_body"),
                (f("_bsd") | iso.is_not_null()).alias("_zoneless"),
            )
            .with_columns(f("_body").str.extract_groups(_PREFIX).alias("_p"))
            .unnest("_p")
        )
        program = f("_sys_app").str.contains(_PROGRAM).fill_null(False)
        ours = program | f("thread").is_not_null()
        foreign = f("_sys_app").is_not_null() & ~program
        rejected = [rejects(df.filter(~ours | foreign), Reason.NO_MATCH, "not a charon line")]
        df = df.filter(ours & ~foreign)
        rejected.append(
            rejects(df.filter(f("@timestamp").is_null()), Reason.BAD_TIMESTAMP, "no valid time")
        )
        df = df.filter(f("@timestamp").is_not_null())
        df = df.with_columns(
            f("_body").str.slice(f("pfx").str.len_chars()).str.strip_chars_end().alias("message")
        )
        events, dropped = _events(df, ctx)
        tables = {"events": events} if events.height else {}
        return ParseResult(tables=tables, rejected=pl.concat(rejected), dropped_values=dropped)


def _extracted(df: pl.DataFrame) -> pl.DataFrame:
    """Message kind and its groups (see :data:`_PATTERNS`)."""
    m = pl.col("message")
    kind = m.str.extract(_ANCHOR_RE, 1).replace_strict(
        _KIND_OF, default=None, return_dtype=pl.String
    )
    kind = (
        pl.when(m.str.contains(r"^\S+ is initiating an? (?:\w+ Mode )?IKE_SA$"))
        .then(pl.lit("initiating"))
        .when(m.str.contains(r"^(?:signal of type )?SIG[A-Z]+ received"))
        .then(pl.lit("stop"))
        .when(m.str.starts_with("received packet: "))
        .then(pl.lit("packet"))
        .otherwise(kind)
    )
    df = df.with_columns(kind.alias("_kind"))
    parts = []
    for (k,), part in df.partition_by("_kind", as_dict=True, maintain_order=True).items():
        pattern = _PATTERNS.get(str(k))
        if pattern is not None:
            part = part.with_columns(m.str.extract_groups(pattern).alias("_g")).unnest("_g")
            key = _KEY_GROUP.get(str(k))
            if key is not None:
                matched = pl.col(key).is_not_null()
                part = part.with_columns(pl.when(matched).then(pl.col("_kind")).alias("_kind"))
        parts.append(part)
    df = pl.concat(parts, how="diagonal_relaxed") if parts else df
    missing = [g for g in _GROUPS if g not in df.columns]
    return df.with_columns(pl.lit(None, pl.String).alias(g) for g in missing).sort("_row")


def _context(df: pl.DataFrame) -> pl.DataFrame:
    """Peer address, IKE_SA and IKE version of each line, from the line or its job.

    A job starts at ``received packet``; within (host, thread, job) the latest value of the
    lines before fills a line that lacks it; an IKE_SA still unknown is the latest of the
    peer's address and port. The EAP identity is carried per IKE_SA and, where no IKE_SA is
    known, per peer address and port.
    """
    f = pl.col
    received = (f("_kind") == "packet") & (f("dir") == "received")
    peer_ip = pl.when(received).then(f("pa")).when(f("_kind") == "packet").then(f("pb"))
    peer_port = pl.when(received).then(f("pap")).when(f("_kind") == "packet").then(f("pbp"))
    named = pl.when(f("conn").is_not_null()).then(pl.format("{}[{}]", f("conn"), f("uid")))
    prefixed = pl.when(f("puid").is_not_null()).then(
        pl.format("{}[{}]", f("pconn").fill_null(""), f("puid"))
    )
    exch = f("exch")
    version = (
        pl.when(exch.is_in(_IKEV2_EXCHANGES))
        .then(pl.lit("ikev2"))
        .when(exch.is_in(_IKEV1_EXCHANGES) | f("mode").is_not_null() | (f("how0") == "XAuth "))
        .then(pl.lit("ikev1"))
    )
    host = f("_sys_host").fill_null("")
    thread = [host, f("thread").fill_null("")]
    df = df.with_columns(
        pl.coalesce(f("rip"), peer_ip).alias("_ip"),
        peer_port.alias("_port"),
        pl.coalesce(prefixed, named).alias("_sid"),
        prefixed.forward_fill().over(thread).alias("_psid"),
        version.alias("_ver"),
    )
    # A job also ends where the thread turns to another IKE_SA or falls silent for a while.
    other_sa = f("_psid") != f("_psid").shift().over(thread)
    pause = (f("@timestamp") - f("@timestamp").shift().over(thread)) > pl.duration(
        seconds=_JOB_GAP_SECONDS
    )
    new_job = received | other_sa.fill_null(False) | pause.fill_null(False)
    df = df.with_columns(new_job.cast(pl.UInt32).cum_sum().over(thread).alias("_job"))
    job = [*thread, f("_job")]
    df = df.with_columns(
        f("_ip").forward_fill().over(job),
        f("_port").forward_fill().over(job),
        pl.coalesce(prefixed, f("_sid").forward_fill().over(job)).alias("_sid"),
        f("_ver").forward_fill().over(job),
    )
    # Without ``ike_name`` a job that names no IKE_SA (IKEv1 mode config, a CHILD_SA closed on
    # request) takes the latest one of its peer address and port.
    peer = [host, f("_ip"), f("_port")]
    known_peer = f("_ip").is_not_null() & f("_port").is_not_null()
    df = df.with_columns(
        pl.coalesce(f("_sid"), pl.when(known_peer).then(f("_sid").forward_fill().over(peer)))
    )
    eap_id = pl.when(f("_kind") == "eap_identity").then(f("id"))
    return df.with_columns(
        pl.when(f("_sid").is_not_null())
        .then(eap_id.forward_fill().over([host, f("_sid")]))
        .otherwise(eap_id.forward_fill().over([host, f("_ip"), f("_port")]))
        .alias("_eap")
    )


def _is_address(text: pl.Expr) -> pl.Expr:
    return text.str.contains(r"^(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*)$")


def _classified(df: pl.DataFrame) -> pl.DataFrame:
    """Action, category, type, outcome, reason and user of every line."""
    f = pl.col
    kind = f("_kind")
    cols = ("event.action", "event.category", "event.type", "event.outcome")
    df = df.with_columns(
        kind.replace_strict(
            {k: v[i] for k, v in _SPEC.items()}, default=None, return_dtype=pl.String
        ).alias(c)
        for i, c in enumerate(cols)
    )
    sent = f("payloads").str.extract(
        r"N\((" + "|".join(re.escape(k) for k in _SENT_FAILURES) + r")\)", 1
    )
    sent_fail = (kind == "message") & (f("pd") == "generating") & sent.is_not_null()
    auth_sent = sent_fail & (sent == "AUTH_FAILED")
    myself = (kind == "auth") & f("myself").is_not_null()
    res = f("res")
    failed = res.is_in(["failed", "AUTHENTICATION_FAILED"])
    outcome = (
        pl.when(kind.is_in(["auth", "eap"]))
        .then(pl.when(failed).then(pl.lit("failure")).otherwise(pl.lit("success")))
        .when(sent_fail)
        .then(pl.lit("failure"))
        .otherwise(f("event.outcome"))
    )
    action = (
        pl.when(myself)
        .then(pl.lit("local-authentication"))
        .when(auth_sent)
        .then(pl.lit("auth-failed-sent"))
        .when(sent_fail)
        .then(pl.lit("ike-negotiation-failed"))
        .when(kind == "packet")
        .then(
            pl.format(
                "packet-{}",
                pl.when(f("dir") == "received").then(pl.lit("received")).otherwise(pl.lit("sent")),
            )
        )
        .otherwise(f("event.action"))
    )
    category = (
        pl.when(myself)
        .then(pl.lit(None, pl.String))
        .when(auth_sent)
        .then(pl.lit("authentication"))
        .otherwise(f("event.category"))
    )
    reason = (
        pl.when(sent_fail)
        .then(sent.replace_strict(_SENT_FAILURES, default=None, return_dtype=pl.String))
        .when(kind.is_in(["notify", "auth_failed_rcvd"]))
        .then(res)
        .when(kind.is_in(["auth", "eap"]) & failed)
        .then(
            pl.format(
                "{} failed",
                pl.coalesce(f("how"), f("how0").str.strip_chars(), pl.lit("authentication")),
            )
        )
        .otherwise(kind.replace_strict(_REASONS, default=None, return_dtype=pl.String))
    )
    rid = pl.when(~_is_address(f("rid")) & (f("rid") != "%any")).then(f("rid"))
    peer_id = pl.when(~myself & (kind != "eap_identity")).then(f("id"))
    user = (
        pl.when((kind == "auth") & (f("how") == "EAP"))
        .then(pl.coalesce(f("_eap"), f("id")))
        .when(kind.is_in(["auth", "eap", "vip", "vip_fail", "eap_identity"]) & ~myself)
        .then(pl.coalesce(f("id"), f("_eap")))
        .when(kind.is_in(["ike_up", "ike_del"]))
        .then(rid)
        .when(auth_sent | (kind == "auth_failed_rcvd"))
        .then(f("_eap"))
        .otherwise(peer_id)
    )
    return df.with_columns(
        action.alias("event.action"),
        category.alias("event.category"),
        pl.when(auth_sent).then(pl.lit("info")).otherwise(f("event.type")).alias("event.type"),
        outcome.alias("event.outcome"),
        reason.alias("event.reason"),
        pl.when(~user.str.strip_chars().is_in(["", "%any"])).then(user).alias("user.name"),
    )


def _events(df: pl.DataFrame, ctx: ParseContext) -> tuple[pl.DataFrame, int]:
    """ECS events of the accepted charon lines and the count of values dropped as invalid."""
    df = _classified(_context(_extracted(df)))
    f = pl.col
    received = f("dir") == "received"
    local_ip = pl.coalesce(
        f("lip"),
        pl.when(f("_kind") == "packet").then(pl.when(received).then(f("pb")).otherwise(f("pa"))),
    )
    local_port = pl.when(f("_kind") == "packet").then(
        pl.when(received).then(f("pbp")).otherwise(f("pap"))
    )
    vip = pl.when(~f("vip").str.starts_with("%")).then(f("vip"))
    src, bad_src = canonical_ip(df.select(f("_ip")).to_series())
    dst, bad_dst = canonical_ip(df.select(local_ip).to_series())
    tip, bad_tip = canonical_ip(df.select(vip).to_series())
    df = df.with_columns(src.alias("source.ip"), dst.alias("destination.ip"), tip.alias("_tip"))
    numbers = {
        "source.port": bounded_int(f("_port"), 65535, pl.Int32()),
        "destination.port": bounded_int(local_port, 65535, pl.Int32()),
        "source.bytes": count(f("bin")),
        "destination.bytes": count(f("bout")),
        "network.bytes": count(f("len")),
    }
    df = df.with_columns(**numbers)
    level = (f("_sys_pri") % 8).replace_strict(_SEVERITY, default=None, return_dtype=pl.String)
    events = df.select(
        "_row",
        "@timestamp",
        "message",
        "event.action",
        "event.category",
        "event.type",
        "event.outcome",
        "event.reason",
        "user.name",
        "source.ip",
        "source.port",
        "destination.ip",
        "destination.port",
        "source.bytes",
        "destination.bytes",
        "network.bytes",
        pl.when(f("_zoneless")).then(pl.lit(ctx.tz)).alias("event.timezone"),
        pl.lit("event").alias("event.kind"),
        f("_sys_host").alias("observer.name"),
        level.alias("log.level"),
        f("grp").alias("event.code"),
        pl.when(f("_kind") == "vip").then(f("_tip")).alias("vpn.tunnel_ip"),
        f("_sid").alias("vpn.session_id"),
        f("_ver").alias("vpn.tunnel_type"),
        pl.lit("strongswan.log").alias("event.dataset"),
        pl.lit("vpn").alias("observer.type"),
    )
    lost = [
        (f(g).is_not_null() & f(c).is_null()).sum()
        for c, g in (
            ("source.port", "_port"),
            ("source.bytes", "bin"),
            ("destination.bytes", "bout"),
        )
    ]
    dropped = bad_src + bad_dst + bad_tip + int(df.select(pl.sum_horizontal(lost)).item())
    return events, dropped
