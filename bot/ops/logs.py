"""The process's log: one format for every record (ours, discord.py's, SQLAlchemy's), context fields, no secrets.

:func:`configure_logging` installs the handlers on the root logger — stderr always, plus a
size-rotated file with ``[logging] file`` (:class:`logging.handlers.RotatingFileHandler`) — with
one formatter: ``text`` (``%(asctime)s %(levelname)s %(name)s [context]: %(message)s``) or
``json`` (python-json-logger's ``JsonFormatter``: one object a line with ``timestamp`` (ISO 8601,
UTC), ``level``, ``logger``, ``message``, the context fields, ``exc_info``). discord.py logs
through the root logger (``Client.run(log_handler=None)``) and so does SQLAlchemy (its
``sqlalchemy.*`` loggers propagate; the engine is never built with ``echo``, which would add a
handler of its own), so their records take the same handlers and format.

Context fields (:data:`CONTEXT_FIELDS`: ``run_id``, ``guild_id``, ``artist_id``, ``shard``) live in
context variables, set for a stretch of code with :func:`log_context` (``with`` or ``async with``);
asyncio tasks inherit them from the code that created them. :class:`ContextFilter` copies the ones
set onto each record (a field passed in ``extra=`` wins).

Secrets (:func:`secrets_of`: the Discord token, the Spotify client id and secret, the Last.fm API
key, the Sentry DSN and its key, the database URL's password) never reach the output:
:class:`RedactingFilter` rewrites a record's message (``msg % args``) and both formatters replace
every occurrence in the final line — message, exception text, stack, extra fields — with
:data:`MASK`, in the value's plain, JSON-escaped and URL-quoted spellings. Credentials nobody
configured but a library may log at DEBUG (interaction tokens in discord.py's request URLs and
gateway payloads, access tokens, Authorization headers) are masked by :data:`CREDENTIAL_PATTERNS`.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import re
import sys
from collections.abc import Iterable, Iterator
from contextvars import ContextVar, Token
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TextIO
from urllib.parse import quote, unquote, urlsplit

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

if TYPE_CHECKING:
    from bot.settings import LoggingSettings, Settings

MASK: Final = "***"
"""What a secret is replaced with in the log."""

TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s%(context)s: %(message)s"
"""The text format: the one the bot always had, with ``[run_id=… guild_id=…]`` after the logger name
when a context field is set."""

CONTEXT_FIELDS: Final = ("run_id", "guild_id", "artist_id", "shard")
"""The context fields a record may carry, in the order the text format shows them."""

LIBRARY_LOGGERS: Final = ("discord", "sqlalchemy")
"""The libraries' loggers ``[logging] library_level`` sets (never below the process's level)."""

_VARS: Final[dict[str, ContextVar[object | None]]] = {
    name: ContextVar(f"release_bot_log_{name}", default=None) for name in CONTEXT_FIELDS
}


class LogContext:
    """Context fields set while a ``with`` / ``async with`` block runs, restored after it.

    Built by :func:`log_context`. Usable both ways so it joins an ``async with`` of a lock in one
    statement (``async with log_context(guild_id=gid), lock:``). Not reentrant: one block per object.
    """

    def __init__(self, fields: dict[str, object]) -> None:
        unknown = set(fields) - set(CONTEXT_FIELDS)
        if unknown:
            raise TypeError(f"unknown log context field(s) {sorted(unknown)}; known: {', '.join(CONTEXT_FIELDS)}")
        self._fields = {name: value for name, value in fields.items() if value is not None}
        self._tokens: list[tuple[ContextVar[object | None], Token[object | None]]] = []

    def __enter__(self) -> LogContext:
        self._tokens = [(_VARS[name], _VARS[name].set(value)) for name, value in self._fields.items()]
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for var, token in reversed(self._tokens):
            var.reset(token)
        self._tokens = []

    async def __aenter__(self) -> LogContext:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def log_context(**fields: object) -> LogContext:
    """Set context fields (names of :data:`CONTEXT_FIELDS`; a None value leaves that field as it is) for a ``with`` block.

    ``with log_context(run_id=42): …`` — every record logged inside, and in tasks created inside,
    carries ``run_id=42``. Raises ``TypeError`` for an unknown field name.
    """
    return LogContext(fields)


def bind_log_context(**fields: object) -> None:
    """Set context fields for the rest of the current asyncio task, with no block to end them.

    Only for the first step of a task that exists for one thing (discord.py runs each interaction
    in a task of its own): elsewhere the fields would outlive their work; use :func:`log_context`.
    Raises ``TypeError`` for an unknown field name.
    """
    LogContext(fields).__enter__()


def context_fields() -> dict[str, object]:
    """The context fields set now (None ones left out), in :data:`CONTEXT_FIELDS` order."""
    return {name: value for name, var in _VARS.items() if (value := var.get()) is not None}


class ContextFilter(logging.Filter):
    """A handler filter that adds the context fields set now as record attributes (``record.run_id``…),
    unless the record already has one (``extra=``). Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in context_fields().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


