"""Error reporting (bot/ops/errors.py) against a fake Sentry on loopback (fakes/sentry_fake.py): an error
the bot logs arrives tagged with the release, without secrets or personal data."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import logging

import sentry_sdk
from pydantic import SecretStr

from bot.ops.errors import init_sentry, release, scrub
from bot.ops.logs import MASK, Redactor, configure_logging, log_context, secrets_of
from bot.settings import (
    DatabaseSettings,
    DiscordSettings,
    LastFmSettings,
    LoggingSettings,
    SentrySettings,
    Settings,
    SpotifySettings,
)
from fakes.sentry_fake import SentryFake

TOKEN = "MTA1NjQ.discord-token-for-sentry-test"
CLIENT_ID = "spotify-client-id-for-sentry"
CLIENT_SECRET = "spotify-client-secret-for-sentry"
LASTFM_KEY = "lastfm-api-key-for-sentry"
DB_PASSWORD = "db-password-for-sentry"
DSN_KEY = "0123456789abcdef0123456789abcdef"
GUILD_ID = 923456789012345678


def settings_with(dsn: str) -> Settings:
    return Settings(
        discord=DiscordSettings(token=SecretStr(TOKEN)),
        spotify=SpotifySettings(client_id=SecretStr(CLIENT_ID), client_secret=SecretStr(CLIENT_SECRET)),
        lastfm=LastFmSettings(api_key=SecretStr(LASTFM_KEY)),
        database=DatabaseSettings(url=f"postgresql+asyncpg://bot:{DB_PASSWORD}@127.0.0.1:5432/bot"),
        sentry=SentrySettings(dsn=SecretStr(dsn), environment="test"),
    )


def stop_sentry() -> None:
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)


async def test_an_error_logged_by_the_bot_reaches_sentry_tagged_without_secrets_or_personal_data():
    async with SentryFake() as sentry:
        dsn = sentry.dsn(DSN_KEY)
        settings = settings_with(dsn)
        configure_logging(LoggingSettings(), secrets=secrets_of(settings), level="INFO")
        assert init_sentry(settings)
        try:
            log = logging.getLogger("bot.scheduling.runner")
            with log_context(run_id=9, guild_id=GUILD_ID, artist_id="4Z8W4fKeB5YxbusRsdQVPb"):
                log.info("asked Spotify with %s", CLIENT_ID)  # a breadcrumb
                try:
                    raise RuntimeError(f"refused {TOKEN} / {CLIENT_SECRET} via {dsn} at {DB_PASSWORD}")
                except RuntimeError:
                    log.exception("run 9: tracking failed (key %s)", LASTFM_KEY)
            await asyncio.to_thread(sentry_sdk.flush, 10)
        finally:
            await asyncio.to_thread(stop_sentry)

    events = sentry.events()
    assert len(events) == 1, events
    event = events[0]
    assert event["release"] == f"release-bot@{importlib.metadata.version('release-bot')}" == release()
    assert event["environment"] == "test"
    assert event["level"] == "error"
    exception = event["exception"]["values"][-1]
    assert exception["type"] == "RuntimeError"
    assert exception["value"] == f"refused {MASK} / {MASK} via {MASK} at {MASK}"
    assert MASK in json.dumps(event["logentry"]) and LASTFM_KEY not in json.dumps(event["logentry"])
    crumbs = [c.get("message") for c in event.get("breadcrumbs", {}).get("values", [])]
    assert f"asked Spotify with {MASK}" in crumbs
    # The run and the artist are kept; the guild (a server of real people) is not, nor any user.
    assert event["extra"]["run_id"] == 9 and event["extra"]["artist_id"] == "4Z8W4fKeB5YxbusRsdQVPb"
    assert "guild_id" not in event["extra"] and str(GUILD_ID) not in json.dumps(event)
    assert "user" not in event
    frames = exception["stacktrace"]["frames"]
    assert frames and all("vars" not in frame for frame in frames)  # local variables are not sent

    # Nothing secret anywhere in what reached "Sentry": every request body, raw. (The DSN's key is
    # how Sentry knows the project: the X-Sentry-Auth header carries it, nothing else.)
    assert sentry.requests
    for request in sentry.requests:
        for secret in (TOKEN, CLIENT_ID, CLIENT_SECRET, LASTFM_KEY, DB_PASSWORD, dsn, DSN_KEY):
            assert secret.encode() not in request.body
        assert b"ip_address" not in request.body and b'"username"' not in request.body
    assert f"sentry_key={DSN_KEY}" in sentry.requests[0].headers["X-Sentry-Auth"]


def test_without_a_dsn_nothing_starts():
    assert init_sentry(Settings()) is False
    assert not sentry_sdk.get_client().is_active()


def test_scrub_masks_secrets_everywhere_and_drops_identifying_keys():
    event = {
        "message": "token abc-secret-value",
        "extra": {"guild_id": 1, "run_id": 2, "nested": [{"user": {"id": 3}, "text": ("x abc-secret-value",)}]},
        "abc-secret-value": 5,
    }
    assert scrub(event, Redactor(["abc-secret-value"])) == {
        "message": f"token {MASK}",
        "extra": {"run_id": 2, "nested": [{"text": [f"x {MASK}"]}]},
        MASK: 5,
    }
