"""Exactly once across crashes: unconfirmed claims settled from the channel's recent messages,
transient send failures, post buttons passthrough, interrupted runs, the channel notice mark."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from bot.delivery import ChannelUnavailable, Deliverer, components
from bot.delivery.components import PostButtons, UnfollowArtistButton
from bot.delivery.render import ALBUM_URL
from bot.scheduling.runner import Runner
from bot.spotify.client import SpotifyClient
from bot.tracking import Tracker
from storage import catalog, guilds
from storage.models import Delivery, Guild, Run
from tests.bot.delivery.test_deliverer import setup
from tests.bot.helpers import FakeSender, ledger


class ChannelSender(FakeSender):
    """A ``Sender`` of text channels with a channel history: ``find_posted`` reads what was posted (or
    ``find_error``)."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict] = []  # type: ignore[assignment]  # {"id", "channel", "embeds", "nonce", **extra}
        self.fail_with: BaseException | None = None
        self.create_then_fail = False  # Discord created the message, but the answer was lost
        self.find_error: BaseException | None = None
        self.finds = 0
        self._next = 5000

    def post(self, channel_id, embeds, nonce="x", **extra) -> int:
        self._next += 1
        self.messages.append({"id": self._next, "channel": channel_id, "embeds": embeds, "nonce": nonce, **extra})
        return self._next

    async def send(self, channel_id, embeds, *, nonce, **extra) -> int:
        if self.fail_with is not None:
            if self.create_then_fail:
                self.post(channel_id, embeds, nonce, **extra)
            raise self.fail_with
        return self.post(channel_id, embeds, nonce, **extra)

    async def find_posted(self, channel_id, album_urls, *, limit=100):
        self.finds += 1
        if self.find_error is not None:
            raise self.find_error
        found: dict[str, int] = {}
        for m in reversed([m for m in self.messages if m["channel"] == channel_id][-limit:]):
            for e in m["embeds"]:
                if e["url"] in album_urls:
                    found.setdefault(e["url"], m["id"])
        return found

    def urls(self) -> list[str]:
        return [e["url"] for m in self.messages for e in m["embeds"]]


async def claim(db, clock, release_ids, *, channel_id=100, guild_id=1):
    """Claimed rows as a killed process leaves them (claimed before ``clock()``)."""
    async with db.sessions() as s:
        for rid in release_ids:
            s.add(
                Delivery(
                    guild_id=guild_id,
                    release_id=rid,
                    status="claimed",
                    channel_id=channel_id,
                    claimed_at=clock() - dt.timedelta(seconds=5),
                )
            )
        await s.commit()


def embed(rid):
    return {"title": rid, "url": ALBUM_URL.format(rid)}


@pytest.fixture
def sender():
    return ChannelSender()


async def test_claim_with_its_message_in_the_channel_is_confirmed(db, clock, sender):
    ids = await setup(db, clock, 3)
    mid = sender.post(100, [embed(ids[0]), embed(ids[1])])  # sent, then killed before confirming
    await claim(db, clock, ids[:2])
    deliverer = Deliverer(db, sender, clock=clock)  # the restarted process
    result = await deliverer.recover()
    assert (result.confirmed, result.released, result.unresolved) == (2, 0, 0)
    rows = {r.release_id: r for r in await ledger(db, 1)}
    assert rows[ids[0]].status == rows[ids[1]].status == "sent" and rows[ids[0]].message_id == mid
    out = await deliverer.deliver(1)
    assert out.posted == 1
    assert sorted(sender.urls()) == sorted(ALBUM_URL.format(i) for i in ids)  # each exactly once


async def test_claim_without_a_message_is_released_and_posted_once_next_run(db, clock, sender):
    ids = await setup(db, clock, 2)
    await claim(db, clock, ids)  # killed after claiming, before the message reached Discord
    deliverer = Deliverer(db, sender, clock=clock)
    result = await deliverer.recover()
    assert (result.confirmed, result.released) == (0, 2)
    assert await ledger(db, 1) == []
    assert (await deliverer.deliver(1)).posted == 2
    assert (await deliverer.deliver(1)).posted == 0
    assert sorted(sender.urls()) == sorted(ALBUM_URL.format(i) for i in ids)


async def test_deliver_settles_stale_claims_first_without_recover(db, clock, sender):
    ids = await setup(db, clock, 3)
    sender.post(100, [embed(ids[0])])
    await claim(db, clock, ids[:2])
    out = await Deliverer(db, sender, clock=clock).deliver(1)
    assert out.posted == 2  # ids[1] (released) and ids[2]
    assert sorted(sender.urls()) == sorted(ALBUM_URL.format(i) for i in ids)
    assert {r.status for r in await ledger(db, 1)} == {"sent"}


