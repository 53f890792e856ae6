"""ATT&CK names and group-overlap hints for incidents.

The shipped ``data/attack_groups.json`` holds, for a few groups known for intrusions through
VPN and edge appliances (BlackTech, Tick, APT5, Volt Typhoon, UNC3886), the techniques MITRE
ATT&CK records them using, and the name of every enterprise technique. It is derived from
MITRE's own STIX data (``enterprise-attack-<version>.json``): every ``uses`` relationship from
the group's ``intrusion-set`` to an ``attack-pattern``, revoked and deprecated objects left
out. :func:`profiles_from_stix` is that derivation, so the file can be rebuilt from a newer
bundle; its ``_meta`` header names the source, the ATT&CK version and MITRE's terms.

:func:`attribute` compares an incident's techniques with each profile at the parent-technique
level (``T1021.002`` counts as ``T1021``: detections from network logs rarely know the
sub-technique an intruder used). The result is a *hint*: the techniques our detections see
(valid accounts, remote services, exfiltration over HTTPS) are used by many groups, and a
group's public profile holds only what has been reported about it. :data:`CAVEAT` says so
wherever a hint is shown.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

from vpnsentry.correlate.model import Attribution

#: Shown with every attribution hint (terminal, HTML, NDJSON).
CAVEAT: Final = (
    "Technique overlap with public MITRE ATT&CK group profiles is a lead for the analyst, "
    "not an attribution: many groups use the same common techniques, and a profile holds "
    "only what has been publicly reported about a group."
)

#: Fewest shared parent techniques for a group to be named at all.
MIN_SHARED: Final = 2
#: Most groups returned.
MAX_GROUPS: Final = 5

_DATA: Final = "attack_groups.json"


@dataclass(frozen=True)
class GroupProfile:
    """One ATT&CK group and the techniques MITRE records it using."""

    id: str  # G0098
    name: str  # BlackTech
    aliases: tuple[str, ...]
    url: str
    techniques: tuple[str, ...]  # technique and sub-technique ids, sorted

    @functools.cached_property
    def parents(self) -> frozenset[str]:
        """The group's techniques at parent level (``T1021.002`` -> ``T1021``)."""
        return frozenset(parent(t) for t in self.techniques)


def parent(technique: str) -> str:
    """``T1021.002`` -> ``T1021``; a parent id is returned unchanged."""
    return technique.split(".", 1)[0]


@functools.cache
def _load() -> dict[str, Any]:
    text = resources.files("vpnsentry.correlate").joinpath("data", _DATA).read_text("utf-8")
    data = json.loads(text)
    assert isinstance(data, dict)
    return data


def metadata() -> dict[str, str]:
    """The data file's header: source, ATT&CK version, copyright and licence text."""
    return {str(k): str(v) for k, v in _load()["_meta"].items()}


@functools.cache
def groups() -> tuple[GroupProfile, ...]:
    """The shipped group profiles, in file order."""
    return tuple(
        GroupProfile(
            id=str(g["id"]),
            name=str(g["name"]),
            aliases=tuple(str(a) for a in g.get("aliases", ())),
            url=str(g.get("url", "")),
            techniques=tuple(str(t) for t in g["techniques"]),
        )
        for g in _load()["groups"]
    )


def technique_name(technique: str) -> str:
    """The ATT&CK name of a technique id (``T1021.002`` -> ``Remote Services: SMB/Windows
    Admin Shares``), or ``""`` when the id is not in the shipped data."""
    names: dict[str, str] = _load()["techniques"]
    return names.get(technique, "")


def attribute(
    incident_techniques: Iterable[str],
    *,
    min_shared: int = MIN_SHARED,
    limit: int = MAX_GROUPS,
) -> tuple[Attribution, ...]:
    """Groups whose ATT&CK profile overlaps the incident's techniques, best first.

    Compared at parent level. ``shared`` are the parent ids in both; ``score`` is the Jaccard
    index of the two parent sets (shared / union), so a group known for hundreds of
    techniques does not win just by being large. A hint, never a verdict (:data:`CAVEAT`).
    """
    seen = {parent(t) for t in incident_techniques if t}
    if not seen:
        return ()
    out: list[Attribution] = []
    for g in groups():
        gp = g.parents
        shared = seen & gp
        if len(shared) < min_shared:
            continue
        out.append(
            Attribution(
                group_id=g.id,
                name=g.name,
                shared=tuple(sorted(shared)),
                group_techniques=len(g.techniques),
                score=round(len(shared) / len(seen | gp), 3),
            )
        )
    out.sort(key=lambda a: (-a.score, -len(a.shared), a.group_id))
    return tuple(out[:limit])


# -- building the data file from MITRE's STIX bundle ------------------------------------------


def _attack_id(obj: Mapping[str, Any]) -> str | None:
    for ref in obj.get("external_references") or ():
        if ref.get("source_name") == "mitre-attack" and ref.get("external_id"):
            return str(ref["external_id"])
    return None


def _live(obj: Mapping[str, Any]) -> bool:
    return not obj.get("revoked", False) and not obj.get("x_mitre_deprecated", False)


def profiles_from_stix(
    bundle: Mapping[str, Any], group_ids: Iterable[str]
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Group profiles and technique names from an ATT&CK STIX bundle.

    ``bundle`` is MITRE's ``enterprise-attack-<version>.json`` (a STIX bundle with
    ``objects``). For each group id (``G0098``): its name, aliases, URL and the sorted ids of
    the ``attack-pattern`` objects its ``intrusion-set`` ``uses`` (relationships, techniques
    and the group itself revoked or deprecated are skipped). Technique names of
    sub-techniques are ``"Parent: Sub"``, as the ATT&CK website shows them.
    """
    objects = list(bundle.get("objects") or ())
    patterns = {o["id"]: o for o in objects if o.get("type") == "attack-pattern" and _live(o)}
    raw: dict[str, str] = {}
    for o in patterns.values():
        tid = _attack_id(o)
        if tid:
            raw[tid] = str(o.get("name", ""))
    names = {
        tid: (f"{raw[parent(tid)]}: {name}" if "." in tid and parent(tid) in raw else name)
        for tid, name in raw.items()
    }
    sets = {_attack_id(o): o for o in objects if o.get("type") == "intrusion-set" and _live(o)}
    uses: dict[str, set[str]] = {}
    for o in objects:
        if (
            o.get("type") == "relationship"
            and o.get("relationship_type") == "uses"
            and _live(o)
            and str(o.get("source_ref", "")).startswith("intrusion-set--")
            and o.get("target_ref") in patterns
        ):
            tid = _attack_id(patterns[o["target_ref"]])
            if tid:
                uses.setdefault(str(o["source_ref"]), set()).add(tid)
    profiles: list[dict[str, Any]] = []
    for gid in group_ids:
        g = sets.get(gid)
        if g is None:
            raise KeyError(f"group {gid} is not in the bundle (or is revoked/deprecated)")
        profiles.append(
            {
                "id": gid,
                "name": str(g.get("name", gid)),
                "aliases": [str(a) for a in g.get("aliases") or () if a != g.get("name")],
                "url": f"https://attack.mitre.org/groups/{gid}/",
                "stix_id": str(g["id"]),
                "techniques": sorted(uses.get(str(g["id"]), ())),
            }
        )
    return profiles, dict(sorted(names.items(), key=lambda kv: _sort_key(kv[0])))


def _sort_key(tid: str) -> tuple[int, int]:
    head, _, sub = tid[1:].partition(".")
    return int(head) if head.isdigit() else 0, int(sub) if sub.isdigit() else 0
