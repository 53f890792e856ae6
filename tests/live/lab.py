"""A real OpenVPN gateway in network namespaces, for the live-mode end-to-end test.

Topology (every address lives inside the namespaces; nothing touches the host's network)::

    vs<id>c1 198.51.100.2 ──┐                          ┌── vs<id>in 10.20.0.2 (internal)
    vs<id>c2 203.0.113.2 ───┤ vs<id>gw  OpenVPN server ├
                            │   tunnel pool 10.8.0.0/24 │
                            └ rsyslogd, softflowd, vpnsentry serve (on the gw's loopback)

The gateway runs Debian's ``openvpn`` with per-user client certificates (CN = user) and a
password check by ``--auth-user-pass-verify`` script, as many companies run it. Its log
goes to a file that ``rsyslogd`` (``imfile``) forwards as RFC 5424 over TCP with octet
counting; ``softflowd`` watches the tunnel interface and exports NetFlow v9. Both send to
vpnsentry on the gateway's loopback. Certificates are made with the ``openssl`` CLI.

:class:`Lab` is a context manager: whatever fails, ``__exit__`` kills every process it
started and deletes the namespaces.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

REQUIRED = ("ip", "openvpn", "rsyslogd", "softflowd", "softflowctl", "openssl")

SERVER_IP = "198.51.100.1"
INTERNAL_HOST = "10.20.0.2"
SYSLOG_PORT = 5514
NETFLOW_PORT = 2055
TUN = "vstun0"

#: user -> password the gateway's check accepts
PASSWORDS = {"alice": "correct-horse", "bob": "battery-staple", "mallory": "not-known"}

_AUTH_SCRIPT = """#!/bin/sh
# --auth-user-pass-verify via-file: line 1 user name, line 2 password.
u=$(sed -n 1p "$1"); p=$(sed -n 2p "$1")
[ "$u" = alice ] && [ "$p" = correct-horse ] && exit 0
[ "$u" = bob ] && [ "$p" = battery-staple ] && exit 0
exit 1
"""


def missing_tools() -> list[str]:
    """What this machine lacks to run the lab (root and the Debian packages)."""
    missing = [t for t in REQUIRED if shutil.which(t) is None]
    if os.geteuid() != 0:
        missing.append("root (network namespaces)")
    return missing


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)


@dataclass
class Lab:
    """The namespaces and processes; ``vpnsentry serve`` is started by the test."""

    work: Path
    tag: str = field(default_factory=lambda: f"{os.getpid() % 10000:04d}")
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[IO[bytes]] = field(default_factory=list)

    def ns(self, role: str) -> str:
        return f"vs{self.tag}{role}"

    def exec(self, role: str, *cmd: str) -> list[str]:
        """``cmd`` run inside namespace ``role``."""
        return ["ip", "netns", "exec", self.ns(role), *cmd]

    # -- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> Lab:
        try:
            self._network()
            self._pki()
            self._gateway()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.kill()
                p.wait(10)
        for pidfile in self.work.glob("*.pid"):
            with contextlib.suppress(ValueError, ProcessLookupError):
                os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)
        for f in self.logs:
            f.close()
        for role in ("gw", "c1", "c2", "in"):
            # Deleting a namespace kills nothing by itself: processes were killed above.
            subprocess.run(
                ["ip", "netns", "del", self.ns(role)], capture_output=True, timeout=30, check=False
            )

    def start(self, role: str, *cmd: str, log: str) -> subprocess.Popen[bytes]:
        """A long-running process in namespace ``role``, in ``work``, output to ``work/<log>``."""
        out = (self.work / log).open("wb")
        self.logs.append(out)
        p = subprocess.Popen(
            self.exec(role, *cmd), stdout=out, stderr=subprocess.STDOUT, cwd=self.work
        )
        self.procs.append(p)
        return p

    # -- pieces -----------------------------------------------------------------------------

    def _network(self) -> None:
        for role in ("gw", "c1", "c2", "in"):
            _run("ip", "netns", "add", self.ns(role))
            _run("ip", "-n", self.ns(role), "link", "set", "lo", "up")
        links = (("c1", "198.51.100"), ("c2", "203.0.113"), ("in", "10.20.0"))
        for role, net in links:
            outer, inner = f"vs{self.tag}{role}o", f"vs{self.tag}{role}i"
            _run("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
            _run("ip", "link", "set", outer, "netns", self.ns("gw"))
            _run("ip", "link", "set", inner, "netns", self.ns(role))
            _run("ip", "-n", self.ns("gw"), "addr", "add", f"{net}.1/24", "dev", outer)
            _run("ip", "-n", self.ns("gw"), "link", "set", outer, "up")
            _run("ip", "-n", self.ns(role), "addr", "add", f"{net}.2/24", "dev", inner)
            _run("ip", "-n", self.ns(role), "link", "set", inner, "up")
        _run("ip", "-n", self.ns("in"), "route", "add", "10.8.0.0/24", "via", "10.20.0.1")
        _run(*self.exec("gw", "sysctl", "-qw", "net.ipv4.ip_forward=1"))

    def _pki(self) -> None:
        w = self.work
        ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
        _run("openssl", "req", "-x509", *ec, "-keyout", str(w / "ca.key"), "-out",
             str(w / "ca.crt"), "-days", "2", "-subj", "/CN=Lab VPN CA")  # fmt: skip
        for cn, usage in (("gw", "serverAuth"), *((u, "clientAuth") for u in PASSWORDS)):
            ext = w / f"{cn}.ext"
            ext.write_text(
                "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyAgreement\n"
                f"extendedKeyUsage={usage}\n"
            )
            _run("openssl", "req", *ec, "-keyout", str(w / f"{cn}.key"), "-out",
                 str(w / f"{cn}.csr"), "-subj", f"/CN={cn}")  # fmt: skip
            _run("openssl", "x509", "-req", "-in", str(w / f"{cn}.csr"), "-CA", str(w / "ca.crt"),
                 "-CAkey", str(w / "ca.key"), "-CAcreateserial", "-out", str(w / f"{cn}.crt"),
                 "-days", "2", "-extfile", str(ext))  # fmt: skip

    def _gateway(self) -> None:
        w = self.work
        script = w / "auth.sh"
        script.write_text(_AUTH_SCRIPT)
        script.chmod(0o755)
        (w / "server.conf").write_text(
            f"""port 1194
