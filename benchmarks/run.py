"""The tracking benchmark, one command: ``.venv/bin/python -m benchmarks.run``.

Runs each size in its own process (``benchmarks.harness``; each starts its own emulator
process) and writes ``benchmarks/RESULTS.md``. Quick runs: ``--sizes 100,1000 --weeks 2``.
Not part of CI.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"req_over_L": 1.05, "wall_over_bound": 1.25, "naive_factor": 10.0, "db_seconds": 5.0, "rss_mb": 300.0}


def _fmt(v, nd=2, dash="–"):
    if v is None:
        return dash
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:
        return "?"


def summarize(res: dict) -> dict:
    rows = res["rows"]
    weekly = [r for r in rows if r["week"] > 0 and not r.get("settle")]
    base = rows[0]
    s: dict = {"size": res["size"], "weeks": len(weekly)}
    s["baseline_requests"] = base["requests"]
    s["requests"] = sum(r["requests"] for r in weekly)
    s["L"] = sum(r["L"] or 0 for r in weekly)
    s["L_gt"] = sum(r.get("L_gt") or 0 for r in weekly)
    ratios = [r["req_over_L"] for r in weekly if r.get("req_over_L")]
    s["req_over_L_total"] = s["requests"] / s["L"] if s["L"] else None
    s["req_over_L_max"] = max(ratios) if ratios else None
    s["req_over_L_gt_total"] = s["requests"] / s["L_gt"] if s["L_gt"] else None
    s["L_sources"] = sorted({r.get("L_source") or "none" for r in weekly})
    s.update(lb_summary(weekly))
    wb = [r["wall_over_bound"] for r in weekly if r.get("wall_over_bound")]
    s["wall_over_bound_max"] = max(wb) if wb else None
    s["wall_over_bound_median"] = sorted(wb)[len(wb) // 2] if wb else None
    s["wall_weekly_total"] = sum(r["wall"] for r in weekly)
    s["wall_baseline"] = base["wall"]
    s["http_429"] = sum(r["http_429"] for r in rows)
    exp = sum(r.get("expected_pairs", 0) for r in weekly)
    hit = sum(round(r.get("recall", 1.0) * r.get("expected_pairs", 0)) for r in weekly)
    s["recall"] = hit / exp if exp else 1.0
    s["recall_min"] = min((r.get("recall", 1.0) for r in weekly), default=1.0)
    s["duplicates"] = rows[-1]["duplicates_total"]
    s["unexpected_posts"] = sum(r.get("unexpected_posts", 0) for r in weekly)
    s["late"] = sum(r.get("late", 0) for r in weekly)
    s["missed_kinds"] = {}
    for r in weekly:
        for k, v in (r.get("missed_kinds") or {}).items():
            s["missed_kinds"][k] = s["missed_kinds"].get(k, 0) + v
    s["backcat_injected"] = sum(r.get("backcat", 0) for r in weekly)
    s["backcat_linked"] = sum(r.get("backcat_linked", 0) for r in weekly)
    s["backcat_posted"] = sum(r.get("backcat_posted", 0) for r in weekly)
    s["naive_requests"] = sum(r["naive_requests"] for r in weekly)
    s["naive_requests_with_baseline"] = sum(r["naive_requests"] for r in rows)
    s["naive_factor"] = s["naive_requests"] / s["requests"] if s["requests"] else None
    s["naive_factor_with_baseline"] = (
        s["naive_requests_with_baseline"] / (s["requests"] + s["baseline_requests"])
        if s["requests"] + s["baseline_requests"]
        else None
    )
    nr = [r["naive_recall"] for r in weekly if "naive_recall" in r]
    s["naive_recall"] = min(nr) if nr else None
    s["db_seconds_max"] = max(r["db_seconds"] for r in rows)
    s["db_seconds_weekly_max"] = max((r["db_seconds"] for r in weekly), default=None)
    s["sqlite_seconds_weekly_max"] = max((r.get("sqlite_seconds", 0) for r in weekly), default=None)
    s["rss_mb_max"] = max(r["rss_mb"] for r in rows)
    s["db_mb"] = rows[-1]["db_mb"]
    s["statuses"] = sorted({r["status"] for r in rows})
    s["failed_artists"] = sum(r["failed_artists"] for r in rows)
    return s


def _median(values: list[float]) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def lb_summary(rows: list[dict]) -> dict:
    """Requests ÷ L_B over ``rows`` (docs/tracking.md, "L_B"): worst, median and best, from ground truth
    (``harness``) and as the bot recorded it (``bot``, when it does); and each run's re-check pages ÷ its
    even share (ground truth)."""
    out: dict = {}
    gt = [r["req_over_LB_gt"] for r in rows if r.get("req_over_LB_gt")]
    bot = [r["req_over_LB_bot"] for r in rows if r.get("req_over_LB_bot")]
    even = [r["recheck_pages_gt"] / r["recheck_even_gt"] for r in rows if r.get("recheck_even_gt")]
    for name, values in (("req_over_LB_gt", gt), ("req_over_LB_bot", bot), ("recheck_over_even", even)):
        out[f"{name}_max"] = max(values) if values else None
        out[f"{name}_median"] = _median(values)
        out[f"{name}_min"] = min(values) if values else None
    out["LB_gt"] = sum(r.get("LB_gt") or 0 for r in rows)
    return out


def lb_table(results: list[dict]) -> list[str]:
    """Per size: requests ÷ L_B (worst / median / best) over the weekly runs and over every run after the
    baseline (settle runs included), and the re-check's pages ÷ its even share."""
    out = [
        "| artists | runs | requests | ΣL_B (harness) | req÷L_B worst / median / best (harness) | "
        "req÷L_B worst / median (bot) | re-check pages ÷ even share worst / best |",
        "|---:|---|---:|---:|---|---|---|",
    ]
    for r in results:
        runs = [x for x in r["rows"] if x["week"] > 0]
        for label, rows in (("weekly 1–N", [x for x in runs if not x.get("settle")]), ("all after baseline", runs)):
            s = lb_summary(rows)
            out.append(
                f"| {r['size']:,} | {label} ({len(rows)}) | {sum(x['requests'] for x in rows):,} | "
                f"{s['LB_gt']:,.0f} | {_fmt(s['req_over_LB_gt_max'], 3)} / {_fmt(s['req_over_LB_gt_median'], 3)} / "
                f"{_fmt(s['req_over_LB_gt_min'], 3)} | {_fmt(s['req_over_LB_bot_max'], 3)} / "
                f"{_fmt(s['req_over_LB_bot_median'], 3)} | {_fmt(s['recheck_over_even_max'], 3)} / "
                f"{_fmt(s['recheck_over_even_min'], 3)} |"
            )
    return out


