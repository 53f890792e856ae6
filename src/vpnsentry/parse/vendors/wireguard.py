"""WireGuard: periodic ``wg show all dump`` snapshots, and the kernel's dynamic debug lines.

WireGuard keeps no connection log. What it knows about a peer is in ``wg show all dump``:
per interface ``iface  private-key  public-key  listen-port  fwmark`` and per peer ``iface
public-key  preshared-key  endpoint  allowed-ips  latest-handshake  transfer-rx  transfer-tx
persistent-keepalive`` (TAB-separated; ``latest-handshake`` in Unix seconds, 0 for never;
``endpoint`` ``ip:port``, ``[ipv6]:port`` or ``(none)``). The file format read here is that
output after a timestamp, as written every minute by (docs/ipsec-wireguard.md)::

    { date -Is; wg show all dump | awk 'BEGIN{FS=OFS="\\t"} NF==5{$2="(hidden)"}
      NF==9{$3="(hidden)"} 1'; } >> /var/log/wireguard/dump.log

A line holding only an ISO 8601 time (``date -Is``, ``date -Ins`` with its comma, optionally
after ``# ``) stamps the dump lines after it; a dump line may instead carry its own time in
front (``2026-11-30T10:00:01+00:00 wg0<TAB>...``). The awk part keeps private and preshared keys
out of the file; where it was left out, the parser still never stores them (``event.original``
of dump lines has them replaced by ``(hidden)``), but a cut dump line is quarantined as it
came. The time line itself is an ignored header, like Zeek's ``#fields``.

From the snapshots of one peer (interface, public key), in time order, its sessions:
a peer is *active* in a snapshot while its latest handshake is less than
:data:`ACTIVE_SECONDS` old (WireGuard's REJECT_AFTER_TIME: older session keys are refused).

==============  =========================================================================
tunnel-up       it turned active (session/start): ``@timestamp`` and ``event.start`` are the
                handshake that started the session, not the snapshot
tunnel-stats    still active (session/info)
tunnel-down     it stopped being active, or the counters went back (interface restarted)
                (session/end): ``@timestamp`` is its last handshake plus
                :data:`ACTIVE_SECONDS` (when its keys expired), at most the snapshot time
peer-idle       not active, and was not (no category)
interface       an interface line (host/info: ``destination.port`` the listen port)
==============  =========================================================================

Peer rows carry ``user.name`` = the peer's public key (WireGuard's only identity),
``vpn.group`` = the interface, ``source.ip``/``source.port`` = the endpoint,
``vpn.tunnel_ip`` = its first host route in allowed-ips (IPv4 first), ``event.start`` = the
session's first handshake, and ``source.bytes``/``destination.bytes`` = the bytes received from
/ sent to the peer since that session began (WireGuard's counters run from when the peer was
added; the count at the snapshot before the session is subtracted). What cannot be known:
user names (only keys), failed logins (a handshake with a wrong key is dropped silently),
anything between two snapshots.

Kernel dynamic debug (``echo module wireguard +p > /sys/kernel/debug/dynamic_debug/control``)
through syslog/journald (``kernel: wireguard: wg0: ...``) or ``dmesg -T``:

=======================================================  ================================
``Receiving handshake initiation from peer N (addr)``    handshake-initiation (network/start)
``Sending handshake response to peer N (addr)``          handshake-response (network/info,
                                                         success: the peer's key is known)
``Receiving|Sending handshake response ...``,            handshake-response, handshake-
``Sending handshake initiation ...``                     initiation (network/info)
``Invalid handshake initiation|response from addr``      handshake-invalid (network/denied/
                                                         failure)
``Keypair N created|destroyed for peer N``               keypair-created|destroyed (session)
``Zeroing out all keys for peer N (addr) ...``           keys-zeroed (session/end)
``Handshake for peer N (addr) did not complete ...``     handshake-timeout (network/failure)
``Retrying handshake with peer N (addr) ...``            handshake-retry (network/info)
``Sending|Receiving keepalive packet ...``               keepalive (network/info)
``Packet has unallowed src IP (ip) from peer N (addr)``  bad-source-address (network/denied)
``Peer N created``, ``Peer N (addr) destroyed``          peer-created|peer-removed
                                                         (configuration/creation|deletion)
=======================================================  ================================

``peer N`` is the kernel's internal peer number, not a key, so these lines name no peer.
Lines with only the kernel's uptime (``dmesg`` without ``-T``) have no time: quarantined
``bad_timestamp``; lines that are none of the above: ``no_match``.
"""

