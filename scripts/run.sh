#!/usr/bin/env bash
# Set up (first time) and run release-bot. With credentials (config.toml or DISCORD_TOKEN)
# it runs the bot; with none, the offline demo. Extra arguments go to `release-bot run`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup-env.sh"
cd "$ROOT"
if [ -f config.toml ] || [ -n "${DISCORD_TOKEN:-}" ]; then
  exec "$ROOT/.venv/bin/release-bot" run "$@"
fi
echo "No config.toml and no DISCORD_TOKEN: running the offline demo (see README → Set up a real bot)." >&2
exec "$ROOT/.venv/bin/release-bot" demo
