"""Golden configurations per format: every finding (check, line, message) is reviewed in the
``.findings.json`` next to the config. ``pytest --update-golden`` rewrites them (read the diff).

The configs live in ``tests/golden/audit/<format>/``; the folder name forces the format.
They are copied to a private folder with mode 0600 so the file-permission checks depend on
the test, not on the checkout's umask (tests/posture/config/test_parsers.py covers those).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import GOLDEN
from vpnsentry.posture.config import audit, detect_format

ROOT = GOLDEN / "audit"
CASES = sorted(p for p in ROOT.glob("*/*") if p.is_file() and not p.name.endswith(".findings.json"))


def _private_copy(src_dir: Path, dest: Path) -> Path:
    shutil.copytree(src_dir, dest)
    for f in dest.rglob("*"):
        f.chmod(0o700 if f.is_dir() else 0o600)
    return dest


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_golden(case: Path, tmp_path: Path, update_golden: bool) -> None:
    fmt = case.parent.name
    folder = _private_copy(case.parent, tmp_path / fmt)
    [result] = audit([folder / case.name], fmt)
    got = []
    for f in result.findings:
        row = f.to_json()
        row["file"] = Path(f.file).relative_to(folder).as_posix()
        del row["why"], row["fix"], row["title"]  # registry data, covered by test_registry
        got.append(row)
    expected_path = case.with_name(case.name + ".findings.json")
    if update_golden:
        expected_path.write_text(json.dumps(got, indent=1, ensure_ascii=False) + "\n")
    assert got == json.loads(expected_path.read_text())


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_format_is_detected(case: Path) -> None:
    assert detect_format(case) == case.parent.name


def test_hardened_configs_pass_every_check_above_info(tmp_path: Path) -> None:
    """The 'hardened' examples are what the fixes lead to: nothing but info remains."""
    hardened = [c for c in CASES if "hardened" in c.name]
    assert len(hardened) == 6
    for case in hardened:
        folder = _private_copy(case.parent, tmp_path / case.parent.name)
        [result] = audit([folder / case.name], case.parent.name)
        assert [f.check for f in result.findings if f.severity != "info"] == [], case
        shutil.rmtree(folder)


def test_secrets_never_reach_a_snippet(tmp_path: Path) -> None:
    secrets = [
        "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=",
        "/UwcSPg38hW/D9Y3tcS1FOV0K1wuURMbS0sesJEP5ak=",
        "cisco123",
        "Sup3r secret",
        "5VbKDgSUA4DPELkd3lnZgeYb0Blhw2mA6I0ipYj1S7o0nk0ZP6bxKzA==",
        "MC4CAQAwBQYDK2VwBCIEIGq3ZCqSBIp0VXxoTw8sQUcQZ1pD1yQdSS1xJEXAMPLE",
    ]
    for case in CASES:
        for r in audit([case], case.parent.name):
            for f in r.findings:
                assert not any(s in f.snippet or s in f.message for s in secrets), f