from __future__ import annotations

import re
from typing import Any, Final

import polars as pl

from vpnsentry.ecs import UTC_TS
from vpnsentry.parse.base import ParseContext, Parser, ParseResult, Reason, register
from vpnsentry.parse.fields import bounded_int, canonical_ip, count, rejects
from vpnsentry.parse.syslog import split_header
from vpnsentry.parse.timeparse import MONTHS, parse_iso, parse_naive, plausible

#: A peer whose latest handshake is younger than this is in a session (REJECT_AFTER_TIME).
ACTIVE_SECONDS: Final = 180

_ISO: Final = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})?"
#: A time line (``date -Is``), or a dump line with a time in front.
#: Only the head is captured (capturing the rest of every line costs more than the parse).
_STAMP_RE: Final = rf"^(?P<head>(?:# ?)?(?P<stamp>{_ISO})(?:[ \t]+|$))"
_DMESG_RE: Final = (
    r"^\[(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?P<mon>\w{3}) +(?P<day>\d{1,2}) "
    r"(?P<clock>\d{2}:\d{2}:\d{2}) (?P<year>\d{4})\] "
)
_KERNEL_RE: Final = r"(?:^|\s)wireguard: (?P<iface>[^:\s]+): (?P<msg>.*)$"
_ADDR = r"\((?P<addr>[^)]*)\)"

#: Kernel message regex -> (action, category, type, outcome).
_KERNEL: Final[tuple[tuple[str, tuple[str, str | None, str, str | None]], ...]] = (
    (
        rf"^Receiving handshake initiation from peer (?P<peer>\d+) {_ADDR}",
        ("handshake-initiation", "network", "start", None),
    ),
    (
        rf"^Sending handshake response to peer (?P<peer>\d+) {_ADDR}",
        ("handshake-response", "network", "info", "success"),
    ),
    (
        rf"^Receiving handshake response from peer (?P<peer>\d+) {_ADDR}",
        ("handshake-response", "network", "info", "success"),
    ),
    (
        rf"^Sending handshake initiation to peer (?P<peer>\d+) {_ADDR}",
        ("handshake-initiation", "network", "info", None),
    ),
    (
        r"^Invalid handshake (?:initiation|response) from (?P<addr>\S+)",
        ("handshake-invalid", "network", "denied", "failure"),
    ),
    (
        r"^Keypair (?P<key>\d+) created for peer (?P<peer>\d+)",
        ("keypair-created", "session", "info", "success"),
    ),
    (
        r"^Keypair (?P<key>\d+) destroyed for peer (?P<peer>\d+)",
        ("keypair-destroyed", "session", "info", None),
    ),
    (
        rf"^Zeroing out all keys for peer (?P<peer>\d+) {_ADDR}",
        ("keys-zeroed", "session", "end", None),
    ),
    (
        rf"^Handshake for peer (?P<peer>\d+) {_ADDR} did not complete",
        ("handshake-timeout", "network", "info", "failure"),
    ),
    (
        rf"^Retrying handshake with peer (?P<peer>\d+) {_ADDR}",
        ("handshake-retry", "network", "info", None),
    ),
    (
        rf"^(?:Sending|Receiving) keepalive packet (?:to|from) peer (?P<peer>\d+) {_ADDR}",
        ("keepalive", "network", "info", None),
    ),
    (
        rf"^Packet has unallowed src IP \((?P<inner>[^)]*)\) from peer (?P<peer>\d+) {_ADDR}",
        ("bad-source-address", "network", "denied", "failure"),
    ),
    (r"^Peer (?P<peer>\d+) created", ("peer-created", "configuration", "creation", "success")),
    (
        rf"^Peer (?P<peer>\d+) {_ADDR} destroyed",
        ("peer-removed", "configuration", "deletion", "success"),
    ),
)
#: A WireGuard key as ``wg`` prints it: 32 bytes in base64.
_KEY_RE: Final = r"^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$"
_SPEC_COLUMNS: Final = ("event.action", "event.category", "event.type", "event.outcome")
_STATE_KEY: Final = "wireguard"


