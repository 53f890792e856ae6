"""STIX 2.1 bundles (and TAXII 2.1 envelopes): indicators with ``pattern_type: stix``.

Patterns are parsed with the OASIS ``stix2-patterns`` grammar through the ``stix2`` library's
pattern objects, never with regexes. What matching can use is a disjunction of simple
comparisons on one address, name, URL or hash:

* ``[ipv4-addr:value = '198.51.100.7']``, ``[ipv6-addr:value = '2001:db8::1']``
* ``[ipv4-addr:value ISSUBSET '198.51.100.0/24']`` (a CIDR), ``[... IN ('a', 'b')]``
* ``[domain-name:value = ...]``, ``[url:value = ...]``, ``[file:hashes.'SHA-256' = ...]``
  (also ``MD5``, ``SHA-1``), ``[network-traffic:dst_ref.value = ...]`` (and ``src_ref``)
* any of these OR'd inside one observation or as OR'd observations.

Everything else (AND, FOLLOWEDBY, negation, LIKE/MATCHES, qualifiers such as WITHIN or
REPEATS, other object types) needs several observations or properties we do not store, so
the comparison is reported as skipped with the construct named. Of several versions of one
indicator (same id) the latest ``modified`` wins, as STIX versioning says. ``revoked``
indicators are kept as revoked, so that re-adding a feed revokes what an earlier version
loaded. Other objects (observed-data, relationships, identities, malware ...) are counted
per type; identities give ``created_by_ref`` its name, the indicator's source.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from vpnsentry.intel.model import Feed, Indicator, Skipped, confidence, parse_time

_HASHES: Final = {
    "md5": "md5",
    "sha-1": "sha1",
    "sha1": "sha1",
    "sha-256": "sha256",
    "sha256": "sha256",
}
_VALUE_TYPES: Final = {
    "ipv4-addr": "ipv4",
    "ipv6-addr": "ipv6",
    "domain-name": "domain",
    "url": "url",
}


class Unsupported(Exception):
    """A pattern construct matching cannot use; the message names it."""


def looks_like(doc: object) -> bool:
    """A STIX bundle or TAXII envelope: an object with a list of typed ``objects``."""
    return isinstance(doc, dict) and isinstance(doc.get("objects"), list)


def read(doc: dict[str, Any], default_source: str, feed_name: str) -> Feed:
    """The indicators of a STIX 2.1 bundle (already decoded from JSON)."""
    feed = Feed("stix")
    objects = [o for o in doc["objects"] if isinstance(o, dict)]
    for _ in range(len(doc["objects"]) - len(objects)):
        feed.ignore("not an object")
    identities = {
        str(o.get("id")): str(o.get("name"))
        for o in objects
        if o.get("type") == "identity" and o.get("name")
    }
    latest: dict[str, dict[str, Any]] = {}
    for o in objects:
        if o.get("type") != "indicator":
            feed.ignore(str(o.get("type") or "untyped"))
            continue
        key = str(o.get("id"))
        prev = latest.get(key)
        if prev is not None:
            feed.ignore("older indicator version")
            if str(prev.get("modified") or "") > str(o.get("modified") or ""):
                continue
        latest[key] = o
    for o in latest.values():
        _indicator(o, identities, default_source, feed_name, feed)
    return feed


def _indicator(
    o: dict[str, Any], identities: dict[str, str], default: str, feed_name: str, feed: Feed
) -> None:
    where = str(o.get("id") or "indicator without id")
    pattern = o.get("pattern")
    if not isinstance(pattern, str):
        feed.skipped.append(Skipped(where, "", "indicator has no pattern"))
        return
    if o.get("pattern_type", "stix") != "stix":
        reason = f"pattern_type {str(o.get('pattern_type'))[:40]!r} is not STIX patterning"
        feed.skipped.append(Skipped(where, pattern, reason))
        return
    try:
        conf = confidence(o.get("confidence"))
        valid_from, valid_until = parse_time(o.get("valid_from")), parse_time(o.get("valid_until"))
        modified = parse_time(o.get("modified"))
        comparisons = list(_comparisons(_parse(pattern)))
    except (ValueError, Unsupported) as exc:
        feed.skipped.append(Skipped(where, pattern, str(exc)))
        return
    labels = tuple(str(x) for x in (*o.get("indicator_types", ()), *o.get("labels", ())))
    phases = tuple(
        f"{p.get('kill_chain_name')}:{p.get('phase_name')}"
        for p in o.get("kill_chain_phases", ())
        if isinstance(p, dict)
    )
    source = identities.get(str(o.get("created_by_ref")), default)
    text = o.get("description") or o.get("name")
    for kind, value, problem in comparisons:
        if problem:
            feed.skipped.append(Skipped(where, value, problem))
            continue
        feed.indicators.append(
            Indicator(
                type=kind,
                value=value,
                source=source,
                feed=feed_name,
                revoked=bool(o.get("revoked", False)),
                description=str(text) if text else None,
                labels=labels,
                kill_chain=phases,
                ref=where,
                confidence=conf,
                valid_from=valid_from,
                valid_until=valid_until,
                modified=modified,
            )
        )


def _parse(pattern: str) -> Any:
    from stix2.pattern_visitor import create_pattern_object  # type: ignore[import-untyped]

    try:
        return create_pattern_object(pattern, version="2.1")
    except Exception as exc:  # the grammar raises ParseException, the builder ValueError ...
        name = type(exc).__name__
        if "must be satisfiable with the same object type" in str(exc):
            raise Unsupported("unsupported: AND across object types") from exc
        raise ValueError(f"invalid STIX pattern ({name}: {str(exc)[:200]})") from exc


def _comparisons(node: Any) -> Iterator[tuple[str, str, str]]:
    """(type, value, problem) per comparison of an OR'd pattern; problem '' when usable."""
    name = type(node).__name__
    if name in ("ObservationExpression", "ParentheticalExpression"):
        yield from _comparisons(_child(node))
    elif name in ("OrObservationExpression", "OrBooleanExpression"):
        for operand in node.operands:
            yield from _comparisons(operand)
    elif name == "QualifiedObservationExpression":
        qualifier = type(node.qualifier).__name__.removesuffix("Qualifier").upper()
        raise Unsupported(f"unsupported: {qualifier} qualifier (needs several observations)")
    elif name in ("AndObservationExpression", "AndBooleanExpression"):
        raise Unsupported("unsupported: AND (needs several properties or observations)")
    elif name == "FollowedByObservationExpression":
        raise Unsupported("unsupported: FOLLOWEDBY (needs a sequence of observations)")
    elif name.endswith("ComparisonExpression"):
        yield from _comparison(node)
    else:
        raise Unsupported(f"unsupported pattern construct {name}")