SHORT_SECRET: Final = 8
"""Secret spellings shorter than this are masked only where they stand alone (see :class:`Redactor`)."""

CREDENTIAL_PATTERNS: Final = (
    # An interaction's token in discord.py's DEBUG request lines: /interactions/{id}/{token}/callback and
    # /webhooks/{application id}/{token} (Discord, "Receiving and Responding"); valid 15 minutes.
    re.compile(r"(/(?:interactions|webhooks)/\d+/)[^/\s'\"?]+"),
    # A "token" / "access_token" value in a logged payload (a gateway INTERACTION_CREATE event, a
    # token response), as a Python dict or JSON shows it.
    re.compile(r"""((?:\\?['"])(?:access_)?token(?:\\?['"])\s*:\s*(?:\\?['"]))[^'"\\]+"""),
    # An Authorization header value.
    re.compile(r"\b((?:Bot|Bearer|Basic) )[A-Za-z0-9._~+/=-]{16,}"),
)
"""Credentials the bot does not configure but a library may log (interaction tokens, access tokens,
Authorization headers): the part the first group matches is kept, the rest masked."""


class Redactor:
    """Replaces every secret value in a string with :data:`MASK`, and every credential
    :data:`CREDENTIAL_PATTERNS` recognises.

    ``secrets``: the values (empty ones ignored). Each is matched as written, JSON-escaped (as a
    JSON string shows it) and URL-quoted (as a URL or a query string shows it); longer first, so
    a secret containing another is masked whole. A spelling shorter than :data:`SHORT_SECRET`
    characters is masked only where it stands alone (not inside a run of letters and digits), so
    a test's ``client_id = "a"`` does not mask every "a" of the log.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        spellings: set[str] = set()
        for secret in secrets:
            if not secret:
                continue
            spellings |= {secret, json.dumps(secret)[1:-1], quote(secret, safe=""), quote(secret)}
        ordered = sorted(spellings, key=len, reverse=True)
        parts = [
            re.escape(s) if len(s) >= SHORT_SECRET else rf"(?<![A-Za-z0-9]){re.escape(s)}(?![A-Za-z0-9])"
            for s in ordered
        ]
        self._pattern = re.compile("|".join(parts)) if parts else None

    @property
    def active(self) -> bool:
        """Always True: the credential patterns apply with no secret configured."""
        return True

    def __call__(self, text: str) -> str:
        """``text`` with every secret and recognised credential replaced by :data:`MASK`."""
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        for pattern in CREDENTIAL_PATTERNS:
            text = pattern.sub(lambda m: m.group(1) + MASK, text)
        return text


class RedactingFilter(logging.Filter):
    """A handler filter that masks the secrets in a record's message: when ``msg % args`` shows a
    secret, ``msg`` becomes the masked message and ``args`` empty (so whatever reads the record
    after the handlers, such as Sentry's breadcrumbs, gets it masked too). Never drops a record."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.redactor.active:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: the handler reports it (handleError)
            return True
        masked = self.redactor(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


class TextFormatter(logging.Formatter):
    """:data:`TEXT_FORMAT`, secrets masked in the whole output (message, exception, stack)."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__(TEXT_FORMAT)
        self.redactor = redactor

    def formatMessage(self, record: logging.LogRecord) -> str:
        fields = " ".join(
            f"{name}={value}" for name in CONTEXT_FIELDS if (value := getattr(record, name, None)) is not None
        )
        return TEXT_FORMAT % {**record.__dict__, "context": f" [{fields}]" if fields else ""}

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor(super().format(record))


class JsonFormatter(_JsonFormatter):
    """One JSON object a line: ``timestamp`` (ISO 8601, UTC), ``level``, ``logger``, ``message``,
    the context fields and any other ``extra=`` field, ``exc_info`` (the traceback as text) when
    there is one; secrets masked in the serialized line."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__(
            ["levelname", "name", "message"],
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp=True,
        )
        self.redactor = redactor

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_data, record, message_dict)
        fields = dict(log_data)  # the timestamp first, for people reading the file
        log_data.clear()
        log_data["timestamp"] = fields.pop("timestamp")
        log_data.update(fields)

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor(super().format(record))


