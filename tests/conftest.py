"""Shared fixtures: a migrated temporary database and the path to ../shared."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from storage.db import Database, open_database
from tests import backend

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@pytest.fixture
def shared_spotify() -> Path:
    """Path to ``../shared/spotify``; skips the test cleanly when it is absent."""
    path = SHARED / "spotify"
    if not path.is_dir():
        pytest.skip("../shared/spotify is not present beside the checkout")
    return path


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


@pytest.fixture
async def db(tmp_path: Path) -> Database:
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
