"""The delivery ledger: one ``deliveries`` row per (guild, release), claimed before a post is sent,
confirmed with the Discord message id after, or recorded ``skipped``; and the reads that tell
which releases are still pending for a guild.

Every function takes an open ``AsyncSession`` and never commits: the caller owns the transaction.
Times are timezone-aware UTC.
"""

from __future__ import annotations
