"""Helpers of the tests that watch a bot through its operations endpoints (docs/operations.md):
HTTP GETs, a parsed ``/metrics`` scrape, a database made to fail, and the metric names the Grafana
dashboard queries."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from storage.db import Database

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "release-bot.json"
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
"""``(sample name, labels) → value`` of one scrape."""


async def get(url: str) -> tuple[int, str]:
    """``GET url``: ``(status, body)`` (10 s at most)."""
    async with aiohttp.ClientSession() as http, http.get(url, timeout=aiohttp.ClientTimeout(total=10)) as resp:
        return resp.status, await resp.text()


def parse(text: str) -> Samples:
    """Every sample of a text exposition, parsed as Prometheus does."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


async def scrape(port: int) -> Samples:
    """``GET http://127.0.0.1:{port}/metrics``, parsed (fails unless it answers 200)."""
    status, body = await get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200, body
    return parse(body)


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample ``name{labels}`` (0 when absent: a labelled counter not moved yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str) -> float:
    """The sum of every sample ``name`` whatever its labels."""
    return sum(v for (n, _), v in samples.items() if n == name)


@contextlib.contextmanager
def failing_statements(db: Database) -> Iterator[None]:
    """Every statement on ``db``'s engine fails (as with the database server gone) until the block ends;
    alike on SQLite and PostgreSQL."""

    def fail(*_args: object) -> None:
        raise OperationalError("SELECT …", {}, ConnectionRefusedError("the database is down"))

    event.listen(db.engine.sync_engine, "before_cursor_execute", fail)
    try:
        yield
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", fail)


def dashboard_exprs(path: Path = DASHBOARD) -> list[str]:
    """Every PromQL ``expr`` of the Grafana dashboard's panels (rows' panels included)."""
    exprs: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                exprs.append(node["expr"])
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(json.loads(path.read_text())["panels"])
    return exprs


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (``release_bot_…`` and ``process_…``), without the
    histogram suffix's family name (``x_bucket`` stays ``x_bucket``: it is a sample name)."""
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    return set(re.findall(r"\b((?:release_bot|process)_[a-zA-Z0-9_]+)\b", without_strings))