def _child(node: Any) -> Any:
    return node.operand if hasattr(node, "operand") else node.expression


def _comparison(c: Any) -> Iterator[tuple[str, str, str]]:
    obj = str(c.lhs.object_type_name)
    path = [str(getattr(p, "property_name", "?")) for p in c.lhs.property_path]
    shown = f"{obj}:{'.'.join(path)} {c.operator}"
    rhs = c.rhs.value
    values = [str(getattr(v, "value", v)) for v in rhs] if isinstance(rhs, list) else [str(rhs)]
    kind = _kind(obj, path)
    problem = ""
    if c.negated:
        problem = f"unsupported: NOT {shown}"
    elif kind is None:
        problem = f"unsupported: {shown} (no store column holds it)"
    elif c.operator == "ISSUBSET" and kind not in ("ipv4", "ipv6", "ip"):
        problem = f"unsupported: ISSUBSET on {obj}"
    elif c.operator not in ("=", "IN", "ISSUBSET"):
        problem = f"unsupported: operator {c.operator} in {shown}"
    for v in values:
        yield kind or obj, v, problem


def _kind(obj: str, path: list[str]) -> str | None:
    if obj in _VALUE_TYPES and path == ["value"]:
        return _VALUE_TYPES[obj]
    if obj == "file" and len(path) == 2 and path[0] == "hashes":
        return _HASHES.get(path[1].lower())
    if obj == "network-traffic" and path in (["dst_ref", "value"], ["src_ref", "value"]):
        return "ip"
    return None
