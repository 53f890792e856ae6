"""Zeek conn.log lines (the JSON form Zeek writes with LogAscii::use_json) for the bundled
estate: VPN pools and branches reaching the R&D crown jewels, and look-alikes that must not
count. Shared by the unit and the CLI tests."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from vpnsentry.enrich.sites import Inventory, load_inventory

ESTATE = Path(__file__).parents[3] / "src/vpnsentry/simulate/data/default_estate.yaml"
T0 = dt.datetime(2025, 3, 4, 9, 0, tzinfo=dt.UTC)


def conn(n: int, src: str, dst: str, port: int, minutes: float, proto: str = "tcp") -> str:
    """One conn.log record as Zeek writes it."""
    return json.dumps(
        {
            "ts": (T0 + dt.timedelta(minutes=minutes)).timestamp(),
            "uid": f"CsEg{n:014d}",
            "id.orig_h": src,
            "id.orig_p": 49152 + n,
            "id.resp_h": dst,
            "id.resp_p": port,
            "proto": proto,
            "duration": 3.5,
            "orig_bytes": 1000 + n,
            "resp_bytes": 5000,
            "conn_state": "SF",
            "local_orig": True,
            "local_resp": True,
            "missed_bytes": 0,
            "history": "ShADadFf",
            "orig_pkts": 12,
            "orig_ip_bytes": 1600 + n,
            "resp_pkts": 10,
            "resp_ip_bytes": 5500,
        }
    )


POOL = "10.101.0.5"  # vpn-sha-dc01's client pool (10.101.0.0/18)
POOL2 = "10.101.0.9"
BRANCH = "10.20.1.44"  # Shanghai branch user LAN
RD = "10.10.16.5"  # HQ R&D workstation: allowed by rd-crown-jewels, and not a branch
SRC = "10.10.33.10"  # src-tyo01, crown jewel (source code)
FS_RD = "10.10.33.20"  # fs-rd-tyo01, crown jewel and a file server
DB_RD = "10.10.33.30"  # db-rd-tyo01, crown jewel
FS = "10.10.32.20"  # fs-tyo01: a file server, not a crown jewel

LINES = [
    # violations: the VPN pool on SSH to the source-code server, three times, two clients
    conn(1, POOL, SRC, 22, 0),
    conn(2, POOL, SRC, 22, 30),
    conn(3, POOL2, SRC, 22, 60),
    # violation: a branch PC on RDP to the R&D database
    conn(4, BRANCH, DB_RD, 3389, 90),
    # allowed: users (workstations, VPN pools) to file servers on SMB (rule file-shares)
    conn(5, POOL, FS_RD, 445, 120),
    # out of scope: HQ R&D (allowed anyway), not a crown jewel, not an admin port, UDP
    conn(6, RD, SRC, 22, 150),
    conn(7, POOL, FS, 445, 160),
    conn(8, POOL, SRC, 443, 170),
    conn(9, POOL, SRC, 514, 175, proto="udp"),
    # a day later: outside --until in the windowed test
    conn(10, BRANCH, SRC, 22, 60 * 24 + 5),
]


@pytest.fixture(scope="session")
def estate() -> Inventory:
    return load_inventory(ESTATE)
