#!/usr/bin/env bash
# Creates .venv (Python >= 3.11) and installs release-bot with its test tools into it.
# Re-runs only when pyproject.toml changed. Sourced by scripts/run.sh and scripts/test.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
  echo "release-bot needs Python 3.11 or newer (found: $("$PY" --version 2>&1))" >&2
  exit 1
fi
stamp="$VENV/.installed-$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "Setting up $VENV (first run only)…" >&2
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  log="$VENV/install.log"
  if ! { "$VENV/bin/python" -m pip install --quiet --upgrade pip \
         && "$VENV/bin/python" -m pip install --quiet -e "$ROOT[test]"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "Installing release-bot's dependencies failed (full log above, also in $log)." >&2
    exit 1
  fi
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi
