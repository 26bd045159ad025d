"""The Spotify emulator of a benchmark scenario, in its own process.

Run by the harness (``benchmarks/harness.py``) so that the emulator's CPU and memory
stay out of the bot's wall time and peak RSS::

    python -m benchmarks.emulator_server --size 1000 --seed bench --weeks 12 \
        --latency 0.03 --rate-limit 9000/30

It builds the scenario's week-0 catalogue (``benchmarks.scenario.Scenario``), starts
``fakes.spotify_emulator.SpotifyEmulator`` on a free loopback port and prints one
JSON line ``{"api", "accounts", "client_id", "client_secret", "build_seconds"}``. Then it
reads one JSON command per line on stdin and answers one JSON line on stdout:

* ``{"cmd": "week", "k": k}`` — apply week ``k``'s removals and additions;
* ``{"cmd": "reset_window"}`` — empty the rolling rate-limit window;
* ``{"cmd": "stats"}`` — ``{"requests", "by_status", "by_kind", "rss_mb"}`` for the
  requests logged since the last ``stats`` (the log is then cleared);
* ``{"cmd": "advance", "to": ISO-8601 UTC}`` — with ``--world``: apply the music world's events
  up to that time (``fakes.music_world.MusicWorld.advance``: Spotify lists releases at midnight in
  their market's zone, MusicBrainz/ListenBrainz learn, move, lose them); reply ``{"events": n}``;
* ``{"cmd": "quit"}``.

``--world`` also starts the MusicBrainz and ListenBrainz emulators (their URLs in the start-up line
as ``musicbrainz`` and ``listenbrainz``) and builds :func:`world_of` the scenario; ``stats`` then
adds ``musicbrainz_requests`` / ``listenbrainz_requests`` since the last ``stats``. MusicBrainz's
one-request-a-second limit is lifted in the emulator: the bot's pacing runs on the simulated clock
(``benchmarks/bot_server.py``), so the requests are the bot's own but not spread over real seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import json
import resource
import sys
import time

from benchmarks.scenario import START, AlbumSpec, Scenario
from fakes.listenbrainz_emulator import ListenBrainzEmulator
from fakes.music_world import MusicWorld
from fakes.musicbrainz_emulator import MusicBrainzEmulator
from fakes.spotify_emulator import SpotifyEmulator


def world_of(scenario: Scenario, rate: float) -> MusicWorld:
    """The music world of a scenario: its followed artists, over its weeks from ``START``
    (``rate``: releases per artist and week), seeded by the scenario's seed and size."""
    return MusicWorld(
        [(aid, name) for aid, name, _ in scenario.artists],
        seed=f"{scenario.seed}:{scenario.size}:world",
        start=START,
        weeks=scenario.weeks,
        release_rate=rate,
    )


def _add(emu: SpotifyEmulator, scenario: Scenario, spec: AlbumSpec) -> None:
    emu.add_album(
        list(spec.artists),
        spec.name,
        album_type=spec.album_type,
        release_date=spec.date,
        release_date_precision=spec.precision,
        tracks=scenario.tracks_of(spec),
        album_id=spec.id,
        appears_on=list(spec.appears_on),
    )


def build(emu: SpotifyEmulator, scenario: Scenario) -> None:
    for aid, name, _ in scenario.artists:
        emu.add_artist(name, artist_id=aid, followers=1000)
    for hid, name in scenario.hosts:
        emu.add_artist(name, artist_id=hid, followers=10)
    for spec in scenario.catalogue:
        _add(emu, scenario, spec)


def _kind(path: str) -> str:
    if path == "/api/token":
        return "token"
    parts = [p for p in path.split("/") if p][1:]
    if parts[:1] == ["artists"]:
        return "artist_albums" if len(parts) == 3 else "artist"
    if parts[:1] == ["albums"]:
        return "album_tracks" if len(parts) == 3 else "album"
    return parts[0] if parts else "?"


async def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--seed", default="bench")
    ap.add_argument("--weeks", type=int, default=12)
    ap.add_argument("--latency", type=float, default=0.03)
    ap.add_argument("--rate-limit", default="9000/30", help="MAX/SECONDS, or 'none'")
    ap.add_argument(
        "--world", type=float, default=None, metavar="RATE", help="add the music world (releases per artist and week)"
    )
    args = ap.parse_args(argv)
    rate = None if args.rate_limit == "none" else tuple(float(x) for x in args.rate_limit.split("/"))
    if rate is not None:
        rate = (int(rate[0]), rate[1])
    t0 = time.perf_counter()
    scenario = Scenario(args.size, args.seed, args.weeks)
    emu = SpotifyEmulator(latency=args.latency, rate_limit=rate, seed=f"{args.seed}:{args.size}")
    build(emu, scenario)
    await emu.start()
    world = world_of(scenario, args.world) if args.world is not None else None
    mb = MusicBrainzEmulator(rate_limit=None)
    lb = ListenBrainzEmulator(rate_limit=(10**6, 10))
    urls = {}
    if world is not None:
        world.install(mb)
        await mb.start()
        await lb.start()
        urls = {"musicbrainz": mb.base_url, "listenbrainz": lb.base_url, "world_releases": len(world.releases)}
    out = sys.stdout
    out.write(
        json.dumps(
            {
                "api": emu.api_base_url,
                "accounts": emu.accounts_base_url,
                "client_id": emu.client_id,
                "client_secret": emu.client_secret,
                "build_seconds": round(time.perf_counter() - t0, 2),
                **urls,
            }
        )
        + "\n"
    )
    out.flush()
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            cmd = json.loads(line)
            reply: dict = {"ok": True}
            if cmd["cmd"] == "week":
                week = scenario.week_list[cmd["k"] - 1]
                for victim in week.removes:
                    emu.remove_album(victim)
                for spec in week.adds:
                    _add(emu, scenario, spec)
            elif cmd["cmd"] == "advance":
                assert world is not None, "advance needs --world"
                to = dt.datetime.fromisoformat(cmd["to"])
                reply = {"events": len(world.advance(to, spotify=emu, musicbrainz=mb, listenbrainz=lb))}
            elif cmd["cmd"] == "reset_window":
                emu.reset_rate_limit()
            elif cmd["cmd"] == "stats":
                log = emu.request_log
                reply = {
                    "requests": sum(1 for r in log if r.path != "/api/token"),
                    "by_status": dict(collections.Counter(r.status for r in log if r.path != "/api/token")),
                    "by_kind": dict(collections.Counter(_kind(r.path) for r in log)),
                    "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                    "musicbrainz_requests": len(mb.request_log),
                    "listenbrainz_requests": len(lb.request_log),
                }
                emu.clear_log()
                mb.clear_log()
                lb.clear_log()
            elif cmd["cmd"] == "quit":
                out.write(json.dumps(reply) + "\n")
                out.flush()
                break
            out.write(json.dumps(reply) + "\n")
            out.flush()
    finally:
        await emu.stop()
        if world is not None:
            await mb.stop()
            await lb.stop()


if __name__ == "__main__":
    asyncio.run(main())
