"""``release-bot check``: baseline silently, then print exactly the releases first seen."""

from __future__ import annotations

import asyncio
import io
import json
import sys

import pytest

from bot.cli.check import format_profile, run_check
from bot.settings import DatabaseSettings, DiscordSettings, Settings, SpotifySettings
from fakes.spotify_emulator import SpotifyEmulator
from tests import backend


@pytest.fixture
async def emulator():
    async with SpotifyEmulator() as emu:
        yield emu


def settings_for(emu: SpotifyEmulator, tmp_path) -> Settings:
    return Settings(
        discord=DiscordSettings(token=""),
        spotify=SpotifySettings(
            client_id=emu.client_id,
            client_secret=emu.client_secret,
            api_base_url=emu.api_base_url,
            accounts_base_url=emu.accounts_base_url,
        ),
        database=DatabaseSettings(url=backend.database_url(tmp_path, "bot")),
    )


async def no_wait(_seconds: float) -> None:
    return None


async def check(settings, args, as_json=True):
    out, err = io.StringIO(), io.StringIO()
    code = await run_check(settings, args, as_json=as_json, out=out, err=err, sleep=no_wait)
    return (
        code,
        [json.loads(line) for line in out.getvalue().splitlines()] if as_json else out.getvalue(),
        err.getvalue(),
    )


async def test_first_pass_is_a_silent_baseline_then_only_new_releases(emulator, tmp_path):
    settings = settings_for(emulator, tmp_path)
    artist = emulator.add_artist("Nova Lights")
    emulator.add_album([artist], "First Light", release_date="2024-03-01")
    code, lines, err = await check(settings, [artist])
    assert code == 0 and lines == [] and "baseline: Nova Lights" in err

    new = emulator.add_album([artist], "Midnight Drive", album_type="single", release_date="2026-11-20")
    code, lines, _ = await check(settings, [f"https://open.spotify.com/artist/{artist}"])
    assert code == 0
    assert lines == [
        {
            "album_id": new,
            "url": f"https://open.spotify.com/album/{new}",
            "artists": ["Nova Lights"],
            "name": "Midnight Drive",
            "album_type": "single",
            "release_date": "2026-11-20",
            "release_date_precision": "day",
            "also": [],
        }
    ]

    code, lines, _ = await check(settings, [artist])
    assert code == 0 and lines == []


async def test_text_output_names_the_release(emulator, tmp_path):
    settings = settings_for(emulator, tmp_path)
    artist = emulator.add_artist("Lumen Choir")
    await check(settings, [artist])
    emulator.add_album([artist], "Evensong", release_date="2026-12", release_date_precision="month")
    code, text, _ = await check(settings, [artist], as_json=False)
    assert code == 0 and "Lumen Choir — Evensong (Dec 2026)" in text


async def test_bad_artist_argument_is_refused(emulator, tmp_path):
    code, lines, err = await check(
        settings_for(emulator, tmp_path), ["https://open.spotify.com/album/4aawyAB9vmqN3uQ7FjRGTy"]
    )
    assert code == 2 and lines == [] and "album link" in err
    assert not emulator.request_log


async def test_one_failing_artist_does_not_hide_the_others(emulator, tmp_path):
    settings = settings_for(emulator, tmp_path)
    good, bad = emulator.add_artist("Good"), emulator.add_artist("Flaky")
    await check(settings, [good, bad])
    emulator.add_album([good], "Fresh", album_type="single", release_date="2026-11-20")
    emulator.add_album([bad], "Also Fresh", album_type="single", release_date="2026-11-20")
    emulator.fail_next(20, status=503, path_contains=f"/artists/{bad}/albums")
    code, lines, err = await check(settings, [good, bad])
    assert code == 1 and [line["name"] for line in lines] == ["Fresh"] and "could not check Flaky" in err
    emulator.clear_faults()
    code, lines, _ = await check(settings, [good, bad])
    assert code == 0 and [line["name"] for line in lines] == ["Also Fresh"]


async def test_cli_json_lines(emulator, tmp_path):
    artist = emulator.add_artist("Nova Lights")
    config = tmp_path / "config.toml"
    config.write_text(f"""
[spotify]
client_id = "{emulator.client_id}"
client_secret = "{emulator.client_secret}"
api_base_url = "{emulator.api_base_url}"
accounts_base_url = "{emulator.accounts_base_url}"
[database]
url = "{backend.database_url(tmp_path, "cli")}"
""")

    async def cli():
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "check",
            "--config",
            str(config),
            "--artist",
            artist,
            "--json",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        return proc.returncode, out.decode(), err.decode()

    code, out, err = await cli()
    assert code == 0 and out == "" and "baseline" in err
    emulator.add_album([artist], "Midnight Drive", album_type="single", release_date="2026-11-20")
    code, out, _ = await cli()
    assert code == 0 and [json.loads(line)["name"] for line in out.splitlines()] == ["Midnight Drive"]


async def test_profile_prints_the_run_metrics(emulator, tmp_path):
    settings = settings_for(emulator, tmp_path)
    artist = emulator.add_artist("Profiled")
    for i in range(14):
        emulator.add_album([artist], f"Old {i}", album_type="single", release_date=f"2019-01-{i + 1:02d}")
    await check(settings, [artist])
    emulator.add_album([artist], "New", album_type="single", release_date="2026-11-20")
    out, err = io.StringIO(), io.StringIO()
    code = await run_check(settings, [artist], as_json=True, out=out, err=err, sleep=no_wait, profile=True)
    assert code == 0
    text = err.getvalue()
    for label in ("requests", "by endpoint", "lower bound L", "lower bound L_B", "pages skipped", "429s", "seconds"):
        assert label in text
    profile = json.loads([line for line in text.splitlines() if line.startswith("{")][-1])["profile"]
    assert profile["requests_by_endpoint"]["artist_albums"] == 1
    assert profile["lower_bound"] == 1 + profile["label_requests"] and profile["rate_limited"] == 0
    assert set(profile["phase_seconds"]) == {"plan", "track", "label", "deliver"}
    assert profile["pages_skipped"] == 1 and profile["carried_over"] == 0
    # Checked again right after its baseline: no re-check is due, L_B = L.
    assert profile["recheck_plan"]["planned"] == 0 and profile["lower_bound_recheck"] == profile["lower_bound"]
    assert profile["requests_over_lb"] == pytest.approx(profile["requests"] / profile["lower_bound"], abs=1e-4)


def test_profile_shows_the_recheck_aware_lower_bound():
    lines = format_profile(
        {
            "requests": 1180,
            "lower_bound": 1000,
            "lower_bound_recheck": 1176.4,
            "requests_over_lb": 1.0031,
            "rechecked": 140,
            "recheck_requests": 175,
            "recheck_plan": {
                "period_runs": 8,
                "cycle": 1411,
                "even_share": 176.4,
                "fair_share": 176.4,
                "planned": 175,
                "forced": 12,
                "overdue": 0,
            },
        }
    )
    text = "\n".join(lines)
    assert "lower bound L_B 1176.4 (L + the re-check's fair share 176.4 pages); requests ÷ L_B 1.003" in text
    assert (
        "140 artists read whole, 175 pages beyond their probe (planned 175, even share 176.4 of 1411 per 8 runs" in text
    )
