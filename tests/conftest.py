"""Shared fixtures: a migrated temporary database, an injectable clock, and the path to ``../shared``."""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.db import Database, open_database
from tests import backend

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


def in_ci() -> bool:
    """True when the run is a CI run: ``CI`` is ``true`` or ``1`` (as ``scripts/test.sh`` reads it)."""
    return os.environ.get("CI") in ("true", "1")


def shared_path(*parts: str) -> Path:
    """The path ``../shared/<parts…>`` beside the checkout (the Spotify OpenAPI spec and recorded
    fixtures under ``spotify/``).

    When it does not exist the calling test does not run: under CI (:func:`in_ci`) it **fails**
    (``pytest.fail``), naming the missing path, since a CI run must not pass by skipping the checks
    against the spec and the recordings; elsewhere it is skipped with the same reason.
    """
    path = SHARED.joinpath(*parts)
    if not path.exists():
        reason = f"{path} is missing (../shared/{'/'.join(parts)} beside the checkout)"
        if in_ci():
            pytest.fail(f"{reason}; CI={os.environ['CI']}: a CI run needs ../shared", pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture
def shared_spotify() -> Path:
    """Path to ``../shared/spotify`` (:func:`shared_path`: a failure under CI, a skip elsewhere, when absent)."""
    return shared_path("spotify")


def pytest_report_header(config) -> str:
    """Say which database backend this run tests (``RELEASE_BOT_TEST_DATABASE_URL``)."""
    return f"release-bot test database backend: {backend.backend()}"


def pytest_sessionfinish(session, exitstatus) -> None:
    """Drop what is left of the PostgreSQL test databases and the template."""
    backend.drop_test_databases(recycle=False)
    backend.drop_template()


@pytest.fixture(autouse=True)
def _drop_test_databases():
    """Drop the PostgreSQL databases a test made (nothing to do on SQLite: they live in ``tmp_path``)."""
    mark = backend.created_count()
    yield
    backend.drop_test_databases(mark)


@pytest.fixture(autouse=True)
def _restore_logging():
    """Undo what ``bot.ops.logs.configure_logging`` did in this process: a test running ``release-bot``
    in-process (``bot.cli.main``) would otherwise leave its handlers and levels to the tests after it."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    levels = {name: logging.getLogger(name).level for name in ("", "discord", "sqlalchemy", "alembic")}
    yield
    from bot.ops.logs import installed_handlers

    for handler in installed_handlers():
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    logging.captureWarnings(False)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """A fresh database of the run's backend (``tests/backend.py``), migrated to head, closed after the test."""
    database = await open_database(backend.database_url(tmp_path))
    try:
        yield database
    finally:
        await database.close()


class FakeClock:
    """An injectable UTC clock: ``clock()`` returns the current time, ``advance(**timedelta_kwargs)`` moves it."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self.now = start or dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **kwargs: float) -> dt.datetime:
        self.now += dt.timedelta(**kwargs)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    """A :class:`FakeClock` starting Friday 2026-11-20 12:00 UTC."""
    return FakeClock()
