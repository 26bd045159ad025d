"""Smoke test of the benchmark harness: 20 artists, 2 weeks, no latency, no rate limit (~3 s).

Checks that the harness runs end to end on the real bot path and produces its figures;
it asserts nothing about the tracker's performance (that is what ``benchmarks/RESULTS.md`` is for).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests import backend

ROOT = Path(__file__).resolve().parents[2]


def test_harness_smoke(tmp_path):
    out = tmp_path / "result.json"
    subprocess.run(
        [sys.executable, "-m", "benchmarks.harness", "--size", "20", "--weeks", "2", "--latency", "0",
         "--rate-limit", "none", "--naive", "real", "--out", str(out),
         "--database-url", backend.database_url(tmp_path, "bench")],
        cwd=ROOT, check=True, capture_output=True, timeout=60,
    )
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert [r["week"] for r in rows] == [0, 1, 2]
    assert rows[0]["requests"] > 0 and rows[0]["posted"] == 0  # the baseline announces nothing
    for row in rows[1:]:
        assert row["requests"] >= 20 and row["L"] and row["expected_pairs"] > 0
        assert 0.0 <= row["recall"] <= 1.0 and row["duplicates"] == 0
        assert row["naive_requests"] == row["naive_requests_counted"]  # the naive count matches the catalogue
        assert row["rss_mb"] > 0 and row["db_mb"] > 0
    # The bot runs in its own process: its peak is reported apart from the harness's, and its
    # database time is split by statement kind (the baseline run inserts releases in bulk).
    assert result["bot_idle_rss_mb"] > 0 and result["harness_rss_mb"] > 0
    kinds = rows[0]["db_by_kind"]
    assert kinds["insert releases (many)"][0] > 0 and kinds["insert artist_releases (many)"][0] > 0
    assert kinds["commit"][0] > 0
    assert sum(n for n, _ in kinds.values()) == rows[0]["db_ops"]
