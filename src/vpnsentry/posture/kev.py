"""CISA's Known Exploited Vulnerabilities, narrowed to VPN and edge gateways, with version ranges.

Two files ship in ``posture/data/`` (provenance in ``posture/data/README.md``):

* ``vpn_kev.json``: the catalog entries for VPN / remote-access / edge products, as CISA
  publishes them (CVE, vendor, product, name, dateAdded, dueDate, ransomware use), with the
  catalog's version and release date. ``vpnsentry audit update-kev FILE`` replaces it with a
  newer catalog's subset in the user data directory (:func:`data_dir`), offline.
* ``vpn_ranges.json``: affected version ranges per CVE and product family. The catalog names
  CVEs, not versions; the ranges were transcribed from the CVE records and advisories and
  are only ever extended by a new release of vpnsentry. A CVE without ranges is reported as
  "range unknown: check the vendor advisory", never guessed.

Product names differ between the catalog ("Adaptive Security Appliance (ASA) and Firepower
Threat Defense (FTD)"), advisories and inventories ("Cisco ASA 5516-X", "FortiGate"), so
both sides are resolved to *families* (:data:`FAMILIES`): one product line with one version
scheme (:mod:`vpnsentry.posture.versions`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

from vpnsentry.errors import InputError
from vpnsentry.posture.versions import Version, parse


@dataclass(frozen=True)
class Family:
    """One product line: how inventories and the catalog name it, how it writes versions.

    ``scheme`` is None for product lines whose versions we cannot compare yet: their
    known-exploited entries are listed for the appliance as "range unknown".
    """

    id: str
    title: str
    scheme: str | None
    pattern: re.Pattern[str]


def _fam(id: str, title: str, scheme: str | None, regex: str) -> Family:
    return Family(id, title, scheme, re.compile(regex))


#: Product families, matched against lower-cased "vendor product" text. Vendor-only text
#: ("fortinet", "palo alto networks") names the vendor's one gateway line.
FAMILIES: Final[dict[str, Family]] = {
    f.id: f
    for f in (
        _fam(
            "fortios",
            "Fortinet FortiOS (FortiGate)",
            "fortios",
            r"fortios|fortigate|fortiwifi|^fortinet\s*$",
        ),
        _fam("fortiproxy", "Fortinet FortiProxy", "fortios", r"fortiproxy"),
        _fam(
            "panos",
            "Palo Alto Networks PAN-OS",
            "panos",
            r"pan-?os|globalprotect|^palo alto networks\s*$",
        ),
        _fam("asa", "Cisco ASA", "asa", r"\basa\b|adaptive security appliance"),
        _fam("ftd", "Cisco Firepower Threat Defense", "dotted", r"\bftd\b|firepower"),
        _fam(
            "ivanti_ics",
            "Ivanti Connect Secure (Pulse Connect Secure)",
            "ivanti",
            r"\bconnect secure|\b(ics|pcs)\b|^(pulse secure|ivanti)\s*$",
        ),
        _fam("ivanti_ips", "Ivanti Policy Secure", "ivanti", r"policy secure|\b(ips|pps)\b"),
        _fam("ivanti_zta", "Ivanti Neurons for ZTA gateway", "ivanti", r"\bzta\b"),
        _fam(
            "citrix_adc",
            "Citrix NetScaler ADC / Gateway",
            "citrix",
            r"(citrix|netscaler).*(\badc\b|gateway|application delivery)"
            r"|^(citrix|netscaler)( netscaler)?\s*$",
        ),
        _fam(
            "citrix_adc_fips",
            "Citrix NetScaler ADC FIPS / NDcPP",
            "citrix",
            r"(citrix|netscaler).*\b(fips|ndcpp)\b",
        ),
        _fam(
            "sonicos",
            "SonicWall SonicOS firewall",
            "sonicwall",
            r"sonicos|sonicwall.*\b(tz|nsa|nsv|nssp|firewall)\b",
        ),
        _fam(
            "sma100",
            "SonicWall SMA 100 / SRA",
            "sonicwall",
            r"sma\s?100\b|\bsma\s?[245][01]0v?\b|\bsra\b|secure remote access",
        ),
        _fam("sma1000", "SonicWall SMA 1000", "sonicwall", r"sma\s?1000|\bsma\s?[678]\d00\b"),
        _fam(
            "checkpoint",
            "Check Point Quantum Security Gateway",
            "checkpoint",
            r"check ?point.*(quantum|security gateway|gaia|cloudguard)|^check ?point\s*$",
        ),
        _fam("bigip", "F5 BIG-IP", "dotted", r"big-?ip"),
        _fam("arrayos", "Array Networks AG / vxAG", "dotted", r"arrayos|array networks"),
        _fam("openvpn", "OpenVPN", "dotted", r"openvpn"),
        # Product lines in the catalog subset whose versions are not compared (yet).
        _fam("junos", "Juniper Junos OS", None, r"junos|juniper"),
        _fam("sophos", "Sophos Firewall / UTM", None, r"sophos|sfos|cyberoam"),
        _fam("watchguard", "WatchGuard Firebox (Fireware)", None, r"watchguard|firebox"),
        _fam("zyxel", "Zyxel firewalls", None, r"zyxel|zywall"),
        _fam("cisco_ios", "Cisco IOS / IOS XE / IOS XR", None, r"cisco.*\bios\b"),
        _fam(
            "cisco_rv",
            "Cisco small business VPN routers",
            None,
            r"cisco.*(\brv\d{3}|\brv series|vpn routers)",
        ),
        _fam("anyconnect", "Cisco AnyConnect client", None, r"anyconnect"),
        _fam("draytek", "DrayTek Vigor", None, r"draytek|vigor"),
        _fam("mikrotik", "MikroTik RouterOS", None, r"mikrotik|routeros"),
        _fam("beyondtrust", "BeyondTrust PRA / RS", None, r"beyondtrust"),
        _fam("ivanti_sentry", "Ivanti Sentry", None, r"ivanti sentry|^ivanti sentry"),
        _fam("ivanti_vtm", "Ivanti Virtual Traffic Manager", None, r"virtual traffic manager"),
        _fam("kemp", "Kemp LoadMaster", None, r"loadmaster"),
        _fam("fatpipe", "FatPipe WARP / IPVPN / MPVPN", None, r"fatpipe"),
        _fam("velocloud", "VMware SD-WAN Edge (VeloCloud)", None, r"velocloud|vmware sd-wan"),
        _fam("citrix_sdwan", "Citrix SD-WAN", None, r"citrix.*sd-wan"),
    )
}

#: A more specific family hides the general one it also matches ("NetScaler ADC FIPS").
_HIDES: Final = {"citrix_adc_fips": "citrix_adc"}

#: Site inventory gateway vendors (parser names, enrich/sites.py) to families.
PARSER_FAMILIES: Final = {
    "fortinet_fortigate": "fortios",
    "cisco_asa": "asa",
    "openvpn": "openvpn",
}


def resolve(vendor: str, product: str) -> frozenset[str]:
    """The families ``vendor`` + ``product`` may name (several for a catalog entry like
    "ASA and FTD"; an inventory entry should name exactly one)."""
    text = " ".join(f"{vendor} {product}".lower().split())
    found = {f.id for f in FAMILIES.values() if f.pattern.search(text)}
    for specific, general in _HIDES.items():
        if specific in found:
            found.discard(general)
    return frozenset(found)


# --------------------------------------------------------------------------- catalog


@dataclass(frozen=True)
class KevEntry:
    """One catalog entry, with the families it concerns."""

    cve: str
    vendor: str
    product: str
    name: str
    date_added: dt.date
    due_date: dt.date
    ransomware: str  # "Known" or "Unknown", as CISA writes it
    families: frozenset[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "cveID": self.cve,
            "vendorProject": self.vendor,
            "product": self.product,
            "vulnerabilityName": self.name,
            "dateAdded": self.date_added.isoformat(),
            "dueDate": self.due_date.isoformat(),
            "knownRansomwareCampaignUse": self.ransomware,
            "families": sorted(self.families),
        }


@dataclass(frozen=True)
class Catalog:
    """The VPN/edge subset of one catalog release."""

    version: str
    released: str
    entries: Mapping[str, KevEntry]
    origin: str  # "shipped" or the file it was loaded from
    #: CVEs reviewed and left out although their vendor is a VPN vendor (FortiWeb, ...).
    excluded: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "title": "vpnsentry: VPN / remote-access / edge-gateway subset of the CISA KEV catalog",
            "catalogVersion": self.version,
            "dateReleased": self.released,
            "vulnerabilities": [e.to_json() for e in self.entries.values()],
            "excluded_adjacent": dict(self.excluded),
        }


_CVE_RE: Final = re.compile(r"^CVE-\d{4}-\d{4,7}$")
_TEXT_FIELDS: Final = ("cveID", "vendorProject", "product", "vulnerabilityName")
#: Larger than any catalog CISA has published (about 1.3 MB in 2025), small enough to read.
MAX_CATALOG_BYTES: Final = 64 * 1024 * 1024


def _date(value: Any, where: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise InputError(f"{where}: {str(value)[:40]!r} is not a date (YYYY-MM-DD)") from None


def catalog_from_json(
    data: Any, source: str, known: Mapping[str, CveRanges] | None = None
) -> Catalog:
    """Validate a catalog document (CISA's shape); every shape error names entry and field.

    An entry's families are those listed with it (our subset files), else those its vendor
    and product name plus those of its ``known`` ranges ("Fortinet | Multiple Products"
    names none itself).
    """
    if not isinstance(data, dict) or not isinstance(data.get("vulnerabilities"), list):
        raise InputError(f"{source}: not a KEV catalog (no 'vulnerabilities' list)")
    for key in ("catalogVersion", "dateReleased"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise InputError(f"{source}: not a KEV catalog (no '{key}')")
    entries: dict[str, KevEntry] = {}
    for i, v in enumerate(data["vulnerabilities"]):
        where = f"{source}: vulnerabilities[{i}]"
        if not isinstance(v, dict):
            raise InputError(f"{where}: expected an object")
        for key in _TEXT_FIELDS:
            if not isinstance(v.get(key), str):
                raise InputError(f"{where}: missing or non-text '{key}'")
        cve = v["cveID"].strip()
        if not _CVE_RE.match(cve):
            raise InputError(f"{where}: {cve[:40]!r} is not a CVE id")
        ransomware = v.get("knownRansomwareCampaignUse", "Unknown")
        if ransomware not in ("Known", "Unknown"):
            raise InputError(f"{where}.knownRansomwareCampaignUse: {str(ransomware)[:20]!r}")
        listed = v.get("families")
        if isinstance(listed, list):
            fams = frozenset(f for f in listed if f in FAMILIES)
        else:
            fams = resolve(v["vendorProject"], v["product"])
            if known and cve in known:
                fams |= {r.family for r in known[cve].ranges}
        entries[cve] = KevEntry(
            cve=cve,
            vendor=v["vendorProject"].strip(),
            product=v["product"].strip(),
            name=v["vulnerabilityName"].strip(),
            date_added=_date(v.get("dateAdded"), f"{where}.dateAdded"),
            due_date=_date(v.get("dueDate"), f"{where}.dueDate"),
            ransomware=ransomware,
            families=fams,
        )
    excluded = data.get("excluded_adjacent")
    return Catalog(
        data["catalogVersion"],
        data["dateReleased"],
        entries,
        source,
        {str(k): str(v) for k, v in excluded.items()} if isinstance(excluded, dict) else {},
    )


#: Product lines of which only some CVEs concern VPN (IKE/IPsec in a router OS): a new
#: catalog entry for them is not taken into the subset by its product name alone.
REVIEW_BY_CVE: Final = frozenset({"cisco_ios"})


def _pair(e: KevEntry) -> tuple[str, str]:
    return (" ".join(e.vendor.lower().split()), " ".join(e.product.lower().split()))


def vpn_subset(full: Catalog, reference: Catalog) -> Catalog:
    """The VPN/edge entries of ``full``.

    Kept: those already in ``reference`` (the reviewed subset) unless reviewed and excluded;
    those of a gateway line whose versions we compare (FortiOS, PAN-OS, ASA, ...); new ones
    with exactly the vendor/product of a reviewed entry ("Zyxel | Multiple Firewalls"),
    taking that entry's families. Everything else in CISA's catalog (browsers, CMS, NAS,
    ...) is left out.
    """
    pairs: dict[tuple[str, str], frozenset[str]] = {}
    for e in reference.entries.values():
        pairs[_pair(e)] = pairs.get(_pair(e), frozenset()) | e.families
    keep: dict[str, KevEntry] = {}
    for cve, e in full.entries.items():
        ref = reference.entries.get(cve)
        same = pairs.get(_pair(e), frozenset())
        if cve in reference.excluded:
            continue
        if ref is not None:
            fams = e.families | ref.families
        elif any(FAMILIES[f].scheme for f in e.families):
            fams = e.families
        elif same - REVIEW_BY_CVE:
            fams = e.families | same
        else:
            continue
        keep[cve] = dataclasses.replace(e, families=fams)
    return Catalog(full.version, full.released, keep, full.origin, reference.excluded)


def read_catalog_file(path: Path, reference: Catalog, known: Mapping[str, CveRanges]) -> Catalog:
    """A catalog file (CISA's full JSON, or a subset) narrowed to VPN/edge entries."""
    try:
        size = path.stat().st_size
        if size > MAX_CATALOG_BYTES:
            raise InputError(f"{path}: {size:,} bytes is too large for a KEV catalog")
        data = json.loads(path.read_bytes())
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not JSON ({exc})") from exc
    return vpn_subset(catalog_from_json(data, str(path), known), reference)


# --------------------------------------------------------------------------- ranges


@dataclass(frozen=True)
class Range:
    """Versions of one family affected by one CVE, as the record and advisory give them.

    A version is affected when it is in ``train`` (if given), at or above ``introduced``,
    below ``before`` / at or below ``through`` (if given), equal to one of ``versions`` (if
    given), and not at or above a ``backports`` build of its own maintenance release (PAN-OS
    hotfixes published for older releases). ``fixed`` lists the upgrade targets as the
    vendor names them; empty when the train has no fix (upgrade to another train).
    """

    family: str
    train: str | None = None
    introduced: str | None = None
    before: str | None = None
    through: str | None = None
    versions: tuple[str, ...] = ()
    fixed: tuple[str, ...] = ()
    backports: tuple[str, ...] = ()

    def describe(self) -> str:
        """The range in words, for the finding ("train 7.0, >= 7.0.0, <= 7.0.13")."""
        parts = []
        if self.train:
            parts.append(f"train {self.train}")
        if self.introduced:
            parts.append(f">= {self.introduced}")
        if self.before:
            parts.append(f"< {self.before}")
        if self.through:
            parts.append(f"<= {self.through}")
        if self.versions:
            parts.append("one of " + ", ".join(self.versions))
        if self.backports:
            parts.append(f"unless hotfixed ({len(self.backports)} hotfix builds)")
        return ", ".join(parts) or "all versions"

    def matches(self, v: Version) -> bool:
        """Whether ``v`` (of this range's family's scheme) is affected."""

        def ver(text: str) -> Version:
            parsed = parse(v.scheme, text)
            if parsed is None:  # the shipped data is validated by the tests
                raise ValueError(f"bad version {text!r} in range data for {self.family}")
            return parsed

        if self.train is not None and v.train != ver(self.train).train:
            return False
        if self.introduced is not None and v < ver(self.introduced):
            return False
        if self.before is not None and not v < ver(self.before):
            return False
        if self.through is not None and not v <= ver(self.through):
            return False
        if self.versions and not any(v.key == ver(x).key for x in self.versions):
            return False
        return not any(v.key[:-1] == b.key[:-1] and v >= b for b in map(ver, self.backports))


@dataclass(frozen=True)
class CveRanges:
    """What is known about the affected versions of one CVE."""

    cve: str
    ranges: tuple[Range, ...]
    uncertain: bool
    condition: str
    notes: str
    source: str


def _ranges_from_json(data: Any) -> dict[str, CveRanges]:
    out: dict[str, CveRanges] = {}
    for cve, r in data["ranges"].items():
        out[cve] = CveRanges(
            cve=cve,
            ranges=tuple(
                Range(
                    family=x["family"],
                    train=x.get("train"),
                    introduced=x.get("introduced"),
                    before=x.get("before"),
                    through=x.get("through"),
                    versions=tuple(x.get("versions", ())),
                    fixed=tuple(x.get("fixed", ())),
                    backports=tuple(x.get("backports", ())),
                )
                for x in r["ranges"]
            ),
            uncertain=bool(r.get("uncertain", False)),
            condition=r.get("condition", ""),
            notes=r.get("notes", ""),
            source=r.get("source", ""),
        )
    return out


# --------------------------------------------------------------------------- loading

KEV_FILE: Final = "vpn_kev.json"
RANGES_FILE: Final = "vpn_ranges.json"


def data_dir(override: Path | None = None) -> Path:
    """Where ``update-kev`` keeps a newer catalog: ``--data-dir``, else
    ``$VPNSENTRY_DATA_DIR``, else ``$XDG_DATA_HOME/vpnsentry`` (``~/.local/share/vpnsentry``)."""
    if override is not None:
        return override
    env = os.environ.get("VPNSENTRY_DATA_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "vpnsentry"


def _shipped(name: str) -> Any:
    text = resources.files("vpnsentry.posture").joinpath("data", name).read_text("utf-8")
    return json.loads(text)


def shipped_catalog() -> Catalog:
    """The subset that ships with this release."""
    return catalog_from_json(_shipped(KEV_FILE), "shipped")


def load_catalog(directory: Path | None = None) -> Catalog:
    """The newest of the shipped subset and the one ``update-kev`` stored in ``directory``."""
    shipped = shipped_catalog()
    stored = data_dir(directory) / KEV_FILE
    if not stored.exists():
        return shipped
    try:
        data = json.loads(stored.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{stored}: unreadable stored catalog ({exc}); rerun update-kev") from exc
    mine = catalog_from_json(data, str(stored))
    return mine if mine.released >= shipped.released else shipped


def load_ranges() -> dict[str, CveRanges]:
    """The shipped affected-version ranges by CVE."""
    return _ranges_from_json(_shipped(RANGES_FILE))


# --------------------------------------------------------------------------- update


@dataclass(frozen=True)
class Change:
    """One difference between the catalog in use and a newer one."""

    kind: str  # added, removed, due_date, ransomware
    cve: str
    product: str
    detail: str
    range_known: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "change": self.kind,
            "cve": self.cve,
            "product": self.product,
            "detail": self.detail,
            "range_known": self.range_known,
        }


def diff(old: Catalog, new: Catalog, ranges: Mapping[str, CveRanges]) -> list[Change]:
    """What changed for VPN/edge products from ``old`` to ``new``, CVEs in catalog order."""
    out: list[Change] = []

    def known(cve: str) -> bool:
        return bool(ranges.get(cve) and ranges[cve].ranges)

    for cve, e in new.entries.items():
        product = f"{e.vendor} {e.product}"
        was = old.entries.get(cve)
        if was is None:
            detail = f"{e.name}; due {e.due_date}; ransomware {e.ransomware}"
            if not known(cve):
                detail += "; range unknown: check vendor advisory"
            out.append(Change("added", cve, product, detail, known(cve)))
            continue
        if was.due_date != e.due_date:
            out.append(
                Change("due_date", cve, product, f"{was.due_date} -> {e.due_date}", known(cve))
            )
        if was.ransomware != e.ransomware:
            out.append(
                Change(
                    "ransomware", cve, product, f"{was.ransomware} -> {e.ransomware}", known(cve)
                )
            )
    for cve, e in old.entries.items():
        if cve not in new.entries:
            out.append(
                Change("removed", cve, f"{e.vendor} {e.product}", "no longer listed", known(cve))
            )
    return out


def store_catalog(cat: Catalog, directory: Path | None = None) -> Path:
    """Write ``cat`` where :func:`load_catalog` finds it (temporary file, then rename)."""
    target = data_dir(directory) / KEV_FILE
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(cat.to_json(), indent=1) + "\n", "utf-8")
        tmp.replace(target)
    except OSError as exc:
        raise InputError(f"cannot write {target}: {exc.strerror or exc}") from exc
    return target


def entries_for(cat: Catalog, family: str) -> Iterable[KevEntry]:
    """The catalog's entries concerning ``family``, oldest first."""
    return sorted(
        (e for e in cat.entries.values() if family in e.families),
        key=lambda e: (e.date_added, e.cve),
    )
