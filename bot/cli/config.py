"""``release-bot config``: the configuration in effect, and the files generated from the settings model.

* ``release-bot config [--config PATH]`` — the configuration in effect (the file, then the
  environment overrides, then the defaults) as TOML. Secrets are masked: ``"********"`` when set,
  ``""`` when not; so is a password in the database URL.
* ``--reference`` — ``docs/configuration.md``, the reference of every section and key.
* ``--example`` — ``config.example.toml``, the commented file a user copies.

Both generated files are committed; ``tests/bot/cli/test_config.py`` fails when they differ from
what :mod:`bot.settings` generates, so they cannot drift from the model.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

from bot.settings import ENVIRONMENT, RENAMED, KeyInfo, Settings, load_settings, schema

MASK = "********"
"""What a secret that is set is shown as."""

WIDTH = 96  # comment lines of the example file


def toml_value(value: object) -> str:
    """``value`` (bool, int, float, str, or a list/tuple of those) as a TOML value; a whole float as an integer."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def _mask_password(url: str) -> str:
    """``url`` with the password of its user info, if any, replaced by :data:`MASK`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:{MASK}@{host}"))


def effective_toml(settings: Settings, source: str, overrides: list[str]) -> str:
    """``settings`` as TOML, secrets masked, headed by where they come from: ``source`` (the file,
    described) and ``overrides`` (the environment variables that were set)."""
    lines = [
        "# release-bot configuration in effect, secrets masked.",
        f"# File: {source}.",
        f"# Environment: {', '.join(overrides) if overrides else 'no override set'}.",
        "# Every other key: its default.",
    ]
    for section, table in settings.model_dump().items():
        lines += ["", f"[{section}]"]
        for key, value in table.items():
            if value is None:
                lines.append(f"# {key} is not set")
                continue
            if isinstance(value, SecretStr):
                value = MASK if value.get_secret_value() else ""
            elif (section, key) == ("database", "url"):
                value = _mask_password(value)
            lines.append(f"{key} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


def _comment(text: str) -> list[str]:
    return textwrap.wrap(text, WIDTH - 2, initial_indent="# ", subsequent_indent="# ", break_on_hyphens=False)


def _allowed_sentence(key: KeyInfo) -> str:
    """``" A whole number from 1 to 64."``, or ``""`` where the type says it all."""
    if key.allowed in ("a string", "true or false"):
        return ""
    return f" {key.allowed[0].upper()}{key.allowed[1:]}."


def example_toml() -> str:
    """The text of ``config.example.toml``: every section and key with its default, each explained in a comment."""
    lines = [
        "# release-bot configuration. Copy to config.toml and fill in the secrets (or set them in the",
        f"# environment: {', '.join(ENVIRONMENT)}).",
        "# Environment variables win over this file. config.toml is git-ignored. Every key may be left",
        "# out for the default shown; unknown sections and keys are refused. `release-bot config` prints",
        "# the configuration in effect; docs/configuration.md is the reference.",
        "# Generated from bot/settings.py by `release-bot config --example`: edit the model, not this file.",
    ]
    for section in schema():
        lines += ["", f"[{section.name}]", *_comment(section.description)]
        for key in section.keys:
            env = f" Set {key.env} to override it." if key.env else ""
            lines += ["", *_comment(key.description + _allowed_sentence(key) + env)]
            if key.default is None:
                lines.append(f"# {key.key} = {toml_value(key.example)}")
            else:
                lines.append(f"{key.key} = {toml_value(key.default)}")
    return "\n".join(lines) + "\n"


def _cell(value: object) -> str:
    return "not set" if value is None else f"`{toml_value(value)}`"


def reference_markdown() -> str:
    """The text of ``docs/configuration.md``: every section and key with type, default, allowed
    values, environment override and description."""
    variables = [f"* `{var}` → `{section}.{key}`" for var, (section, key) in ENVIRONMENT.items()]
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated from bot/settings.py by `release-bot config --reference`: edit the model, not this file.",
        "     tests/bot/cli/test_config.py fails when the two disagree. -->",
        "",
        "release-bot reads one TOML file: `--config PATH`, by default `config.toml` (start from",
        "[`config.example.toml`](../config.example.toml), which lists every key with its default). Every",
        "key may be left out for its default. These environment variables, when set and not blank,",
        "win over the file; no other variable is read:",
        "",
        *variables,
        "",
        "A configuration the bot cannot run with stops the command with one line on stderr and exit",
        "status 2: an unknown section or key, named with the closest known one",
        "(`config error: unknown key discord.shard_id — did you mean discord.shard_ids?`), a renamed",
        "section, or a value of the wrong type or out of bounds",
        "(`config error: spotify.max_concurrency: must be a whole number from 1 to 64, got 0`). Types are",
        'strict: `"10"` is not a number and `1` is not `true`. `run` needs the token, the client id and',
        "the client secret; `check` only the Spotify two; `migrate`, `config` and `demo` none.",
        "",
        "`release-bot config [--config PATH]` prints the configuration in effect (the file, the",
        'environment, the defaults) as TOML, with the secrets masked (`"********"` when set, `""` when',
        "not) and so the password of the database URL.",
    ]
    for section in schema():
        lines += [
            "",
            f"## `[{section.name}]`",
            "",
            section.description,
            "",
            "| key | type | default | allowed | environment | description |",
            "|---|---|---|---|---|---|",
        ]
        for key in section.keys:
            env = f"`{key.env}`" if key.env else ""
            lines.append(
                f"| `{key.key}` | {key.type} | {_cell(key.default)} | {key.allowed} | {env} | {key.description} |"
            )
    lines += ["", "## Renamed sections", "", "Refused with the name to use instead:", ""]
    lines += [f"* `[{old}]`: use `{new}`" for old, new in RENAMED.items()]
    return "\n".join(lines) + "\n"


def run_config(
    path: str | Path,
    environ: Mapping[str, str],
    *,
    reference: bool = False,
    example: bool = False,
    out: TextIO = sys.stdout,
) -> int:
    """Print the configuration in effect (file at ``path`` + ``environ`` + defaults), or with ``reference`` /
    ``example`` the generated reference / example file. Returns 0; raises ``ConfigError`` for a bad configuration."""
    if reference:
        out.write(reference_markdown())
    elif example:
        out.write(example_toml())
    else:
        settings = load_settings(path, environ, require_secrets=False)
        source = str(path) if Path(path).expanduser().is_file() else f"{path} (no such file)"
        overrides = [var for var in ENVIRONMENT if environ.get(var, "").strip()]
        out.write(effective_toml(settings, source, overrides))
    return 0
