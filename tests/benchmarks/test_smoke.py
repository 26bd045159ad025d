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
        [
            sys.executable,
            "-m",
            "benchmarks.harness",
            "--size",
            "20",
            "--weeks",
            "2",
            "--latency",
            "0",
            "--rate-limit",
            "none",
            "--naive",
            "real",
            "--out",
            str(out),
            "--settle-weeks",
            "1",
            "--database-url",
            backend.database_url(tmp_path, "bench"),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=60,
    )
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert [(r["week"], r["settle"]) for r in rows] == [(0, False), (1, False), (2, False), (3, True)]
    assert rows[0]["requests"] > 0 and rows[0]["posted"] == 0  # the baseline announces nothing
    # Recall is reported in the run right after a release appeared and within the re-check bound.
    bound = result["recall_bound"]
    assert bound["bound_runs"] == 8 and bound["expected_pairs"] == sum(r["expected_pairs"] for r in rows[1:3])
    assert 0.0 <= bound["recall_same_run"] <= bound["recall_within_bound"] <= 1.0
    for row in rows[1:3]:
        assert row["requests"] >= 20 and row["L"] and row["expected_pairs"] > 0
        assert 0.0 <= row["recall"] <= 1.0 and row["duplicates"] == 0
        assert row["naive_requests"] == row["naive_requests_counted"]  # the naive count matches the catalogue
        assert row["rss_mb"] > 0 and row["db_mb"] > 0
    # L_B, the re-check-aware lower bound: from ground truth, and as the bot records it in runs.metrics.
    for row in rows[1:]:
        assert row["LB_gt"] >= row["L_gt"] and row["req_over_LB_gt"] == row["requests"] / row["LB_gt"]
        assert row["LB_bot"] >= row["L_bot"] and row["req_over_LB_bot"] > 0
        assert row["recheck_pages_gt"] == row["recheck_requests"]  # the re-check's pages, counted both ways
    from benchmarks.run import render

    report = render([result], "smoke", "now", 1.0)
    assert "## Requests ÷ L_B" in report and "| 20 | weekly 1–N (2) |" in report
    # The bot runs in its own process: its peak is reported apart from the harness's, and its
    # database time is split by statement kind (the baseline run inserts releases in bulk).
    assert result["bot_idle_rss_mb"] > 0 and result["harness_rss_mb"] > 0
    kinds = rows[0]["db_by_kind"]
    assert kinds["insert releases (many)"][0] > 0 and kinds["insert artist_releases (many)"][0] > 0
    assert kinds["commit"][0] > 0
    assert sum(n for n, _ in kinds.values()) == rows[0]["db_ops"]


@backend.postgresql_only("several bot processes share one PostgreSQL server")
def test_processes_smoke(tmp_path):
    out = tmp_path / "processes.json"
    server_url = backend.server_url()
    assert server_url is not None
    subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.processes",
            "--size",
            "40",
            "--guilds",
            "12",
            "--processes",
            "1,2",
            "--weeks",
            "1",
            "--latency",
            "0",
            "--rate-limit",
            "9000/30",
            "--out",
            str(out),
            "--database-url",
            server_url,
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    results = json.loads(out.read_text())
    assert [r["processes"] for r in results] == [1, 2]
    for res in results:
        for row in res["rows"]:
            # every due guild ran once, no artist was fetched by two processes, nothing was posted twice
            assert row["guilds_ran"] == 12 and row["guilds_ran_twice"] == 0 and row["guilds_left_due"] == 0
            assert row["artists_fetched_twice"] == 0 and row["posted_twice"] == 0
            assert len(row["rss_mb"]) == res["processes"] == len(row["db_seconds"])


def test_fanout_smoke(tmp_path):
    """The fan-out benchmark at a tiny size: 3 guilds, 120 subscribers in the first (30 DM, 90 mention:
    more than one message's 2,000 characters of mentions, so one follow-up), DMs at 20 per second."""
    out = tmp_path / "fanout.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.fanout",
            "--guilds",
            "3",
            "--subscribers",
            "120",
            "--dm-share",
            "0.25",
            "--dm-per-second",
            "20",
            "--timeout",
            "60",
            "--out",
            str(out),
            "--database-url",
            backend.database_url(tmp_path, "fanout", migrated=False),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["run_status"] == "ok" and result["releases_posted"] == 3
    # Counted on Discord's side (the fake): every guild got the post once, every DM-mode subscriber one
    # DM, every mention-mode subscriber one ping — the DM-mode ones none.
    assert (result["posts_lost"], result["dms_lost"], result["mentions_lost"]) == (0, 0, 0)
    assert (result["posts_duplicated"], result["dms_duplicated"], result["mentions_duplicated"]) == (0, 0, 0)
    assert result["dm_users_pinged"] == 0
    routes = result["by_route"]
    assert routes["channel post"] == 3 and routes["mention follow-up"] == 1
    assert routes["DM channel open"] == routes["DM message"] == 30
    assert result["ledgers"] == {"dm_deliveries": {"sent": 30}, "mention_posts": {"sent": 1}}
    seconds = result["seconds"]
    assert 0 < seconds["channel_posts"] <= seconds["delivery"]