def week_table(res: dict) -> list[str]:
    out = [
        "| week | status | requests | L | L src | req÷L | L (harness) | L_B (harness) | req÷L_B | req÷L_B (bot) | "
        "re-check pages ÷ even share | wall s | bound s | wall÷bound | 429s | "
        "recall | missed (kind: releases) | dup | posted | unexpected | back-cat linked/posted | DB s (in-flight / sqlite) | peak RSS MB | DB MB | "
        "naive req | naive recall |",
        "|---:|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|---|---:|---:|---:|---:|",
    ]
    for r in res["rows"]:
        bc = (
            f"{r.get('backcat_linked', '–')}/{r.get('backcat_posted', '–')} of {r.get('backcat', '–')}"
            if r["week"]
            else "–"
        )
        naive = str(r["naive_requests"]) + ("" if res["naive_mode"] == "real" else " (counted)")
        out.append(
            f"| {r['week'] if r['week'] else '0 (baseline)'} | {r['status']} | {r['requests']} | {_fmt(r['L'])} | "
            f"{r.get('L_source') or '–'} | {_fmt(r.get('req_over_L'), 3)} | {_fmt(r.get('L_gt'))} | "
            f"{_fmt(r.get('LB_gt'), 1)} | {_fmt(r.get('req_over_LB_gt'), 3)} | {_fmt(r.get('req_over_LB_bot'), 3)} | "
            f"{_fmt(r['recheck_pages_gt'] / r['recheck_even_gt'] if r.get('recheck_even_gt') else None, 3)} | "
            f"{r['wall']:.1f} | "
            f"{r['bound']:.1f} | {_fmt(r.get('wall_over_bound'))} | {r['http_429']} | {_fmt(r.get('recall'), 3)} | "
            f"{', '.join(f'{k}: {v}' for k, v in (r.get('missed_kinds') or {}).items()) or '–'} | {r['duplicates']} | {r['posted']} | {r.get('unexpected_posts', '–')} | {bc} | "
            f"{r['db_seconds']:.2f} / {r.get('sqlite_seconds', 0):.2f} | {r['rss_mb']:.0f} | {r['db_mb']:.1f} | {naive} | "
            f"{_fmt(r.get('naive_recall'), 3)} |"
        )
    return out


