"""Attack scenarios: a library of intrusions to mix into the benign month.

A scenario is one module with one :class:`Scenario` subclass, registered by name (the
``--scenario`` value). Its :meth:`Scenario.build` declares *steps* (what the attacker does,
with ATT&CK technique ids and the entities involved) and adds the events that evidence them,
each event tagged with its step. Ground truth then lists, per step, the files and line numbers
where the tagged events were written, so a detection can be scored line by line.

Scenarios draw from their own random stream (seeded by the run seed and the scenario name),
so adding one never changes the benign traffic or another scenario of the same seed.
"""

from __future__ import annotations

import zlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import numpy as np
import polars as pl

from vpnsentry.errors import UsageError
from vpnsentry.simulate.benign import RESERVED_POOL, _group, _ip
from vpnsentry.simulate.core import (
    ADMIN_SCHEMA,
    FAIL_SCHEMA,
    GAP_SCHEMA,
    HOUR,
    I64,
    PORTAL_SCHEMA,
    SESSION_SCHEMA,
    U32,
    US,
    Window,
    frame,
    in_prefixes,
    local_midnight,
    mix,
)
from vpnsentry.simulate.estate import Estate
from vpnsentry.simulate.events import Events, make_flows
from vpnsentry.simulate.route import SERVICES


@dataclass
class Step:
    """One attacker action. ``absence`` marks a step evidenced by missing lines (a log gap)."""

    tag: int
    scenario: str
    name: str
    techniques: tuple[str, ...]
    description: str
    entities: dict[str, Any]
    start: int | None = None
    end: int | None = None
    absence: bool = False
    note: str = ""