def test_harness_world_and_signal_smoke(tmp_path):
    """The harness with the music world and the daily job: simulated days, the world's releases in the
    ground truth, latency and the signal's figures reported; the signal sends Spotify nothing."""
    results = {}
    for mode in ("off", "on"):
        out = tmp_path / f"{mode}.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.harness",
                "--size",
                "30",
                "--weeks",
                "2",
                "--latency",
                "0",
                "--rate-limit",
                "none",
                "--naive",
                "count",
                "--settle-weeks",
                "1",
                "--world",
                "0.5",
                *(["--signal"] if mode == "on" else []),
                "--out",
                str(out),
                "--database-url",
                backend.database_url(tmp_path, f"bench_{mode}"),
            ],
            cwd=ROOT,
            check=True,
            capture_output=True,
            timeout=90,
        )
        results[mode] = json.loads(out.read_text())
    off, on = results["off"], results["on"]
    assert [r["requests"] for r in on["rows"]] == [r["requests"] for r in off["rows"]]
    world = on["world"]
    assert world["listed_on_spotify"] > 0 and sum(r.get("kinds", {}).get("world", 0) for r in on["rows"]) > 0
    assert len(world["daily"]) == 7 * 3 + 1  # day 0, then every day up to the last run
    assert world["listenbrainz_requests"] == len(world["daily"]) and world["musicbrainz_requests"] > 0
    assert world["signal_counts"]["artists_followed"] == 30 and world["matches_wrong"] == 0
    weekly = world["latency_hours"]["weekly"]
    assert weekly["pairs"] > 0 and 0 < weekly["median"] <= weekly["worst"] < 24 * 7 * 2
    assert world["latency_hours"]["release_day"]["pairs"] == 0  # no release-day guild without --release-day
    assert off["world"]["daily"] == [] and off["world"]["musicbrainz_requests"] == 0
    assert on["recall_bound"]["recall_within_bound"] == 1.0


def test_harness_release_day_smoke(tmp_path):
    """``--release-day``: guild 1 posts on release day; the probes (signal on) find the world's releases on
    their day and post them within hours, and are the only Spotify requests between the weekly runs;
    what the probes add to the weekly runs' requests is at most their artist checks (a track list a
    probe fetched is one the weekly run no longer fetches, and so may be a page of the artist's)."""
    results = {}
    for mode in ("off", "on"):
        out = tmp_path / f"{mode}.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.harness",
                "--size",
                "30",
                "--weeks",
                "2",
                "--latency",
                "0",
                "--rate-limit",
                "none",
                "--naive",
                "count",
                "--settle-weeks",
                "1",
                "--world",
                "0.5",
                "--release-day",
                *(["--signal"] if mode == "on" else []),
                "--out",
                str(out),
                "--database-url",
                backend.database_url(tmp_path, f"bench_rd_{mode}"),
            ],
            cwd=ROOT,
            check=True,
            capture_output=True,
            timeout=90,
        )
        results[mode] = json.loads(out.read_text())
    off, on = results["off"], results["on"]
    # Without the signal no release group is known: nothing to probe, guild 1 gets the weekly posts.
    assert off["world"]["probes"]["made"] == 0 and off["world"]["latency_hours"]["release_day_probed"]["pairs"] == 0
    assert off["world"]["latency_hours"]["release_day"]["pairs"] > 0
    assert all(r["between_runs_requests"] == 0 for r in off["rows"])
    probes = on["world"]["probes"]
    assert probes["found"] > 0 and probes["found_right"] == probes["found"] and probes["posted"] > 0
    probed = on["world"]["latency_hours"]["release_day_probed"]
    assert probed["pairs"] > 0 and probed["worst"] < 24  # posted on the release day
    for row in on["rows"]:  # the emulator saw exactly the probes' requests between two runs
        assert row["between_runs_requests"] == row["probe_requests"] == sum(row["probe_requests_by_endpoint"].values())
    for mode in (off, on):
        assert mode["recall_bound"]["recall_same_run"] == mode["recall_bound"]["recall_within_bound"] == 1.0
    assert sum(r["duplicates"] for r in on["rows"]) == 0

    def by_endpoint(result: dict) -> dict[str, int]:
        total: dict[str, int] = {}
        for row in result["rows"]:
            for counts in (row["requests_by_endpoint"], row["probe_requests_by_endpoint"]):
                for endpoint, n in counts.items():
                    total[endpoint] = total.get(endpoint, 0) + n
        return total

    on_total, off_total = by_endpoint(on), by_endpoint(off)
    assert on_total["album"] == off_total["album"]
    probe_checks = sum(r["probe_requests_by_endpoint"].get("artist_albums", 0) for r in on["rows"])
    assert 0 < on_total["artist_albums"] - off_total["artist_albums"] <= probe_checks


def test_harness_smoke_with_the_metrics_endpoint_on_and_scraped(tmp_path):
    out = tmp_path / "result.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.harness",
            "--size",
            "20",
            "--weeks",
            "1",
            "--latency",
            "0",
            "--rate-limit",
            "none",
            "--naive",
            "count",
            "--settle-weeks",
            "0",
            "--metrics",
            "--scrape-seconds",
            "0.05",
            "--out",
            str(out),
            "--database-url",
            backend.database_url(tmp_path, "bench"),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=60,
    )
    result = json.loads(out.read_text())
    scraped = result["metrics"]
    assert scraped["scrapes"] > 0 and scraped["failed"] == 0
    assert scraped["last_samples"] > 50  # the bot's metrics, not an empty page
