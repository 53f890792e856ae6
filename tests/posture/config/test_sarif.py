"""SARIF output validated against the official SARIF 2.1.0 JSON schema (see
SARIF-SCHEMA-NOTICE.md for where the schema file comes from)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import GOLDEN
from vpnsentry.posture.config import audit
from vpnsentry.posture.config.sarif import to_sarif, uri

SCHEMA = json.loads((Path(__file__).parent / "sarif-schema-2.1.0.json").read_text())
VALIDATOR = jsonschema.Draft4Validator(SCHEMA)


def test_schema_itself_is_valid_and_rejects_a_broken_log() -> None:
    jsonschema.Draft4Validator.check_schema(SCHEMA)
    broken = {"version": "2.1.0", "runs": [{"tool": {"driver": {}}, "results": []}]}
    assert list(VALIDATOR.iter_errors(broken))  # driver.name is required


def test_every_golden_config_gives_valid_sarif() -> None:
    cases = [p for p in sorted((GOLDEN / "audit").glob("*/*")) if p.suffix != ".json"]
    cases = [p for p in cases if p.is_file()]
    results = [r for c in cases for r in audit([c], c.parent.name)]
    findings = [f for r in results for f in r.findings]
    log = to_sarif(findings, [r.path for r in results])
    VALIDATOR.validate(log)
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert len(run["results"]) == len(findings) > 100
    assert {r["id"] for r in rules} == {f.check for f in findings}
    for res in run["results"]:
        rule = rules[res["ruleIndex"]]
        assert rule["id"] == res["ruleId"]
        assert res["level"] == rule["defaultConfiguration"]["level"]
        region = res["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] >= 1 and "snippet" in region
    crit = next(r for r in rules if r["id"] == "ASA-MGMT-EXPOSED")
    assert crit["properties"]["security-severity"] == "9.5"
    assert "Fix:" in crit["help"]["text"]


def test_sarif_with_no_findings_is_valid() -> None:
    VALIDATOR.validate(to_sarif([], ["wg0.conf"]))


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("configs/fw 1.conf", "configs/fw%201.conf"),
        ("/etc/openvpn/server.conf", "file:///etc/openvpn/server.conf"),
        ("a#b?.conf", "a%23b%3F.conf"),
    ],
)
def test_uris(path: str, expected: str) -> None:
    assert uri(path) == expected
