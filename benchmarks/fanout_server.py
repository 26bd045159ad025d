"""The Discord side of the fan-out benchmark, in its own process: the Discord fake and a Spotify emulator.

Run by ``benchmarks/fanout.py`` so that the fake's CPU (it answers every REST request and holds the
world) stays out of the bot process::

    python -m benchmarks.fanout_server --guilds 2500 --subscribers 200

It starts ``fakes.discord_fake.DiscordFake`` with ``--guilds`` guilds, each with one text channel
``#new-music``; the first guild also has ``--subscribers`` members (they share a server with the bot, so
their DMs are open). It starts ``fakes.spotify_emulator.SpotifyEmulator`` with one artist and one
old album, and prints one JSON line: ``{"api", "gateway", "token", "spotify": {api, accounts,
client_id, client_secret}, "artist_id", "guilds": [[guild id, channel id], …], "subscriber_guild",
"users": [user id, …]}``. Then one JSON command per stdin line, one JSON line answered:

* ``{"cmd": "release"}`` — the artist gets a new single (today, 1 track): the release to fan out;
* ``{"cmd": "mark"}`` — requests from now on are the delivery phase's;
* ``{"cmd": "report"}`` — the REST requests answered since ``mark``, by route
  (:func:`route_of`), their statuses, the first and last ``time.monotonic()`` (system-wide on Linux,
  so comparable with the bot process's), and what Discord holds now: embeds posted per channel,
  DMs per user, who was pinged and how often (``message["mentions"]``, as Discord computes them);
* ``{"cmd": "quit"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import json
import re
import sys
from typing import Any

from fakes.discord_fake import DiscordFake, RequestRecord
from fakes.spotify_emulator import SpotifyEmulator

_ID = re.compile(r"/\d+")


def route_of(record: RequestRecord, guild_channels: set[int]) -> str:
    """The benchmark's name for a REST request: ``channel post`` (a message with embeds in a guild
    channel), ``mention follow-up`` (a message with content only in a guild channel), ``DM channel open``
    (``POST /users/@me/channels``), ``DM message`` (a message in a DM channel), else ``METHOD /path``
    with the snowflakes replaced by ``{id}``."""
    parts = record.path.strip("/").split("/")
    if record.method == "POST" and len(parts) == 3 and parts[0] == "channels" and parts[2] == "messages":
        if int(parts[1]) not in guild_channels:
            return "DM message"
        return "channel post" if (record.json or {}).get("embeds") else "mention follow-up"
    if record.method == "POST" and record.path == "/users/@me/channels":
        return "DM channel open"
    return f"{record.method} {_ID.sub('/{id}', record.path)}"


async def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--guilds", type=int, default=2500)
    ap.add_argument("--subscribers", type=int, default=200)
    ap.add_argument(
        "--subscribers-in",
        choices=("first", "last"),
        default="first",
        help="the guild of the subscribers: the first created (lowest id: delivered first) or the last",
    )
    args = ap.parse_args(argv)
    fake = DiscordFake()
    await fake.start()
    spotify = SpotifyEmulator()
    await spotify.start()
    artist_id = spotify.add_artist("Nova Lights", followers=1000)
    spotify.add_album([artist_id], "First Light", album_type="album", release_date="2024-03-01", total_tracks=10)
    guilds: list[tuple[int, int]] = []
    for n in range(args.guilds):
        gid = fake.add_guild(f"Guild {n + 1}")
        guilds.append((gid, fake.add_channel(gid, "new-music")))
    home = guilds[0][0] if args.subscribers_in == "first" else guilds[-1][0]
    users = [fake.add_member(home, name=f"fan{n + 1}") for n in range(args.subscribers)]
    guild_channels = {cid for _gid, cid in guilds}
    out = sys.stdout
    out.write(
        json.dumps(
            {
                "api": fake.api_base_url,
                "gateway": fake.gateway_url,
                "token": fake.token,
                "spotify": {
                    "api": spotify.api_base_url,
                    "accounts": spotify.accounts_base_url,
                    "client_id": spotify.client_id,
                    "client_secret": spotify.client_secret,
                },
                "artist_id": artist_id,
                "guilds": guilds,
                "subscriber_guild": home,
                "users": users,
            }
        )
        + "\n"
    )
    out.flush()
    mark = 0
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            cmd = json.loads(line)
            reply: dict[str, Any] = {"ok": True}
            if cmd["cmd"] == "release":
                today = dt.datetime.now(dt.UTC).date().isoformat()
                spotify.add_album(
                    [artist_id], "Midnight Drive", album_type="single", release_date=today, total_tracks=1
                )
            elif cmd["cmd"] == "mark":
                mark = len(fake.request_log)
            elif cmd["cmd"] == "report":
                records = fake.request_log[mark:]
                by_route = collections.Counter(route_of(r, guild_channels) for r in records)
                statuses = collections.Counter(str(r.status) for r in records)
                posts: collections.Counter[int] = collections.Counter()
                pinged: collections.Counter[int] = collections.Counter()
                for _gid, cid in guilds:
                    for message in fake.channel_messages(cid):
                        posts[cid] += len(message.get("embeds") or [])
                        pinged.update(int(u["id"]) for u in message.get("mentions") or [])
                reply = {
                    "requests": len(records),
                    "by_route": dict(by_route),
                    "statuses": dict(statuses),
                    "first_at": records[0].at if records else None,
                    "last_at": records[-1].at if records else None,
                    "embeds_per_channel": {str(c): n for c, n in posts.items()},
                    "dms_per_user": {str(u): len(fake.dms(u)) for u in users},
                    "pinged": {str(u): n for u, n in pinged.items()},
                }
            elif cmd["cmd"] == "quit":
                out.write(json.dumps(reply) + "\n")
                out.flush()
                break
            out.write(json.dumps(reply) + "\n")
            out.flush()
    finally:
        await spotify.stop()
        await fake.stop()


if __name__ == "__main__":
    asyncio.run(main())
