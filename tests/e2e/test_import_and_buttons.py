"""End to end through the fakes: ``/import`` a playlist → confirm → artists followed silently,
then the buttons on a post: unfollow by button (the artist's next release is not posted), hide
a release type by button, a member without Manage Server refused, buttons still working after
a restart (persistent ``DynamicItem`` s)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from fakes.stack import Stack
from storage.models import Follow, Guild
from tests import backend

pytestmark = pytest.mark.timeout(120)


def component(message: dict, *, label: str | None = None, custom_id: str | None = None) -> dict:
    for row in message.get("components") or []:
        for c in row.get("components") or []:
            if (label is not None and c.get("label") == label) or (
                custom_id is not None and c.get("custom_id") == custom_id
            ):
                return c
    raise AssertionError(f"no component {label or custom_id!r} in {message.get('components')}")


async def press(stack: Stack, message: dict, custom_id: str, user_id: int, values=None):
    handle = await stack.discord.invoke_component(message, custom_id, user_id, values)
    await handle.wait_done(timeout=15)
    return handle


async def followed(stack: Stack) -> set[str]:
    async with backend.running_bot(stack).core.db.sessions() as session:
        return set((await session.scalars(select(Follow.artist_id).where(Follow.guild_id == stack.guild_id))).all())


async def test_import_then_buttons(tmp_path):
    stack = await backend.create_stack(tmp_path)
    sp = stack.spotify
    try:
        nova = sp.add_artist("Nova Lights")
        guest = sp.add_artist("Guest Star")
        harbour = sp.add_artist("The Quiet Harbour")
        known = sp.add_artist("Already Known")
        for i in range(3):
            sp.add_album([nova], f"Nova Single {i}", album_type="single", release_date=f"2025-0{i + 1}-05")
        duet = sp.add_album([nova, guest], "Duet", album_type="single", release_date="2025-06-01")
        harbour_album = sp.add_album([harbour], "Harbour Songs", release_date="2024-05-01")
        known_album = sp.add_album([known], "Known Hits", release_date="2023-01-01")
        playlist = sp.add_playlist(
            "Road Trip",
            [
                duet,
                harbour_album,
                {"local": "tape.mp3", "artist": "Uncle"},
                {"episode": "A podcast"},
                None,
                known_album,
                duet,
            ],
        )
        await stack.start_bot()
        await stack.command("settings", {"channel": stack.channel_id}, subcommand="channel")
        await stack.command("follow", {"artist": known})

        # Errors: not a playlist, a private playlist.
        reply = await stack.command("import", {"playlist": f"https://open.spotify.com/album/{duet}"})
        assert "album link, not a playlist" in reply.content and reply.ephemeral
        private = sp.add_playlist("Secret", [duet], public=False)
        reply = await stack.command("import", {"playlist": f"https://open.spotify.com/playlist/{private}"})
        assert "doesn't exist or is private" in reply.content

        # A member without Manage Server cannot import.
        reply = await stack.command("import", {"playlist": playlist}, user_id=stack.member_id)
        assert "Manage Server" in reply.content

        # Preview: distinct track artists minus the followed one, with Confirm / Cancel.
        prompt = await stack.command("import", {"playlist": f"https://open.spotify.com/playlist/{playlist}?si=x"})
        assert prompt.ephemeral
        text = prompt.content
        assert "**Road Trip** has 4 artists (1 already followed here)" in text
        assert "Follow **3** of them: Nova Lights, Guest Star, The Quiet Harbour." in text
        assert "at most 50 artists per import" in text and "Skipped 3" in text
        message = prompt.final
        confirm = component(message, label="Confirm")
        assert component(message, label="Cancel")
        assert await followed(stack) == {known}

        # Only the invoker may confirm.
        other = await press(stack, message, confirm["custom_id"], stack.member_id)
        assert "Only the person who ran" in other.content and other.ephemeral
        assert await followed(stack) == {known}

        done = await press(stack, message, confirm["custom_id"], stack.admin_id)
        await stack.until(lambda: "Now following" in (prompt.final or {}).get("content", ""), what="import summary")
        summary = prompt.final["content"]
        assert "Now following **3** artists" in summary and "3 ready" in summary, summary
        assert prompt.final["components"] == []
        assert done.callback["type"] == 7
        assert await followed(stack) == {known, nova, guest, harbour}
        assert stack.posted() == []

        # Baselines were taken: a refresh posts nothing.
        reply = await stack.command("refresh")
        assert stack.posted() == [], reply.content

        # A new release is posted with buttons.
        stack.clock.advance(hours=20)
        sp.add_album([nova], "Comet", album_type="single", release_date="2026-11-17")
        await stack.command("refresh")
        assert stack.posted_titles() == ["Comet"]
        post = stack.posted()[-1]
        unfollow = component(post, label="Unfollow Nova Lights")
        hide = component(post, label="Hide singles")

        # A member without Manage Server is refused, ephemerally; nothing changes.
        refused = await press(stack, post, unfollow["custom_id"], stack.member_id)
        assert "Manage Server" in refused.content and refused.ephemeral
        assert nova in await followed(stack)

        ok = await press(stack, post, unfollow["custom_id"], stack.admin_id)
        assert "Unfollowed **Nova Lights**" in ok.content and ok.ephemeral
        assert nova not in await followed(stack)
        again = await press(stack, post, unfollow["custom_id"], stack.admin_id)
        assert "doesn't follow that artist" in again.content

        # The unfollowed artist's next release is not posted; another artist's is.
        stack.clock.advance(hours=20)
        sp.add_album([nova], "Nebula", album_type="single", release_date="2026-11-18")
        sp.add_album([harbour], "Low Tide", album_type="single", release_date="2026-11-18")
        await stack.command("refresh")
        assert stack.posted_titles() == ["Comet", "Low Tide"]

        # Restart: the buttons of an old post still work (persistent), here "Hide singles".
        await stack.restart_bot()
        hidden = await press(stack, post, hide["custom_id"], stack.admin_id)
        assert "Singles won't be posted here any more" in hidden.content
        async with backend.running_bot(stack).core.db.sessions() as session:
            guild = await session.get(Guild, stack.guild_id)
            assert guild is not None and list(guild.album_groups) == [
                "album",
                "ep",
                "compilation",
            ]  # EPs are their own type
        stack.clock.advance(hours=20)
        sp.add_album([harbour], "High Tide", album_type="single", release_date="2026-11-19")
        sp.add_album([harbour], "Harbour Nights", album_type="album", release_date="2026-11-19")
        await stack.command("refresh")
        assert stack.posted_titles() == ["Comet", "Low Tide", "Harbour Nights"]
    finally:
        await stack.close()


async def test_digest_select_unfollows_the_chosen_artist(tmp_path):
    """A message with releases of more than three artists carries the "Unfollow an artist…" select."""
    stack = await backend.create_stack(tmp_path)
    sp = stack.spotify
    try:
        names = ["Ada", "Bea", "Cy", "Dee", "Eve"]
        ids = [sp.add_artist(n) for n in names]
        albums = [sp.add_album([a], f"{n} Old", release_date="2024-01-01") for a, n in zip(ids, names, strict=True)]
        playlist = sp.add_playlist("Five", albums)
        await stack.start_bot()
        await stack.command("settings", {"channel": stack.channel_id}, subcommand="channel")
        prompt = await stack.command("import", {"playlist": playlist})
        await press(stack, prompt.final, component(prompt.final, label="Confirm")["custom_id"], stack.admin_id)
        await stack.until(lambda: "Now following" in (prompt.final or {}).get("content", ""), what="import")
        assert await followed(stack) == set(ids)

        stack.clock.advance(hours=20)
        for a, n in zip(ids, names, strict=True):
            sp.add_album([a], f"{n} New", album_type="single" if n != "Eve" else "album", release_date="2026-11-17")
        await stack.command("refresh")
        post = stack.posted()[-1]
        assert len(post["embeds"]) == 5
        select = component(post, custom_id="rb:unfollow-select")
        assert sorted(o["label"] for o in select["options"]) == names
        assert [c["label"] for c in post["components"][1]["components"]] == ["Hide albums", "Hide singles"]

        refused = await press(stack, post, "rb:unfollow-select", stack.member_id, [ids[2]])
        assert "Manage Server" in refused.content
        done = await press(stack, post, "rb:unfollow-select", stack.admin_id, [ids[2]])
        assert "Unfollowed **Cy**" in done.content and done.ephemeral
        assert await followed(stack) == set(ids) - {ids[2]}
    finally:
        await stack.close()
