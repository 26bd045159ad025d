"""A throw-away PostgreSQL server on loopback for the several-processes benchmark.

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


@contextlib.contextmanager
def throwaway_server() -> Iterator[str]:
    """Start a server; yields its admin URL ``postgresql+asyncpg://postgres@127.0.0.1:PORT/postgres``."""
    bindir = _bindir()
    tmp = Path(tempfile.mkdtemp(prefix="release-bot-bench-pg-"))
    as_pg: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres")
        as_pg = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = tmp / "data"
    try:
        subprocess.run(
            [
                *as_pg,
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                *as_pg,
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(tmp / "server.log"),
                "-w",
                "-t",
                "30",
                "-o",
                f"-c listen_addresses=127.0.0.1 -p {port} -k {tmp} -c fsync=off -c synchronous_commit=off "
                "-c full_page_writes=off -c max_connections=300 -c shared_buffers=128MB",
                "start",
            ],
            check=True,
            capture_output=True,
        )
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                [*as_pg, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "-t", "20", "stop"],
                capture_output=True,
            )
        shutil.rmtree(tmp, ignore_errors=True)
