"""``release-bot demo`` — what the README's first command shows on a machine with no credentials."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.timeout(120)
def test_demo_shows_baseline_then_only_new_releases_and_the_run_history(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "demo"], capture_output=True, text=True, timeout=110, cwd=tmp_path
    )
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr[-2000:]
    baseline, week1 = out.split("── Week 1", 1)
    assert "#new-music: (nothing posted)" in baseline  # following takes a silent baseline
    week1, rest = week1.split("── Week 2", 1)
    for title in ("Midnight Drive", "Afterglow", "Harbour Lights"):
        assert f"┌ {title}\n" in week1
    assert "┌ Afterglow (Clean)" not in out  # the clean twin is folded
    week2, rest = rest.split("── Week 3", 1)
    assert "(nothing posted)" in week2
    assert "┌ Evensong" in rest
    assert "9 new tracks, 2 already out as singles" in week1  # the album carries two earlier singles
    assert "Deluxe edition of *Afterglow* — 4 bonus tracks" in rest
    assert "Remix of *Midnight Drive*" in rest
    assert "── Run history ──" in out and "schedule" in out
    assert "0 duplicates" in out
    assert "Traceback" not in proc.stderr and "voice will NOT" not in proc.stderr