def summary_table(sums: list[dict]) -> list[str]:
    out = [
        "| artists | weekly runs | requests (weeks) | baseline requests | ΣL | req÷L total / worst week | req÷L(harness) | "
        "wall÷bound median / worst | 429s | recall (min week) | duplicates | unexpected posts | back-cat linked/posted of | "
        "naive requests (weeks) | naive ÷ bot (weeks / incl. baseline) | DB s worst week (in-flight / sqlite) | "
        "peak RSS MB | DB MB |",
        "|---:|---:|---:|---:|---:|---|---:|---|---:|---|---:|---:|---|---:|---|---|---:|---:|",
    ]
    for s in sums:
        out.append(
            f"| {s['size']} | {s['weeks']} | {s['requests']} | {s['baseline_requests']} | {s['L']} | "
            f"{_fmt(s['req_over_L_total'], 3)} / {_fmt(s['req_over_L_max'], 3)} | {_fmt(s['req_over_L_gt_total'], 3)} | "
            f"{_fmt(s['wall_over_bound_median'])} / {_fmt(s['wall_over_bound_max'])} | {s['http_429']} | "
            f"{s['recall']:.3f} ({s['recall_min']:.3f}) | {s['duplicates']} | {s['unexpected_posts']} | "
            f"{s['backcat_linked']}/{s['backcat_posted']} of {s['backcat_injected']} | {s['naive_requests']} | "
            f"{_fmt(s['naive_factor'], 1)}× / {_fmt(s['naive_factor_with_baseline'], 1)}× | "
            f"{_fmt(s['db_seconds_weekly_max'])} / {_fmt(s['sqlite_seconds_weekly_max'])} | {s['rss_mb_max']:.0f} | "
            f"{s['db_mb']:.1f} |"
        )
    return out


def recall_table(results: list[dict]) -> list[str]:
    """Each size's expected (guild, release) pairs: announced in the run right after they appeared, within
    ceil(1/recheck_share) runs (after the scenario's weeks, settle runs with no change give the last weeks
    their whole bound), and the rotating re-check's cost."""
    out = [
        "| artists | recheck share | bound (runs) | settle runs | expected pairs | same run | within bound | "
        "recall same run | recall within bound | unobservable (taken down before found) | found late after (runs) | "
        "never (kinds) | re-checked artists / run (median) | re-check requests (weeks 1–N) | share of weekly requests |",
        "|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---|---|---:|---:|---:|",
    ]
    for r in results:
        b = r.get("recall_bound")
        if not b:
            continue
        weekly = [x for x in r["rows"] if x["week"] > 0 and not x.get("settle")]
        rechecked = sorted(x.get("rechecked", 0) for x in weekly)
        rc_req = sum(x.get("recheck_requests", 0) for x in weekly)
        req = sum(x["requests"] for x in weekly)
        late = collections.Counter(b["late_runs"])
        out.append(
            f"| {r['size']:,} | {b['recheck_share']} | {b['bound_runs']} | {b['settle_weeks']} | {b['expected_pairs']} | "
            f"{b['same_run']} | {b['within_bound']} | {b['recall_same_run']:.4f} | {b['recall_within_bound']:.4f} | "
            f"{b['unobservable']} | {', '.join(f'{k}: {v}' for k, v in sorted(late.items())) or '–'} | "
            f"{len(b['never'])} {b['never_kinds'] or ''} | {rechecked[len(rechecked) // 2] if rechecked else 0} | "
            f"{rc_req:,} | {rc_req / req if req else 0:.1%} |"
        )
    return out


