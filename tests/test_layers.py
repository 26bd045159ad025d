"""The layers of the repository point one way — cogs → bot → storage — and one module builds the bot.

Each rule is checked by parsing the sources (``ast``), never by importing them:

1. ``storage/`` imports nothing from ``bot/`` or ``cogs/``;
2. ``bot/`` imports nothing from ``cogs/`` (the cogs are loaded by name, as extensions);
3. ``discord`` is imported only in ``bot/discord_app/`` and ``cogs/``;
4. ``sqlalchemy`` is imported only in ``storage/``;
5. ``bot/`` and ``cogs/`` run no SQL: no ``execute``/``scalar``/``add``/``commit``/… called on a
   session, and no bare ``db.sessions()`` (units of work are ``db.transaction()`` / ``db.retrying()``);
6. only ``bot/wiring.py`` constructs a ``SpotifyClient``, ``Tracker``, ``Labeler``, ``Runner``,
   ``Deliverer``, ``Coordinator`` or ``Services``, or the music-data ``MusicBrainzClient``,
   ``ListenBrainzClient``, ``SharedRateLimit`` and ``MusicSignal`` (tests aside).

Every rule has a test on the repository and a test that plants a violation in a small source and
expects it to be found, so no rule can pass by finding nothing. (Each repository test was also seen
failing once with a violation planted in the tree: an ``import cogs.common`` in ``bot/clock.py``,
``from bot.clock import utcnow`` in ``storage/schema.py``, ``import discord`` in ``bot/delivery/render.py``,
``import sqlalchemy`` in ``bot/services/text.py``, ``session.execute(…)`` and ``db.sessions()`` in
``bot/services/runs.py``, and a ``Tracker(...)`` in ``bot/cli/check.py``.)
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "cogs", "storage", "fakes", "benchmarks")
SQL_METHODS = frozenset(
    {
        "execute",
        "scalar",
        "scalars",
        "flush",
        "commit",
        "rollback",
        "merge",
        "add",
        "add_all",
        "delete",
        "refresh",
        "get",
        "stream",
        "stream_scalars",
    }
)
BUILT_BY_WIRING = frozenset(
    {
        "SpotifyClient",
        "Tracker",
        "Labeler",
        "Runner",
        "Deliverer",
        "Coordinator",
        "Services",
        "MusicBrainzClient",
        "ListenBrainzClient",
        "SharedRateLimit",
        "MusicSignal",
        "ReleaseDayProber",
    }
)
WIRING = "bot/wiring.py"


@dataclass(frozen=True)
class Source:
    """One module: ``rel`` (``bot/wiring.py``), its dotted name and its parsed tree."""

    rel: str
    module: str
    tree: ast.Module

    @classmethod
    def parse(cls, rel: str, text: str) -> Source:
        module = rel.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        return cls(rel, module, ast.parse(text, filename=rel))

    @property
    def top(self) -> str:
        return self.rel.split("/")[0]


def sources(*packages: str) -> list[Source]:
    """Every module of ``packages`` (Alembic's migrations aside: they are storage's own scripts)."""
    found = []
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if not rel.startswith("storage/migrations/"):
                found.append(Source.parse(rel, path.read_text(encoding="utf-8")))
    assert found, f"no sources found in {packages}"
    return found


def imports(source: Source) -> Iterator[tuple[int, str]]:
    """``(line, dotted module)`` of every import in ``source``, relative imports resolved."""
    package = source.module if source.rel.endswith("__init__.py") else source.module.rpartition(".")[0]
    for node in ast.walk(source.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                yield node.lineno, f"{base}.{node.module}" if node.module else base
            elif node.module:
                yield node.lineno, node.module


def imported_from(source: Source, heads: tuple[str, ...]) -> list[str]:
    """Where ``source`` imports a module whose first name is one of ``heads``: ``"rel:line: module"``."""
    return [f"{source.rel}:{line}: {m}" for line, m in imports(source) if m.split(".")[0] in heads]


def sql_calls(source: Source) -> list[str]:
    """SQL run in ``source``: a :data:`SQL_METHODS` call on a session-named object, or ``….sessions()``."""
    found = []
    for node in ast.walk(source.tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        target = node.func.value
        name = target.id if isinstance(target, ast.Name) else target.attr if isinstance(target, ast.Attribute) else ""
        if node.func.attr in SQL_METHODS and ("session" in name.lower() or name == "s"):
            found.append(f"{source.rel}:{node.lineno}: {name}.{node.func.attr}(…)")
        elif node.func.attr == "sessions":
            found.append(f"{source.rel}:{node.lineno}: {name}.sessions() (a session outside a unit of work)")
    return found


def constructions(source: Source) -> list[str]:
    """Where ``source`` constructs one of :data:`BUILT_BY_WIRING` (``Tracker(…)``, ``x.Tracker(…)``,
    ``Services.create(…)``)."""
    found = []
    for node in ast.walk(source.tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "create" and isinstance(func.value, ast.Name):
            func = func.value  # Services.create(...)
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if name in BUILT_BY_WIRING:
            found.append(f"{source.rel}:{node.lineno}: {name}(…)")
    return found


def discord_outside_its_layer(source: Source) -> list[str]:
    if source.rel.startswith("bot/discord_app/") or source.top == "cogs":
        return []
    return imported_from(source, ("discord",))


# --- the repository ------------------------------------------------------------------------------


def test_storage_imports_nothing_from_bot_or_cogs():
    """Storage is the bottom layer."""
    assert [v for s in sources("storage") for v in imported_from(s, ("bot", "cogs"))] == []


def test_bot_imports_nothing_from_cogs():
    """The bot loads the cogs by name (``ReleaseBot.setup_hook``); it never imports them."""
    assert [v for s in sources("bot") for v in imported_from(s, ("cogs",))] == []


def test_discord_is_imported_only_by_the_discord_layer_and_the_cogs():
    """``bot/discord_app/`` and ``cogs/`` are the only places that know discord.py."""
    assert [v for s in sources("bot", "storage") for v in discord_outside_its_layer(s)] == []


def test_sqlalchemy_is_imported_only_in_storage():
    """Not even ``sqlalchemy.exc``: storage translates what it expects; ``storage.db.Session`` is the type."""
    assert [v for s in sources("bot", "cogs") for v in imported_from(s, ("sqlalchemy",))] == []


def test_bot_and_cogs_run_no_sql():
    """Sessions only pass through to storage's typed functions, inside ``db.transaction()`` / ``db.retrying()``."""
    assert [v for s in sources("bot", "cogs") for v in sql_calls(s)] == []


