#!/usr/bin/env bash
# Set up (first time), run the static checks (ruff check, ruff format --check, mypy), then the
# whole test suite twice: on SQLite, then on a throw-away PostgreSQL server this script starts
# itself (Debian's `postgresql` package is installed when its binaries are absent and we are
# root). Extra arguments go to pytest (both passes) and skip the static checks (STATIC=1 keeps them).
#
# Exit status: non-zero when either pass fails (pytest's own status; 5 = no tests collected) or,
# after both passes ran, when a static check failed.
# With CI=true a PostgreSQL server that cannot be installed or started fails the run; outside
# CI it is a loud warning and only the SQLite pass runs.
{ # the whole script is one block: bash parses it before running it, so editing it mid-run is harmless
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup-env.sh"
cd "$ROOT"
PY="$ROOT/.venv/bin/python"
unset RELEASE_BOT_TEST_DATABASE_URL

in_ci() { [ "${CI:-}" = "true" ] || [ "${CI:-}" = "1" ]; }

pg_bindir() {
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
  d="$(dirname "$(command -v pg_ctl 2>/dev/null || echo /nonexistent/x)")"
  if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
  return 1
}

PGTMP=""
PGBIN=""
AS_PG=()
pg_stop() {
  if [ -n "$PGTMP" ] && [ -d "$PGTMP" ]; then
    if [ -f "$PGTMP/data/postmaster.pid" ]; then
      "${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$PGTMP/data" -m immediate -w -t 20 stop >/dev/null 2>&1 || true
    fi
    rm -rf "$PGTMP"
  fi
}
trap pg_stop EXIT
trap 'exit 130' INT TERM

# Starts PostgreSQL and sets PG_URL, or returns 1 with the reason on stderr.
pg_start() {
  if ! PGBIN="$(pg_bindir)"; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "Installing PostgreSQL (Debian package \`postgresql\`, first run only)…" >&2
      if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql; } \
           >"$ROOT/.venv/postgresql-install.log" 2>&1; then
        echo "apt-get install postgresql failed (log: $ROOT/.venv/postgresql-install.log)" >&2
        return 1
      fi
    fi
    if ! PGBIN="$(pg_bindir)"; then
      echo "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin or on PATH" >&2
      return 1
    fi
  fi
  PGTMP="$(mktemp -d "${TMPDIR:-/tmp}/release-bot-pg.XXXXXX")" || { PGTMP=""; echo "mktemp failed" >&2; return 1; }
  if [ "$(id -u)" = 0 ]; then  # initdb and postgres refuse to run as root
    if ! id postgres >/dev/null 2>&1; then echo "no 'postgres' OS user to run the server as" >&2; return 1; fi
    chown postgres "$PGTMP" || return 1
    AS_PG=(runuser -u postgres --)
  fi
  local port
  port="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')" \
    || { echo "no free port on 127.0.0.1" >&2; return 1; }
  if ! "${AS_PG[@]}" "$PGBIN/initdb" -D "$PGTMP/data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
       >"$PGTMP/initdb.log" 2>&1; then
    cat "$PGTMP/initdb.log" >&2; echo "initdb failed" >&2; return 1
  fi
  # Throw-away data: durability off makes CREATE DATABASE … TEMPLATE and commits cheap.
  if ! "${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$PGTMP/data" -l "$PGTMP/server.log" -w -t 30 \
       -o "-c listen_addresses=127.0.0.1 -p $port -k $PGTMP -c fsync=off -c synchronous_commit=off \
-c full_page_writes=off -c max_connections=300 -c shared_buffers=64MB" start >/dev/null 2>&1; then
    cat "$PGTMP/server.log" >&2 2>/dev/null || true; echo "the PostgreSQL server did not start" >&2; return 1
  fi
  PG_URL="postgresql+asyncpg://postgres@127.0.0.1:$port/postgres"
  echo "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data in $PGTMP)" >&2
}

# Static checks (ruff lint, ruff format, mypy: configured in pyproject.toml) on a whole run;
# a run given pytest arguments (a subset) skips them unless STATIC=1.
static_rc=0
if [ "$#" -eq 0 ] || [ "${STATIC:-}" = "1" ]; then
  echo "== static checks: ruff check, ruff format --check, mypy =="
  "$ROOT/.venv/bin/ruff" check . || static_rc=1
  "$ROOT/.venv/bin/ruff" format --check . || static_rc=1
  "$ROOT/.venv/bin/mypy" || static_rc=1
  static_state="exit $static_rc"
else
  static_state="skipped (pytest arguments given; STATIC=1 runs them)"
fi

PG_URL=""
if ! pg_start; then
  pg_stop; PGTMP=""
  if in_ci; then
    echo "ERROR: CI=true and PostgreSQL could not be installed or started: the PostgreSQL pass cannot run." >&2
    exit 1
  fi
  echo "WARNING: PostgreSQL could not be installed or started (reason above): running the SQLite pass ONLY." >&2
fi

set +e
echo "== SQLite =="
"$PY" -m pytest -q "$@"
sqlite_rc=$?
pg_rc=0
if [ -n "$PG_URL" ]; then
  echo "== PostgreSQL =="
  RELEASE_BOT_TEST_DATABASE_URL="$PG_URL" "$PY" -m pytest -q "$@"
  pg_rc=$?
fi
set -e
echo "Static checks: $static_state; SQLite pass: exit $sqlite_rc$([ -n "$PG_URL" ] && echo "; PostgreSQL pass: exit $pg_rc" || echo "; PostgreSQL pass: NOT RUN")"
if [ "$sqlite_rc" -ne 0 ]; then exit "$sqlite_rc"; fi
if [ "$pg_rc" -ne 0 ]; then exit "$pg_rc"; fi
exit "$static_rc"
}
