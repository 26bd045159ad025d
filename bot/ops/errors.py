"""Error reporting to Sentry (sentry-sdk), off unless ``[sentry] dsn`` (or ``SENTRY_DSN``) is set.

:func:`init_sentry` starts the SDK for ``release-bot run``: every record the bot logs at ``ERROR``
or above (``log.exception`` included, with its traceback) becomes an event; ``INFO`` and above
become the breadcrumbs that precede it. The release is ``release-bot@<version>`` (the installed
package's version, :func:`release`), the environment ``[sentry] environment``; tracing, profiling,
sessions and Sentry Logs stay off.

What is never sent (Sentry's Python SDK, "Data Collection" options, and :func:`scrub`):

* personal data: no user, IP address, cookies, HTTP headers, bodies or query strings, no
  stack-frame local variables (they hold members' and guilds' data), no database query
  parameters; the fields :data:`PERSONAL_KEYS` (a guild, channel, member or user id in a record's
  context) are removed wherever they appear in the event;
* secrets: every value of :func:`bot.ops.logs.secrets_of` (the Discord token, the Spotify client id
  and secret, the Last.fm API key, the database password, the DSN and its key) is replaced by
  ``***`` wherever it appears in the event — messages, exception values, breadcrumbs, extra data.

The DSN's key still travels in the request's authentication header and the envelope header: it
is how Sentry knows the project, and it goes to the Sentry server only.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

import sentry_sdk
from sentry_sdk.integrations.logging import LoggingIntegration

from bot.ops.logs import Redactor, secrets_of

if TYPE_CHECKING:
    from sentry_sdk._types import DataCollectionUserOptions, Event, Hint

    from bot.settings import Settings

PACKAGE: Final = "release-bot"

PERSONAL_KEYS: Final = frozenset({"guild_id", "channel_id", "member_id", "user_id", "user", "ip_address", "username"})
"""Keys removed from a Sentry event wherever they appear (they name a server or a person)."""

#: Sentry's "Data Collection" option: nothing about users, requests or local variables.
DATA_COLLECTION: Final[DataCollectionUserOptions] = {
    "user_info": False,
    "cookies": {"mode": "off"},
    "http_headers": {"request": {"mode": "off"}},
    "http_bodies": [],
    "url_query_params": {"mode": "off"},
    "database_query_data": False,
    "stack_frame_variables": False,
}


def release() -> str:
    """``release-bot@<version>``: the installed package's version (``importlib.metadata``), or
    ``release-bot@0+unknown`` when the package is not installed (a bare checkout)."""
    try:
        version = importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        version = "0+unknown"
    return f"{PACKAGE}@{version}"


def scrub(value: Any, redactor: Redactor) -> Any:
    """``value`` (an event or a part of one: dicts, lists, strings, numbers) with every secret masked
    in every string (keys too) and every :data:`PERSONAL_KEYS` entry removed from every dict."""
    if isinstance(value, str):
        return redactor(value)
    if isinstance(value, dict):
        return {
            (redactor(key) if isinstance(key, str) else key): scrub(item, redactor)
            for key, item in value.items()
            if key not in PERSONAL_KEYS
        }
    if isinstance(value, list | tuple):
        return [scrub(item, redactor) for item in value]
    return value


def before_send(secrets: Iterable[str]) -> Callable[[Event, Hint], Event | None]:
    """Sentry's ``before_send`` hook: the event :func:`scrub`-bed of ``secrets`` and personal keys."""
    redactor = Redactor(secrets)

    def hook(event: Event, _hint: Hint) -> Event | None:
        scrubbed: Event = scrub(event, redactor)
        return scrubbed

    return hook


def init_sentry(settings: Settings) -> bool:
    """Start error reporting when ``settings.sentry.dsn`` is set; returns whether it started.

    Events are sent in the background (an SDK thread); at exit the SDK waits up to 2 s to send
    what is queued. A DSN Sentry does not answer only loses the events (logged by the SDK at debug).
    """
    dsn = settings.sentry.dsn.get_secret_value()
    if not dsn:
        return False
    sentry_sdk.init(
        dsn=dsn,
        release=release(),
        environment=settings.sentry.environment,
        traces_sample_rate=None,
        auto_session_tracking=False,
        auto_enabling_integrations=False,
        integrations=[LoggingIntegration(level=None, event_level=logging.ERROR, breadcrumb_level=logging.INFO)],
        data_collection=DATA_COLLECTION,
        before_send=before_send(secrets_of(settings)),
    )
    return True