proto udp
dev {TUN}
dev-type tun
topology subnet
server 10.8.0.0 255.255.255.0
push "route 10.20.0.0 255.255.255.0"
ca {w}/ca.crt
cert {w}/gw.crt
key {w}/gw.key
dh none
remote-cert-tls client
username-as-common-name
script-security 2
auth-user-pass-verify {script} via-file
disable-dco
keepalive 10 60
suppress-timestamps
log {w}/openvpn.log
verb 3
"""
        )
        _run(*self.exec("gw", "openvpn", "--config", str(w / "server.conf"), "--daemon",
                        "--writepid", str(w / "openvpn.pid")))  # fmt: skip
        _wait_for(lambda: "Initialization Sequence Completed" in _read(w / "openvpn.log"), 15)

    def forward_logs(self) -> None:
        """rsyslogd tails the OpenVPN log and forwards it to vpnsentry (RFC 5424, TCP)."""
        w = self.work
        (w / "rsyslog").mkdir(exist_ok=True)
        (w / "rsyslog.conf").write_text(
            f"""global(workDirectory="{w}/rsyslog" localHostName="vpn-gw-lab")
module(load="imfile")
input(type="imfile" File="{w}/openvpn.log" Tag="openvpn[{_read(w / "openvpn.pid").strip()}]:"
      Facility="daemon" Severity="notice" freshStartTail="off")
action(type="omfwd" target="127.0.0.1" port="{SYSLOG_PORT}" protocol="tcp"
       Template="RSYSLOG_SyslogProtocol23Format" TCP_Framing="octet-counted"
       action.resumeRetryCount="-1" action.resumeInterval="1"
       queue.type="LinkedList" queue.size="100000")