def test_only_the_wiring_builds_the_bot():
    """One wiring site: every process (``run``, ``check``, ``demo``, the benchmarks) gets its objects,
    hooks included, from :func:`bot.wiring.build_core` (the benchmark's naive tracker its client
    from :func:`bot.wiring.spotify_client`)."""
    built = [v for s in sources(*PACKAGES) if s.rel != WIRING for v in constructions(s)]
    assert built == []
    wiring = Source.parse(WIRING, (ROOT / WIRING).read_text(encoding="utf-8"))
    assert {v.split(": ")[1].removesuffix("(…)") for v in constructions(wiring)} == BUILT_BY_WIRING


# --- the checks find what they look for -------------------------------------------------------


@pytest.mark.parametrize(
    "rel, text, heads",
    [
        ("storage/x.py", "from bot.clock import utcnow\n", ("bot", "cogs")),
        ("storage/x.py", "from . import models\nimport cogs.common\n", ("bot", "cogs")),
        ("bot/x/y.py", "from cogs import common\n", ("cogs",)),
        ("bot/x/y.py", "from sqlalchemy.exc import IntegrityError\n", ("sqlalchemy",)),
    ],
)
def test_a_planted_import_is_found(rel, text, heads):
    assert imported_from(Source.parse(rel, text), heads) != []


def test_a_relative_import_is_resolved():
    source = Source.parse("bot/delivery/render.py", "from ..discord_app import sender\nfrom . import planner\n")
    assert [m for _line, m in imports(source)] == ["bot.discord_app", "bot.delivery"]
    assert [m for _line, m in imports(Source.parse("bot/delivery/__init__.py", "from .planner import x\n"))] == [
        "bot.delivery.planner"
    ]


def test_a_planted_discord_import_is_found_outside_its_layer_only():
    text = "import discord\nfrom discord.ext import commands\n"
    assert len(discord_outside_its_layer(Source.parse("bot/delivery/render.py", text))) == 2
    assert discord_outside_its_layer(Source.parse("bot/discord_app/sender.py", text)) == []
    assert discord_outside_its_layer(Source.parse("cogs/runs.py", text)) == []


@pytest.mark.parametrize(
    "text",
    [
        "async def f(session):\n    await session.execute(stmt)\n",
        "async def f(self):\n    await self.session.commit()\n",
        "async def f(s):\n    s.add(row)\n",
        "async def f(db):\n    async with db.sessions() as session:\n        pass\n",
    ],
)
def test_planted_sql_is_found(text):
    assert sql_calls(Source.parse("bot/services/x.py", text)) != []


def test_storage_calls_through_a_session_are_not_sql():
    text = "async def f(db):\n    async with db.transaction() as session:\n        await ledger.confirm(session, 1)\n"
    assert sql_calls(Source.parse("bot/delivery/x.py", text)) == []


@pytest.mark.parametrize(
    "text",
    [
        "t = Tracker(db, spotify)\n",
        "c = coordinator.Coordinator(db)\n",
        "s = Services.create(db=db)\n",
        "r = Runner(db, tracker, None)\n",
    ],
)
def test_a_planted_construction_is_found(text):
    assert constructions(Source.parse("bot/cli/check.py", text)) != []
