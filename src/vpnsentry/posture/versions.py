"""Vendor firmware version strings, parsed into tuples that compare the way the vendor means.

Why not a generic "split on dots" comparison: every vendor writes releases differently and a
naive comparison gets the ones that matter wrong. ``7.0.12`` is newer than ``7.0.9``
(numeric, not text); PAN-OS ``10.2.9-h1`` is a hotfix of ``10.2.9`` and older than
``10.2.10``; Cisco ASA writes ``9.16(4)48`` in ``show version`` and ``9.16.4.48`` in
advisories; Ivanti ``22.7R2`` is older than ``22.7R2.3``; Citrix ``13.1-49.15`` is release
13.1 build 49.15; SonicWall appends a build (``7.0.1-5035``, ``10.2.1.9-57sv``); Check Point
names releases ``R81.20`` and ships Jumbo Hotfix *Takes*.

A :class:`Scheme` is one regular expression whose numeric groups, in order, form the sort key
(missing optional parts count as 0, so a bare release sorts before its hotfixes and
sub-builds). Text that the scheme's expression does not match is *not understood*:
:func:`parse` returns None and the caller reports it; it is never treated as safe.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Final


@dataclass(frozen=True)
class Scheme:
    """How one vendor family writes versions.

    ``pattern`` is matched against the whole (stripped) text, case-insensitively; its groups
    are the key's components, most significant first. ``train`` is how many leading
    components name a release train (``7.0`` of ``7.0.12``): advisories give one fixed
    version per train. ``full`` is how many components a real installed version has: an
    inventory entry with fewer (``7.0`` for a FortiGate) names a train, not a build, and
    cannot be matched against advisories. ``example`` shows the expected form in messages.
    """

    name: str
    pattern: re.Pattern[str]
    train: int
    full: int
    example: str


def _scheme(name: str, regex: str, train: int, full: int, example: str) -> Scheme:
    return Scheme(name, re.compile(regex, re.IGNORECASE), train, full, example)


#: Every scheme, by name. Each regex documents the forms it accepts.
SCHEMES: Final[dict[str, Scheme]] = {
    s.name: s
    for s in (
        # FortiOS / FortiProxy / FortiPAM: 7.0.12, v7.2.4, "v7.2.4,build1396,230131 (GA.F)",
        # "FortiGate-60F v7.2.4,build1396" (get system status). The build is ignored:
        # advisories name x.y.z releases.
        _scheme(
            "fortios",
            r"(?:forti\w+(?:-\w+)?\s+)?v?(\d+)\.(\d+)(?:\.(\d+))?"
            r"(?:[,\s]+build\s?\d+(?:,\d+)?(?:\s*\([^()]*\))?)?",
            2,
            3,
            "7.0.12",
        ),
        # PAN-OS: 10.2.9, 10.2.9-h1 (hotfix h1 sorts after 10.2.9 and before 10.2.10).
        _scheme("panos", r"(\d+)\.(\d+)(?:\.(\d+))?(?:-h(\d+))?", 2, 3, "10.2.9-h1"),
        # Cisco ASA: 9.16(4)48 (show version), 9.16(4.48) (interim), 9.16.4.48 (advisories).
        _scheme(
            "asa",
            r"(\d+)\.(\d+)(?:\((\d+)(?:\.(\d+))?\)(\d+)?|\.(\d+)(?:\.(\d+))?)?",
            2,
            3,
            "9.16(4)48",
        ),
        # Firepower Threat Defense (and other plain dotted builds): 7.0.6.1, 7.0.6.1-91.
        _scheme("dotted", r"v?(\d+)\.(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-(\d+))?", 2, 3, "7.0.6.1"),
        # Ivanti / Pulse Connect Secure: 22.7R2.3, 9.1R18.2, "22.7R2.3 (build 3431)";
        # a bare train (9.1) sorts before its first R release.
        _scheme(
            "ivanti",
            r"(\d+)\.(\d+)(?:\s*R(\d+)(?:\.(\d+))?(?:\.(\d+))?)?(?:\s*\(build\s*\d+\))?",
            2,
            3,
            "22.7R2.3",
        ),
        # Citrix / NetScaler ADC and Gateway: 13.1-49.15, "NS13.1 49.15", "13.1 Build 49.15".
        _scheme(
            "citrix",
            r"(?:ns\s?)?(\d+)\.(\d+)(?:(?:-|\s+|:?\s*build\s+)(\d+)(?:\.(\d+))?(?:\.nc)?)?",
            2,
            4,
            "13.1-49.15",
        ),
        # SonicWall SonicOS and SMA: 7.0.1-5035, 6.5.4.14-109n, 10.2.1.9-57sv, 12.4.3-02804;
        # the letters after the build (n, o, sv) name the platform, not the order.
        _scheme(
            "sonicwall",
            r"(\d+)\.(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-(\d+)[a-z]*)?(?:\s*\([\w -]+\))?",
            3,
            4,
            "7.0.1-5035",
        ),
        # Check Point Gaia: R81.20, "R81.20 Take 54", "R81.20 JHF Take 92"; R81 = R81.00.
        _scheme(
            "checkpoint",
            r"R(\d+)(?:\.(\d+))?(?:\s*(?:\+\s*)?(?:jumbo\s+hotfix\s+|jhf\s+)?take\s*(\d+))?",
            2,
            1,
            "R81.20 Take 54",
        ),
    )
}


@dataclass(frozen=True)
class Version:
    """A parsed version: ``key`` orders versions of the same scheme; ``text`` is as written.

    ``parts`` counts the components actually written (``7.0`` has 2, ``7.0.12`` has 3).
    Comparing versions of different schemes is a programming error (TypeError).
    """

    scheme: str
    key: tuple[int, ...]
    text: str = field(compare=False)
    parts: int = field(compare=False, default=0)

    def _same(self, other: object) -> Version:
        if not isinstance(other, Version) or other.scheme != self.scheme:
            raise TypeError(f"cannot compare {self.scheme} {self.text} with {other!r}")
        return other

    def __lt__(self, other: Version) -> bool:
        return self.key < self._same(other).key

    def __le__(self, other: Version) -> bool:
        return self.key <= self._same(other).key

    def __gt__(self, other: Version) -> bool:
        return self.key > self._same(other).key

    def __ge__(self, other: Version) -> bool:
        return self.key >= self._same(other).key

    @property
    def train(self) -> tuple[int, ...]:
        """The release train's components (``(7, 0)`` of ``7.0.12``)."""
        return self.key[: SCHEMES[self.scheme].train]

    @property
    def complete(self) -> bool:
        """Whether enough components were written to name an installed build."""
        return self.parts >= SCHEMES[self.scheme].full


def _asa_key(groups: tuple[str | None, ...]) -> tuple[int, ...]:
    """ASA's two spellings to one key: ``9.16(4)48`` and ``9.16(4.48)`` equal ``9.16.4.48``."""
    major, minor, paren, interim, after, dot3, dot4 = groups
    third = paren if paren is not None else dot3
    fourth = interim if interim is not None else after if after is not None else dot4
    return tuple(int(g) if g is not None else 0 for g in (major, minor, third, fourth))


@functools.lru_cache(maxsize=65536)
def parse(scheme: str, text: str) -> Version | None:
    """``text`` as a version of ``scheme``, or None when it is not written that way.

    Cached: every inventory entry is compared with the same few hundred range bounds.
    """
    s = SCHEMES[scheme]
    cleaned = " ".join(str(text).split())
    m = s.pattern.fullmatch(cleaned)
    if m is None:
        return None
    groups = m.groups()
    key = (
        _asa_key(groups)
        if scheme == "asa"
        else tuple(int(g) if g is not None else 0 for g in groups)
    )
    parts = sum(g is not None for g in groups)
    return Version(scheme, key, cleaned, parts)
