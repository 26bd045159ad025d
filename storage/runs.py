"""Run history: one ``runs`` row per run (trigger, status, coverage, metrics), written as a run
starts and ends, and read back for ``/history``, ``/status`` and recovery.

Every function takes an open ``AsyncSession`` and never commits: the caller owns the transaction.
Times are timezone-aware UTC.
"""

from __future__ import annotations