def targets(sums: list[dict]) -> list[str]:
    out = ["| target | size | measured | met |", "|---|---:|---|---|"]

    def line(name, s, measured, ok):
        out.append(f"| {name} | {s['size']} | {measured} | {'yes' if ok else '**no**'} |")

    for s in sums:
        v = s["req_over_LB_gt_max"]
        line(
            "requests ≤ 1.05 × L_B (every weekly run; L_B from ground truth)",
            s,
            f"worst week {_fmt(v, 3)}, median {_fmt(s['req_over_LB_gt_median'], 3)}",
            v is not None and v <= TARGETS["req_over_L"],
        )
        v = s["req_over_L_max"]
        line(
            "steady-state requests ≤ 1.05 × L (every weekly run)",
            s,
            f"worst week {_fmt(v, 3)}, total {_fmt(s['req_over_L_total'], 3)}",
            v is not None and v <= TARGETS["req_over_L"],
        )
        v = s["wall_over_bound_max"]
        line(
            "wall ≤ 1.25 × bound (every weekly run)",
            s,
            f"worst {_fmt(v)}",
            v is not None and v <= TARGETS["wall_over_bound"],
        )
        missed = ", ".join(f"{k} {v}" for k, v in s["missed_kinds"].items())
        line(
            "recall 1.0",
            s,
            f"{s['recall']:.4f}" + (f" (missed releases by kind: {missed})" if missed else ""),
            s["recall"] >= 1.0,
        )
        line("0 duplicates", s, str(s["duplicates"]), s["duplicates"] == 0)
        v = s["naive_factor"]
        line(
            "≥ 10× fewer requests than naive (12 weekly runs)",
            s,
            f"{_fmt(v, 1)}×",
            v is not None and v >= TARGETS["naive_factor"],
        )
        v = s["db_seconds_max"]
        line(
            "database work < 5 s per run (incl. baseline)",
            s,
            f"worst run {_fmt(v)} s in flight, worst weekly sqlite {_fmt(s['sqlite_seconds_weekly_max'])} s",
            v < TARGETS["db_seconds"],
        )
        line("peak RSS < 300 MB", s, f"{s['rss_mb_max']:.0f} MB", s["rss_mb_max"] < TARGETS["rss_mb"])
    return out


def code_state() -> tuple[str, str]:
    """``(short HEAD commit, git status --short of bot/ and storage/)`` — taken when the run starts."""
    return _git("rev-parse", "--short", "HEAD"), _git("status", "--short", "--", "bot", "storage")


