"""``bot.delivery.components``: the buttons and the select under a post (custom ids, labels, Discord's limits)."""

from __future__ import annotations

import re
from types import SimpleNamespace

from bot.delivery.components import (
    HIDE_TEMPLATE,
    MAX_SELECT_OPTIONS,
    UNFOLLOW_SELECT_ID,
    UNFOLLOW_SELECT_TEMPLATE,
    UNFOLLOW_TEMPLATE,
    render_components,
)
from fakes.discord_fake import validate_message_body

NOVA = "1" * 22
GUEST = "2" * 22


def announcement(release_id: str, album_type: str, *artists: tuple[str, str]):
    release = SimpleNamespace(id=release_id, album_type=album_type, artists=[{"id": a, "name": n} for a, n in artists])
    return SimpleNamespace(release=release, twins=[])


def ids(rows) -> list[str]:
    return [c["custom_id"] for row in rows for c in row["components"]]


def test_single_release_gets_buttons():
    rows = render_components([announcement("r1", "single", (NOVA, "Nova"), (GUEST, "Guest"))])
    assert ids(rows) == [f"rb:unfollow:{NOVA}", f"rb:unfollow:{GUEST}", "rb:hide:single"]
    assert [c["label"] for row in rows for c in row["components"]] == [
        "Unfollow Nova",
        "Unfollow Guest",
        "Hide singles",
    ]
    assert all(re.fullmatch(UNFOLLOW_TEMPLATE, i) for i in ids(rows)[:2])
    assert re.fullmatch(HIDE_TEMPLATE, ids(rows)[2])
    assert validate_message_body({"content": "x", "components": rows}) == {}
    assert render_components([]) == []


def test_digest_uses_a_select_and_one_hide_button_per_type():
    artists = [(f"{i:022d}", f"Artist {i} " + "x" * 120) for i in range(30)]
    anns = [announcement(f"r{i}", ("album", "single", "compilation")[i % 3], a) for i, a in enumerate(artists)]
    anns.append(announcement("dup", "album", artists[0]))
    rows = render_components(anns)
    assert len(rows) == 2
    select = rows[0]["components"][0]
    assert select["custom_id"] == UNFOLLOW_SELECT_ID and re.fullmatch(UNFOLLOW_SELECT_TEMPLATE, select["custom_id"])
    assert len(select["options"]) == MAX_SELECT_OPTIONS and select["options"][0]["value"] == artists[0][0]
    assert all(len(o["label"]) <= 100 for o in select["options"])
    assert ids(rows)[1:] == ["rb:hide:album", "rb:hide:single", "rb:hide:compilation"]
    assert validate_message_body({"components": rows}) == {}


def test_followed_filter_and_known_groups():
    ann = announcement("r1", "album", (NOVA, "Nova"), (GUEST, "Guest"))
    rows = render_components([ann], followed_artist_ids={GUEST}, groups={"r1": "appears_on"})
    assert ids(rows) == [f"rb:unfollow:{GUEST}", "rb:hide:appears_on"]
    assert rows[1]["components"][0]["label"] == "Hide appearances"
    long_name = render_components([announcement("r", "weird", (NOVA, "N" * 200))])
    assert len(long_name[0]["components"][0]["label"]) == 80 and len(long_name) == 1
