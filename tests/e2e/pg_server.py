"""A throw-away PostgreSQL server a test can stop, start and restart (the database-outage tests).

The suite's own server (``scripts/test.sh``, ``tests/backend.py``) is shared by every test of the
PostgreSQL pass, so a test that takes the database away needs a server of its own:
:class:`benchmarks.pgserver.PgServer` (the several-processes benchmark's too) ``initdb``'s one into a
temporary folder and runs it with ``pg_ctl`` on a free 127.0.0.1 port. ``stop()``, ``start()`` and
``restart()`` keep the same data folder and port, so a client's URL stays valid across an outage. As
root it runs as the ``postgres`` OS user (the server refuses root), as ``scripts/test.sh`` does;
Debian's ``postgresql`` package provides the binaries (``/usr/lib/postgresql/<version>/bin``;
``scripts/test.sh`` installs it on first use). Durability is off (``fsync=off``): the data is thrown
away after the test.

The :func:`pg_server` fixture starts one per test; it runs only in the PostgreSQL pass (the SQLite
pass skips the test with "PostgreSQL only: …", like ``tests.backend.postgresql_only``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from benchmarks.pgserver import PgServer
from tests import backend

__all__ = ["PgServer", "pg_server"]


@pytest.fixture
def pg_server() -> Iterator[PgServer]:
    """A started :class:`PgServer` of the test's own, destroyed after it. PostgreSQL pass only: the
    SQLite pass skips the test ("PostgreSQL only: …")."""
    if backend.backend() != "postgresql":
        pytest.skip("PostgreSQL only: the test stops and starts a PostgreSQL server of its own")
    server = PgServer()
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.destroy()