"""
        )
        self.start("gw", "rsyslogd", "-n", "-f", str(w / "rsyslog.conf"), "-i",
                   str(w / "rsyslog.pid"), log="rsyslogd.out")  # fmt: skip

    def export_flows(self) -> None:
        """``softflowd`` on the tunnel interface, NetFlow v9 to vpnsentry; and, in the
        internal namespace, a web server with a file to download (see :meth:`flush_flows`).

        The control socket path is relative: softflowd 1.1 mangles absolute ones and hangs.
        """
        www = self.work / "www"
        www.mkdir(exist_ok=True)
        (www / "handbook.pdf").write_bytes(bytes(8_000_000))
        self.start("in", sys.executable, "-m", "http.server", "8080", "--bind", INTERNAL_HOST,
                   "--directory", str(www), log="http.out")  # fmt: skip
        self.start("gw", "softflowd", "-d", "-i", TUN, "-n", f"127.0.0.1:{NETFLOW_PORT}",
                   "-v", "9", "-c", "softflowd.ctl", log="softflowd.out")  # fmt: skip
        _wait_for((self.work / "softflowd.ctl").exists, 10)

    def flush_flows(self, role: str) -> None:
        """Make softflowd export what it has seen: a user in ``role`` downloads a file
        from the internal web server, then every flow is expired (as the exporter's active
        timeout would, later).

        Why the download: Debian's libpcap 1.10 hands softflowd's live capture over in
        whole blocks, and softflowd polls the capture socket, so packets wait until a block
        is full; a few probes alone are never seen. An 8 MB download fills blocks, as the
        ordinary traffic of a real gateway does (measured: 60 probe packets processed only
        after it).
        """
        before = self._processed()
        subprocess.run(
            self.exec(role, sys.executable, "-c", "import urllib.request as u; u.urlopen("
                      f"'http://{INTERNAL_HOST}:8080/handbook.pdf', timeout=30).read()"),
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        _wait_for(lambda: self._processed() > before + 1000, 20)
        self._softflowctl("expire-all")

    def _processed(self) -> int:
        out = self._softflowctl("statistics")
        return int(out.split("Packets processed:")[1].split()[0])

    def _softflowctl(self, command: str) -> str:
        return subprocess.run(
            self.exec("gw", "softflowctl", "-c", "softflowd.ctl", command),
            check=True, capture_output=True, text=True, timeout=30, cwd=self.work,
        ).stdout  # fmt: skip

    def connect(self, role: str, user: str, password: str, *, wait: bool) -> Path:
        """An OpenVPN client for ``user`` in namespace ``role``; ``wait``: until it is up.

        Without ``wait`` the client runs until the server refuses it (``auth-retry none``),
        which is what a password guesser's attempts look like.
        """
        w = self.work
        creds = w / f"{user}-{role}.pass"
        creds.write_text(f"{user}\n{password}\n")
        creds.chmod(0o600)
        log = w / f"client-{user}-{role}.log"
        log.unlink(missing_ok=True)
        cmd = self.exec(
            role, "openvpn", "--client", "--dev", "vstun1", "--dev-type", "tun", "--proto",
            "udp", "--remote", SERVER_IP if role == "c1" else "203.0.113.1", "1194",
            "--nobind", "--ca", f"{w}/ca.crt", "--cert", f"{w}/{user}.crt", "--key",
            f"{w}/{user}.key", "--remote-cert-tls", "server", "--auth-user-pass", str(creds),
            "--auth-retry", "none", "--disable-dco", "--verb", "3", "--log", str(log),
        )  # fmt: skip
        if wait:
            p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.procs.append(p)
            _wait_for(lambda: "Initialization Sequence Completed" in _read(log), 20)
        else:
            subprocess.run(cmd, capture_output=True, timeout=30, check=False)
        return log

    def tunnel_ip(self, role: str) -> str:
        out = subprocess.run(
            self.exec(role, "ip", "-4", "-o", "addr", "show", "vstun1"),
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout  # fmt: skip
        return out.split()[3].split("/")[0]


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _wait_for(check: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"lab: condition not met within {seconds}s")
        time.sleep(0.1)