@dataclass
class Context:
    """What a scenario builds with: the estate, the window, a random stream, and sinks."""

    est: Estate
    win: Window
    scenario: str
    first_tag: int
    names: pl.Series
    events: Events = field(default_factory=Events)
    steps: list[Step] = field(default_factory=list)
    rng: np.random.Generator = field(init=False)
    _pool_next: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng([self.est.seed, 100, zlib.crc32(self.scenario.encode())])

    # ---- steps -----------------------------------------------------------------------

    def step(
        self,
        name: str,
        techniques: tuple[str, ...],
        description: str,
        *,
        absence: bool = False,
        note: str = "",
        **entities: Any,
    ) -> int:
        """Declare a step; returns the tag to put on its events."""
        tag = self.first_tag + len(self.steps)
        self.steps.append(
            Step(
                tag,
                self.scenario,
                name,
                techniques,
                description,
                entities,
                absence=absence,
                note=note,
            )
        )
        return tag

    # ---- time and places -----------------------------------------------------------------

    def at(self, day: float, hour: float, tz: str = "UTC") -> int:
        """UTC microseconds of local ``hour`` on window day ``int(day)`` in ``tz``.

        Moved by a day when the zone's offset would put it outside the window (02:00 in
        Shanghai on the first day is the evening before in UTC).
        """
        d = self.win.date(int(max(0, min(day, self.win.days - 1))))
        t = local_midnight(d, tz) + int(hour * HOUR)
        if t < self.win.t0:
            t += 24 * HOUR
        elif t >= self.win.t1:
            t -= 24 * HOUR
        return t

    def day_at(self, fraction: float) -> int:
        """A window day index at ``fraction`` of the window."""
        return int(max(0, min(self.win.days - 1, round(fraction * (self.win.days - 1)))))

    def tz(self, site: int) -> str:
        return self.est.sites[site].timezone

    def hosting(self, n: int, salt: int, provider: int | None = None) -> list[int]:
        """``n`` attacker addresses in hosting providers' ranges."""
        providers = self.est.cfg.hosting
        out = []
        for k in range(n):
            p = providers[(provider if provider is not None else k) % len(providers)]
            h = mix(self.est.seed, 200, salt, k, zlib.crc32(self.scenario.encode())).reshape(1)
            out.append(int(in_prefixes(list(p.prefixes), h)[0]))
        return out

    def provider_of(self, ip: int) -> str:
        for isp in [*self.est.cfg.hosting, *self.est.isp_list]:
            if any(ip in range(int(n[0]), int(n[-1]) + 1) for n in isp.prefixes):
                return f"{isp.name} ({isp.country})"
        return "unknown"

    def tunnel(self, gw: int) -> int:
        """A VPN pool address from the part kept free of benign sessions."""
        pool = self.est.gateways[gw].pool
        k = self._pool_next.get(gw, 0)
        self._pool_next[gw] = k + 1
        return (
            int(pool[-1])
            - RESERVED_POOL
            + 1
            + (k + zlib.crc32(self.scenario.encode())) % (RESERVED_POOL - 2)
        )

    def pick_user(self, mask: np.ndarray, salt: int) -> int:
        """A deterministic user among ``mask``; UsageError if none qualifies."""
        cand = np.flatnonzero(mask)
        if not len(cand):
            raise UsageError(f"scenario {self.scenario}: the estate has no suitable user")
        return int(cand[int(mix(self.est.seed, 300, salt, len(cand)) % np.uint64(len(cand)))])

    # ---- events ------------------------------------------------------------------------

    def flows(self, tag: int, svc: str, ts: I64, src: U32 | int, dst: U32 | int, **kw: Any) -> None:
        """Add flows of service ``svc`` (a key of ``route.SERVICES``)."""
        n = len(ts)
        src_a = np.broadcast_to(np.asarray(src, dtype=np.uint32), (n,))
        dst_a = np.broadcast_to(np.asarray(dst, dtype=np.uint32), (n,))
        self.events.flows.append(
            make_flows(
                self.rng, SERVICES[svc], np.asarray(ts, dtype=np.int64), src_a, dst_a, tag=tag, **kw
            )
        )

    def session(
        self,
        tag: int,
        gw: int,
        user: str,
        src: int,
        start: int,
        end: int,
        tunnel: int,
        out_bytes: int,
        in_bytes: int,
        admin: bool = False,
        reason: str = "user",
    ) -> None:
        vendor = self.est.gateways[gw].vendor
        self.events.sessions.append(
            frame(
                SESSION_SCHEMA,
                gw=[gw],
                user=[user],
                group=[_group(vendor, "admins" if admin else "users")],
                src=[src],
                sport=[int(self.rng.integers(1024, 65535))],
                tunnel=[tunnel],
                start=[start],
                end=[end],
                out_bytes=[out_bytes],
                in_bytes=[in_bytes],
                sid=[5_000_000 + int(mix(start, gw) % np.uint64(4_000_000)) * 2],
                reason=[reason],
                tag=[tag],
            )
        )

    def fails(
        self, tag: int, gw: int, users: list[str], src: list[int], ts: I64, reasons: list[str]
    ) -> None:
        n = len(users)
        self.events.fails.append(
            frame(
                FAIL_SCHEMA,
                gw=np.full(n, gw, dtype=np.int16),
                user=users,
                src=np.array(src, dtype=np.uint32),
                sport=self.rng.integers(1024, 65535, n),
                ts=np.asarray(ts, dtype=np.int64),
                reason=reasons,
                tag=np.full(n, tag, dtype=np.int32),
            )
        )

    def portal(self, tag: int, gw: int, src: list[int], ts: I64) -> None:
        n = len(ts)
        self.events.portal.append(
            frame(
                PORTAL_SCHEMA,
                gw=np.full(n, gw, dtype=np.int16),
                ts=np.asarray(ts, dtype=np.int64),
                src=np.array(src, dtype=np.uint32),
                sport=self.rng.integers(1024, 65535, n),
                tag=np.full(n, tag, dtype=np.int32),
            )
        )

    def admin(
        self,
        tag: int,
        gw: int,
        ts: int,
        user: str,
        src: int,
        kind: str,
        action: str = "",
        path: str = "",
        obj: str = "",
        attr: str = "",
    ) -> None:
        self.events.admin.append(
            frame(
                ADMIN_SCHEMA,
                gw=[gw],
                ts=[ts],
                user=[user],
                src=[src],
                kind=[kind],
                action=[action or None],
                path=[path or None],
                obj=[obj or None],
                attr=[attr or None],
                tag=[tag],
            )
        )

    def gap(self, tag: int, gw: int, start: int, end: int) -> None:
        self.events.gaps.append(frame(GAP_SCHEMA, gw=[gw], start=[start], end=[end], tag=[tag]))
        st = next(s for s in self.steps if s.tag == tag)
        st.start, st.end = start, end

    # ---- patterns ----------------------------------------------------------------------

    def beacons(
        self, tag: int, src: int, c2: int, start: int, end: int, period_s: float, jitter: float
    ) -> I64:
        """Times of C2 check-ins: ``period_s`` apart with +-``jitter`` relative noise."""
        n = int((end - start) / (period_s * US)) + 2
        gaps = period_s * (1 + self.rng.uniform(-jitter, jitter, n)) * US
        ts = start + np.cumsum(gaps).astype(np.int64)
        ts = ts[ts < end]
        size = len(ts)
        self.flows(
            tag,
            "https",
            ts,
            src,
            c2,
            state="SF",
            ob=self.rng.integers(1100, 1600, size),
            rb=self.rng.integers(400, 3000, size),
            dur=self.rng.integers(150_000, 900_000, size),
        )
        return ts


class Scenario(ABC):
    """An attack scenario. Subclasses set ``name``/``summary`` and implement ``build``."""

    name: ClassVar[str]
    summary: ClassVar[str]  # one paragraph for --list-scenarios
    #: Shortest window the scenario's timeline fits in (its steps are fractions of it).
    min_days: ClassVar[int] = 1

    @abstractmethod
    def build(self, ctx: Context) -> None:
        """Declare steps and add their tagged events to ``ctx``."""


_REGISTRY: dict[str, type[Scenario]] = {}
S = TypeVar("S", bound=type[Scenario])


def register(cls: S) -> S:
    """Class decorator adding a scenario to the library under ``cls.name``."""
    if cls.name in _REGISTRY:
        raise ValueError(f"scenario {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def library() -> dict[str, type[Scenario]]:
    """All scenarios by name, in the order the issue lists them."""
    from vpnsentry.simulate.scenarios import (  # noqa: F401  (import registers)
        password_spray,
        rogue_admin,
        session_hijack,
        slow_exfil,
        stolen_credential,
        vpn_appliance_breach,
    )

    order = [
        "vpn-appliance-breach",
        "password-spray",
        "stolen-credential",
        "session-hijack",
        "rogue-admin",
        "slow-exfil",
    ]
    return {
        k: _REGISTRY[k]
        for k in sorted(_REGISTRY, key=lambda k: (order.index(k) if k in order else len(order), k))
    }


def ip(x: int) -> str:
    """Dotted-quad text of an address."""
    return _ip(x)


__all__ = ["Context", "Scenario", "Step", "ip", "library", "register"]