def render(results: list[dict], command: str, started: str, elapsed: float, code: tuple[str, str] | None = None) -> str:
    first = results[0]
    sums = [summarize(r) for r in results]
    head, dirty = code or code_state()
    lines = [
        "# Tracking benchmark results",
        "",
        f"Produced by `{command}` on {started} UTC in {elapsed / 60:.1f} min.",
        "",
        f"Machine: {os.cpu_count()} CPUs (nproc), Python {platform.python_version()}, {platform.platform()}.",
        f"Code measured: commit `{head}`"
        + (
            f" plus uncommitted changes in the working tree:\n\n```\n{dirty}\n```"
            if dirty
            else " (clean tree for bot/ and storage/)."
        ),
        "",
        "## Scenario",
        "",
        f"- Emulator (separate process): latency {first['latency'] * 1000:.0f} ms per request, rolling rate limit "
        f"{first['rate_limit'].replace('/', ' requests / ')} s; seed `{first['seed']}`.",
        f"- Tracker concurrency {first['concurrency']} (Tracker(concurrency=…)); bound = max(requests × latency ÷ "
        f"concurrency, requests ÷ rate).",
        "- 3 guilds follow the artists (each artist by 1 guild, 30 % by 2); default album groups (album, single, compilation).",
        "- Run 0 takes the silent baselines; then weekly runs with the week's changes injected before each run.",
        "",
    ]
    for r in results:
        kinds: dict[str, int] = {}
        for row in r["rows"]:
            for k, v in (row.get("kinds") or {}).items():
                kinds[k] = kinds.get(k, 0) + v
        lines.append(
            f"- **{r['size']} artists**: {r['catalogue_releases']} releases at week 0 (incl. appears_on "
            f"compilations); injected over {r['weeks']} weeks: "
            + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
            + f". Naive tracker: {'run for real' if r['naive_mode'] == 'real' else 'requests counted exactly from the catalogue (not run, to keep the benchmark within its time)'}."
            + f" Code fingerprint (bot/ + storage/ sources) `{r.get('code_fingerprint')}`."
            + f" Size took {r['total_seconds'] / 60:.1f} min (emulator build {r['emulator_build_seconds']} s, emulator peak RSS {r.get('emulator_rss_mb')} MB"
            + (
                f"; bot process idle before run 0 {r['bot_idle_rss_mb']} MB, harness process peak {r.get('harness_rss_mb')} MB"
                if r.get("bot_idle_rss_mb") is not None
                else ""
            )
            + ")."
        )
    lines += ["", "## Summary (weekly runs 1–N; the baseline run is reported separately)", ""]
    lines += summary_table(sums)
    lines += ["", "## Recall: in the run right after, and within the re-check bound", ""]
    lines += recall_table(results)
    lines += ["", "## Requests ÷ L_B (the re-check-aware lower bound, docs/tracking.md)", ""]
    lines += lb_table(results)
    lines += ["", "## Targets", ""]
    lines += targets(sums)
    for r in results:
        lines += ["", f"## {r['size']} artists, per run", ""]
        lines += week_table(r)
    lines += ["", "Column meanings: see `benchmarks/README.md`.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100,1000,10000")
    ap.add_argument("--weeks", type=int, default=12)
    ap.add_argument("--seed", default="bench")
    ap.add_argument("--latency", type=float, default=0.03)
    ap.add_argument("--rate-limit", default="9000/30", help="MAX/SECONDS (rolling window) or 'none'")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument(
        "--naive",
        choices=("auto", "real", "count"),
        default="auto",
        help="auto: run the naive tracker for real up to --naive-real-max artists, count it above",
    )
    ap.add_argument("--naive-real-max", type=int, default=1000)
    ap.add_argument("--recheck-share", type=float, default=0.125, help="the bot's tracking.recheck_share")
    ap.add_argument(
        "--settle-weeks",
        type=int,
        default=None,
        help="runs with no change after the weeks (default: the re-check bound, ceil(1/share))",
    )
    ap.add_argument(
        "--processes",
        default="1,4",
        help="process counts for the several-processes benchmark on PostgreSQL (benchmarks/processes.py); "
        "'' to skip it",
    )
    ap.add_argument(
        "--metrics",
        action="store_true",
        help="the bot serves /metrics ([http] port) and the harness scrapes it every --scrape-seconds",
    )
    ap.add_argument("--scrape-seconds", type=float, default=1.0)
    ap.add_argument("--processes-size", type=int, default=10_000)
    ap.add_argument("--processes-guilds", type=int, default=2_500)
    ap.add_argument("--processes-weeks", type=int, default=2)
    ap.add_argument(
        "--results",
        type=Path,
        default=ROOT / "benchmarks" / "RESULTS.md",
        help="the Markdown report; the raw figures go to results.json in the same folder",
    )
    args = ap.parse_args(argv)
    command = ".venv/bin/python -m benchmarks.run" + (
        ""
        if argv is None and len(sys.argv) == 1
        else " " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    )
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")
    t0 = time.perf_counter()
    code = code_state()  # before the sizes run: the tree may change while they do (see the fingerprints)
    results = []
    for size in [int(x) for x in args.sizes.split(",") if x.strip()]:
        out = Path(f"/tmp/release-bot-bench-{os.getpid()}-{size}.json")
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
            "--latency",
            str(args.latency),
            "--rate-limit",
            args.rate_limit,
            "--concurrency",
            str(args.concurrency),
            "--naive",
            args.naive,
            "--naive-real-max",
            str(args.naive_real_max),
            "--recheck-share",
            str(args.recheck_share),
            *(["--settle-weeks", str(args.settle_weeks)] if args.settle_weeks is not None else []),
            *(["--metrics", "--scrape-seconds", str(args.scrape_seconds)] if args.metrics else []),
            "--out",
            str(out),
        ]
        print(f"== {size} artists: {' '.join(cmd[1:])}", flush=True)
        subprocess.run(cmd, cwd=ROOT, check=True)
        results.append(json.loads(out.read_text()))
        args.results.parent.mkdir(parents=True, exist_ok=True)
        (args.results.parent / "results.json").write_text(json.dumps(results, indent=1, default=str))
        args.results.write_text(render(results, command, started, time.perf_counter() - t0, code))
    if args.processes:
        out = Path(f"/tmp/release-bot-bench-{os.getpid()}-processes.json")
        cmd = [
            sys.executable,
            "-m",
            "benchmarks.processes",
            "--size",
            str(args.processes_size),
            "--guilds",
            str(args.processes_guilds),
            "--processes",
            args.processes,
            "--weeks",
            str(args.processes_weeks),
            "--seed",
            args.seed,
            "--latency",
            str(args.latency),
            "--rate-limit",
            args.rate_limit,
            "--concurrency",
            str(args.concurrency),
            "--recheck-share",
            str(args.recheck_share),
            "--out",
            str(out),
        ]
        print(f"== several processes: {' '.join(cmd[1:])}", flush=True)
        subprocess.run(cmd, cwd=ROOT, check=True)
        processes = json.loads(out.read_text())
        (args.results.parent / "results-processes.json").write_text(json.dumps(processes, indent=1))
        from benchmarks.processes import table

        first = processes[0]
        marker = "\n## Several processes on one PostgreSQL"
        if results:
            text = render(results, command, started, time.perf_counter() - t0, code)
        else:  # --sizes '': only this section is measured again; the rest of the report stays
            previous = args.results.read_text() if args.results.exists() else "# Benchmark results\n"
            text = previous.split(marker)[0].rstrip("\n") + "\n"
        text += "\n".join(
            [
                "",
                marker.strip(),
                "",
                f"Produced by `{command}` on {started} UTC (code at commit `{code[0]}`"
                + (", with uncommitted changes" if code[1] else "")
                + ").",
                "",
                f"`benchmarks/processes.py`: {first['size']:,} artists, {first['guilds']:,} guilds ({first['follows']:,} "
                f"follows), the baseline then {first['weeks']} weekly runs, each process count on a fresh database of one "
                "throw-away PostgreSQL server; every guild is made due and all processes run what is due at once "
                "(leases, artist claims, the shared day budget; the rate limit split between the processes). Wall = until "
                "every process is done. DB s = wall time with a database operation in flight, per process; peak RSS per "
                "process since the run began.",
                "",
                *table(processes),
                "",
            ]
        )
        args.results.write_text(text)
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
