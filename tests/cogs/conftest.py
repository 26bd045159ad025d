"""Fixtures of the cog callback tests: a mocked bot (``tests/cogs/mocks.py``) and the cogs on it."""

from __future__ import annotations

import pytest

from cogs.follows import Follows
from cogs.runs import Runs
from cogs.settings import Settings
from tests.cogs.mocks import make_bot


@pytest.fixture
def bot():
    return make_bot()


@pytest.fixture
def follows(bot):
    return Follows(bot)


@pytest.fixture
def runs(bot):
    return Runs(bot)


@pytest.fixture
def settings(bot):
    return Settings(bot)