async def test_twin_claims_follow_their_main_release(db, clock, sender):
    await setup(db, clock, names=["Yeehaw (Clean)", "Yeehaw"])
    mid = sender.post(100, [embed("r001")])
    async with db.sessions() as s:
        s.add(
            Delivery(
                guild_id=1,
                release_id="r001",
                status="claimed",
                channel_id=100,
                claimed_at=clock() - dt.timedelta(seconds=1),
            )
        )
        s.add(
            Delivery(
                guild_id=1,
                release_id="r000",
                status="claimed",
                channel_id=100,
                folded_into="r001",
                claimed_at=clock() - dt.timedelta(seconds=1),
            )
        )
        await s.commit()
    assert (await Deliverer(db, sender, clock=clock).recover()).confirmed == 2
    assert {(r.release_id, r.message_id) for r in await ledger(db, 1)} == {("r000", mid), ("r001", mid)}


async def test_claims_of_this_process_are_not_taken_for_stale(db, clock, sender):
    ids = await setup(db, clock, 1)
    deliverer = Deliverer(db, sender, clock=clock)
    async with db.sessions() as s:  # claimed by this process, send in progress
        s.add(Delivery(guild_id=1, release_id=ids[0], status="claimed", channel_id=100, claimed_at=clock()))
        await s.commit()
    result = await deliverer.recover()
    assert (result.confirmed, result.released, result.unresolved) == (0, 0, 0) and sender.finds == 0
    assert [r.status for r in await ledger(db, 1)] == ["claimed"]


async def test_unreadable_channel_keeps_the_claims_until_it_can_be_read(db, clock, sender):
    ids = await setup(db, clock, 1)
    sender.post(100, [embed(ids[0])])
    await claim(db, clock, ids)
    deliverer = Deliverer(db, sender, clock=clock)
    sender.find_error = ChannelUnavailable("Missing Access", status=403)
    assert (await deliverer.recover()).unresolved == 1
    assert [r.status for r in await ledger(db, 1)] == ["claimed"]
    sender.find_error = RuntimeError("502 Bad Gateway")
    await deliverer.deliver(1)
    assert [r.status for r in await ledger(db, 1)] == ["claimed"]
    sender.find_error = None  # fixed: the next delivery settles it, nothing posted twice
    out = await deliverer.deliver(1)
    assert out.posted == 0 and [r.status for r in await ledger(db, 1)] == ["sent"]
    assert len(sender.messages) == 1


async def test_deleted_channel_releases_the_claims(db, clock, sender):
    ids = await setup(db, clock, 1)
    await claim(db, clock, ids, channel_id=100)
    async with db.sessions() as s:
        (await s.get(Guild, 1)).channel_id = 200  # the admin picked a new channel
        await s.commit()
    sender.find_error = ChannelUnavailable("Unknown Channel", status=404)
    assert (await Deliverer(db, sender, clock=clock).recover()).released == 1
    sender.find_error = None
    assert (await Deliverer(db, sender, clock=clock).deliver(1)).posted == 1
    assert sender.messages[-1]["channel"] == 200


async def test_a_channel_whose_history_cannot_be_read_keeps_stale_claims(db, clock):
    from tests.bot.helpers import FakeSender

    class NoHistory(FakeSender):
        async def find_posted(self, channel_id, album_urls, *, limit=100):
            raise ChannelUnavailable("Missing Access", status=403)

    ids = await setup(db, clock, 1)
    await claim(db, clock, ids)
    plain = NoHistory()
    deliverer = Deliverer(db, plain, clock=clock)
    assert (await deliverer.recover()).unresolved == 1
    assert (await deliverer.deliver(1)).posted == 0 and plain.messages == []  # at most once


async def test_5xx_that_created_the_message_is_confirmed_not_reposted(db, clock, sender):
    await setup(db, clock, 2)
    deliverer = Deliverer(db, sender, clock=clock)
    sender.fail_with, sender.create_then_fail = RuntimeError("503 Service Unavailable"), True
    out = await deliverer.deliver(1)
    assert out.error is not None and out.error.startswith("send failed") and out.posted == 2 and out.pending == 0
    assert {r.status for r in await ledger(db, 1)} == {"sent"}
    sender.fail_with = None
    assert (await deliverer.deliver(1)).posted == 0 and len(sender.messages) == 1


