"""``/settings types`` and ``/status`` through the Discord fake (the real bot), plus the service rules."""

from __future__ import annotations

import pytest
import pytest_asyncio

from bot.services.errors import UserError
from storage.models import Guild
from tests import backend

pytestmark = [pytest.mark.timeout(120), pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory):
    st = await backend.create_stack(tmp_path_factory.mktemp("types"))
    await st.start_bot()
    try:
        yield st
    finally:
        await st.close()


async def stored_groups(stack) -> list[str]:
    async with stack.bot.core.db.sessions() as s:
        return list((await s.get(Guild, stack.guild_id)).album_groups)


async def test_default_shown_in_status(stack):
    status = await stack.command("status")
    fields = {f["name"]: f["value"] for f in status.embeds[0]["fields"]}
    assert fields["Posting"] == "Albums, Singles, EPs, Compilations"
    reply = await stack.command("settings", {}, subcommand="types")
    assert reply.content == "Posting: Albums, Singles, EPs, Compilations. Nothing was changed."


async def test_options_change_only_what_is_given(stack):
    reply = await stack.command("settings", {"single": False, "ep": False, "appears_on": True}, subcommand="types")
    assert reply.content == "Posting: Albums, Compilations, Appears on."
    assert await stored_groups(stack) == ["album", "compilation", "appears_on"]
    reply = await stack.command("settings", {"compilation": False}, subcommand="types")
    assert reply.content == "Posting: Albums, Appears on."
    status = await stack.command("status")
    assert {f["name"]: f["value"] for f in status.embeds[0]["fields"]}["Posting"] == "Albums, Appears on"


async def test_none_selected_is_refused(stack):
    before = await stored_groups(stack)
    reply = await stack.command("settings", {"album": False, "appears_on": False}, subcommand="types")
    assert "at least one" in reply.content and "Nothing was changed" in reply.content
    assert reply.ephemeral
    assert await stored_groups(stack) == before


async def test_member_without_manage_server_is_refused(stack):
    before = await stored_groups(stack)
    reply = await stack.command("settings", {"single": True}, subcommand="types", user_id=stack.member_id)
    assert "Manage Server" in reply.content and reply.ephemeral
    assert await stored_groups(stack) == before


async def test_service_rules(stack):
    service = stack.bot.services.guild_settings
    with pytest.raises(UserError, match="at least one"):
        await service.set_album_groups(stack.guild_id, [])
    with pytest.raises(UserError, match="Unknown release type 'eps'"):
        await service.set_album_groups(stack.guild_id, ["album", "eps"])
    assert await service.set_album_groups(stack.guild_id, ["ep", "album"]) == ("album", "ep")
    assert await service.set_album_groups(stack.guild_id, [" Single", "album", "single"]) == ("album", "single")
    assert await service.album_groups(stack.guild_id) == ("album", "single")
    assert (await stack.bot.services.runs.status(stack.guild_id)).album_groups_text == "Albums, Singles"
