"""Shared fixtures: a migrated temporary database and the path to ../shared."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from storage.db import Database, open_database

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@pytest.fixture
def shared_spotify() -> Path:
    """Path to ``../shared/spotify``; skips the test cleanly when it is absent."""
    path = SHARED / "spotify"
    if not path.is_dir():
        pytest.skip("../shared/spotify is not present beside the checkout")
    return path


@pytest.fixture
async def db(tmp_path: Path) -> Database:
    """A fresh SQLite database, migrated to head, closed after the test."""
    database = await open_database(f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
    try:
        yield database
    finally:
        await database.close()


class FakeClock:
    """An injectable UTC clock: ``clock()`` returns the current time, ``advance(**timedelta_kwargs)`` moves it."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self.now = start or dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.timezone.utc)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **kwargs: float) -> dt.datetime:
        self.now += dt.timedelta(**kwargs)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    """A :class:`FakeClock` starting Friday 2026-11-20 12:00 UTC."""
    return FakeClock()
