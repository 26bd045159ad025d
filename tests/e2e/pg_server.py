"""A throw-away PostgreSQL server a test can stop, start and restart (the database-outage tests).

The suite's own server (``scripts/test.sh``, ``tests/backend.py``) is shared by every test of the
PostgreSQL pass, so a test that takes the database away needs a server of its own: :class:`PgServer`
``initdb``'s one into a temporary folder and runs it with ``pg_ctl`` on a free 127.0.0.1 port. ``stop()``,
``start()`` and ``restart()`` keep the same data folder and port, so a client's URL stays valid across
an outage. As root it runs as the ``postgres`` OS user (the server refuses root), as
``benchmarks/pgserver.py`` and ``scripts/test.sh`` do; Debian's ``postgresql`` package provides the
binaries (``/usr/lib/postgresql/<version>/bin``; ``scripts/test.sh`` installs it on first use).
Durability is off (``fsync=off``): the data is thrown away after the test.

The :func:`pg_server` fixture starts one per test; it runs only in the PostgreSQL pass (the SQLite
pass skips the test with "PostgreSQL only: …", like ``tests.backend.postgresql_only``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.pgserver import _bindir
from tests import backend

#: seconds pg_ctl waits for the server to start or stop
PG_CTL_WAIT = 30


class PgServer:
    """One PostgreSQL server on ``127.0.0.1:port`` with its data in ``folder / "data"``.

    ``url``: the admin URL ``postgresql+asyncpg://postgres@127.0.0.1:PORT/postgres`` (trust
    authentication); :meth:`database_url` names another database on it. Every method blocks (it runs
    ``pg_ctl``): call them through ``asyncio.to_thread`` from a test's event loop. Raises
    ``RuntimeError`` (with the server log's tail) when ``initdb`` or ``pg_ctl`` fails.
    """

    def __init__(self, folder: Path | None = None) -> None:
        self.bindir = _bindir()
        self.folder = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="release-bot-pg-fault-"))
        self.data = self.folder / "data"
        self.log_path = self.folder / "server.log"
        self._as_pg: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
            self._as_pg = ["runuser", "-u", "postgres", "--"]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port: int = s.getsockname()[1]
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def database_url(self, database: str) -> str:
        """The SQLAlchemy async URL of ``database`` on this server."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self._as_pg, *args], capture_output=True, text=True, timeout=PG_CTL_WAIT + 30)
        if done.returncode != 0:
            tail = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
            raise RuntimeError(f"{' '.join(args[:1])} failed ({done.returncode}): {done.stderr.strip()}\n{tail}")

    def init(self) -> None:
        """``initdb`` the data folder (user ``postgres``, trust authentication, UTF8, C locale)."""
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )

    @property
    def running(self) -> bool:
        """True while the server's ``postmaster.pid`` exists (started and not stopped)."""
        return (self.data / "postmaster.pid").exists()

    def start(self) -> None:
        """Start the server on the same port and data folder; returns once it accepts connections."""
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log_path),
            "-w",
            "-t",
            str(PG_CTL_WAIT),
            "-o",
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100 -c shared_buffers=32MB",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (the default: open connections are ended, in-flight transactions
        rolled back — what a service restart does) or ``immediate`` (a crash: no shutdown checkpoint)."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", str(PG_CTL_WAIT), "stop")

    def restart(self, mode: str = "fast") -> None:
        """:meth:`stop` then :meth:`start` (same port, same data)."""
        self.stop(mode)
        self.start()

    def destroy(self) -> None:
        """Stop the server if it runs (immediately) and delete its folder."""
        try:
            if self.running:
                self.stop("immediate")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


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