class StderrHandler(logging.StreamHandler[TextIO]):
    """A stream handler writing to whatever ``sys.stderr`` is at each record (as ``logging.lastResort``
    does), so a replaced ``sys.stderr`` (tests capturing it) is honoured and a closed one never kept."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def parse_level(name: str) -> int:
    """The ``logging`` level of ``name`` (``"debug"``, ``"INFO"`` …). Raises ``ValueError`` for another name."""
    level = logging.getLevelNamesMapping().get(name.strip().upper())
    if level is None:
        raise ValueError(f"unknown log level {name!r}; expected DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level


def secrets_of(settings: Settings) -> list[str]:
    """Every secret value of ``settings`` that is set: the Discord token, the Spotify client id and
    secret, the Last.fm API key, the Sentry DSN and its key, and the database URL's password (as
    written and percent-decoded)."""
    values = [
        settings.discord.token.get_secret_value(),
        settings.spotify.client_id.get_secret_value(),
        settings.spotify.client_secret.get_secret_value(),
        settings.lastfm.api_key.get_secret_value(),
    ]
    dsn = settings.sentry.dsn.get_secret_value()
    if dsn:
        values += [dsn, urlsplit(dsn).username or ""]
    try:
        password = urlsplit(settings.database.url).password
    except ValueError:  # not a URL urllib can split: nothing to find in it
        password = None
    if password:
        values += [password, unquote(password)]
    return [value for value in dict.fromkeys(values) if value]


_INSTALLED: list[logging.Handler] = []  # the handlers the last configure_logging put on the root logger


def _file_handler(path: str, max_bytes: int, backups: int) -> logging.Handler:
    """A size-rotated UTF-8 file at ``path`` (``~`` expanded, parent folders created)."""
    from bot.settings import ConfigError

    target = Path(path).expanduser()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return logging.handlers.RotatingFileHandler(target, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
    except OSError as exc:
        raise ConfigError("logging.file", f"cannot be opened ({exc.strerror or exc})") from None


def configure_logging(settings_logging: LoggingSettings, *, secrets: Iterable[str] = (), level: str | int) -> None:
    """Make the root logger write every record at ``level`` and above in ``settings_logging.format``,
    to stderr and (``settings_logging.file``) a size-rotated file, context fields added and
    ``secrets`` masked.

    ``level``: a level name or number (the caller decides between ``--log-level``, ``[logging]
    level`` and the command's default). discord.py's and SQLAlchemy's loggers get
    ``[logging] library_level``, never below ``level``; Python warnings are logged too. Calling it
    again replaces the handlers an earlier call installed (other handlers are left alone).
    Raises :class:`bot.settings.ConfigError` (``logging.file``) when the file cannot be opened,
    ``ValueError`` for an unknown level name.
    """
    numeric = parse_level(level) if isinstance(level, str) else level
    redactor = Redactor(secrets)
    formatter: logging.Formatter = (
        JsonFormatter(redactor) if settings_logging.format == "json" else TextFormatter(redactor)
    )
    handlers: list[logging.Handler] = [StderrHandler()]
    if settings_logging.file:
        handlers.append(_file_handler(settings_logging.file, settings_logging.max_bytes, settings_logging.backups))
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(ContextFilter())
        handler.addFilter(RedactingFilter(redactor))
    root = logging.getLogger()
    for old in _INSTALLED:
        root.removeHandler(old)
        old.close()
    _INSTALLED[:] = handlers
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(numeric)
    library = max(parse_level(settings_logging.library_level), numeric)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(library)
    logging.getLogger("alembic").setLevel(max(logging.WARNING, numeric))  # its plugin set-up chatter is not news
    _quiet_voice_warning()
    logging.captureWarnings(True)


class _NoVoiceWarning(logging.Filter):
    """Drops discord.py's "PyNaCl/davey is not installed, voice will NOT be supported": the bot never joins voice."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "voice will NOT be supported" not in record.getMessage()


def _quiet_voice_warning() -> None:
    client = logging.getLogger("discord.client")
    if not any(isinstance(f, _NoVoiceWarning) for f in client.filters):
        client.addFilter(_NoVoiceWarning())


def installed_handlers() -> Iterator[logging.Handler]:
    """The handlers the last :func:`configure_logging` installed (stderr first, then the file)."""
    return iter(list(_INSTALLED))
