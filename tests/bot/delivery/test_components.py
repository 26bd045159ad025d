"""``bot.delivery.components``: which buttons a post gets, their labels and their custom ids.

The custom ids are a contract with every post already in a channel (they keep working after a
restart or an upgrade): they are asserted here literally. How the Discord layer sends and answers
them: ``tests/bot/discord_app/test_post_buttons.py``.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest

from bot.delivery.components import (
    HIDE_TEMPLATE,
    MAX_SELECT_OPTIONS,
    NOTIFY_SELECT_ID,
    NOTIFY_SELECT_TEMPLATE,
    NOTIFY_STOP_TEMPLATE,
    NOTIFY_TEMPLATE,
    UNFOLLOW_SELECT_ID,
    UNFOLLOW_SELECT_TEMPLATE,
    UNFOLLOW_TEMPLATE,
    HideTypeButton,
    NotifyArtistButton,
    NotifyArtistSelect,
    PostButtons,
    StopNotifyButton,
    UnfollowArtistButton,
    UnfollowArtistSelect,
    post_buttons,
)
from bot.delivery.planner import Announcement
from storage.models import Release

NOVA = "1" * 22
GUEST = "2" * 22


def announcement(release_id: str, album_type: str, *artists: tuple[str, str]) -> Announcement:
    release = Release(
        id=release_id,
        name=release_id,
        album_type=album_type,
        artists=[{"id": a, "name": n} for a, n in artists],
        release_date="2026-11-20",
        release_date_precision="day",
        first_seen_at=dt.datetime(2026, 11, 20, tzinfo=dt.UTC),
    )
    return Announcement(release)


def ids(buttons: PostButtons) -> list[str]:
    return [item.custom_id for row in buttons.rows() for item in row]


def test_single_release_gets_buttons():
    buttons = post_buttons([announcement("r1", "single", (NOVA, "Nova"), (GUEST, "Guest"))])
    assert buttons.unfollow == (
        UnfollowArtistButton(NOVA, "Unfollow Nova"),
        UnfollowArtistButton(GUEST, "Unfollow Guest"),
    )
    assert buttons.hide == (HideTypeButton("single"),)
    assert buttons.notify == (
        NotifyArtistButton(NOVA, "🔔 Notify me: Nova"),
        NotifyArtistButton(GUEST, "🔔 Notify me: Guest"),
    )
    assert ids(buttons) == [
        f"rb:unfollow:{NOVA}",
        f"rb:unfollow:{GUEST}",
        "rb:hide:single",
        f"rb:notify:{NOVA}",
        f"rb:notify:{GUEST}",
    ]
    assert isinstance(buttons.unfollow, tuple) and isinstance(buttons.notify, tuple)
    assert [b.label for b in (*buttons.unfollow, *buttons.hide, *buttons.notify)] == [
        "Unfollow Nova",
        "Unfollow Guest",
        "Hide singles",
        "🔔 Notify me: Nova",
        "🔔 Notify me: Guest",
    ]
    assert all(re.fullmatch(UNFOLLOW_TEMPLATE, i) for i in ids(buttons)[:2])
    assert re.fullmatch(HIDE_TEMPLATE, ids(buttons)[2])
    assert all(re.fullmatch(NOTIFY_TEMPLATE, i) for i in ids(buttons)[3:])
    assert not post_buttons([]) and post_buttons([]).rows() == []


def test_digest_uses_a_select_and_one_hide_button_per_type():
    artists = [(f"{i:022d}", f"Artist {i} " + "x" * 120) for i in range(30)]
    anns = [announcement(f"r{i}", ("album", "single", "compilation")[i % 3], a) for i, a in enumerate(artists)]
    anns.append(announcement("dup", "album", artists[0]))
    buttons = post_buttons(anns)
    assert len(buttons.rows()) == 3
    select = buttons.unfollow
    assert isinstance(select, UnfollowArtistSelect)
    assert select.custom_id == UNFOLLOW_SELECT_ID == "rb:unfollow-select"
    assert re.fullmatch(UNFOLLOW_SELECT_TEMPLATE, select.custom_id)
    assert select.placeholder == "Unfollow an artist…"
    assert len(select.options) == MAX_SELECT_OPTIONS and select.options[0].artist_id == artists[0][0]
    assert all(len(o.label) <= 100 for o in select.options)
    assert ids(buttons)[1:] == ["rb:hide:album", "rb:hide:single", "rb:hide:compilation", "rb:notify-select"]
    notify = buttons.notify
    assert isinstance(notify, NotifyArtistSelect)
    assert notify.custom_id == NOTIFY_SELECT_ID == "rb:notify-select"
    assert re.fullmatch(NOTIFY_SELECT_TEMPLATE, notify.custom_id)
    assert notify.placeholder == "🔔 Notify me about…"
    assert [(o.artist_id, o.label) for o in notify.options] == [(o.artist_id, o.label) for o in select.options]


def test_followed_filter_and_known_groups():
    ann = announcement("r1", "album", (NOVA, "Nova"), (GUEST, "Guest"))
    buttons = post_buttons([ann], followed_artist_ids={GUEST}, groups={"r1": "appears_on"})
    assert ids(buttons) == [f"rb:unfollow:{GUEST}", "rb:hide:appears_on", f"rb:notify:{GUEST}"]
    assert buttons.hide[0].label == "Hide appearances"
    long_name = post_buttons([announcement("r", "weird", (NOVA, "N" * 200))])
    assert isinstance(long_name.unfollow, tuple) and isinstance(long_name.notify, tuple)
    assert len(long_name.unfollow[0].label) == 80 and len(long_name.rows()) == 2
    # 80 UTF-16 code units at most, the bell counting two (however Discord counts, it fits)
    assert long_name.notify[0].label == "🔔 Notify me: " + "N" * 65 + "…"


def test_artists_without_a_spotify_id_get_no_button():
    buttons = post_buttons([announcement("r1", "album", ("local", "Local Artist"), (NOVA, "Nova"))])
    assert ids(buttons) == [f"rb:unfollow:{NOVA}", "rb:hide:album", f"rb:notify:{NOVA}"]


def test_notify_custom_ids():
    """``rb:notify:<artist id>`` on posts; ``rb:notify-stop:<artist id>`` on the private answer only."""
    assert NotifyArtistButton(NOVA, "x").custom_id == f"rb:notify:{NOVA}"
    stop = StopNotifyButton(NOVA)
    assert stop.custom_id == f"rb:notify-stop:{NOVA}" and stop.label == "Stop notifying me"
    assert re.fullmatch(NOTIFY_STOP_TEMPLATE, stop.custom_id)
    assert re.fullmatch(NOTIFY_TEMPLATE, stop.custom_id) is None  # each id is answered by one class
    assert re.fullmatch(NOTIFY_TEMPLATE, "rb:notify-select") is None
    assert re.fullmatch(NOTIFY_TEMPLATE, "rb:notify:short") is None
    assert PostButtons(notify=(NotifyArtistButton(NOVA, "x"),))  # a notify row alone is a button


def test_a_hide_button_names_a_release_type():
    with pytest.raises(ValueError, match="not an album group"):
        HideTypeButton("podcast")


def test_an_ep_gets_its_own_hide_button():
    five = announcement("r1", "single", (NOVA, "Nova"))
    five.release.total_tracks = 5  # Spotify calls it a single; 4–6 tracks make it an EP
    one = announcement("r2", "single", (NOVA, "Nova"))
    buttons = post_buttons([five, one])
    assert ids(buttons)[1:3] == ["rb:hide:single", "rb:hide:ep"]
    assert [b.label for b in buttons.hide] == ["Hide singles", "Hide EPs"]
    assert re.fullmatch(HIDE_TEMPLATE, "rb:hide:ep")
