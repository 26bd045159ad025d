"""``cogs.follows``: ``/follow``, ``/unfollow`` (and their autocomplete) and ``/following`` with its pages.

Each test calls ``await cog.<command>.callback(cog, interaction, ...)`` with an autospec'd
``discord.Interaction`` and autospec'd command services (``bot.services``: see ``tests/cogs/mocks.py``);
the cogs come from the fixtures of ``tests/cogs/conftest.py``.
"""

from __future__ import annotations

import datetime as dt

import pytest

from bot.services.errors import UserError
from bot.services.follows import FollowedArtist, FollowOutcome
from cogs.follows import Paginator, following_pages
from tests.cogs.mocks import GUILD_ID, MEMBER_ID, handle_error, make_interaction, sent, text

pytestmark = pytest.mark.timeout(30)

NOW = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
ARTIST = "4Z8W4fKeB5YxbusRsdQVPb"


# --- /follow, /unfollow -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "outcome, expected",
    [
        (FollowOutcome(ARTIST, "Nova Lights", False, 12), "Now following [Nova Lights]"),
        (FollowOutcome(ARTIST, "Nova Lights", True, None), "already follows [Nova Lights]"),
        (FollowOutcome(ARTIST, "Nova Lights", False, None), "Spotify is busy"),
    ],
)
async def test_follow(follows, bot, outcome, expected):
    bot.services.follows.follow.return_value = outcome
    i = make_interaction()
    await follows.follow.callback(follows, i, "Nova Lights")
    i.response.defer.assert_awaited_once_with(ephemeral=True, thinking=True)
    bot.services.follows.follow.assert_awaited_once_with(GUILD_ID, "Nova Lights")
    assert expected in text(i) and f"open.spotify.com/artist/{ARTIST}" in text(i)


async def test_follow_bad_input_is_a_private_error(follows, bot):
    bot.services.follows.follow.side_effect = UserError("No Spotify artist matches “zzqx”.")
    i = make_interaction()
    with pytest.raises(UserError) as info:
        await follows.follow.callback(follows, i, "zzqx")
    await handle_error(i, info.value)
    assert "No Spotify artist matches" in i.followup.send.await_args.kwargs["content"]
    assert i.followup.send.await_args.kwargs["ephemeral"] is True


async def test_follow_autocomplete(follows, bot):
    bot.services.follows.artist_choices.return_value = [("Nova Lights · synthpop", ARTIST)]
    choices = await follows.follow_autocomplete(make_interaction(), "nova")
    assert [(c.name, c.value) for c in choices] == [("Nova Lights · synthpop", ARTIST)]
    assert await follows.follow_autocomplete(make_interaction(manage=False), "nova") == []


async def test_unfollow(follows, bot):
    bot.services.follows.unfollow.return_value = "Nova_Lights"
    i = make_interaction()
    await follows.unfollow.callback(follows, i, ARTIST)
    bot.services.follows.unfollow.assert_awaited_once_with(GUILD_ID, ARTIST)
    assert text(i) == r"Unfollowed **Nova\_Lights**." and sent(i)["ephemeral"]
    bot.services.follows.unfollow.side_effect = UserError("This server doesn't follow “x”.")
    with pytest.raises(UserError):
        await follows.unfollow.callback(follows, make_interaction(), "x")


async def test_unfollow_autocomplete(follows, bot):
    bot.services.follows.followed_choices.return_value = [("Nova Lights", ARTIST)]
    choices = await follows.unfollow_autocomplete(make_interaction(), "no")
    assert [(c.name, c.value) for c in choices] == [("Nova Lights", ARTIST)]
    bot.services.follows.followed_choices.assert_awaited_once_with(GUILD_ID, "no")


# --- /following -------------------------------------------------------------------------------


def followed(n: int) -> list[FollowedArtist]:
    rows = []
    for k in range(n):
        rows.append(
            FollowedArtist(
                f"{k:022d}",
                f"Artist {k:02d}",
                NOW,
                NOW - dt.timedelta(hours=k) if k % 3 else None,
                "timeout" if k == 1 else None,
                *((f"r{k}", f"Record *{k}*", "2026-11-14", "day") if k % 2 == 0 else (None, None, None, None)),
            )
        )
    return rows


async def test_following_empty(follows, bot):
    bot.services.follows.following.return_value = []
    i = make_interaction()
    await follows.following.callback(follows, i)
    assert "follows no artists yet" in text(i)


async def test_following_short_list_has_no_buttons(follows, bot):
    bot.services.follows.following.return_value = followed(3)
    i = make_interaction(user_id=MEMBER_ID, manage=False)
    await follows.following.callback(follows, i)
    kwargs = sent(i)
    assert "view" not in kwargs and kwargs["ephemeral"]
    description = kwargs["embed"].description
    assert r"last release *Record \*0\**" in description and "(14 Nov 2026)" in description
    assert "no release known yet" in description and "not checked yet" in description
    assert "⚠ last check failed" in description and "checked <t:" in description
    assert kwargs["embed"].title == "Following 3 artists"


async def test_following_long_list_pages_with_buttons(follows, bot):
    bot.services.follows.following.return_value = followed(25)
    i = make_interaction()
    await follows.following.callback(follows, i)
    kwargs = i.response.send_message.await_args.kwargs
    view = kwargs["view"]
    assert isinstance(view, Paginator) and kwargs["ephemeral"] and view.timeout == 180
    assert kwargs["embed"].footer.text == "Page 1/3" and "Artist 00" in kwargs["embed"].description
    assert (view.previous.disabled, view.next.disabled) == (True, False)

    # The invoker turns the pages.
    click = make_interaction()
    assert await view.interaction_check(click)
    await view.next.callback(click)
    page = click.response.edit_message.await_args.kwargs
    assert page["embed"].footer.text == "Page 2/3" and "Artist 10" in page["embed"].description
    click = make_interaction()
    await view.next.callback(click)
    assert click.response.edit_message.await_args.kwargs["embed"].footer.text == "Page 3/3"
    assert (view.previous.disabled, view.next.disabled) == (False, True)
    click = make_interaction()
    await view.previous.callback(click)
    assert click.response.edit_message.await_args.kwargs["embed"].footer.text == "Page 2/3"

    # Someone else may not.
    other = make_interaction(user_id=MEMBER_ID, manage=False)
    assert not await view.interaction_check(other)
    assert "Only the person who ran `/following`" in text(other) and sent(other)["ephemeral"]

    # Timeout disables the buttons on the reply.
    await view.on_timeout()
    edited = i.edit_original_response.await_args.kwargs["view"]
    assert all(item.disabled for item in edited.children)
    view.stop()


def test_following_pages_stay_within_discord_limits():
    rows = [FollowedArtist(f"{k:022d}", "N" * 300, NOW, NOW, "e", "r", "T" * 500, "2026", "year") for k in range(23)]
    pages = following_pages(rows)
    assert len(pages) == 3 and all(p.description is not None and len(p.description) <= 4096 for p in pages)
