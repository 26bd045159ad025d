"""A throw-away PostgreSQL server on loopback: the several-processes benchmark's, and the one the
database-outage tests stop and start (``tests/e2e/pg_server.py``).

Debian's ``postgresql`` package (installed by ``scripts/test.sh`` on first use, or
``apt-get install postgresql``): ``initdb`` into a temporary folder and ``pg_ctl start`` on a
free 127.0.0.1 port, as the ``postgres`` OS user when run as root (the server refuses root).
Durability is off (``fsync=off``): the data is thrown away after the benchmark, and the
figures measure the bot, not the disk.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _bindir() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` with ``initdb``, else the folder of ``pg_ctl`` on PATH."""
    candidates = [Path(d) for d in glob.glob("/usr/lib/postgresql/*/bin") if os.access(f"{d}/initdb", os.X_OK)]
    if candidates:
        return max(candidates, key=lambda d: [int(x) for x in d.parent.name.split(".") if x.isdigit()])
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        return Path(pg_ctl).parent
    raise RuntimeError(
        "PostgreSQL server binaries not found: run `bash scripts/test.sh` once "
        "(it installs Debian's postgresql) or `apt-get install postgresql`"
    )


#: seconds pg_ctl waits for the server to start or stop
PG_CTL_WAIT = 30


class PgServer:
    """One PostgreSQL server on ``127.0.0.1:port`` with its data in ``folder / "data"``.

    ``url``: the admin URL ``postgresql+asyncpg://postgres@127.0.0.1:PORT/postgres`` (trust
    authentication); :meth:`database_url` names another database on it. Every method blocks (it runs
    ``pg_ctl``): call them through ``asyncio.to_thread`` from a test's event loop. Raises
    ``RuntimeError`` (with the server log's tail) when ``initdb`` or ``pg_ctl`` fails.
    """

    def __init__(self, folder: Path | None = None, *, max_connections: int = 100, shared_buffers: str = "32MB") -> None:
        self.bindir = _bindir()
        self.server_options = f"-c max_connections={max_connections} -c shared_buffers={shared_buffers}"
        self.folder = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="release-bot-pg-"))
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
            f"-c synchronous_commit=off -c full_page_writes=off {self.server_options}",
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


@contextlib.contextmanager
def throwaway_server() -> Iterator[str]:
    """Start a server; yields its admin URL ``postgresql+asyncpg://postgres@127.0.0.1:PORT/postgres``."""
    server = PgServer(max_connections=300, shared_buffers="128MB")
    try:
        server.init()
        server.start()
        yield server.url
    finally:
        server.destroy()