async def test_5xx_without_a_message_leaves_the_releases_pending(db, clock, sender):
    ids = await setup(db, clock, 2)
    deliverer = Deliverer(db, sender, clock=clock)
    sender.fail_with = RuntimeError("500 Internal Server Error")
    out = await deliverer.deliver(1)
    assert out.posted == 0 and out.pending == 2 and await ledger(db, 1) == []
    sender.fail_with = None
    assert (await deliverer.deliver(1)).posted == 2
    assert sorted(sender.urls()) == sorted(ALBUM_URL.format(i) for i in ids)


async def test_5xx_with_an_unreadable_channel_settles_on_the_next_delivery(db, clock, sender):
    await setup(db, clock, 1)
    deliverer = Deliverer(db, sender, clock=clock)
    sender.fail_with, sender.create_then_fail = RuntimeError("504"), True
    sender.find_error = RuntimeError("504")
    await deliverer.deliver(1)
    assert [r.status for r in await ledger(db, 1)] == ["claimed"]
    sender.fail_with = sender.find_error = None
    assert (await deliverer.deliver(1)).posted == 0
    assert [r.status for r in await ledger(db, 1)] == ["sent"] and len(sender.messages) == 1


async def test_buttons_are_passed_with_the_post(db, clock, sender, monkeypatch):
    await setup(db, clock, 2)
    buttons = PostButtons(unfollow=(UnfollowArtistButton("A" * 22, "Unfollow A"),))
    seen = []

    def post_buttons(anns):
        seen.append(len(anns))
        return buttons

    monkeypatch.setattr(components, "post_buttons", post_buttons)
    await Deliverer(db, sender, clock=clock).deliver(1)
    assert seen == [2] and sender.messages[0]["buttons"] == buttons


async def test_failing_post_buttons_never_stop_a_post(db, clock, sender, monkeypatch):
    await setup(db, clock, 1)

    def boom(anns):
        raise ValueError("bad")

    monkeypatch.setattr(components, "post_buttons", boom)
    assert (await Deliverer(db, sender, clock=clock).deliver(1)).posted == 1
    assert sender.messages[0]["buttons"] is None


async def test_no_buttons_when_there_are_none(db, clock, sender, monkeypatch):
    await setup(db, clock, 1)
    monkeypatch.setattr(components, "post_buttons", lambda anns: PostButtons())
    assert (await Deliverer(db, sender, clock=clock).deliver(1)).posted == 1
    assert sender.messages[0]["buttons"] is None


async def test_runs_left_running_are_marked_interrupted(db, clock, sender):
    async with db.sessions() as s:
        s.add(Run(trigger="refresh", status="running", started_at=clock(), failed_artists=[]))
        s.add(Run(trigger="schedule", status="ok", started_at=clock(), failed_artists=[]))
        await s.commit()
    tracker = Tracker(db, SpotifyClient(client_id="unused", client_secret="unused"), clock=clock)  # never called
    runner = Runner(db, tracker=tracker, deliverer=Deliverer(db, sender, clock=clock), clock=clock)
    assert await runner.mark_interrupted() == 1
    async with db.sessions() as s:
        runs = (await s.scalars(select(Run).order_by(Run.id))).all()
    assert [r.status for r in runs] == ["failed", "ok"]
    assert "interrupted" in runs[0].error and runs[0].finished_at == clock()


async def test_channel_notice_is_taken_once_and_again_for_a_new_problem(db, clock, sender):
    await setup(db, clock, 1)

    async def take():
        async with db.sessions() as s:
            value = await guilds.take_channel_notice(s, 1)
            await s.commit()
            return value

    assert await take() is None
    sender.fail_with = ChannelUnavailable("Missing Permissions", status=403)
    deliverer = Deliverer(db, sender, clock=clock)
    await deliverer.deliver(1)
    assert await take() == (100, "Missing Permissions")
    assert await take() is None  # told once (stored: a new session, as after a restart)
    await deliverer.deliver(1)  # the same problem again: not told again
    assert await take() is None
    sender.fail_with = None
    await deliverer.deliver(1)  # fixed, posted: the mark is gone
    sender.fail_with = ChannelUnavailable("Unknown Channel", status=404)
    await setup_new_release(db, clock)
    await deliverer.deliver(1)
    assert await take() == (100, "Unknown Channel")


async def setup_new_release(db, clock):
    from tests.bot.delivery.test_deliverer import album

    clock.advance(minutes=1)
    async with db.sessions() as s:
        alb = album("r999", "Later")
        await catalog.upsert_release(s, alb, now=clock())
        await catalog.link_release(s, "A", alb.id, album_group="single", now=clock(), baseline=False)
        await s.commit()
