"""A few seconds of bench/serve.py: zero loss and bounded memory (never timings)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "serve.py"


def test_bounded_load_run_loses_nothing_and_stays_small(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("bench_serve", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    res = bench.run(rate=5_000, flows=2_000, seconds=3.0, work=tmp_path)
    assert res["sent"] > 0 and res["flows_sent"] > 0
    assert res["stored"] == res["distinct"] == res["sent"], res
    assert res["flows_stored"] == res["flows_sent"], res
    assert 0 < res["rss_max_mib"] < 1024, res
