"""MISP event exports: ``{"Event": {...}}``, ``{"response": [{"Event": ...}]}`` or a list.

This is the JSON MISP writes for an event download or ``/events/restSearch``: the event's
``Attribute`` list, its ``Object`` list (each with its own ``Attribute`` list: a ``domain-ip``
or ``file`` object groups attributes about one thing), ``Tag`` lists on the event and on
attributes, ``Orgc`` (the organisation that created the event: the indicator's source).

* Only attributes with ``to_ids`` true become indicators: MISP's own flag for "use this for
  detection". The others are context (a victim's address, a reference link) and are counted.
* ``deleted`` attributes are kept as revoked, so re-adding a newer export retires them.
* Types: ``ip-src``, ``ip-dst`` (an address or a CIDR), ``ip-src|port``, ``ip-dst|port``,
  ``domain``, ``hostname``, ``domain|ip`` (two indicators), ``url``, ``md5``, ``sha1``,
  ``sha256``, ``filename|md5``/``sha1``/``sha256`` (the hash). Other types are reported as
  skipped: no store column can hold them.
* Validity: the attribute's ``first_seen``/``last_seen`` when MISP has them; otherwise from
  the event's ``date`` (when the event happened) with no end.
* Confidence from ``threat_level_id``: 1 high 90, 2 medium 60, 3 low 30, 4 undefined none.
* Labels: tag names of the event and the attribute (``tlp:amber``, galaxy tags ...).
"""

from __future__ import annotations

from typing import Any, Final

from vpnsentry.intel.model import Feed, Indicator, Skipped, parse_time

_THREAT_LEVEL: Final[dict[str, int | None]] = {"1": 90, "2": 60, "3": 30, "4": None}

#: MISP attribute type -> (indicator type per ``|``-separated part, or None to drop a part).
_TYPES: Final[dict[str, tuple[str | None, ...]]] = {
    "ip-src": ("ip",),
    "ip-dst": ("ip",),
    "ip-src|port": ("ip", None),
    "ip-dst|port": ("ip", None),
    "domain": ("domain",),
    "hostname": ("domain",),
    "domain|ip": ("domain", "ip"),
    "url": ("url",),
    "md5": ("md5",),
    "sha1": ("sha1",),
    "sha256": ("sha256",),
    "filename|md5": (None, "md5"),
    "filename|sha1": (None, "sha1"),
    "filename|sha256": (None, "sha256"),
}


def looks_like(doc: object) -> bool:
    """A MISP export: an ``Event``, a ``response`` list, or a list of ``Event`` objects."""
    if isinstance(doc, dict):
        return "Event" in doc or isinstance(doc.get("response"), list)
    return isinstance(doc, list) and any(isinstance(e, dict) and "Event" in e for e in doc)


def read(doc: Any, default_source: str, feed_name: str) -> Feed:
    """The IDS-flagged attributes of every event in a MISP export."""
    feed = Feed("misp")
    wrapped = doc.get("response", [doc]) if isinstance(doc, dict) else doc
    for item in wrapped:
        event = item.get("Event") if isinstance(item, dict) else None
        if not isinstance(event, dict):
            feed.ignore("not an Event")
            continue
        _event(event, default_source, feed_name, feed)
    return feed


def _event(event: dict[str, Any], default: str, feed_name: str, feed: Feed) -> None:
    orgc = event.get("Orgc")
    source = str(orgc.get("name")) if isinstance(orgc, dict) and orgc.get("name") else default
    level = str(event.get("threat_level_id", "4"))
    tags = _tags(event)
    info = str(event.get("info") or "") or None
    attributes: list[tuple[dict[str, Any], str | None]] = [
        (a, None) for a in _list(event.get("Attribute"))
    ]
    for obj in _list(event.get("Object")):
        name = str(obj.get("name") or "object")
        attributes.extend((a, name) for a in _list(obj.get("Attribute")))
    try:
        event_date = parse_time(event.get("date"))
    except ValueError as exc:
        where = f"event {str(event.get('uuid') or event.get('id'))[:40]}"
        feed.skipped.append(Skipped(where, str(event.get("date"))[:60], str(exc)))
        return
    for attr, obj_name in attributes:
        where = f"attribute {str(attr.get('uuid') or attr.get('id') or '?')[:40]}"
        kind = str(attr.get("type") or "")
        value = str(attr.get("value") or "")
        if not _flag(attr.get("to_ids")):
            feed.ignore("to_ids false (context, not for detection)")
            continue
        parts_types = _TYPES.get(kind)
        if parts_types is None:
            feed.skipped.append(Skipped(where, value, f"MISP type {kind[:40]!r} is not matched"))
            continue
        parts = value.rsplit("|", 1) if len(parts_types) == 2 else [value]
        if len(parts) != len(parts_types):
            feed.skipped.append(Skipped(where, value, f"{kind} value is not two '|' parts"))
            continue
        try:
            first = parse_time(attr.get("first_seen")) or event_date
            last = parse_time(attr.get("last_seen"))
            modified = parse_time(attr.get("timestamp"))
        except ValueError as exc:
            feed.skipped.append(Skipped(where, value, str(exc)))
            continue
        comment = str(attr.get("comment") or "")
        text = " - ".join(x for x in (info, obj_name, comment) if x) or None
        for part, part_type in zip(parts, parts_types, strict=True):
            if part_type is None:
                continue
            feed.indicators.append(
                Indicator(
                    type=part_type,
                    value=part,
                    source=source,
                    feed=feed_name,
                    confidence=_THREAT_LEVEL.get(level),
                    valid_from=first,
                    valid_until=last,
                    revoked=_flag(attr.get("deleted")),
                    modified=modified,
                    description=text,
                    labels=tuple(dict.fromkeys((*tags, *_tags(attr)))),
                    ref=where,
                )
            )


def _list(v: object) -> list[dict[str, Any]]:
    return [x for x in v if isinstance(x, dict)] if isinstance(v, list) else []


def _tags(d: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(t["name"]) for t in _list(d.get("Tag")) if t.get("name"))


def _flag(v: object) -> bool:
    """MISP writes booleans as JSON booleans, or as "1"/"0" in older exports."""
    return v is True or str(v).lower() in ("1", "true")
