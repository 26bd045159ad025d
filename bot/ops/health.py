"""Readiness of one process (docs/operations.md, "Health"): its shards, its database, its schema.

:class:`Readiness` runs three checks each time it is asked (``GET /readyz``), so a process that
failed one turns ready again by itself once it passes:

* ``shards`` — every shard this process runs is connected and ready (from the Discord client's
  :data:`bot.ops.metrics.ShardStates`; bot/ops never imports discord);
* ``database`` — the database answers ``SELECT 1`` within ``timeout`` seconds
  (:func:`storage.health.ping`);
* ``migrations`` — the database's Alembic revision is this code's head
  (:func:`storage.health.migration_state`), checked after the database answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from storage import health
from storage.db import Database

DB_TIMEOUT = 2.0
"""Seconds the database check waits for an answer before it counts as failed."""

ShardStates = Callable[[], Mapping[int, tuple[bool, float | None]]]
"""``{shard id: (ready, gateway latency seconds or None)}`` (as :data:`bot.ops.metrics.ShardStates`)."""


@dataclass(frozen=True)
class Check:
    """One readiness check: ``name`` (``shards`` | ``database`` | ``migrations``), ``ok``, and
    ``detail``, one line saying what was found (``shards 0, 1 not ready``, ``ok`` …)."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Report:
    """All checks of one readiness question; ``ready`` when every one passed."""

    checks: tuple[Check, ...]

    @property
    def ready(self) -> bool:
        """True when every check passed."""
        return all(c.ok for c in self.checks)

    def text(self) -> str:
        """The ``/readyz`` body: ``ready`` or ``not ready``, then one ``name: ok|FAIL detail`` line per check."""
        lines = ["ready" if self.ready else "not ready"]
        lines += [f"{c.name}: {'ok' if c.ok else 'FAIL'} {c.detail}".rstrip() for c in self.checks]
        return "\n".join(lines) + "\n"


class Readiness:
    """The readiness checks of one process. ``db``: its store; ``shards``: the shard states (None:
    no shard is known yet, which fails the ``shards`` check); ``timeout``: seconds for the database
    checks together."""

    def __init__(self, db: Database, *, shards: ShardStates | None = None, timeout: float = DB_TIMEOUT) -> None:
        self.db = db
        self.shards = shards
        self.timeout = timeout

    async def check(self) -> Report:
        """Run the three checks now (never raises: a failure is a failed check)."""
        return Report((self._shards(), *await self._database()))

    def _shards(self) -> Check:
        try:
            states = dict(self.shards()) if self.shards is not None else {}
        except Exception as exc:  # the client is shutting down
            return Check("shards", False, f"unknown ({type(exc).__name__})")
        if not states:
            return Check("shards", False, "not connected yet")
        waiting = sorted(shard for shard, (ready, _latency) in states.items() if not ready)
        if waiting:
            return Check("shards", False, f"shard(s) {', '.join(map(str, waiting))} of {len(states)} not ready")
        return Check("shards", True, f"{len(states)} ready")

    async def _database(self) -> tuple[Check, Check]:
        try:
            async with asyncio.timeout(self.timeout):
                await health.ping(self.db)
                state = await health.migration_state(self.db)
        except TimeoutError:
            failed = Check("database", False, f"no answer within {self.timeout:g} s")
            return failed, Check("migrations", False, "unknown (the database does not answer)")
        except Exception as exc:
            failed = Check("database", False, f"{type(exc).__name__}: {_first_line(exc)}")
            return failed, Check("migrations", False, "unknown (the database does not answer)")
        if not state.is_current:
            return (
                Check("database", True, "answers"),
                Check("migrations", False, f"at {state.current or 'none'}, code needs {state.head}"),
            )
        return Check("database", True, "answers"), Check("migrations", True, f"at head {state.head}")


def _first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message, at most 200 characters (a driver's error may be long)."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else "")[:200]
