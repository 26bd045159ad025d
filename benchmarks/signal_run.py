"""The free signal's benchmark (issue 13): the scenario plus the music world, with the signal off and on.

``python -m benchmarks.signal_run --sizes 1000,10000 --weeks 4 --release-day --results benchmarks/out/signal.md``

For each size, two harness processes run at once on the same scenario and world
(``benchmarks.harness --world RATE``): one with the daily job (``--signal``), one without (today's
bot). ``--release-day``: in both, guild 1 posts on release day (``harness --release-day``); only with the
signal does the bot know release groups to probe. The report gives, per size: Spotify requests per
weekly run with the signal against without (equal without ``--release-day``: the signal never changes
what a run asks Spotify) and the probes' requests between the runs (the only requests the signal
adds: their artist checks; a track list a probe fetched is one the weekly run no longer fetches),
requests ÷ L_B, recall in the run right after and within the re-check bound (a probe's post counts as
the next run's), the latency from each world release's Spotify listing to its post for weekly and
release-day guilds, the probes, MusicBrainz and ListenBrainz requests, and the signal's quality
(``storage.musicdata.signal_counts``, its matches checked against the world). Raw figures:
``<results stem>-<size>-<off|on>.json`` beside the report; ``--from-json`` writes the report from them
again without running.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def _f(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def report(results: dict[int, dict[str, dict[str, Any]]], args: argparse.Namespace, minutes: float) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    out = [
        "## Issue 13: the free signal against the music world",
        "",
        f"Produced by `.venv/bin/python -m benchmarks.signal_run {' '.join(a for a in sys.argv[1:] if a != '--from-json')}`"
        f"{' (this report rewritten from its raw figures by `--from-json`)' if args.from_json else ''} on "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC in {minutes:.1f} min, commit `{commit.strip()}`, "
        f"{platform.python_version()}; {args.weeks} weeks of the scenario (seed `{args.seed}`) + the world "
        f"(`fakes/music_world.py`, {args.world} releases per artist and week) + settle runs up to the re-check "
        "bound; each simulated day at 00:15 UTC the world advances and (signal on) the daily job runs; weekly "
        "runs at 09:00 UTC on Fridays. Off and on ran at the same time on the machine's 2 shared cores: wall "
        "times are not figures, request counts are.",
        "",
    ]
    out += [
        "| artists | signal | weekly runs | Spotify requests (weekly runs) | per run | on − off per run | "
        "probes' requests (artist checks / track lists) per week | weekly + probes total | "
        "req÷L_B worst / median (harness) | req÷L_B worst / median (bot) | recall same run | recall within bound | "
        "unobservable |",
        "|---:|---|---:|---:|---|---|---|---:|---|---|---|---|---:|",
    ]
    for size, modes in results.items():
        off_rows = {r["week"]: r["requests"] for r in modes["off"]["rows"]}
        for mode in ("off", "on"):
            res = modes[mode]
            rows = [r for r in res["rows"] if r["week"] > 0]
            lb = [r["req_over_LB_gt"] for r in rows if r.get("req_over_LB_gt") is not None]
            lb_bot = [r["req_over_LB_bot"] for r in rows if r.get("req_over_LB_bot") is not None]
            diff = [r["requests"] - off_rows[r["week"]] for r in rows]
            rb = res["recall_bound"]
            probe = [r.get("probe_requests_by_endpoint") or {} for r in res["rows"]]
            probe_cell = (
                ", ".join(f"{p.get('artist_albums', 0)}/{p.get('album', 0)}" for p in probe) if any(probe) else "none"
            )
            total = sum(r["requests"] for r in rows) + sum(sum(p.values()) for p in probe)
            out.append(
                f"| {size:,} | {mode} | {len(rows)} | {sum(r['requests'] for r in rows):,} | "
                f"{', '.join(str(r['requests']) for r in rows)} | "
                f"{'all 0' if not any(diff) else ', '.join(map(str, diff))} | {probe_cell} | {total:,} | "
                f"{_f(max(lb))} / {_f(_median(lb))} | "
                f"{_f(max(lb_bot) if lb_bot else None)} / {_f(_median(lb_bot) if lb_bot else None)} | "
                f"{rb['recall_same_run']:.4f} | {rb['recall_within_bound']:.4f} | {rb['unobservable']} |"
            )
    out += [
        "",
        "Latency from a world release's Spotify listing (midnight of its date in its market's zone) to its post "
        "(`deliveries.sent_at`), hours, over the (guild, release) pairs posted:",
        "",
        "| artists | signal | world releases (listed on Spotify / postponed / cancelled) | weekly guilds (2, 3): "
        "pairs, median / p90 / worst h | release-day guild (1): pairs, median / p90 / worst h | "
        "of those posted by a probe: pairs, median / p90 / worst h |",
        "|---:|---|---|---|---|---|",
    ]

    def cell(stats: dict[str, Any]) -> str:
        return f"{stats['pairs']}: {_f(stats['median'], 1)} / {_f(stats['p90'], 1)} / {_f(stats['worst'], 1)}"

    for size, modes in results.items():
        for mode in ("off", "on"):
            w = modes[mode]["world"]
            hours = w["latency_hours"]
            rday = (
                (cell(hours["release_day"]), cell(hours["release_day_probed"]))
                if w["release_day_guilds"]
                else ("not measured: run with `--release-day`", "—")
            )
            out.append(
                f"| {size:,} | {mode} | {w['releases']} ({w['listed_on_spotify']} / {w['postponed']} / "
                f"{w['cancelled']}) | {cell(hours['weekly'])} | {rday[0]} | {rday[1]} |"
            )
    if any(modes["on"]["world"]["release_day_guilds"] for modes in results.values()):
        out += [
            "",
            "Release-day probes (signal on; at local midnight in New York + 0.25, 2, 6, 12 h, at most 4 per "
            "release group): *found right*: the Spotify release found is the world's own.",
            "",
            "| artists | release groups probed | probes (1st / 2nd / 3rd / 4th) | found (right) | found at probe "
            "1 / 2 / 3 / 4 | posts | Spotify requests (artist checks / track lists) |",
            "|---:|---:|---|---|---|---:|---|",
        ]
        for size, modes in results.items():
            res = modes["on"]
            p = res["world"]["probes"]
            by_n, found_n = p["by_number"], p["found_by_number"]
            ends: collections.Counter[str] = collections.Counter()
            for r in res["rows"]:
                ends.update(r.get("probe_requests_by_endpoint") or {})
            out.append(
                f"| {size:,} | {p['release_groups']} | {p['made']} "
                f"({' / '.join(str(by_n.get(str(n), 0)) for n in range(1, 5))}) | {p['found']} ({p['found_right']}) | "
                f"{' / '.join(str(found_n.get(str(n), 0)) for n in range(1, 5))} | {p['posted']} | "
                f"{p['requests']:,} ({ends['artist_albums']:,} / {ends['album']:,}) |"
            )
    out += [
        "",
        "The signal (on): MusicBrainz and ListenBrainz requests (the emulators' logs; per day from the daily "
        "reports), and its quality on the last day (`storage.musicdata.signal_counts`); *ground truth*: world "
        "releases Spotify listed, of mapped artists, MusicBrainz knowing them (ahead or late); *right / wrong*: "
        "matches whose Spotify release is / is not the world's.",
        "",
        "| artists | days | MB requests total / per day median / max | LB requests total / per day | mapped artists | "
        "kept groups | matched (UPC / title+date) | right / wrong | ground truth (known / ahead) | announced ahead | "
        "late arrivals | missed | gone | postponed | upcoming |",
        "|---:|---:|---|---|---:|---:|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for size, modes in results.items():
        w = modes["on"]["world"]
        c = w["signal_counts"]
        mb_day = [d["musicbrainz_requests"] for d in w["daily"]]
        lb_day = [d["listenbrainz_requests"] for d in w["daily"]]
        out.append(
            f"| {size:,} | {len(w['daily'])} | {w['musicbrainz_requests']:,} / {_median(mb_day)} / {max(mb_day)} | "
            f"{w['listenbrainz_requests']} / {_median(lb_day)} | {c['artists_mapped']:,} of {c['artists_followed']:,} | "
            f"{c['release_groups']} | {c['matched']} ({c['matched_by_upc']} / {c['matched_by_title']}) | "
            f"{w['matches_right']} / {w['matches_wrong']} | {w['mapped_listed_known']} / {w['mapped_listed_ahead']} | "
            f"{c['announced_ahead']} | {c['late']} | {c['missed']} | {c['gone']} | {c['postponed']} | {c['upcoming']} |"
        )
    return "\n".join(out) + "\n"


async def run_one(args: argparse.Namespace, size: int, mode: str, out: Path) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.harness",
        "--size",
        str(size),
        "--weeks",
        str(args.weeks),
        "--seed",
        args.seed,
        "--world",
        str(args.world),
        "--naive",
        "count",
        "--out",
        str(out),
        *(["--signal"] if mode == "on" else []),
        *(["--release-day"] if args.release_day else []),
    ]
    proc = await asyncio.create_subprocess_exec(*cmd, cwd=str(ROOT))
    if await proc.wait() != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed")
    return json.loads(await asyncio.to_thread(out.read_text))


async def main_async(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    results: dict[int, dict[str, dict[str, Any]]] = {}
    stem = args.results.with_suffix("")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    for size in args.sizes:
        off, on = await asyncio.gather(
            run_one(args, size, "off", Path(f"{stem}-{size}-off.json")),
            run_one(args, size, "on", Path(f"{stem}-{size}-on.json")),
        )
        results[size] = {"off": off, "on": on}
        args.results.write_text(report(results, args, (time.perf_counter() - t0) / 60))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1000, 10000])
    ap.add_argument("--weeks", type=int, default=4)
    ap.add_argument("--seed", default="bench")
    ap.add_argument("--world", type=float, default=0.05, help="world releases per artist and week")
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "out" / "signal.md")
    ap.add_argument(
        "--release-day",
        action="store_true",
        help="guild 1 posts on release day (harness --release-day): the probes, their requests and latency",
    )
    ap.add_argument(
        "--from-json",
        action="store_true",
        help="write the report from the raw figures of an earlier run (<results stem>-<size>-<off|on>.json)",
    )
    args = ap.parse_args(argv)
    if args.from_json:
        stem = args.results.with_suffix("")
        results = {
            size: {m: json.loads(Path(f"{stem}-{size}-{m}.json").read_text()) for m in ("off", "on")}
            for size in args.sizes
        }
        minutes = max(r["total_seconds"] for modes in results.values() for r in modes.values()) / 60
        args.results.write_text(report(results, args, minutes))
        return
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
