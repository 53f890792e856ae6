"""Benchmark: `vpnsentry ingest` end to end, per format, against the floor.

For each format we replay real sample lines (templates below are real vendor lines with
their timestamp, addresses and user replaced by placeholders), shifting timestamps over 30
days and varying addresses, users and ports, to ``--lines`` lines (default 5,000,000).
Then, ``--runs`` times (default 3), each into a fresh store:

* the floor: read the same file into memory as one string column with Polars, nothing else;
* ``vpnsentry ingest`` as a subprocess, wall time and peak RSS (from wait4).

Prints a Markdown table for BENCHMARKS.md (median of the runs) and writes the raw numbers
to ``bench/out/ingest.json``.

    .venv/bin/python bench/ingest.py [--lines N] [--runs R] [--formats a,b] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

OUT = Path(__file__).resolve().parent / "out"
START = 1_780_000_000  # 2026-05-28, epoch seconds
SPAN = 30 * 86400

# Real lines (corpus and vendor documentation) with placeholders:
# {iso} {bsd} {date} {time} {epoch_ns} {epoch} {ip} {ip2} {port} {user} {n}
TEMPLATES: dict[str, list[str]] = {
    "fortinet_fortigate": [
        '{iso} 192.0.2.1 date={date} time={time} devname="FGT-TOKYO-DC" devid="FGVM01TM000001" '
        'eventtime={epoch_ns} tz="+0900" logid="0101039947" type="event" subtype="vpn" '
        'level="information" vd="root" logdesc="SSL VPN tunnel up" action="tunnel-up" '
        'tunneltype="ssl-tunnel" tunnelid={n} remip={ip} tunnelip=10.212.134.{port8} '
        'user="{user}" group="SSL-VPN-Users" dst_host="N/A" reason="tunnel established" '
        'msg="SSL tunnel established"',
        '{iso} 192.0.2.1 date={date} time={time} devname="FGT-TOKYO-DC" devid="FGVM01TM000001" '
        'eventtime={epoch_ns} tz="+0900" logid="0000000013" type="traffic" subtype="forward" '
        'level="notice" vd="root" srcip=10.1.{port8}.20 srcport={port} srcintf="ssl.root" '
        'srcintfrole="undefined" dstip={ip} dstport=443 dstintf="wan1" dstintfrole="wan" '
        'srccountry="Reserved" dstcountry="Japan" sessionid={n} proto=6 action="close" '
        'policyid=12 policytype="policy" poluuid="6b1f1b52-1b8f-51ee-6bd6-3f9c0f5e1a2b" '
        'policyname="vpn-to-internet" service="HTTPS" trandisp="snat" transip=192.0.2.1 '
        "transport={port} duration=27 sentbyte=3418 rcvdbyte=8874 sentpkt=14 rcvdpkt=12 "
        'appcat="unscanned" user="{user}"',
        '{iso} 192.0.2.1 date={date} time={time} devname="FGT-TOKYO-DC" devid="FGVM01TM000001" '
        'eventtime={epoch_ns} tz="+0900" logid="0100032002" type="event" subtype="system" '
        'level="alert" vd="root" logdesc="Admin login failed" sn="0" user="{user}" '
        'ui="https({ip})" method="https" srcip={ip} dstip=192.0.2.1 action="login" '
        'status="failed" reason="passwd_invalid" '
        'msg="Administrator {user} login failed from https({ip}) because of invalid password"',
    ],
    "cisco_asa": [
        "{bsd} asa-osaka : %ASA-6-113039: Group <AnyConnect-Users> User <{user}> IP <{ip}> "
        "AnyConnect parent session started.",
        "{bsd} asa-osaka : %ASA-4-722051: Group <AnyConnect-Users> User <{user}> IP <{ip}> "
        "IPv4 Address <10.20.{port8}.7> IPv6 address <::> assigned to session",
        "{bsd} asa-osaka : %ASA-6-302013: Built inbound TCP connection {n} for "
        "outside:{ip}/{port} ({ip}/{port}) to inside:10.20.1.{port8}/445 (10.20.1.{port8}/445)"
        " ({user})",
        "{bsd} asa-osaka : %ASA-6-302014: Teardown TCP connection {n} for outside:{ip}/{port} "
        "to inside:10.20.1.{port8}/445 duration 0:01:02 bytes 48213 TCP FINs from outside",
        "{bsd} asa-osaka : %ASA-6-113005: AAA user authentication Rejected : reason = "
        "AAA failure : server = 10.20.0.5 : user = {user} : user IP = {ip}",
    ],
    "zeek_conn": [
        "{epoch}.{frac}\tC{n}\t10.30.{port8}.15\t{port}\t{ip}\t443\ttcp\tssl\t12.5\t2048\t"
        "18233\tSF\tT\tF\t0\tShADadFf\t22\t3200\t24\t19481\t-",
        "{epoch}.{frac}\tC{n}\t10.30.{port8}.15\t{port}\t10.10.0.53\t53\tudp\tdns\t0.0123\t"
        "45\t120\tSF\tT\tT\t0\tDd\t1\t73\t1\t148\t-",
    ],
    "openvpn": [
        "{date} {time} {user}/{ip}:{port} MULTI_sva: pool returned IPv4=10.8.{port8}.6, "
        "IPv6=(Not enabled)",
        "{date} {time} {ip}:{port} TLS: Username/Password authentication succeeded for "
        "username '{user}'",
        "{date} {time} {user}/{ip}:{port} MULTI: Learn: 10.8.{port8}.6 -> {user}/{ip}:{port}",
        "{date} {time} {user}/{ip}:{port} SIGTERM[soft,remote-exit] received, "
        "client-instance exiting",
    ],
    "pulse_connect_secure": [
        "<134>1 {iso} ics-edge-01 PulseSecure: - - - {date} {time} - ics-edge-01 - [{ip}] "
        "{user}(Users)[Employees] - Agent login succeeded for {user}/Users (session:sid{n}) "
        "from {ip} with Pulse-Secure/22.7.2.3191 (Windows 10) Pulse/22.7.2.3191.",
        "<134>1 {iso} ics-edge-01 PulseSecure: - - - {date} {time} - ics-edge-01 - [{ip}] "
        "{user}(Users)[Employees] - VPN Tunneling: Session started for user (session: sid{n}) "
        "with IPv4 address 10.200.1.{port8}, hostname LAPTOP-7",
        "<134>1 {iso} ics-edge-01 PulseSecure: - - - {date} {time} - ics-edge-01 - [{ip}] "
        "{user}(Users)[] - Login failed. Reason: Wrong Password",
        "<134>1 {iso} ics-edge-01 PulseSecure: - - - {date} {time} - ics-edge-01 - [{ip}] "
        "{user}(Users)[Employees] - Closed connection to 10.20.1.{port8} after 437 seconds, "
        "with 36662 bytes read and 24509 bytes written",
    ],
    "citrix_adc": [
        "<135> {ns_time} GMT gw-dmz-01 0-PPE-1 : default SSLVPN LOGIN {n} 0 : Context "
        '{user}@{ip} - SessionId: {n} - User {user} - Client_ip {ip} - Nat_ip "Mapped Ip" - '
        'Vserver 198.51.100.1:443 - Browser_type "Mozilla/5.0" - Group(s) "VPN_Users"',
        "<135> {ns_time} GMT gw-dmz-01 0-PPE-1 : default SSLVPN TCPCONNSTAT {n} 0 :  User {user}"
        ' - Client_ip {ip} - Nat_ip "Mapped Ip" - Vserver 198.51.100.1:443 - Source '
        '10.30.0.{port8}:{port} - Destination 10.40.0.12:445 - Start_time "{ns_time} GMT" - '
        'End_time "{ns_time} GMT" - Duration 00:01:00 - Total_bytes_send 810 - '
        "Total_bytes_recv 1404 - Total_compressedbytes_send 0 - Total_compressedbytes_recv 0 - "
        "Compression_ratio_send 0.00% - Compression_ratio_recv 0.00% - Access Allowed - "
        'Group(s) "N/A"',
        "<134> {ns_time} GMT gw-dmz-01 0-PPE-0 : default AAA LOGIN_FAILED {n} 0 :  User {user} "
        '- Client_ip {ip} - Failure_reason "Invalid credentials"',
    ],
    "sonicwall_firewall": [
        '<134>id=firewall sn=0017C5A1B2C3 time="{date} {time} UTC" fw=192.0.2.1 pri=6 c=1024 '
        'm=537 msg="Connection Closed" src=10.50.0.{port8}:{port}:X1 dst={ip}:443:X0 '
        'usr="{user}" proto=tcp/https sent=3418 rcvd=8874 spkt=14 rpkt=12 cdur=27000 '
        'sess="sslvpnc" rule="157 (SSLVPN->WAN)" n={n} fw_action="NA"',
        '<134>id=firewall sn=0017C5A1B2C3 time="{date} {time} UTC" fw=192.0.2.1 pri=6 '
        'c=262144 m=98 msg="Connection Opened" src=10.50.0.{port8}:{port}:X1 dst={ip}:443:X0 '
        'proto=tcp/https n={n} fw_action="NA"',
        '<129>id=firewall sn=0017C5A1B2C3 time="{date} {time} UTC" fw=192.0.2.1 pri=1 c=32 '
        'm=31 msg="User login denied due to bad credentials" n={n} usr="{user}" '
        "src={ip}:{port}:X1 dst=192.0.2.1:4433:X1",
    ],
    "panw_panos": [
        "<14>{bsd} PA-3220 1,{pan_time},012801096514,GLOBALPROTECT,0,2561,{pan_time},vsys1,"
        "gateway-auth,login,LDAP,,{user},US,LAPTOP-{n},{ip},,0.0.0.0,,5f2a1c3e-0d4b-4c8e,PF3X,"
        '6.1.3,Microsoft Windows,"Microsoft Windows 10 Pro , 64-bit",1,,,,success,,0,'
        "user-logon,0,GP-GW,{n},0x8000000000000000",
        "<14>{bsd} PA-3220 1,{pan_time},012801096514,GLOBALPROTECT,0,2561,{pan_time},vsys1,"
        "gateway-connected,connected,,SSL,{user},US,LAPTOP-{n},{ip},,10.31.1.{port8},,"
        '5f2a1c3e-0d4b-4c8e,PF3X,6.1.3,Microsoft Windows,"Microsoft Windows 10 Pro , 64-bit",'
        "1,,,,success,,0,user-logon,0,GP-GW,{n},0x8000000000000000",
        "<14>{bsd} PA-3220 1,{pan_time},012801096514,TRAFFIC,end,2049,{pan_time},"
        "10.31.1.{port8},{ip},192.0.2.63,{ip},allow-vpn-out,{user},,ssl,vsys1,vpn,untrust,"
        "tunnel.1,ethernet1/1,default,{pan_time},{n},1,{port},443,51266,443,0x400053,tcp,"
        "allow,5976,1566,4410,23,{pan_time},43,computer-and-internet-info,0,{n},0x0,"
        "10.0.0.0-10.255.255.255,United States,0,11,12,tcp-fin,0,0,0,0,,PA-3220,from-policy",
    ],
    "checkpoint": [
        '<134>1 {iso} gw-hq CheckPoint 2211 - [action:"Accept"; flags:"444676"; ifdir:"outbound";'
        ' ifname:"eth0"; logid:"0"; origin:"192.0.2.1";'
        ' sequencenum:"1"; version:"5"; dst:"{ip}"; inzone:"Internal"; layer_name:"Network";'
        ' match_id:"1"; outzone:"External"; product:"VPN-1 & FireWall-1"; proto:"6";'
        ' s_port:"{port}"; service:"443"; service_id:"https"; src:"10.8.0.{port8}";'
        ' xlatesrc:"192.0.2.1"; xlatesport:"26680"]',
        '<134>1 {iso} gw-hq CheckPoint 2211 - [action:"Log In";'
        ' origin:"192.0.2.1"; auth_method:"Username and Password"; client_name:"Endpoint'
        ' Security VPN"; client_version:"E86.10"; office_mode_ip:"10.8.0.{port8}";'
        ' product:"VPN-1 & FireWall-1"; src:"{ip}"; user:"{user}"; vpn_feature_name:"VPN"]',
        '<134>1 {iso} gw-hq CheckPoint 2211 - [action:"Failed Log In";'
        ' origin:"192.0.2.1"; product:"VPN-1 & FireWall-1"; reason:"Authentication failure:'
        ' Wrong password or username"; src:"{ip}"; user:"{user}"]',
    ],
    "cef": [
        "<134>{bsd} fw01 CEF:0|Check Point|VPN-1 & FireWall-1|Check Point|Log|Log In|Unknown|"
        "act=Log In src={ip} suser={user} rt={epoch}000 cs3Label=Office Mode IP "
        "cs3=10.8.0.{port8}",
        "<14>{bsd} PA-220 CEF:0|Palo Alto Networks|PAN-OS|10.1.0|end|TRAFFIC|1|rt={epoch}000 "
        "deviceExternalId=012801096514 src=10.31.0.{port8} dst={ip} cs1Label=Rule "
        "cs1=allow-vpn-out suser={user} app=ssl deviceInboundInterface=tunnel.1 "
        "deviceOutboundInterface=ethernet1/1 spt={port} dpt=443 proto=tcp act=allow in=1566 "
        "out=4410 externalId={n} reason=tcp-fin",
    ],
    "strongswan": [
        "{bsd} vpn-gw1 charon: 09[NET] <ikev2-eap|{n}> received packet: from {ip}[4500] to "
        "192.0.2.1[4500] (92 bytes)",
        "{bsd} vpn-gw1 charon: 12[IKE] <ikev2-eap|{n}> IKE_SA ikev2-eap[{n}] established "
        "between 192.0.2.1[vpn.example.com]...{ip}[{user}]",
        "{bsd} vpn-gw1 charon: 12[IKE] <ikev2-eap|{n}> assigning virtual IP 10.10.{port8}.1 "
        "to peer '{user}'",
        "{bsd} vpn-gw1 charon: 06[IKE] <ikev2-eap|{n}> EAP method EAP_MSCHAPV2 failed for peer "
        "{ip}",
        "{bsd} vpn-gw1 charon: 15[IKE] <ikev2-eap|{n}> deleting IKE_SA ikev2-eap[{n}] between "
        "192.0.2.1[vpn.example.com]...{ip}[{user}]",
    ],
    "juniper_srx": [
        "<14>1 {iso} srx-edge-1 RT_FLOW - RT_FLOW_SESSION_CLOSE [junos@2636.1.1.1.2.129 "
        'reason="TCP FIN" source-address="10.10.{port8}.5" source-port="{port}" '
        'destination-address="{ip}" destination-port="443" service-name="junos-https" '
        'nat-source-address="192.0.2.1" nat-source-port="{port}" '
        'nat-destination-address="{ip}" nat-destination-port="443" '
        'src-nat-rule-type="source rule" src-nat-rule-name="nat-out" dst-nat-rule-type="N/A" '
        'dst-nat-rule-name="N/A" protocol-id="6" policy-name="allow-web" '
        'source-zone-name="vpn" destination-zone-name="untrust" session-id-32="{n}" '
        'packets-from-client="14" bytes-from-client="1816" packets-from-server="12" '
        'bytes-from-server="4623" elapsed-time="12" username="{user}" roles="N/A" '
        'packet-incoming-interface="st0.1"]',
        "{bsd} srx-edge-1 RT_FLOW: RT_FLOW_SESSION_CREATE: session created "
        "10.10.{port8}.5/{port}->{ip}/443 0x0 junos-https 192.0.2.1/{port}->{ip}/443 0x0 "
        "source rule nat-out N/A N/A 6 allow-web vpn untrust {n} {user}(N/A) st0.1 UNKNOWN "
        "UNKNOWN UNKNOWN No",
        "{bsd} srx-edge-1 kmd[2101]: KMD_VPN_UP_ALARM_USER: VPN ra-vpn from {ip} is up. "
        "Local-ip: 192.0.2.1, gateway name: ra-gw, vpn name: ra-vpn, tunnel-id: {n}, local "
        "tunnel-if: st0.1, remote tunnel-ip: 10.10.{port8}.5, Local IKE-ID: 192.0.2.1, Remote "
        "IKE-ID: ra@example.com, AAA username: {user}, VR id: 0",
        "{bsd} srx-edge-1 sshd[4300]: SSHD_LOGIN_FAILED: Login failed for user '{user}' from "
        "host '{ip}'",
    ],
    "wireguard": [
        "{iso}\twg0\txTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZ{u4}A=\t(hidden)\t{ip}:{port}\t"
        "10.8.{port8}.2/32\t{epoch}\t{port}{frac}\t{frac}\t25",
    ],
    "leef": [
        "<13>{bsd} vpn01 LEEF:2.0|Acme|SSL VPN|4.2|UserLogin|^|devTime={epoch}000^src={ip}^"
        "srcPort={port}^dst=192.0.2.1^dstPort=443^usrName={user}^realm=Employees^"
        "vSrc=10.8.0.{port8}^isLoginEvent=true^sev=2",
        "<14>{bsd} PA-220 LEEF:1.0|Palo Alto Networks|PAN-OS Syslog Integration|10.1.0|allow|"
        "cat=TRAFFIC\tdevTime={epoch}000\tsrc=10.31.0.{port8}\tdst={ip}\tusrName={user}\t"
        "srcPort={port}\tdstPort=443\tproto=tcp\taction=allow\tsrcBytes=1566\t"
        "dstBytes=4410\tsrcPackets=11\tdstPackets=12",
    ],
}

ZEEK_HEADER = (
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n"
    "#path\tconn\n#open\t2026-05-28-00-00-00\n"
    "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\t"
    "orig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\t"
    "orig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\n"
    "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\t"
    "string\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]\n"
)


def generate(fmt: str, n: int, path: Path, seed: int = 7) -> None:
    """Write ``n`` lines of ``fmt`` to ``path``, vectorized (Polars string formatting)."""
    rng = np.random.default_rng(seed)
    ts = np.sort(START + rng.integers(0, SPAN, n))
    df = pl.DataFrame(
        {
            "t": pl.Series(ts * 1_000_000, dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
            "n": np.arange(n, dtype=np.int64) + 1000,
            "tpl": rng.integers(0, len(TEMPLATES[fmt]), n),
            "a": rng.integers(1, 224, n),
            "b": rng.integers(0, 256, n),
            "port": rng.integers(1024, 65535, n),
            "u": rng.integers(0, 5000, n),
            "frac": rng.integers(0, 1_000_000, n),
        }
    )
    df = df.with_columns(
        pl.col("t").dt.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00").alias("iso"),
        pl.col("t").dt.strftime("%b %e %H:%M:%S").alias("bsd"),
        pl.col("t").dt.strftime("%Y-%m-%d").alias("date"),
        pl.col("t").dt.strftime("%H:%M:%S").alias("time"),
        pl.col("t").dt.strftime("%m/%d/%Y:%H:%M:%S").alias("ns_time"),  # NetScaler
        pl.col("t").dt.strftime("%Y/%m/%d %H:%M:%S").alias("pan_time"),  # PAN-OS
        (pl.col("t").dt.epoch("ns")).cast(pl.String).alias("epoch_ns"),
        (pl.col("t").dt.epoch("s")).cast(pl.String).alias("epoch"),
        pl.format("198.51.{}.{}", pl.col("b"), pl.col("a")).alias("ip"),
        pl.format("user{}", pl.col("u")).alias("user"),
        pl.col("u").cast(pl.String).str.zfill(4).alias("u4"),  # WireGuard key digits
        (pl.col("port") % 250 + 1).alias("port8"),
        pl.col("frac").cast(pl.String).str.zfill(6).alias("frac"),
    )
    parts = []
    for i, tpl in enumerate(TEMPLATES[fmt]):
        sub = df.filter(pl.col("tpl") == i)
        pieces: list[pl.Expr] = []
        rest = tpl
        while "{" in rest:
            pre, _, after = rest.partition("{")
            key, _, rest = after.partition("}")
            pieces += [pl.lit(pre), pl.col(key).cast(pl.String)]
        pieces.append(pl.lit(rest))
        parts.append(sub.select("n", pl.concat_str(pieces).alias("line")))
    lines = pl.concat(parts).sort("n")["line"]
    with path.open("w", encoding="utf-8") as fh:
        if fmt == "zeek_conn":
            fh.write(ZEEK_HEADER)
        fh.write("\n".join(lines.to_list()))
        fh.write("\n")


def floor(path: Path) -> float:
    """Seconds to read the file into one string column and do nothing else."""
    t = time.perf_counter()
    df = pl.read_csv(
        path,
        has_header=False,
        separator="\x1f",
        quote_char=None,
        new_columns=["line"],
        schema={"line": pl.String},
        truncate_ragged_lines=True,
    )
    assert len(df) > 0
    return time.perf_counter() - t


def ingest_once(path: Path, store: Path) -> tuple[float, int, dict[str, int]]:
    """(seconds, peak RSS bytes, totals) of one `vpnsentry ingest` subprocess."""
    cmd = [sys.executable, "-m", "vpnsentry", "ingest", "--json", "--store", str(store), str(path)]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    secs = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"ingest failed with {proc.returncode}")
    totals = json.loads(out)["totals"]
    return secs, usage.ru_maxrss * 1024, totals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--lines", type=int, default=5_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--formats", default=",".join(TEMPLATES))
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument(
        "--generate", nargs=3, metavar=("FORMAT", "LINES", "PATH"), help=argparse.SUPPRESS
    )
    ap.add_argument("--floor", metavar="PATH", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.generate:
        generate(args.generate[0], int(args.generate[1]), Path(args.generate[2]))
        return
    if args.floor:
        print(floor(Path(args.floor)))
        return
    OUT.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="vpnsentry-bench-"))
    results = []
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, polars {pl.__version__}"
    )
    print(
        "| format | lines | MB | lines/s | MB/s | floor lines/s | ratio to floor | "
        "peak RSS MB | quarantined |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for fmt in args.formats.split(","):
        path = work / f"{fmt}.log"
        # Generation and the floor run in child processes: a forked child's peak RSS counts
        # the parent's pages until it execs, so this process must stay small for the RSS
        # that wait4 reports for the ingest to be the ingest's own.
        subprocess.run(
            [sys.executable, __file__, "--generate", fmt, str(args.lines), str(path)], check=True
        )
        size = path.stat().st_size
        floors, secs, rss = [], [], []
        totals: dict[str, int] = {}
        for _ in range(args.runs):
            probe = [sys.executable, __file__, "--floor", str(path)]
            floors.append(float(subprocess.run(probe, check=True, capture_output=True).stdout))
            store = work / "store"
            shutil.rmtree(store, ignore_errors=True)
            s, r, totals = ingest_once(path, store)
            secs.append(s)
            rss.append(r)
        med, fmed = statistics.median(secs), statistics.median(floors)
        row = {
            "format": fmt,
            "lines": totals["lines"],
            "bytes": size,
            "seconds": secs,
            "floor_seconds": floors,
            "peak_rss": rss,
            "quarantined": totals["quarantined"],
        }
        results.append(row)
        print(
            f"| {fmt} | {totals['lines']:,} | {size / 1e6:,.0f} | {totals['lines'] / med:,.0f} | "
            f"{size / 1e6 / med:,.1f} | {totals['lines'] / fmed:,.0f} | {med / fmed:,.1f}x | "
            f"{max(rss) / 1e6:,.0f} | {totals['quarantined']:,} |",
            flush=True,
        )
        if not args.keep:
            path.unlink()
    (OUT / "ingest.json").write_text(json.dumps(results, indent=1))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