def _addr_port(text: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """Address and port of ``ip:port`` / ``[ipv6]:port`` (WireGuard and the kernel's %pISpfsc)."""
    parts = text.str.extract_groups(r"^\[?(?P<ip>[^\[\]%]+?)(?:%[^\]]*)?\]?:(?P<port>\d+)$")
    return parts.struct.field("ip"), parts.struct.field("port")


@register
class WireGuard(Parser):
    name = "wireguard"
    stateful = True
    title = "WireGuard (wg show all dump snapshots, kernel dynamic debug)"
    vendor = "WireGuard"
    product = "WireGuard"
    datasets = ("events",)
    sniff_literals = ("wireguard: ", "\t(none)\t", "\toff", "\t0\t0\t0\t", "=\t")
    sample = (
        "wg0\tx6ZcPSRg9nTn2mt7/dzTGVJpRvs4oshwMFSHmGqY8nA=\t(hidden)\t203.0.113.5:51820\t"
        "10.8.0.2/32\t1796014432\t18248\t39120\t25"
    )

    def sniff(self, head: list[str]) -> float:
        """Share of lines that are dump rows (5 or 9 TAB fields, a base64 key in the second
        or third), time lines between them, or wireguard kernel lines."""
        lines = [ln for ln in head if ln.strip()]
        if not lines:
            return 0.0
        key = r"[A-Za-z0-9+/]{42,43}="
        dump = re.compile(
            rf"^(?:{_ISO}[ \t]+)?[^\t]+\t(?:{key}|\(hidden\)|\(none\))\t{key}\t\d+\t\S+$"
            rf"|^(?:{_ISO}[ \t]+)?[^\t]+\t{key}\t[^\t]+\t[^\t]+\t[^\t]+\t\d+\t\d+\t\d+\t\w+$"
        )
        stamp = re.compile(rf"^(?:# ?)?{_ISO}$")
        kernel = re.compile(r"\bwireguard: [^:\s]+: ")
        dumps = sum(1 for ln in lines if dump.search(ln))
        ok = dumps + sum(1 for ln in lines if kernel.search(ln))
        if dumps:
            ok += sum(1 for ln in lines if stamp.search(ln))
        return ok / len(lines)

    def parse(self, lines: pl.Series, ctx: ParseContext) -> ParseResult:
        f = pl.col
        df = (
            pl.DataFrame({"_line": lines})
            .with_row_index("_row")
            .with_columns(f("_line").str.extract_groups(_STAMP_RE).alias("_s"))
            .unnest("_s")
            .with_columns(
                pl.when(f("head").is_not_null())
                .then(f("_line").str.slice(f("head").str.len_chars()))
                .alias("rest")
            )
            .with_columns(pl.when(f("rest") != "").then(f("rest")).alias("rest"))
            .with_columns(
                plausible(
                    parse_iso(f("stamp").str.replace(",", ".", literal=True), ctx.tz), ctx.now
                ).alias("_stamp_ts"),
                pl.coalesce(f("rest"), pl.when(f("stamp").is_null()).then(f("_line"))).alias(
                    "_text"
                ),
            )
        )
        state: dict[str, Any] = ctx.state.setdefault(_STATE_KEY, {"ts": None, "peers": {}})
        time_only = f("stamp").is_not_null() & f("rest").is_null()
        seed = pl.lit(state["ts"], UTC_TS)
        df = df.with_columns(
            pl.when(time_only)
            .then(f("_stamp_ts"))
            .forward_fill()
            .fill_null(seed)
            .alias("_snap_ts"),
            f("_text").str.split("\t").alias("_f"),
        ).with_columns(f("_f").list.len().alias("_n"))
        last_stamp = df.filter(time_only & f("_stamp_ts").is_not_null())
        if last_stamp.height:
            state["ts"] = last_stamp["_stamp_ts"][-1]
        ignored = df.filter(time_only & f("_stamp_ts").is_not_null())["_row"].to_list()
        bad_stamp = df.filter(time_only & f("_stamp_ts").is_null())
        dump_ts = pl.coalesce(f("_stamp_ts"), f("_snap_ts"))
        df = df.with_columns(
            pl.when(f("rest").is_not_null()).then(f("_stamp_ts")).otherwise(dump_ts).alias("_ts")
        )
        rest = df.filter(~time_only)
        is_dump = f("_n").is_in([5, 9])
        dumps = rest.filter(is_dump)
        kernel = rest.filter(~is_dump)
        peers, peer_rej, dropped = _peers(dumps.filter(f("_n") == 9), state, ctx)
        ifaces, iface_rej, more = _interfaces(dumps.filter(f("_n") == 5))
        events, kernel_rej, most = _kernel(kernel, ctx)
        tables = [t for t in (peers, ifaces, events) if t.height]
        out = pl.concat(tables, how="diagonal_relaxed") if tables else pl.DataFrame()
        rejected = pl.concat(
            [
                rejects(bad_stamp, Reason.BAD_TIMESTAMP, "impossible time line"),
                peer_rej,
                iface_rej,
                kernel_rej,
            ]
        )
        if out.height:
            out = out.with_columns(
                pl.lit("wireguard.log").alias("event.dataset"),
                pl.lit("vpn").alias("observer.type"),
                pl.lit("event").alias("event.kind"),
            )
        return ParseResult(
            tables={"events": out} if out.height else {},
            rejected=rejected,
            ignored_rows=ignored,
            dropped_values=dropped + more + most,
        )


def _interfaces(df: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Interface lines: name and listen port; the private key is never kept."""
    f = pl.col
    field = f("_f").list.get
    port = bounded_int(field(3), 65535, pl.Int32())
    out = df.filter(f("_ts").is_not_null()).select(
        "_row",
        f("_ts").alias("@timestamp"),
        pl.lit("interface").alias("event.action"),
        pl.lit("host").alias("event.category"),
        pl.lit("info").alias("event.type"),
        field(0).alias("vpn.group"),
        port.alias("destination.port"),
        pl.concat_str(
            [field(0), pl.lit("(hidden)"), field(2), field(3), field(4)], separator="\t"
        ).alias("event.original"),
    )
    lost = int(df.select((field(3).is_not_null() & port.is_null()).sum()).item())
    no_ts = rejects(
        df.filter(f("_ts").is_null()), Reason.BAD_TIMESTAMP, "no time line before the dump"
    )
    return out, no_ts, lost


def _peers(
    df: pl.DataFrame, state: dict[str, Any], ctx: ParseContext
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Peer lines: endpoint, tunnel address, counters, and the session transitions."""
    f = pl.col
    field = f("_f").list.get
    ep_ip, ep_port = _addr_port(field(3))
    allowed = field(4).str.split(",")
    hosts = allowed.list.eval(
        pl.element().str.strip_chars().filter(pl.element().str.contains(r"/(?:32|128)$"))
    )
    v4 = hosts.list.eval(pl.element().filter(~pl.element().str.contains(":"))).list.first()
    tip = pl.coalesce(v4, hosts.list.first()).str.replace(r"/\d+$", "")
    shake = bounded_int(field(5), 2**40, pl.Int64())
    df = df.with_columns(
        field(0).alias("_iface"),
        field(1).alias("_key"),
        ep_ip.alias("_ep_ip"),
        ep_port.alias("_ep_port"),
        tip.alias("_tip"),
        shake.alias("_shake"),
        count(field(6)).alias("_rx"),
        count(field(7)).alias("_tx"),
        field(1).str.contains(_KEY_RE).alias("_good_key"),
    )
    no_ts = rejects(
        df.filter(f("_ts").is_null()), Reason.BAD_TIMESTAMP, "no time line before the dump"
    )
    bad = df.filter(
        f("_ts").is_not_null()
        & (f("_shake").is_null() | f("_rx").is_null() | f("_tx").is_null() | ~f("_good_key"))
    )
    rejected = pl.concat(
        [no_ts, rejects(bad, Reason.NO_MATCH, "peer line without key, handshake or counters")]
    )
    df = df.filter(
        f("_ts").is_not_null()
        & f("_shake").is_not_null()
        & f("_rx").is_not_null()
        & f("_tx").is_not_null()
        & f("_good_key")
    )
    ips, bad_ep = canonical_ip(df["_ep_ip"])
    tips, bad_tip = canonical_ip(df["_tip"])
    df = df.with_columns(ips.alias("source.ip"), tips.alias("vpn.tunnel_ip"))
    return _sessions(df, state), rejected, bad_ep + bad_tip


def _sessions(df: pl.DataFrame, state: dict[str, Any]) -> pl.DataFrame:
    """Per peer in snapshot order: active or not, run start, counters at the run's start.

    The peers' last values of the previous chunk are prepended as seed rows (``_seed``), so
    a session spans chunk boundaries; the chunk's last values are kept for the next one.
    """
    f = pl.col
    peers: dict[tuple[str, str], dict[str, Any]] = state["peers"]
    seeds = pl.DataFrame(
        [{"_iface": k[0], "_key": k[1], **v} for k, v in peers.items()],
        schema={
            "_iface": pl.String,
            "_key": pl.String,
            "_ts": UTC_TS,
            "_active": pl.Boolean,
            "_start": UTC_TS,
            "_base_rx": pl.Int64,
            "_base_tx": pl.Int64,
            "_rx": pl.Int64,
            "_tx": pl.Int64,
        },
    ).with_columns(pl.lit(True).alias("_seed"))
    # The state machine runs on a narrow frame; the wide columns join back at the end.
    narrow = df.select("_row", "_iface", "_key", "_ts", "_shake", "_rx", "_tx")
    work = pl.concat(
        [seeds, narrow.with_columns(pl.lit(False).alias("_seed"))], how="diagonal_relaxed"
    ).sort(
        ["_iface", "_key", "_ts", "_seed", "_row"],
        descending=[False, False, False, True, False],
        nulls_last=False,
    )
    # Sorted by peer: a peer's rows are consecutive, numbered by an integer (cheap windows).
    other = (f("_iface") != f("_iface").shift()) | (f("_key") != f("_key").shift())
    work = work.with_columns(other.fill_null(True).cum_sum().alias("_pid"))
    peer = ["_iface", "_key"]
    shake_ts = (f("_shake") * 1_000_000).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    fresh = (f("_shake") > 0) & ((f("_ts") - shake_ts) < pl.duration(seconds=ACTIVE_SECONDS))
    work = work.with_columns(
        pl.when(f("_seed")).then(f("_active")).otherwise(fresh).alias("_active"),
        shake_ts.cast(UTC_TS).alias("_shake_ts"),
    )

    same = f("_pid") == f("_pid").shift()

    def prev(column: str) -> pl.Expr:
        return pl.when(same).then(f(column).shift())

    reset = ((f("_rx") < prev("_rx")) | (f("_tx") < prev("_tx"))).fill_null(False)
    work = work.with_columns(reset.alias("_reset"))
    reset = f("_reset")
    was = prev("_active").fill_null(False) & ~reset
    starts = f("_active") & ~was & ~f("_seed")
    work = work.with_columns(
        was.alias("_was"),
        starts.alias("_starts"),
        pl.when(reset).then(0).otherwise(prev("_rx")).alias("_prev_rx"),
        pl.when(reset).then(0).otherwise(prev("_tx")).alias("_prev_tx"),
    ).with_columns(
        pl.when(f("_starts"))
        .then(f("_shake_ts"))
        .when(f("_seed"))
        .then(f("_start"))
        .forward_fill()
        .over("_pid")
        .alias("_start"),
        pl.when(f("_starts"))
        .then(f("_prev_rx").fill_null(0))
        .when(f("_seed"))
        .then(f("_base_rx"))
        .forward_fill()
        .over("_pid")
        .alias("_base_rx"),
        pl.when(f("_starts"))
        .then(f("_prev_tx").fill_null(0))
        .when(f("_seed"))
        .then(f("_base_tx"))
        .forward_fill()
        .over("_pid")
        .alias("_base_tx"),
    )
    kept = ("_ts", "_active", "_start", "_base_rx", "_base_tx", "_rx", "_tx")
    last = work.select(*peer, *kept).group_by(peer, maintain_order=True).last()
    for r in last.iter_rows(named=True):
        peers[(r["_iface"], r["_key"])] = {k: r[k] for k in kept}
    rows = work.filter(~f("_seed")).join(
        df.select("_row", "_f", "_ep_port", "source.ip", "vpn.tunnel_ip"), on="_row"
    )
    active, was = f("_active"), f("_was")
    ended = ~active & was
    expiry = f("_shake_ts") + pl.duration(seconds=ACTIVE_SECONDS)
    end_ts = pl.when(expiry < f("_ts")).then(expiry).otherwise(f("_ts"))
    action = (
        pl.when(active & ~was)
        .then(pl.lit("tunnel-up"))
        .when(active)
        .then(pl.lit("tunnel-stats"))
        .when(ended)
        .then(pl.lit("tunnel-down"))
        .otherwise(pl.lit("peer-idle"))
    )
    in_session = active | ended
    rx = pl.when(in_session).then(f("_rx") - f("_base_rx").fill_null(0))
    tx = pl.when(in_session).then(f("_tx") - f("_base_tx").fill_null(0))
    ts = pl.when(active & ~was).then(f("_shake_ts")).when(ended).then(end_ts).otherwise(f("_ts"))
    field = f("_f").list.get
    original = pl.concat_str(
        [field(i) if i != 2 else pl.lit("(hidden)") for i in range(9)], separator="\t"
    )
    return rows.select(
        "_row",
        ts.alias("@timestamp"),
        action.alias("event.action"),
        pl.when(in_session).then(pl.lit("session")).alias("event.category"),
        pl.when(active & ~was)
        .then(pl.lit("start"))
        .when(active)
        .then(pl.lit("info"))
        .when(ended)
        .then(pl.lit("end"))
        .alias("event.type"),
        pl.when(active & ~was).then(pl.lit("success")).alias("event.outcome"),
        pl.when(active & ~was & f("_reset"))
        .then(pl.lit("counters reset: peer or interface re-created"))
        .when(ended)
        .then(pl.lit(f"no handshake for {ACTIVE_SECONDS} s"))
        .alias("event.reason"),
        pl.when(in_session).then(f("_start")).alias("event.start"),
        pl.when(ended).then((end_ts - f("_start")).dt.total_nanoseconds()).alias("event.duration"),
        f("_key").alias("user.name"),
        f("_iface").alias("vpn.group"),
        "source.ip",
        bounded_int(f("_ep_port"), 65535, pl.Int32()).alias("source.port"),
        "vpn.tunnel_ip",
        rx.alias("source.bytes"),
        tx.alias("destination.bytes"),
        pl.lit("wireguard").alias("vpn.tunnel_type"),
        original.alias("event.original"),
    )


def _kernel(df: pl.DataFrame, ctx: ParseContext) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """``wireguard: <iface>: <message>`` kernel lines under a syslog header or ``dmesg -T``."""
    f = pl.col
    head = split_header(df["_text"], ctx)
    own = pl.when(f("rest").is_not_null()).then(f("_stamp_ts")).alias("_own_ts")
    df = pl.concat([df.select("_row", "_n", "_f", own), head], how="horizontal")
    dm = df.select(f("_body").str.extract_groups(_DMESG_RE).alias("_d")).unnest("_d")
    month = dm["mon"].replace_strict(MONTHS, default=None, return_dtype=pl.Int32)
    dmesg_text = pl.format(
        "{}-{}-{} {}",
        dm["year"],
        month.cast(pl.String).str.zfill(2),
        dm["day"].str.zfill(2),
        dm["clock"],
    )
    dts = dm.select(parse_naive(dmesg_text, "%Y-%m-%d %H:%M:%S", ctx.tz).alias("_dts")).to_series()
    df = df.with_columns(dts, pl.Series("_dmesg", dm["clock"].is_not_null()))
    df = df.with_columns(
        pl.when(f("_dmesg"))
        .then(f("_body").str.replace(_DMESG_RE, ""))
        .otherwise(f("_body"))
        .alias("_body")
    )
    k = df.select(f("_body").str.extract_groups(_KERNEL_RE).alias("_k")).unnest("_k")
    df = pl.concat([df, k], how="horizontal")
    ts = plausible(pl.coalesce(f("_own_ts"), f("_sys_ts"), f("_dts")), ctx.now)
    df = df.with_columns(ts.alias("@timestamp"))
    ours = f("msg").is_not_null()
    key_field = f("_f").list.get(1, null_on_oob=True).str.contains(_KEY_RE)
    cut = (~ours & (f("_n") < 9) & key_field).fill_null(False)
    rejected = pl.concat(
        [
            rejects(df.filter(cut), Reason.TRUNCATED, "dump line with too few fields"),
            rejects(
                df.filter(~ours & ~cut), Reason.NO_MATCH, "not a wg dump or wireguard kernel line"
            ),
            rejects(
                df.filter(ours & f("@timestamp").is_null()), Reason.BAD_TIMESTAMP, "no wall time"
            ),
        ]
    )
    df = df.filter(ours & f("@timestamp").is_not_null())
    kind = pl.lit(None, pl.Int32)
    for i, (pattern, _) in reversed(list(enumerate(_KERNEL))):
        kind = pl.when(f("msg").str.contains(pattern)).then(pl.lit(i, pl.Int32)).otherwise(kind)
    df = df.with_columns(kind.alias("_kind"))
    parts = []
    for (i,), part in df.partition_by("_kind", as_dict=True, maintain_order=True).items():
        if i is not None:
            pattern, spec = _KERNEL[int(i)]
            part = part.with_columns(
                f("msg").str.extract_groups(pattern).alias("_g"),
                *(pl.lit(v, pl.String).alias(c) for c, v in zip(_SPEC_COLUMNS, spec, strict=True)),
            ).unnest("_g")
        parts.append(part)
    df = pl.concat(parts, how="diagonal_relaxed") if parts else df
    for c in ("addr", *_SPEC_COLUMNS):
        if c not in df.columns:
            df = df.with_columns(pl.lit(None, pl.String).alias(c))
    ip, port = _addr_port(f("addr"))
    df = df.with_columns(
        pl.coalesce(ip, pl.when(~f("addr").str.contains(r"\]?:\d+$")).then(f("addr"))).alias("_ip"),
        port.alias("_port"),
    )
    ips, bad = canonical_ip(df["_ip"])
    out = df.with_columns(ips.alias("source.ip")).select(
        "_row",
        "@timestamp",
        *_SPEC_COLUMNS,
        pl.when(f("_dmesg") | f("_sys_ts").is_not_null())
        .then(pl.lit(ctx.tz))
        .alias("event.timezone"),
        f("_sys_host").alias("observer.name"),
        f("iface").alias("vpn.group"),
        "source.ip",
        bounded_int(f("_port"), 65535, pl.Int32()).alias("source.port"),
        f("msg").alias("message"),
        pl.lit("wireguard").alias("vpn.tunnel_type"),
    )
    return out, rejected, bad
