"""``release-bot demo`` — what the README's first command shows on a machine with no credentials."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> subprocess.CompletedProcess[str]:
    """One run of ``release-bot demo`` (its five weeks), shared by the tests of this module."""
    return subprocess.run(
        [sys.executable, "-m", "bot", "demo"],
        capture_output=True,
        text=True,
        timeout=110,
        cwd=tmp_path_factory.mktemp("demo"),
    )


@pytest.mark.timeout(120)
def test_demo_shows_baseline_then_only_new_releases_and_the_run_history(demo):
    out = demo.stdout
    assert demo.returncode == 0, demo.stderr[-2000:]
    baseline, week1 = out.split("── Week 1", 1)
    baseline, _announced = baseline.split("── Announced ahead", 1)
    assert baseline.rstrip().endswith("(nothing posted)")  # following takes a silent baseline
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
    assert "Traceback" not in demo.stderr and "voice will NOT" not in demo.stderr


@pytest.mark.timeout(120)
def test_demo_shows_a_routed_single_a_forum_post_and_a_mention_of_a_subscribed_member(demo):
    out = demo.stdout
    assert demo.returncode == 0, demo.stderr[-2000:]
    setup, weeks = out.split("── Week 1", 1)
    assert "Singles will be posted in #singles" in setup
    assert "New releases of **Lumen Choir** will be posted in #lumen-forum" in setup
    assert "You'll be mentioned in this server's post when **Nova Lights** releases" in setup
    week1, rest = weeks.split("── Week 2", 1)
    # The singles go to their route, the album to the default channel; both ping the subscribed member
    # (the mentions shown are the users Discord — the fake — recorded as pinged).
    new_music, singles = week1.split("  #singles ←", 1)
    assert "  #new-music ← 1 embed, mentions: @listener\n    ┌ Afterglow\n" in new_music
    assert singles.startswith(" 2 embeds, mentions: @listener\n")
    assert "┌ Midnight Drive\n" in singles and "┌ Harbour Lights\n" in singles
    # Lumen Choir's album: a forum post of its own, titled and tagged; its subscriber pinged there.
    assert "  #lumen-forum ▸ forum post “Lumen Choir — Evensong” [Album] ← 1 embed, mentions: @listener\n" in rest
    # Its single follows the artist's route (over the singles' route), tagged Single.
    assert "  #lumen-forum ▸ forum post “Lumen Choir — Matins” [Single] ← 1 embed, mentions: @listener\n" in rest
    # A single of an artist nobody subscribed to pings nobody.
    assert "  #singles ← 1 embed, mentions: none\n    ┌ Tides (Acoustic)\n" in rest


@pytest.mark.timeout(120)
def test_demo_shows_an_announcement_then_the_release_post_replying_out_now(demo):
    out = demo.stdout
    assert demo.returncode == 0, demo.stderr[-2000:]
    setup, rest = out.split("── Announced ahead", 1)
    assert "Releases MusicBrainz announces ahead for followed artists will be posted" in setup
    announced, weeks = rest.split("── Week 1", 1)
    announcement = "Announced: *Lighthouse* — The Quiet Harbour · out Friday 20 November"
    # The daily look posts the announcement where the album will go, with its MusicBrainz embed.
    assert (
        f"  #new-music ← 1 embed, mentions: none\n    “{announcement}”\n    ┌ Lighthouse\n"
        "    │ The Quiet Harbour\n    │ Album · out Friday 20 November\n"
    ) in announced
    assert "    └ https://musicbrainz.org/release-group/" in announced
    # On its Friday the weekly run's post of the album is a message of its own replying to it: "Out now!".
    week1, later = weeks.split("── Week 2", 1)
    assert (
        f"  #new-music ← 1 embed, mentions: none\n    ↪ replying to “{announcement}”\n    “Out now!”\n"
        "    ┌ Lighthouse\n    │ [The Quiet Harbour]"
    ) in week1
    assert "Type: Album · Released: 20 Nov 2026" in week1.split("┌ Lighthouse", 1)[1]
    # Once each: no second announcement and no second reply, even after the restart.
    assert out.count(f"\n    “{announcement}”\n") == 1 and out.count("\n    “Out now!”\n") == 1
    assert "Announced:" not in later and "Out now!" not in later
    assert "1 announced ahead, 1 posted as a reply to the announcement" in out
